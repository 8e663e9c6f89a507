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

    /// This process's query rows (all, or a shard's).
    let rows: Range<Int>

    init(context: AnalysisContext, form: KernelForm?) {
        model = context.model
        xq = context.xq
        rows = context.rows
        self.form = form
        decoupledDecay = form?.decoupledDecay ?? 0
    }

    var kernelName: String { "none: the exact decomposition by the JVP route only (see the notes)" }
    var hasKernelForm: Bool { false }
    var summedForwards: Bool { false }
    var takesPiecewiseNodes: Bool { true }

    /// With exact quadrature (`seg.piecewise`, math §1.1) the queries without a breakpoint take
    /// the shared nodes, batched, and each other one its own nodes, one JVP per node
    /// (`PiecewiseNodes.jvps`).
    mutating func consume(_ seg: RouteSegment, into acc: inout KernelAccumulators) {
        let delta = seg.delta
        let decoupled = decoupledDecay > 0 ? form!.decay(of: seg.start, times: -seg.learningRate, lambda: decoupledDecay) : nil
        let C = acc.jvpSum.cols
        // The event sweep (a layer network it covers): each query's exact J̄ with its JVPs, in
        // blocks of 64 queries (the rows themselves are dropped).
        if let (all, tally) = seg.piecewise?.sweep, let network = model as? LayerNetwork {
            let tangents = [delta] + (decoupled.map { [$0] } ?? [])
            for lower in stride(from: all.lowerBound, to: all.upperBound, by: 64) {
                let rows = Array(lower..<min(lower + 64, all.upperBound))
                guard let (_, jvps, counts) = network.segmentSweptJacobians(start: seg.start, delta: delta, xq.rows(at: rows),
                                                                           tangents: tangents) else {
                    preconditionFailure("the event sweep refused a network it said it covers")
                }
                tally.add(counts)
                for (r, q) in rows.enumerated() {
                    for c in 0..<C {
                        acc.jvpSum[q, c] += jvps[0][r, c]
                        if decoupled != nil { acc.rwd[q, c] += jvps[1][r, c] }
                    }
                }
            }
            return
        }
        // The rows on the shared nodes: every query, or exact quadrature's smooth ones.
        let rows = seg.piecewise?.smoothRows ?? Array(self.rows)
        let x = seg.piecewise == nil ? (self.rows.count == xq.rows ? xq : xq.rows(self.rows)) : xq.rows(at: rows)
        if !rows.isEmpty {
            for (s, omega) in seg.nodes {
                var ws = seg.start
                Vec.axpy(s, delta, &ws)
                let jv = model.jvp(ws, x, tangent: delta)
                for (r, q) in rows.enumerated() { for c in 0..<C { acc.jvpSum[q, c] += omega * jv[r, c] } }
                if let decoupled {
                    let jd = model.jvp(ws, x, tangent: decoupled)
                    for (r, q) in rows.enumerated() { for c in 0..<C { acc.rwd[q, c] += omega * jd[r, c] } }
                }
            }
        }
        guard let kinked = seg.piecewise?.kinked, !kinked.isEmpty else { return }
        let xk = xq.rows(at: kinked.map(\.row)), t = kinked.map(\.t)
        let jv = PiecewiseNodes.jvps(model: model, start: seg.start, delta: delta, xk, at: t, tangent: delta)
        let jd = decoupled.map { PiecewiseNodes.jvps(model: model, start: seg.start, delta: delta, xk, at: t, tangent: $0) }
        for (k, node) in kinked.enumerated() {
            for c in 0..<C {
                acc.jvpSum[node.row, c] += node.weight * jv[k, c]
                if let jd { acc.rwd[node.row, c] += node.weight * jd[k, c] }
            }
        }
    }
}
