import PKNetworks
import PKNumerics

/// `ntk0-km` (math §3, §7): the network linearized at w_0, trained like the network (the analyzer
/// trains it during the forward pass: `wLin`), `f_0(x) + J(x; w_0)(v − w_0)`.
struct NTK0KM: KernelMachineRule {
    let name = "ntk0-km"
    let needsFullScope = true
    let needsKernelForm = false

    func description(in context: KernelMachineContext) -> String { "the network linearized at w_0, trained like the network" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        .prediction(context.f0 + context.model.jvp(context.w0, context.xq, tangent: zip(context.wLin, context.w0).map { $0 - $1 }))
    }
}
