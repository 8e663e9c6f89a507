import PKNetworks
import PKNumerics
import PKOptim

/// The exact decomposition alone, for a chain without a kernel form (or whose form cannot be
/// used: checkpoint resolution, a step-0 state that is not fresh, a backward pass over 4 GB):
/// `Σ_j ω_j J(x; w_t + s_jΔw_t)Δw_t` by forward-mode JVPs, the whole update being the
/// decomposition's term. No K^p, no N: the report has no path kernel, no path machines and no
/// attribution. AdamW's decoupled decay `−η_tλw_t` is a separate part of Δw_t: its share (R_wd)
/// is sized by its own JVPs.
struct JVPRoute: KernelRoute {
    let model: any Network
    let xq: Matrix
    let form: KernelForm?
    let decoupledDecay: Double

    init(context: AnalysisContext, form: KernelForm?) {
        model = context.model
        xq = context.xq
        self.form = form
        decoupledDecay = form?.decoupledDecay ?? 0
    }

    var kernelName: String { "none: the exact decomposition by the JVP route only (see the notes)" }
    var hasKernelForm: Bool { false }
    var summedForwards: Bool { false }

    mutating func consume(_ seg: RouteSegment, into acc: inout KernelAccumulators) {
        let delta = seg.delta
        let decoupled = decoupledDecay > 0 ? form!.decay(of: seg.start, times: -seg.learningRate, lambda: decoupledDecay) : nil
        for (s, omega) in seg.nodes {
            var ws = seg.start
            Vec.axpy(s, delta, &ws)
            let jv = model.jvp(ws, xq, tangent: delta)
            for i in acc.jvpSum.data.indices { acc.jvpSum.data[i] += omega * jv.data[i] }
            if let decoupled {
                let jd = model.jvp(ws, xq, tangent: decoupled)
                for i in acc.rwd.data.indices { acc.rwd.data[i] += omega * jd.data[i] }
            }
        }
    }
}
