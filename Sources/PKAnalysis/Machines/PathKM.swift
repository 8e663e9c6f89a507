import PKNumerics

/// `path-km` (math §3): Domingos' kernel machine, `f_0(x) + Σ_i K^p(x, x_i) ā_i` with the fixed
/// coefficients `ā_i = −Σ_t c_{i,t} g_{i,t} / Σ_t c_{i,t}`.
struct PathKM: KernelMachineRule {
    let name = "path-km"
    let needsFullScope = false
    let needsKernelForm = true

    func description(in context: KernelMachineContext) -> String { "path kernel, fixed coefficients (Domingos)" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        let aFixed = PathAnalyzer.fixedCoefficients(cSum: context.cSum, gSum: context.gSum)
        var pathKM = context.f0
        for q in 0..<context.queries {
            let p = PathAnalyzer.kernelTimes(context.kp, row: q, coefficients: aFixed, blocks: context.blocks, outputs: context.outputs)
            for c in 0..<context.outputs { pathKM[q, c] += p[c] }
        }
        return .prediction(pathKM)
    }
}
