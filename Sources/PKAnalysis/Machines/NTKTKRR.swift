import PKNumerics
import PKNetworks

/// `ntkT-krr` (math §3): kernel ridge regression with the final NTK Θ_{w_T} on the training points.
struct NTKTKRR: KernelMachineRule {
    let name = "ntkT-krr"
    let needsFullScope = true
    let needsKernelForm = false

    func description(in context: KernelMachineContext) -> String { "ridge regression with the final NTK" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        let model = context.model, wT = context.wT, mode = context.mode, nT = context.heldOut
        // K_T(X, X) is solved in place; the training rows' predictions come with the fit, the
        // held-out rows need K_T(test, X) only.
        let ftX = model.features(wT, context.run.trainX)
        var kxx = TangentFeatures.kernel(ftX, ftX, mode: mode)
        let tFit = PathAnalyzer.ridgeFit(&kxx, target: context.trainingChange, blocks: context.blocks, outputs: context.outputs,
                                         rho: context.settings.ridge)
        kxx = Matrix(rows: 0, cols: 0)
        guard let fit = tFit else { return .skipped(note: KernelMachines.ridgeSkippedNote(name, context)) }
        var fitted = nT > 0
            ? fit.scale * Matrix.product(TangentFeatures.kernel(model.features(wT, context.xq.rows(0..<nT)), ftX, mode: mode), fit.alpha)
            : Matrix(rows: 0, cols: fit.alpha.cols)
        fitted = Matrix(rows: fitted.rows + fit.fitted.rows, cols: fit.alpha.cols, data: fitted.data + fit.fitted.data)
        return .ridge(fit, prediction: context.f0 + Matrix(rows: context.queries, cols: context.outputs, data: fitted.data))
    }
}
