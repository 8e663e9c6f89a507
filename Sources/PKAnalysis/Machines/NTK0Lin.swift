import PKNetworks
import PKNumerics

/// `ntk0-lin` (math §3): the linearization at w_0 evaluated at w_T, `f_0(x) + J(x; w_0)(w_T − w_0)`.
struct NTK0Lin: KernelMachineRule {
    let name = "ntk0-lin"
    let needsFullScope = true
    let needsKernelForm = false

    func description(in context: KernelMachineContext) -> String { "linearization at w_0, evaluated at w_T" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        .prediction(Self.prediction(context.model, w0: context.w0, wT: context.wT, context.xq, f0: context.f0))
    }

    /// `f_0(x) + J(x; w_0)(w_T − w_0)` on the rows of `x` (`f0` the network's outputs there at w_0);
    /// also the diagnostics' linearization when no analysis ran (`RunDiagnostics`).
    static func prediction(_ model: any Network, w0: [Double], wT: [Double], _ x: Matrix, f0: Matrix) -> Matrix {
        f0 + model.jvp(w0, x, tangent: zip(wT, w0).map { $0 - $1 })
    }
}
