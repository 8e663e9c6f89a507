import PKNumerics

/// A piecewise-linear layer network along one straight segment of weights `w(t) = w + tΔw`,
/// `t ∈ [0, 1]` (path-kernel math §1.1, "Layer networks"): the breakpoints of each example and
/// its features at its own points of the segment, for exact quadrature.
///
/// Priorities, as `MLP+Segment`: no breakpoint missed (the switching functions of every
/// piecewise-linear layer as exact polynomial coefficients in t, `Layer.segmentPieces`, their
/// sign changes by `Polynomial.signChanges`), the breakpoints to round-off, then cost.
extension LayerNetwork {
    /// D − 1, with D = `root.segmentDegree` (the most layers with parameters on a path from
    /// input to output) when the network has kinks and every layer a `segmentDegree`; nil
    /// otherwise (a smooth network, or one with tanh, gelu, layer norm …).
    public var piecewiseJacobianDegree: Int? {
        guard isPiecewiseLinear, let d = root.segmentDegree else { return nil }
        return max(0, d - 1)
    }

    /// The breakpoints of every row of `x` along `start + t·delta`: the t in (0, 1), ascending,
    /// where a relu or leaky-relu input changes sign or a max-pooling window's arg-max moves
    /// (`Layer.segmentPieces` through the root, the breakpoints of an example the starts of its
    /// pieces after the first). Examples in fixed blocks (`Parallel.ranges`) on the threads: the
    /// same bits on any thread count. Empty lists when `piecewiseJacobianDegree` is nil.
    ///
    /// A relu (or leaky relu of slope ≥ 0) directly followed by a max pool is searched as one
    /// layer: only the changes of its fused pattern (a window's maximum of the relu's inputs
    /// crossing 0, its arg-max moving while it is positive, or for a leaky relu anywhere) are
    /// breakpoints; the sign changes of units that are not their window's maximum change neither
    /// f nor J and are not (`MaxPool2D.rectifiedSegmentPieces`).
    public func segmentBreakpoints(start w: [Double], delta v: [Double], _ x: Matrix) -> [[Double]] {
        segmentBreakpoints(start: w, delta: v, x, fusingRectifiedPools: true)
    }

    /// `segmentBreakpoints`, with `fusingRectifiedPools` false: every layer on its own, so every
    /// sign change of a pooled relu's input is a breakpoint too, silent or not (the former search:
    /// finer pieces, the same integral; the reference the tests compare the fused search with).
    public func segmentBreakpoints(start w: [Double], delta v: [Double], _ x: Matrix, fusingRectifiedPools: Bool) -> [[Double]] {
        checkSizes(w, x)
        precondition(v.count == parameterCount, "delta has \(v.count) entries, the network has \(parameterCount) parameters")
        let n = x.rows
        var breaks = [[Double]](repeating: [], count: n)
        guard piecewiseJacobianDegree != nil, n > 0 else { return breaks }
        let blocks = Parallel.ranges(n, minimum: 8)
        var parts = [[[Double]]](repeating: [], count: blocks.count)
        parts.withUnsafeMutableBufferPointer { pp in
            Parallel.forEach(blocks.count) { b in
                let range = blocks[b]
                var local = [[Double]](repeating: [], count: range.count)
                if let out = root.segmentPieces(SegmentPieces(examples: x.rows(range), fusesRectifiedPools: fusingRectifiedPools), start: w, delta: v) {
                    for r in 0..<out.rows where out.lo[r] > 0 { local[out.example[r]].append(out.lo[r]) }
                }
                pp[b] = local
            }
        }
        for (b, range) in blocks.enumerated() { for (i, r) in range.enumerated() { breaks[r] = parts[b][i] } }
        return breaks
    }

    /// The Jacobian rows (`tangentFeatures`' one block) of row r of `x` at `start + t[r]·delta`,
    /// with the JVPs of `tangents`, in precision `S`: each row alone (`Layer.jacobians` of one
    /// example at its own weights, no batching across rows), rows in fixed blocks on the
    /// threads. Agrees with `tangentFeatures` at each row's point to round-off.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func segmentFeatures<S: BLASScalar>(start w: [Double], delta v: [Double], _ x: Matrix, at t: [Double],
                                               as _: S.Type = Double.self, tangents: [[Double]] = []) -> TangentFeatures<S> {
        checkSizes(w, x)
        precondition(t.count == x.rows, "\(t.count) points for \(x.rows) rows")
        precondition(v.count == parameterCount, "delta has \(v.count) entries, the network has \(parameterCount) parameters")
        for u in tangents { precondition(u.count == parameterCount, "tangent has \(u.count) entries, the network has \(parameterCount) parameters") }
        let n = x.rows, C = outputDim, P = parameterCount
        guard n > 0 else { return tangentFeatures(w, x, as: S.self, tangents: tangents) }
        var signals = DenseMatrix<S>(rows: C * n, cols: P)
        var outputs = DenseMatrix<S>(rows: n, cols: C)
        var products = [S](repeating: 0, count: tangents.count * n * C)   // tangent j, row r, output c
        let us = tangents.map { u in u.map { S($0) } }
        let blocks = Parallel.ranges(n, minimum: 2)
        signals.data.withUnsafeMutableBufferPointer { sp in
            outputs.data.withUnsafeMutableBufferPointer { op in
                products.withUnsafeMutableBufferPointer { tp in
                    let (sBase, oBase, tBase) = (sp.baseAddress, op.baseAddress!, tp.baseAddress)
                    Parallel.forEach(blocks.count) { b in
                        for r in blocks[b] {
                            var wr = w
                            Vec.axpy(t[r], v, &wr)
                            let jac = root.jacobians(wr.map { S($0) }, DenseMatrix<S>(x.rows(r..<(r + 1))))
                            for c in 0..<C {
                                oBase[r * C + c] = jac.outputs.data[c]
                                if let sBase { for k in 0..<P { sBase[(c * n + r) * P + k] = jac.rows.data[c * P + k] } }
                            }
                            for (j, u) in us.enumerated() {
                                let jv = jac.product(u)
                                for c in 0..<C { tBase![(j * n + r) * C + c] = jv.data[c] }
                            }
                        }
                    }
                }
            }
        }
        return TangentFeatures(count: n, channels: C, inputs: [DenseMatrix(rows: n, cols: 1, repeating: 1)], signals: [signals],
                               weightScaleSquared: [1], biasScaleSquared: [0], outputs: outputs,
                               outputTangents: tangents.indices.map { j in DenseMatrix(rows: n, cols: C, data: Array(products[(j * n * C)..<((j + 1) * n * C)])) })
    }
}

extension LayerNetwork {
    /// Per row r of `x`, the weighted sum of its Jacobian rows over its own points of the segment
    /// `start + t·delta`, `J̄_r = Σ_k ω_k J(x_r; start + t_k·delta)` for `(t_k, ω_k)` in `nodes[r]`
    /// (exact quadrature's integral over the row's pieces, math §1.1), in precision `S`: `features`
    /// holds them as `tangentFeatures`' one block (row `c·n + r` = `Σ_k ω_k ∂f_c(x_r)/∂w`; its
    /// `outputs` are zero), and `tangents[j]` (n × C, float64) the JVPs `J̄_r·u_j` of
    /// `tangents[j]` = u_j (the weighted sums of the nodes' JVPs, by linearity).
    ///
    /// What `segmentFeatures` followed by `TangentFeatures.weightedRowSums` gives, without its
    /// `(Σ_r |nodes[r]|)·C·P` scalars of per-node rows: each node's `C` rows go into one buffer of
    /// `C·P` scalars per thread, reused (one forward pass of the example at the node's weights and
    /// one pullback of its `C` unit cotangents, as `Layer.jacobians` of one example), and are added
    /// into the row's sums at once, nodes in their order. When the root is a `Sequential` whose
    /// first layer is a dense or convolution layer, that layer's input is `x_r` at every node and
    /// its parameter rows are linear in its output cotangent `U` (`s_W U ⊗ x`, `s_W U im2col(x)ᵀ`,
    /// `s_b Σ U`): so its cotangents are summed over the nodes first, `Σ_k ω_k U_k`, and pulled
    /// back once per row (one GEMM where the nodes took one each).
    ///
    /// Rows in fixed blocks on the threads: the same bits on any thread count. Memory: the `n·C·P`
    /// result plus `C·P` and the first layer's `C` output cotangents per thread.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func segmentIntegratedJacobians<S: BLASScalar>(start w: [Double], delta v: [Double], _ x: Matrix,
                                                          nodes: [[(t: Double, weight: Double)]], as _: S.Type = Double.self,
                                                          tangents: [[Double]] = []) -> (features: TangentFeatures<S>, tangents: [Matrix]) {
        checkSizes(w, x)
        precondition(nodes.count == x.rows, "\(nodes.count) node lists for \(x.rows) rows")
        precondition(v.count == parameterCount, "delta has \(v.count) entries, the network has \(parameterCount) parameters")
        for u in tangents { precondition(u.count == parameterCount, "tangent has \(u.count) entries, the network has \(parameterCount) parameters") }
        let n = x.rows, C = outputDim, P = parameterCount, J = tangents.count
        var signals = DenseMatrix<S>(rows: C * n, cols: P)
        let root = self.root
        // The first layer summed before its pullback: a Sequential root of at least two layers
        // whose first is dense or a convolution (with parameters).
        let split: (sequential: Sequential, first: any Layer, columns: Int)? = {
            let s = root
            guard s.children.count > 1 else { return nil }
            let first = s.children[0].layer
            guard first is Conv2D || first is Dense, first.parameterCount > 0 else { return nil }
            return (s, first, s.offsets[1])
        }()
        if n > 0 && C > 0 && P > 0 {
            let blocks = Parallel.ranges(n, minimum: 2)
            signals.data.withUnsafeMutableBufferPointer { sp in
                let sBase = sp.baseAddress!
                Parallel.forEach(blocks.count) { b in
                    // One node's C Jacobian rows (C × P), reused for every node of the block.
                    let rows = UnsafeMutablePointer<S>.allocate(capacity: C * P)
                    rows.initialize(repeating: 0, count: C * P)
                    defer { rows.deallocate() }
                    let parameterRows = ParameterRows(base: rows, stride: P)
                    var unit = DenseMatrix<S>(rows: C, cols: C)
                    for c in 0..<C { unit.data[c * C + c] = 1 }
                    var wr = [S](repeating: 0, count: P)
                    let firstWidth = split?.first.outputShape.count ?? 0
                    var firstCotangent = DenseMatrix<S>(rows: C, cols: firstWidth)
                    for r in blocks[b] {
                        let xr = DenseMatrix<S>(x.rows(r..<(r + 1)))
                        var firstCache: LayerCache? = nil
                        if split != nil { for i in firstCotangent.data.indices { firstCotangent.data[i] = 0 } }
                        for node in nodes[r] {
                            for k in 0..<P { wr[k] = S(w[k] + node.t * v[k]) }
                            let (_, cache) = root.forward(xr, parameters: wr)
                            let weight = S(node.weight)
                            var from = 0
                            if let (s, _, columns) = split {
                                // The layers after the first, then the first one's output cotangent.
                                let caches = cache.contents(as: Sequential.Cache.self).children
                                var u = unit
                                for i in s.children.indices.dropFirst().reversed() {
                                    let childInput = { () -> DenseMatrix<S> in
                                        var a = xr
                                        for j in 0..<i { a = s.children[j].layer.apply(a, parameters: s.childParameters(wr, j)) }
                                        return a
                                    }
                                    u = s.children[i].layer.pullbackRows(u, repeats: C, cache: caches[i], parameters: s.childParameters(wr, i),
                                                                         input: childInput, needsInputCotangent: true,
                                                                         parameterRows: parameterRows.offset(by: s.offsets[i]))!
                                }
                                for i in u.data.indices { firstCotangent.data[i] += weight * u.data[i] }
                                firstCache = caches[0]
                                from = columns
                            } else {
                                _ = root.pullbackRows(unit, repeats: C, cache: cache, parameters: wr, input: { xr },
                                                      needsInputCotangent: false, parameterRows: parameterRows)
                            }
                            for c in 0..<C {
                                let src = rows + c * P, dst = sBase + (c * n + r) * P
                                for k in from..<P { dst[k] += weight * src[k] }
                            }
                        }
                        if let (s, first, columns) = split, let firstCache {
                            // Σ_k ω_k U_k pulled back once (its parameter rows use x_r only, not the weights).
                            _ = first.pullbackRows(firstCotangent, repeats: C, cache: firstCache, parameters: s.childParameters(wr, 0),
                                                   input: { xr }, needsInputCotangent: false, parameterRows: parameterRows)
                            for c in 0..<C {
                                let src = rows + c * P, dst = sBase + (c * n + r) * P
                                for k in 0..<columns { dst[k] += src[k] }
                            }
                        }
                    }
                }
            }
        }
        // The JVPs from the summed rows: J̄_r·u_j, in float64.
        var products = [Matrix](repeating: Matrix(rows: n, cols: C), count: J)
        signals.data.withUnsafeBufferPointer { sp in
            for (j, u) in tangents.enumerated() {
                for r in 0..<n { for c in 0..<C {
                    let row = sp.baseAddress! + (c * n + r) * P
                    var dot = 0.0
                    for k in 0..<P { dot += Double(row[k]) * u[k] }
                    products[j][r, c] = dot
                } }
            }
        }
        let features = TangentFeatures(count: n, channels: C, inputs: [DenseMatrix(rows: n, cols: 1, repeating: 1)], signals: [signals],
                                       weightScaleSquared: [1], biasScaleSquared: [0], outputs: DenseMatrix(rows: n, cols: C))
        return (features, products)
    }
}
