import PKNetworks
import PKNumerics
import PKOptim
import PKStep

/// The exact two-time kernels of momentum (by default), Adam, AdamW and RMSProp (path-kernel
/// math §5, `PreconditionedForm`), in either precision. The forward pass only collects what the
/// backward recursion needs of each step (w_t, the batch, η_t, the clip scale, the nodes, and
/// D_t from the optimizer state after update t); `finish` then runs
/// `PathAnalyzer.accumulatePreconditioned` backwards in time, which does all the query-side
/// work, JVPs included. K^p exists only at the end (no path-km error in the dynamics). With
/// exact quadrature (§1.1) each step also keeps its per-query nodes (`RouteSegment.piecewise`):
/// a query with breakpoints accumulates its own nodes' Jacobians into its rows of R, and its JVPs
/// from the same features.
struct PreconditionedRoute: KernelRoute {
    let context: AnalysisContext
    let optimizer: Chain
    var form: PreconditionedForm
    /// The optimizer's state after the last consumed update (for D_t when the segment has none).
    var state: OptimizerState

    init(context: AnalysisContext, form: PreconditionedForm, optimizer: Chain) {
        self.context = context
        self.form = form
        self.optimizer = optimizer
        state = optimizer.initialState(parameterCount: context.model.parameterCount)
    }

    var kernelName: String { form.kernelName + KernelRoutes.clipSuffix(form.kernelForm) }
    var hasKernelForm: Bool { true }
    var summedForwards: Bool { false }
    var backwardPass: Bool { true }
    var note: String? { form.description }
    var takesPiecewiseNodes: Bool { true }

    mutating func consume(_ seg: RouteSegment, into acc: inout KernelAccumulators) {
        // D_t from the optimizer state after update t (the trace's, stored or replayed, else our own update).
        let model = context.model
        var d: [Double] = []
        if form.hasPreconditioner {
            if let st = seg.segment.state {
                state = st
            } else {
                state = optimizer.step(model: model, parameters: seg.start, state: state, inputs: seg.xb, targets: seg.yb,
                                       loss: context.run.loss, learningRate: seg.learningRate).state ?? state
            }
            d = optimizer.preconditioner(state) ?? [Double](repeating: 1, count: model.parameterCount)
        }
        form.steps.append(.init(start: seg.start, preconditioner: d, batch: seg.batch, learningRate: seg.learningRate,
                                scale: seg.scale, nodes: seg.nodes, piecewise: seg.piecewise))
    }

    mutating func finish(end: [Double], into acc: inout KernelAccumulators, progress: (_ done: Int, _ total: Int) -> Void) {
        form.end = end
        let c = context
        switch c.settings.precision {
        case .f64:
            PathAnalyzer.accumulatePreconditioned(Double.self, form, model: c.model, run: c.run, xq: c.xq, nT: c.heldOut, rows: c.rows, exactOnly: c.exactOnly,
                                                  mode: c.mode, attrIndex: c.attrIndex, into: &acc, progress: progress)
        case .f32:
            PathAnalyzer.accumulatePreconditioned(Float.self, form, model: c.model, run: c.run, xq: c.xq, nT: c.heldOut, rows: c.rows, exactOnly: c.exactOnly,
                                                  mode: c.mode, attrIndex: c.attrIndex, into: &acc, progress: progress)
        }
        // The stored w_t (and D_t) of every step are no longer needed: free them before the machines.
        form.steps = []
        form.end = []
    }
}
