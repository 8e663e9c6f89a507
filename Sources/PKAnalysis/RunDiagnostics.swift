import Foundation
import PKNetworks
import PKNumerics
import PKTrace

/// The over-parameterization diagnostics of a recorded run without the path-kernel analysis
/// (ntk-family contract §5): what `pathkernel sweep` computes for each of its runs.
///
/// The figures are those of a full-scope `pathkernel analyze` with the default settings, by the
/// same code (`OverParameterization` on the same `AnalysisContext`): the kernels, λ_min, δ, the
/// kernel change, the travel and the pattern flips are the same bits; the linearization is
/// `ntk0-lin`'s formula (`NTK0Lin.prediction`). What differs: the closed-form predictor of the
/// beyond-kernel gap is always computed by `LinearizedDynamics` (the analysis reads it from
/// `ntk0-km` where the run is full-batch constant-rate GD on MSE; the two agree to 1e-10, contract
/// §2), and for tanh, sigmoid and softplus the analytic λ_min has no `ntkinf-km` kernel to reuse
/// (it is computed within `OverParameterization.quadraturePairLimit`, else absent with a note).
///
/// Skipped (the cost of the analysis, which grows with steps × parameters × quadrature nodes):
/// the path integral, every kernel machine but the linearization, the dynamics along training,
/// the step check (the weights at step 0 and `T` are read from their checkpoints as stored).
public struct RunDiagnostics: Sendable {
    public let diagnostics: AnalysisResult.Diagnostics
    /// The run's mean loss on the whole training set at `w_T` (not the recorded loss of the last
    /// step, which is at `w_{T−1}`); nil when not finite.
    public let trainingLoss: Double?
    /// Steps `T` (the last usable checkpoint) and parameters `P`.
    public let steps: Int
    public let parameters: Int

    /// The diagnostics of the trace at `path`. Throws the trace store's or `AnalysisError`s in one
    /// line (an unreadable trace, one without a checkpoint after step 0).
    public static func compute(trace path: String) throws -> RunDiagnostics {
        // The analyzer's threading (PathAnalyzer): one BLAS thread, so the same bits as there.
        return try BLASThreads.with(1) {
            let reader = try TraceReader.open(path)
            defer { reader.close() }
            let run = try TraceRun.load(reader)
            let context = try AnalysisContext(settings: AnalysisSettings(), run: run)
            let model = context.model
            let w0 = try WeightPath.weights(atStep: 0, run: run, reader: reader).weights
            let wT = try WeightPath.weights(atStep: run.steps, run: run, reader: reader).weights
            let f0 = model.forward(w0, context.xq), fT = model.forward(wT, context.xq)
            let linearization = NTK0Lin.prediction(model, w0: w0, wT: wT, context.xq, f0: f0)
            let diagnostics = OverParameterization(context: context, w0: w0, wT: wT, fT: fT, f0: f0, linearization: linearization,
                                                   kernelMachine: nil, analyticQX: nil, analyticMachine: nil).compute()
            let trainOutputs = fT.rows(context.heldOut..<context.queries)
            let loss = trainOutputs.isFinite ? run.loss.evaluate(outputs: trainOutputs, targets: run.trainY).loss : .nan
            return RunDiagnostics(diagnostics: diagnostics, trainingLoss: loss.isFinite ? loss : nil, steps: run.steps,
                                  parameters: model.parameterCount)
        }
    }
}
