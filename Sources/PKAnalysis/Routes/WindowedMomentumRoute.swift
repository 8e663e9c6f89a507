import Foundation
import PKNumerics
import PKOptim

/// Momentum summed forwards over a window (path-kernel math §5; `--momentum-tolerance`, or when
/// keeping every w_t for the exact sum would take over 4 GB; float64, coupled decay only):
/// `Δw_t = −η_t Σ_{s≤t} c_{t,s} u_s`, so step t's query side meets the training sides of the
/// earlier steps still in the window, each weighted by `η_t c_{t,s} s_s/|B_s|`; a step leaves once
/// `μ^{t−s}` is below the tolerance (what it would have added shows in the kernel-form residual).
/// The decay part of Δw_t is `−η_t λ Σ_s c_{t,s} w_s`, from a running buffer.
struct WindowedMomentumRoute: KernelRoute {
    let form: KernelForm
    let integral: ForwardPathIntegral
    let lambda: Double
    let mu: Double, dampening: Double, nesterov: Bool
    let tolerance: Double
    let steps: Int
    /// The training sides still in the window, oldest first.
    var window: [TrainingSide<Double>] = []
    /// `Σ_s c_{t,s} (w_s − w_a)` without Nesterov's term (the decay's momentum buffer).
    var decayBuffer: [Double]? = nil

    init(context: AnalysisContext, form: KernelForm, tolerance: Double) {
        self.form = form
        integral = ForwardPathIntegral(context: context)
        lambda = form.coupledDecay + form.decoupledDecay
        mu = form.momentum?.rho ?? 0
        dampening = form.momentum?.dampening ?? 0
        nesterov = form.momentum?.nesterov ?? false
        self.tolerance = tolerance
        steps = context.steps
    }

    var kernelName: String {
        "two-time path kernel (momentum \(mu)\(nesterov ? ", Nesterov" : "")), tail < \(tolerance)\(KernelRoutes.clipSuffix(form))"
    }
    var hasKernelForm: Bool { true }
    var summedForwards: Bool { true }
    /// Exact quadrature (§1.1) as on the (S)GD route: `ForwardPathIntegral` gives a query with
    /// breakpoints its own nodes, against every side in the window.
    var takesPiecewiseNodes: Bool { true }
    var windowSides: Double {
        mu > 0 ? min(Double(steps), max(1, (log(tolerance) / log(mu)).rounded(.up))) : 1
    }
    var note: String? {
        "momentum \(mu)\(nesterov ? " (Nesterov)" : ""): two-time path kernel J̄_t(x)·J(x_i; w_s)ᵀ weighted by η_t c_{t,s}; earlier steps leave it once μ^{t−s} < \(tolerance) (what they would add shows in the kernel-form residual)"
    }

    mutating func consume(_ seg: RouteSegment, into acc: inout KernelAccumulators) {
        let t = seg.step, eta = seg.learningRate, mu = mu, tolerance = tolerance
        // The decay part of Δw_t: −η_t λ Σ_s c_{t,s} (w_s − w_a) (λ_k per parameter with groups;
        // w_a the decay's anchor, 0 without one: the buffer sums displacements, since the c_{t,s}
        // need not sum to 1).
        var decayTangent: [Double]? = nil
        if lambda > 0 {
            let d = form.displacement(seg.start)
            var buf = decayBuffer ?? d
            if decayBuffer != nil {
                for k in buf.indices { buf[k] = mu * buf[k] + (1 - dampening) * d[k] }
            }
            decayBuffer = buf
            let dec = nesterov ? zip(d, buf).map { $0 + mu * $1 } : buf
            decayTangent = form.decay(ofDisplacement: dec, times: -eta, lambda: lambda)
        }
        let tangents = decayTangent.map { [seg.delta, $0] } ?? [seg.delta]
        window.append(integral.trainingSide(Double.self, seg))
        window.removeAll { pow(mu, Double(t - $0.step)) < tolerance && $0.step != t }
        let weighted = window.map { ($0, eta * coefficient(t: t, s: $0.step) * $0.scale) }
        integral.integrate(Double.self, seg, sides: weighted, tangents: tangents, into: &acc)
        for (side, weight) in weighted { acc.addCoefficients(batch: side.batch, g: side.g, weight: weight) }
    }

    func coefficient(t: Int, s: Int) -> Double {
        PathAnalyzer.momentumCoefficient(t: t, s: s, momentum: mu, dampening: dampening, nesterov: nesterov)
    }
}

extension PathAnalyzer {
    /// `c_{t,s}` of `Δw_t = −η_t Σ_{s≤t} c_{t,s} u_s` for PyTorch's momentum (`u_s` the batch
    /// gradient plus coupled decay): heavy ball `μ^{t−s}` times 1 for `s = 0` and `1 − dampening`
    /// after; Nesterov `μ` times that plus 1 at `s = t`.
    static func momentumCoefficient(t: Int, s: Int, momentum mu: Double, dampening: Double, nesterov: Bool) -> Double {
        var c = pow(mu, Double(t - s)) * (s == 0 ? 1 : 1 - dampening)
        if nesterov { c = mu * c + (s == t ? 1 : 0) }
        return c
    }
}
