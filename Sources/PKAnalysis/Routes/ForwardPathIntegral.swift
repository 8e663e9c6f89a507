import PKNetworks
import PKNumerics

/// The quadrature of one segment summed forwards in time (path-kernel math §2, §6; momentum's
/// window, §5): per node the queries' tangent features at `w_t + s_jΔw_t` (with the fused JVPs of
/// the tangents) and their kernels against the training sides, into K^p, N, Σ J̄Δw and R_wd.
/// Shared by `PathKernelRoute` and `WindowedMomentumRoute`.
struct ForwardPathIntegral {
    let context: AnalysisContext
    /// Query rows per block, and the blocks' inputs.
    let queryBlocks: [Range<Int>]
    let xqBlocks: [Matrix]
    /// Rows per block (queries, or exact quadrature's per-query nodes).
    let chunk: Int

    init(context: AnalysisContext) {
        self.context = context
        let model = context.model, nQ = context.queries, n = context.train, C = context.outputs, blocks = context.blocks
        // Query rows per block: each block's kernels (K̄ and, for trace, N) stay under about 128 MB.
        let rowBytes = 8 * n * blocks * blocks + (context.mode == .trace ? 8 * C * n : 0)
        // A layer network's features are its Jacobian rows (C·P scalars per example): at most
        // about 256 MB of them per block too.
        let featureRows = (256 << 20) / max(8 * model.featureScalarsPerExample, 1)
        let chunk = model is MLP ? max(64, min(nQ, 128 << 20 / max(rowBytes, 1)))
                                 : max(16, min(nQ, 128 << 20 / max(rowBytes, 1), featureRows))
        self.chunk = chunk
        // This process's query rows (all, or a shard's), in blocks.
        let rows = context.rows
        queryBlocks = stride(from: rows.lowerBound, to: rows.upperBound, by: chunk).map { $0..<min($0 + chunk, rows.upperBound) }
        xqBlocks = queryBlocks.map { context.xq.rows($0) }
    }

    /// The training side of the segment's step: features at `w_s`, `g_{i,s}`, the scale `s_s/|B_s|`.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func trainingSide<S: BLASScalar>(_: S.Type, _ seg: RouteSegment) -> TrainingSide<S> {
        let fb = context.model.tangentFeatures(seg.start, seg.xb, as: S.self, tangents: [])
        let g = seg.segment.outputGradient ?? context.run.loss.evaluate(outputs: Matrix(fb.outputs), targets: seg.yb).perExampleGradient
        return TrainingSide(step: seg.step, batch: seg.batch, fb: fb, fbg: context.mode == .trace ? fb.contracted(with: g) : nil, g: g,
                            scale: seg.scale)
    }

    /// One segment's quadrature in precision S: per node the queries' features (with the fused
    /// JVPs) and their kernels against each training side in `sides` (the current step's, and
    /// with momentum the earlier steps' still in the window), weighted by `η_t c_{t,s}` and
    /// accumulated in f64. `tangents[0]` is Δw_t (its JVPs go to Σ J̄Δw), a second one the decay
    /// part of Δw_t (its JVPs go to R_wd).
    ///
    /// With exact quadrature (`seg.piecewise`, math §1.1) the queries without a breakpoint take
    /// the shared nodes, gathered into blocks, and the others their own nodes: rows of one
    /// feature set each at its own point of the segment (`Network.segmentFeatures`), in blocks of the
    /// same size, every row's kernels weighted by its node's weight into its query's sums.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func integrate<S: BLASScalar>(_: S.Type, _ seg: RouteSegment, sides weighted: [(side: TrainingSide<S>, weight: Double)],
                                  tangents: [[Double]], into acc: inout KernelAccumulators) {
        let model = context.model, n = context.train
        // Sides joined into groups of at most max(4n, one batch) examples (one kernel call per
        // group, node and query block; memory stays bounded for full-batch momentum), each
        // example column carrying its side's weight.
        var groups: [[(side: TrainingSide<S>, weight: Double)]] = [[]]
        var columns = 0
        for w in weighted {
            if columns > 0 && columns + w.side.batch.count > 4 * n { groups.append([]); columns = 0 }
            groups[groups.count - 1].append(w)
            columns += w.side.batch.count
        }
        let sides = groups.map { group in
            (group.count == 1 ? group[0].side : TrainingSide<S>.concatenating(group.map(\.side)),
             group.flatMap { w in [Double](repeating: w.weight, count: w.side.batch.count) })
        }
        guard let piecewise = seg.piecewise else {
            for (s, omega) in seg.nodes {
                var ws = seg.start
                Vec.axpy(s, tangents[0], &ws)   // tangents[0] is Δw_t
                for (qb, rows) in queryBlocks.enumerated() {
                    let fq = model.tangentFeatures(ws, xqBlocks[qb], as: S.self, tangents: tangents)
                    accumulate(fq, rows: Array(rows), weights: [Double](repeating: omega, count: rows.count), sides: sides, into: &acc)
                }
            }
            return
        }
        // Exact quadrature by the event sweep (a layer network it covers): every query's J̄
        // exactly, one feature row per query, in blocks of `chunk` queries.
        if let (all, tally) = piecewise.sweep, let network = model as? LayerNetwork {
            for lower in stride(from: all.lowerBound, to: all.upperBound, by: chunk) {
                let rows = Array(lower..<min(lower + chunk, all.upperBound))
                guard let (fq, jvps, counts) = network.segmentSweptJacobians(start: seg.start, delta: tangents[0], context.xq.rows(at: rows),
                                                                            as: S.self, tangents: tangents) else {
                    preconditionFailure("the event sweep refused a network it said it covers")
                }
                tally.add(counts)
                for (j, jv) in jvps.enumerated() {
                    for (r, q) in rows.enumerated() { for c in 0..<jv.cols {
                        if j == 0 { acc.jvpSum[q, c] += jv[r, c] } else { acc.rwd[q, c] += jv[r, c] }
                    } }
                }
                accumulate(fq, rows: rows, weights: [Double](repeating: 1, count: rows.count), sides: sides, into: &acc)
            }
            return
        }
        // Exact quadrature: the queries that cross no kink on the shared nodes ...
        let smooth = piecewise.smoothRows
        let smoothBlocks = stride(from: 0, to: smooth.count, by: chunk).map { Array(smooth[$0..<min($0 + chunk, smooth.count)]) }
        let smoothX = smoothBlocks.map { context.xq.rows(at: $0) }
        for (s, omega) in seg.nodes {
            var ws = seg.start
            Vec.axpy(s, tangents[0], &ws)
            for (rows, x) in zip(smoothBlocks, smoothX) {
                let fq = model.tangentFeatures(ws, x, as: S.self, tangents: tangents)
                accumulate(fq, rows: rows, weights: [Double](repeating: omega, count: rows.count), sides: sides, into: &acc)
            }
        }
        // ... the others each on the nodes of its own pieces.
        guard !piecewise.kinked.isEmpty else { return }
        if let network = model as? LayerNetwork {
            // A layer network: each query's Jacobian rows summed over its own nodes first
            // (`LayerNetwork.segmentIntegratedJacobians`; the kernels and JVPs are linear in the
            // rows), one feature row per query, in blocks of `chunk` queries.
            var queries: [Int] = [], lists: [[(t: Double, weight: Double)]] = []
            for node in piecewise.kinked {
                if queries.last != node.row { queries.append(node.row); lists.append([]) }
                lists[lists.count - 1].append((node.t, node.weight))
            }
            for lower in stride(from: 0, to: queries.count, by: chunk) {
                let part = lower..<min(lower + chunk, queries.count)
                let rows = Array(queries[part])
                let (fq, jvps) = network.segmentIntegratedJacobians(start: seg.start, delta: tangents[0], context.xq.rows(at: rows),
                                                                    nodes: Array(lists[part]), as: S.self, tangents: tangents)
                for (j, jv) in jvps.enumerated() {
                    for (r, q) in rows.enumerated() { for c in 0..<jv.cols {
                        if j == 0 { acc.jvpSum[q, c] += jv[r, c] } else { acc.rwd[q, c] += jv[r, c] }
                    } }
                }
                accumulate(fq, rows: rows, weights: [Double](repeating: 1, count: rows.count), sides: sides, into: &acc)
            }
            return
        }
        for lower in stride(from: 0, to: piecewise.kinked.count, by: chunk) {
            let nodes = piecewise.kinked[lower..<min(lower + chunk, piecewise.kinked.count)]
            let rows = nodes.map(\.row)
            let fq = model.segmentFeatures(start: seg.start, delta: tangents[0], context.xq.rows(at: rows), at: nodes.map(\.t),
                                         as: S.self, tangents: tangents)
            accumulate(fq, rows: rows, weights: nodes.map(\.weight), sides: sides, into: &acc)
        }
    }

    /// Adds one feature set's JVPs and kernels against `sides` into the sums: feature row r is
    /// query `rows[r]`, weighted by `weights[r]` (its node's weight), each side's example column b
    /// by `columnWeight[b]`. (Specialized per precision and written on raw storage: the generic
    /// loops cost as much as the Grams on small networks, moons-mlp.)
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    private func accumulate<S: BLASScalar>(_ fq: TangentFeatures<S>, rows: [Int], weights: [Double],
                                           sides: [(TrainingSide<S>, [Double])], into acc: inout KernelAccumulators) {
        let n = context.train, C = context.outputs, blocks = context.blocks, mode = context.mode
        let nT = context.heldOut, exactOnly = context.exactOnly, attrIndex = context.attrIndex
        let distinct = zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 }
        // JΔw (reconstruction) and J·(decay part of Δw) (the term R_wd) from the same pass.
        for (j, jv) in fq.outputTangents.enumerated() {
            for r in 0..<rows.count { for c in 0..<C {
                let v = weights[r] * jv[r, c].doubleValue
                if j == 0 { acc.jvpSum[rows[r], c] += v } else { acc.rwd[rows[r], c] += v }
            } }
        }
        for (side, columnWeight) in sides {
            let batch = side.batch, nb = batch.count
            let ks = TangentFeatures.kernels(fq, mode == .trace ? [(side.fb, .trace), (side.fbg!, .full)] : [(side.fb, .full)])
            // The feature rows in parts for the passes below: in parallel when each query appears
            // once (distinct rows write distinct rows of K^p), else in one part. Each element's
            // sum takes the same terms in the same order either way.
            let parts = distinct ? Parallel.ranges(rows.count, minimum: max(1, (1 << 15) / max(nb * blocks * blocks, 1))) : [0..<rows.count]
            // Per (row, example): the example's column weight and its training index.
            batch.withUnsafeBufferPointer { bp in
                columnWeight.withUnsafeBufferPointer { cw in
                    ks[0].data.withUnsafeBufferPointer { kkp in
                        acc.kp.data.withUnsafeMutableBufferPointer { kpp in
                            Parallel.forEach(parts.count) { p in
                                for r in (parts[p].lowerBound * blocks)..<(parts[p].upperBound * blocks) {
                                    let src = r * nb * blocks, dst = (rows[r / blocks] * blocks + r % blocks) * n * blocks
                                    let omega = weights[r / blocks]
                                    for b in 0..<nb {
                                        let to = dst + bp[b] * blocks, from = src + b * blocks, w = omega * cw[b]
                                        for k in 0..<blocks { kpp[to + k] += w * kkp[from + k].doubleValue }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // N's contributions: Σ_k K̄_ck(x, x_b) g_bk, from K̄ (full) or the contracted kernel (trace),
            // row (r, c) of `contributions` at column b, weighted.
            var contributions = [Double](repeating: 0, count: rows.count * C * nb)
            contributions.withUnsafeMutableBufferPointer { out in
                columnWeight.withUnsafeBufferPointer { cw in
                    if mode == .trace {
                        ks[1].data.withUnsafeBufferPointer { kg in
                            Parallel.forEach(parts.count) { p in
                                for r in parts[p] {
                                    let omega = weights[r]
                                    for c in 0..<C {
                                        let at = (r * C + c) * nb
                                        for b in 0..<nb { out[at + b] = omega * cw[b] * kg[at + b].doubleValue }
                                    }
                                }
                            }
                        }
                    } else {
                        ks[0].data.withUnsafeBufferPointer { kk in
                            side.g.data.withUnsafeBufferPointer { g in
                                Parallel.forEach(parts.count) { p in
                                    for r in parts[p] {
                                        let omega = weights[r]
                                        for c in 0..<C {
                                            let at = (r * C + c) * nb
                                            for b in 0..<nb {
                                                let base = at * C + b * C
                                                var v = 0.0
                                                for k in 0..<C { v += kk[base + k].doubleValue * g[b * C + k] }
                                                out[at + b] = omega * cw[b] * v
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for r in 0..<rows.count {
                let q = rows[r]
                let diag = (!exactOnly && q >= nT) ? q - nT : -1
                let attr = attrIndex[q]
                for c in 0..<C {
                    let at = (r * C + c) * nb
                    var rowSum = 0.0
                    for b in 0..<nb {
                        let v = contributions[at + b]
                        rowSum += v
                        let i = batch[b]
                        if i == diag { acc.nDiag[i, c] += v }
                    }
                    if let attr { for b in 0..<nb { acc.nAttr[attr][c, batch[b]] += contributions[at + b] } }
                    acc.nSum[q, c] += rowSum
                }
            }
        }
    }
}

/// One step's training side of the kernel: features at `w_s` on its batch, `g_{i,s}`, and the
/// per-example scale `s_s/|B_s|` (clip scale over batch size).
struct TrainingSide<S: BLASScalar> {
    let step: Int
    let batch: [Int]
    let fb: TangentFeatures<S>
    let fbg: TangentFeatures<S>?
    let g: Matrix
    let scale: Double

    /// The sides' examples one after another (batch indices, features, gradients); `step` and
    /// `scale` of the first (per-side weights are kept by the caller).
    static func concatenating(_ parts: [TrainingSide]) -> TrainingSide {
        let g = Matrix(rows: parts.reduce(0) { $0 + $1.g.rows }, cols: parts[0].g.cols, data: parts.flatMap(\.g.data))
        return TrainingSide(step: parts[0].step, batch: parts.flatMap(\.batch),
                            fb: TangentFeatures.concatenating(parts.map(\.fb)),
                            fbg: parts[0].fbg == nil ? nil : TangentFeatures.concatenating(parts.map { $0.fbg! }),
                            g: g, scale: parts[0].scale)
    }
}
