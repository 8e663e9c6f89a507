import PKNumerics

/// `path-krr` (math §3): kernel ridge regression with the path kernel's PSD part on the training
/// points, predictions for every query from K^p's rows.
struct PathKRR: KernelMachineRule {
    let name = "path-krr"
    let needsFullScope = true
    let needsKernelForm = true

    func description(in context: KernelMachineContext) -> String { "ridge regression with the path kernel's PSD part" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        let nT = context.heldOut, nQ = context.queries, blocks = context.blocks
        // The square block K^p(X, X) (training queries are rows nT..<nQ), copied once into the
        // solver's work matrix and freed on return.
        var work = context.kp.rows((nT * blocks)..<(nQ * blocks))
        guard let fit = PathAnalyzer.ridgeFit(&work, target: context.trainingChange, blocks: blocks, outputs: context.outputs,
                                              rho: context.settings.ridge) else {
            return .skipped(note: KernelMachines.ridgeSkippedNote(name, context))
        }
        work = Matrix(rows: 0, cols: 0)
        return .ridge(fit, prediction: PathAnalyzer.ridgePrediction(kqx: context.kp, alpha: fit.alpha, scale: fit.scale,
                                                                    f0: context.f0, outputs: context.outputs))
    }
}
