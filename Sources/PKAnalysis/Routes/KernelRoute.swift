import Foundation
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

/// One way of turning the weight path into the accumulated sums of an analysis (path-kernel
/// math §1–5): the kernel form (K^p, N, R_wd, the fixed coefficients' weights) with the
/// reconstruction's JVPs, or, for a chain without a usable kernel form, the JVPs alone.
///
/// The analyzer walks the path once, forwards in time, and hands every segment to the route
/// (`consume`); after the last one it calls `finish` (where the backward routes do their work).
/// A route only adds to the accumulators, which are sums over steps: the sums of two step
/// ranges add up to the sum over both.
///
/// Adding a route is one file under `Routes/` with a type conforming to this protocol, plus its
/// case in `KernelRoutes.select` (Docs/path-kernel.md, "Checklist: adding a kernel route").
protocol KernelRoute {
    /// The kernel as the report's `kernel` line names it (JSON `settings.path_kernel`).
    var kernelName: String { get }
    /// K^p and N are accumulated (the path machines, attribution); false: the JVP route only.
    var hasKernelForm: Bool { get }
    /// K^p up to the current step exists during the forward pass (the dynamics' path-km error).
    var summedForwards: Bool { get }
    /// The route's work is a pass backwards in time in `finish` (the cost model's backward phase).
    var backwardPass: Bool { get }
    /// Training sides met per step and node (the cost model; 1 but for the momentum window).
    var windowSides: Double { get }
    /// The report's note on the kernel, if any (after the weight-decay note).
    var note: String? { get }
    /// The route reads `RouteSegment.piecewise` (exact quadrature's per-query nodes, math §1.1);
    /// false: it integrates every query on the shared nodes, and exact quadrature is not offered.
    var takesPiecewiseNodes: Bool { get }
    /// Consumes one segment of the path (steps in time order).
    mutating func consume(_ segment: RouteSegment, into acc: inout KernelAccumulators)
    /// After the last segment; `end` is w_T. `progress(done, total)` in the route's own units.
    mutating func finish(end: [Double], into acc: inout KernelAccumulators, progress: (_ done: Int, _ total: Int) -> Void)
}

extension KernelRoute {
    var backwardPass: Bool { false }
    var windowSides: Double { 1 }
    var note: String? { nil }
    var takesPiecewiseNodes: Bool { false }
    mutating func finish(end: [Double], into acc: inout KernelAccumulators, progress: (_ done: Int, _ total: Int) -> Void) {}
}

/// One segment `(w_t, w_{t+1})` of the path as a route reads it: the segment, its Δw_t, its
/// batch (indices and rows), and the quadrature nodes `(s_j, ω_j)` chosen for it (with exact
/// quadrature, shared by the queries without a breakpoint; the others' are `piecewise`).
struct RouteSegment {
    let segment: WeightPath.Segment
    /// Δw_t = w_{t+1} − w_t.
    let delta: [Double]
    let batch: [Int]
    let xb: Matrix, yb: Matrix
    let nodes: [(s: Double, w: Double)]
    /// Exact quadrature (only for routes with `takesPiecewiseNodes`): the queries that leave
    /// `nodes` for nodes of their own; nil: every query takes `nodes`.
    var piecewise: PiecewiseNodes? = nil

    var step: Int { segment.step }
    var start: [Double] { segment.start }
    /// η_t (clipping's s_t/|B_t| is the training side's scale).
    var learningRate: Double { segment.record.learningRate }
    /// `s_t/|B_t|`: the recorded clip scale over the batch size.
    var scale: Double { (segment.record.clipScale ?? 1) / Double(batch.count) }
}

/// The routes and which one an analysis takes.
enum KernelRoutes {
    /// The route an analysis takes, and the notes its choice gives (in the report's order).
    struct Selection {
        var route: any KernelRoute
        var notes: [String]
    }

    /// The route follows the optimizer chain's own kernel form (`KernelForm`, Docs/optimizers.md):
    /// (S)GD, clipped or not, has the kernel form of math §2 (`PathKernelRoute`, summed forwards
    /// in either precision); momentum and Adam-type updates the two-time (preconditioned) forms of
    /// §5 (`PreconditionedRoute`, exact, backwards in time; momentum with `--momentum-tolerance`
    /// or too large a path the `WindowedMomentumRoute`, float64 only); a chain without one, or
    /// whose form cannot be used (checkpoint resolution, a step-0 state that is not fresh, a
    /// backward pass over 4 GB), has the `JVPRoute` only.
    static func select(context: AnalysisContext, optimizer: Chain, checkpointResolution: Bool,
                       initialState: StoredOptimizerState?) -> Selection {
        let settings = context.settings, model = context.model, run = context.run, T = context.steps
        let chainForm = optimizer.kernelForm
        // A state at step 0 that is not fresh holds gradients from before the trace: no kernel form
        // (windowed or exact) can write the updates as sums of recorded gradients.
        let freshStart = (initialState?.count ?? 0) == 0
        let decoupledWD = chainForm?.decoupledDecay ?? 0
        // Momentum with --momentum-tolerance (or too many steps × parameters to keep every w_t for
        // the exact sum): the windowed two-time kernel, in the forward pass (coupled decay only).
        let sgdMomentum = chainForm?.momentum != nil && decoupledWD == 0 && settings.precision == .f64
        let pathBytes = 8 * Double(T) * Double(model.parameterCount)
        let momentumForm = sgdMomentum && freshStart && (settings.momentumTolerance != nil || pathBytes > 4e9)
        let momentumTolerance = settings.momentumTolerance ?? 1e-8
        // Momentum (by default), Adam, AdamW, RMSProp: the exact two-time kernel of PreconditionedForm,
        // computed backwards in time after the forward pass (either precision); it keeps w_t (and D_t)
        // of every step. Its K^p exists only at the end, so the dynamics have no path-km error.
        var notes: [String] = []
        if momentumForm && settings.momentumTolerance == nil && !checkpointResolution {
            notes.append("the exact momentum kernel would keep w_t of all \(T) steps (\(String(format: "%.1f", pathBytes / 1e9)) GB): summed over a window instead, tail < \(momentumTolerance)")
        }
        if let tol = settings.momentumTolerance, !(momentumForm && !checkpointResolution) {
            // The window is SGD momentum's (float64, no decoupled decay, no per-group rates, a fresh
            // start): elsewhere the option changes nothing, and the report says so.
            notes.append("--momentum-tolerance \(tol) ignored: the windowed two-time kernel applies to SGD momentum in float64 without per-group learning rates (and not at checkpoint resolution); this run's kernel is summed as below")
        }
        if chainForm == nil {
            notes.append("the optimizer \(optimizer.description) has no kernel form (Docs/optimizers.md, Kernel forms): exact decomposition by the JVP route")
        }
        if let form = chainForm.flatMap({ PreconditionedForm($0, recordedKind: run.optimizer.kind) }), !checkpointResolution, !momentumForm {
            let bytes = (form.hasPreconditioner ? 16 : 8) * Double(T) * Double(model.parameterCount)
            if let s0 = initialState, s0.count > 0 {
                notes.append("the trace's optimizer state at step 0 is not fresh (\(s0.count) earlier updates): its buffers hold gradients from before the trace, which are not recorded, so \(form.name)'s path kernel is skipped (exact decomposition by the JVP route)")
            } else if bytes > 4e9 {
                notes.append("\(form.name)'s path kernel would hold w_t and D_t of all \(T) steps (\(String(format: "%.1f", bytes / 1e9)) GB); skipped (exact decomposition by the JVP route)")
            } else {
                return Selection(route: PreconditionedRoute(context: context, form: form, optimizer: optimizer), notes: notes)
            }
        }
        let kernelForm = (chainForm?.update == .plain || momentumForm) && !checkpointResolution
        guard let chainForm, kernelForm else {
            return Selection(route: JVPRoute(context: context, form: chainForm), notes: notes)
        }
        if momentumForm {
            return Selection(route: WindowedMomentumRoute(context: context, form: chainForm, tolerance: momentumTolerance), notes: notes)
        }
        switch settings.precision {
        case .f64: return Selection(route: PathKernelRoute<Double>(context: context, form: chainForm), notes: notes)
        case .f32: return Selection(route: PathKernelRoute<Float>(context: context, form: chainForm), notes: notes)
        }
    }

    /// The kernel name's suffix for recorded clip scales.
    static func clipSuffix(_ form: KernelForm?) -> String {
        form?.clipped == true ? ", recorded clip scales" : ""
    }
}
