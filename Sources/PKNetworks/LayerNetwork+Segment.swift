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
    public func segmentBreakpoints(start w: [Double], delta v: [Double], _ x: Matrix) -> [[Double]] {
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
                if let out = root.segmentPieces(SegmentPieces(examples: x.rows(range)), start: w, delta: v) {
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
