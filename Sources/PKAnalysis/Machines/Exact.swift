import PKNumerics

/// `exact`: the path decomposition (math §1, §3), `f_0(x) − Σ_i N(x, i) + R_wd(x)` when the run
/// has a kernel form, else the JVP route's `f_0(x) + Σ_t J̄_t(x)Δw_t`.
struct ExactMachine: KernelMachineRule {
    let name = "exact"
    let needsFullScope = false
    let needsKernelForm = false

    func description(in context: KernelMachineContext) -> String {
        context.kernelForm ? "f0 + path decomposition (x-dependent coefficients)" : "f0 + Σ_t J̄_t Δw_t (JVP route)"
    }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        .prediction(Self.prediction(context))
    }

    /// The prediction (also read by the reconstruction residuals).
    static func prediction(_ context: KernelMachineContext) -> Matrix {
        var exact = context.f0
        for q in 0..<context.queries {
            for c in 0..<context.outputs {
                exact[q, c] += context.kernelForm ? -context.nSum[q, c] + context.rwd[q, c] : context.jvpSum[q, c]
            }
        }
        return exact
    }
}
