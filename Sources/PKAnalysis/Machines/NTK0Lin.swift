import PKNetworks
import PKNumerics

/// `ntk0-lin` (math §3): the linearization at w_0 evaluated at w_T, `f_0(x) + J(x; w_0)(w_T − w_0)`.
struct NTK0Lin: KernelMachineRule {
    let name = "ntk0-lin"
    let needsFullScope = true
    let needsKernelForm = false

    func description(in context: KernelMachineContext) -> String { "linearization at w_0, evaluated at w_T" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        .prediction(context.f0 + context.model.jvp(context.w0, context.xq, tangent: zip(context.wT, context.w0).map { $0 - $1 }))
    }
}
