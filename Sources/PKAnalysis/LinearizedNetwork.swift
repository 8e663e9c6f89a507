import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

/// The linearized network of `ntk0-km` (path-kernel math §7): `f_lin(x) = f_0(x) + J(x; w_0)(v − w_0)`,
/// from `v = w_0`, trained on the recorded batches with the recorded learning rates by the run's
/// own optimizer chain with its own state (restored from the trace's state at step 0 when it
/// stores one: a resumed run's buffers). Every recorded step of a segment is applied (several at
/// checkpoint resolution). Not trained in scope exact.
struct LinearizedTraining {
    let context: AnalysisContext
    let optimizer: Chain
    let w0: [Double]
    /// f_0 at the training points (empty in scope exact).
    let f0Train: Matrix
    /// v, the linearized network's weights.
    private(set) var weights: [Double]
    private var state: OptimizerState

    init(context: AnalysisContext, optimizer: Chain, w0: [Double], initialState: StoredOptimizerState?) {
        self.context = context
        self.optimizer = optimizer
        self.w0 = w0
        let model = context.model
        f0Train = context.exactOnly ? Matrix(rows: 0, cols: 0) : model.forward(w0, context.run.trainX)
        weights = w0
        state = optimizer.initialState(parameterCount: model.parameterCount)
        if let s0 = initialState, let restored = try? optimizer.restoreState(count: s0.count, names: s0.names, values: s0.values,
                                                                              parameterCount: model.parameterCount) {
            state = restored
        }
    }

    /// Applies the segment's recorded steps.
    mutating func train(_ seg: RouteSegment) {
        guard !context.exactOnly else { return }
        let model = context.model, run = context.run, t = seg.step, span = seg.segment.span
        for record in run.stepRecords[t..<(t + span)] {
            let b = record.batch.map(Int.init)
            let xs = span == 1 ? seg.xb : run.trainX.rows(at: b), ys = span == 1 ? seg.yb : run.trainY.rows(at: b)
            let fLin = f0Train.rows(at: b) + model.jvp(w0, xs, tangent: zip(weights, w0).map { $0 - $1 })
            let (_, gLin) = run.loss.evaluate(outputs: fLin, targets: ys)
            let gradLin = model.vjp(w0, xs, cotangent: (1.0 / Double(b.count)) * gLin)
            let u = optimizer.update(gradLin, state: state, parameters: weights, learningRate: record.learningRate)
            state = u.state
            Vec.axpy(1, u.updates, &weights)
        }
    }
}
