import PKNumerics
import PKOptim

/// Plain (S)GD, clipped or not, with coupled (or decoupled) weight decay (path-kernel math §2):
/// `K^p = Σ_t η_t s_t/|B_t| K̄_t`, summed forwards in time, step by step, in precision S (tangent
/// features, kernels and JVPs in S, every sum in float64). The training side of step t is taken at
/// `w_t`; the decay part of Δw_t, `−η_t λ w_t`, goes through the same query features as Δw_t
/// (its JVPs are R_wd). With exact quadrature (§1.1) the queries that cross a kink on a segment
/// are integrated on their own nodes (`RouteSegment.piecewise`), in the kernel form as in the JVPs.
struct PathKernelRoute<S: BLASScalar>: KernelRoute {
    let form: KernelForm
    let integral: ForwardPathIntegral
    /// λ of the decay term (coupled or decoupled: a recorded spec has one at most).
    let lambda: Double

    init(context: AnalysisContext, form: KernelForm) {
        self.form = form
        integral = ForwardPathIntegral(context: context)
        lambda = form.coupledDecay + form.decoupledDecay
    }

    /// The start of `kernelName` (what a stored result's `path_kernel` says of this route).
    static var kernelNamePrefix: String { "path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD" }
    var kernelName: String { "\(Self.kernelNamePrefix)\(KernelRoutes.clipSuffix(form))" }
    var hasKernelForm: Bool { true }
    var summedForwards: Bool { true }
    var takesPiecewiseNodes: Bool { true }

    mutating func consume(_ seg: RouteSegment, into acc: inout KernelAccumulators) {
        // The decay part of Δw_t: −η_t λ w_t (λ_k per parameter with groups).
        var decayTangent: [Double]? = nil
        if lambda > 0 {
            decayTangent = form.decay(of: seg.start, times: -seg.learningRate, lambda: lambda)
        }
        let tangents = decayTangent.map { [seg.delta, $0] } ?? [seg.delta]
        let side = integral.trainingSide(S.self, seg)
        let weight = seg.learningRate * side.scale
        integral.integrate(S.self, seg, sides: [(side, weight)], tangents: tangents, into: &acc)
        acc.addCoefficients(batch: seg.batch, g: side.g, weight: weight)
    }
}
