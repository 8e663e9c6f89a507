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
    /// **How.** The `Layer` pullback returns the parameter cotangent summed over the batch rows
    /// (`∂/∂w Σ_r ⟨u[r], f(x_r; w)⟩`), so one batch pullback cannot give per-example rows. Each
    /// example is therefore run on its own: one forward pass of the 1-row batch `x_r`, whose cache is
    /// reused by `C` pullbacks with cotangent `e_c`; pullback `c` is row `r·C + c`. In all `n`
    /// forward and `n·C` pullbacks of one row: the arithmetic of one batch forward pass and `C` batch
    /// pullbacks (the `C` backward passes of `MLP.jacobians`), without the batch's GEMM blocking.
    /// Examples are split over `Parallel.threads` threads in fixed blocks (`Parallel.ranges`); a row
    /// depends only on its own example, so the result is bit-identical for any thread count.
    ///
    /// Memory is `n·C·P` scalars: for kernels between many points prefer structured factors
    /// (`TangentFeatures`) where they exist.
    public func jacobians<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>) -> LayerJacobians<S> {
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
