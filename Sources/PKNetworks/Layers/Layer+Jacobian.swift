import PKNumerics

/// Explicit per-example Jacobians of any layer used as a whole network (`Sequential`, `Residual`,
/// a single layer): the generic exact route of issue 11, item 3, for layers without structured
/// kernel factors. The analyzer does not use it yet.
extension Layer {
    /// The per-example Jacobian rows of the batch `x` (`n × inputShape.count`) at `w`
    /// (`parameterCount` scalars), with `C = outputShape.count`: `rows` is `(n·C) × P`, row `r·C + c`
    /// = `∂f_c(x_r; w)/∂w` in `layout` order (the layout of `MLP.jacobians`), and `outputs` is
    /// `n × C` (`LayerJacobians`).
    ///
    /// **How.** Examples go in chunks of `examplesPerPass` (`LayerJacobians.defaultExamplesPerPass`). A
    /// chunk of `b` examples has one batch forward pass, then one batch pullback of `b·C` cotangent
    /// rows, row `r·C + c` the unit vector `e_c` for example `r`, by `pullbackRows(_:repeats:…)`
    /// with `repeats = C`: every layer reuses its `b`-row cache for the `C` rows of an example and
    /// writes each row's parameter cotangent, unsummed, straight into row `r·C + c` of the result
    /// (a Dense layer the outer product `s_W u ⊗ a`, a convolution one GEMM `s_W U Xᵀ` per
    /// example for its `C` rows at once, with `X = im2col(x_r)` built once instead of `C` times).
    /// `Sequential` and `Residual` hand each child its columns. A kind without its own
    /// `pullbackRows` falls back to running each example alone in that layer (the default
    /// implementation), so any layer works; only the speed differs.
    ///
    /// The examples are cut into fixed blocks (`Parallel.ranges`, which depend on `n` only), split
    /// over `Parallel.threads` threads, and each block into chunks of `examplesPerPass`: the result
    /// is bit-identical for any thread count. (A row's last bits may depend on the chunk it was
    /// computed in, as a GEMM's rounding can depend on its row count: the same example in another
    /// batch can differ by round-off, measured ≤ 9.1e-16 relative.)
    ///
    /// Memory is the `n·C·P` scalars of the result, plus per thread the caches of one chunk's
    /// forward pass and the `b·C`-row cotangents of one layer at a time.
    public func jacobians<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>) -> LayerJacobians<S> {
        jacobians(w, x, examplesPerPass: LayerJacobians<S>.defaultExamplesPerPass)
    }

    /// `jacobians(_:_:)` with a chosen chunk size (`examplesPerPass ≥ 1`; 1 runs each example
    /// alone, batching its `C` outputs only). `tiled` repeats each example `C` times before the
    /// forward pass (`repeats = 1` in the pullback) instead of reusing its cache: the design the
    /// default was measured against (`pathkernel bench --workload layer-jacobians`).
    package func jacobians<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>, examplesPerPass: Int, tiled: Bool = false) -> LayerJacobians<S> {
        checkArguments(x, w)
        var none: [S]? = nil
        let (rows, outputs) = BatchedJacobians.compute(self, w, x, examplesPerPass: examplesPerPass, tiled: tiled, order: .exampleMajor,
                                                       reusing: &none)
        return LayerJacobians(count: x.rows, channels: outputShape.count, rows: rows, outputs: outputs)
    }

    /// The rows of `jacobians(_:_:)` in `order`, as an `(n·C) × P` matrix (example-major: row
    /// `r·C + c`, as `LayerJacobians.rows`; channel-major: row `c·n + r`, as
    /// `TangentFeatures.signals`), and the `n × C` outputs. The same arithmetic as
    /// `jacobians(_:_:)`: each layer writes its rows straight into their places (`ParameterRows`
    /// in groups of `C`), so the entries are bit for bit the same in either order, and no second
    /// matrix or permuted copy is made. The rows' storage is the array moved out of `reusing`
    /// (left nil) when it has `n·C·P` scalars (one given back by the caller; its old values are
    /// overwritten), else a new array; either way it is not zero-filled first, since every entry
    /// is written (a layer with parameters writes all its columns of every row: the
    /// `pullbackRows` contract; `Array.forOverwriting`).
    package func jacobianRows<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>, order: JacobianRowOrder,
                                             reusing: inout [S]?) -> (rows: DenseMatrix<S>, outputs: DenseMatrix<S>) {
        checkArguments(x, w)
        return BatchedJacobians.compute(self, w, x, examplesPerPass: LayerJacobians<S>.defaultExamplesPerPass, tiled: false,
                                        order: order, reusing: &reusing)
    }

    /// `jacobians(_:_:)` computed one example at a time through the batch-summing `pullback` (the
    /// first implementation, kept as the oracle the batched route is tested against): for each
    /// example, one forward pass of the 1-row batch `x_r`, whose cache is reused by `C` pullbacks
    /// with cotangent `e_c`; pullback `c` is row `r·C + c`. The arithmetic of one batch forward
    /// pass and `C` batch pullbacks, without batched GEMMs; examples split over threads in fixed
    /// blocks, so bit-identical for any thread count.
    public func jacobiansOneByOne<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>) -> LayerJacobians<S> {
        checkArguments(x, w)
        let n = x.rows, C = outputShape.count, P = parameterCount
        var J = DenseMatrix<S>(rows: n * C, cols: P)
        var outputs = DenseMatrix<S>(rows: n, cols: C)
        if n == 0 || C == 0 { return LayerJacobians(count: n, channels: C, rows: J, outputs: outputs) }
        let blocks = Parallel.ranges(n, minimum: 4)
        J.data.withUnsafeMutableBufferPointer { jp in
            outputs.data.withUnsafeMutableBufferPointer { op in
                let (jBase, oBase) = (jp.baseAddress, op.baseAddress!)
                Parallel.forEach(blocks.count) { b in
                    for r in blocks[b] {
                        let (y, cache) = forward(x.rows(r..<(r + 1)), parameters: w)
                        for c in 0..<C { oBase[r * C + c] = y.data[c] }
                        guard let jBase else { continue }  // P = 0: no columns
                        for c in 0..<C {
                            var unit = DenseMatrix<S>(rows: 1, cols: C)
                            unit.data[c] = 1
                            let g = pullback(unit, cache: cache, needsInputCotangent: false).parameters
                            let row = jBase + (r * C + c) * P
                            for k in 0..<P { row[k] = g[k] }
                        }
                    }
                }
            }
        }
        return LayerJacobians(count: n, channels: C, rows: J, outputs: outputs)
    }
}

extension LayerJacobians {
    /// Examples per batch pass of `Layer.jacobians(_:_:)` (measured in `Docs/networks.md`,
    /// "Per-example Jacobians and the generic kernel").
    public static var defaultExamplesPerPass: Int { 8 }
}

/// The batched route of `Layer.jacobians`, generic over the scalar alone (so that it is compiled
/// for `Double` and `Float`; a protocol extension's body is not).
enum BatchedJacobians {
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    static func compute<S: BLASScalar>(_ layer: any Layer, _ w: [S], _ x: DenseMatrix<S>, examplesPerPass: Int, tiled: Bool,
                                       order: JacobianRowOrder, reusing: inout [S]?) -> (rows: DenseMatrix<S>, outputs: DenseMatrix<S>) {
        precondition(examplesPerPass >= 1, "jacobians: examplesPerPass must be at least 1, got \(examplesPerPass)")
        let n = x.rows, C = layer.outputShape.count, P = layer.parameterCount
        // Every entry is written below (each row's columns by the layer that owns them).
        var J = DenseMatrix<S>(rows: n * C, cols: P, data: .forOverwriting(count: n * C * P, reusing: &reusing))
        var outputs = DenseMatrix<S>(rows: n, cols: C)
        if n == 0 || C == 0 { return (J, outputs) }
        let blocks = Parallel.ranges(n, minimum: 4)
        J.data.withUnsafeMutableBufferPointer { jp in
            outputs.data.withUnsafeMutableBufferPointer { op in
                let (jBase, oBase) = (jp.baseAddress, op.baseAddress!)
                Parallel.forEach(blocks.count) { b in
                    for start in Swift.stride(from: blocks[b].lowerBound, to: blocks[b].upperBound, by: examplesPerPass) {
                        let chunk = start..<min(start + examplesPerPass, blocks[b].upperBound)
                        let xb = x.rows(chunk)
                        var unit = DenseMatrix<S>(rows: chunk.count * C, cols: C)
                        for r in 0..<chunk.count { for c in 0..<C { unit.data[(r * C + c) * C + c] = 1 } }
                        // Cotangent row r·C + c of the chunk is example chunk.lowerBound + r, output c.
                        let rows = switch order {
                        case .exampleMajor: ParameterRows(base: jBase.map { $0 + chunk.lowerBound * C * P }, stride: P)
                        case .channelMajor: ParameterRows(base: jBase.map { $0 + chunk.lowerBound * P }, stride: n * P, groupSize: C, groupStride: P)
                        }
                        if tiled {
                            let xt = xb.rows(at: (0..<(chunk.count * C)).map { $0 / C })
                            let (y, cache) = layer.forward(xt, parameters: w)
                            for r in 0..<chunk.count { for c in 0..<C { oBase[(chunk.lowerBound + r) * C + c] = y.data[(r * C) * C + c] } }
                            _ = layer.pullbackRows(unit, repeats: 1, cache: cache, parameters: w, input: { xt },
                                                   needsInputCotangent: false, parameterRows: rows)
                        } else {
                            let (y, cache) = layer.forward(xb, parameters: w)
                            for k in 0..<(chunk.count * C) { oBase[chunk.lowerBound * C + k] = y.data[k] }
                            _ = layer.pullbackRows(unit, repeats: C, cache: cache, parameters: w, input: { xb },
                                                   needsInputCotangent: false, parameterRows: rows)
                        }
                    }
                }
            }
        }
        return (J, outputs)
    }
}
