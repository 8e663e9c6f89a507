import PKNumerics

extension MLP {
    /// Per-example Jacobians of a batch, stacked: `(n·C) × P`, row `r·C + c` is `∂f_c(x_r; w)/∂w`.
    ///
    /// One forward pass and `C` backward passes (cotangent `e_c` in every row) give the signals
    /// `δ_l`; each layer's block of a row is the outer product `s_W δ_l[r, :] ⊗ a_l[r, :]`, then
    /// `s_b δ_l[r, :]` for the bias (`DenseLayer`). Memory is `n·C·P` doubles: for kernels between
    /// many points use the per-layer signals of `ForwardCache` instead.
    public func jacobians(_ w: [Double], _ x: Matrix) -> Matrix {
        let cache = forwardCache(w, x)
        let n = x.rows, C = outputDim, P = parameterCount
        var J = Matrix(rows: n * C, cols: P)
        for c in 0..<C {
            var unit = Matrix(rows: n, cols: C)
            for r in 0..<n { unit[r, c] = 1 }
            let deltas = cache.signals(cotangent: unit)
            J.data.withUnsafeMutableBufferPointer { jp in
                for layer in layers {
                    let din = layer.inputs, dout = layer.outputs
                    cache.layerInputs[layer.index].data.withUnsafeBufferPointer { ap in
                        deltas[layer.index].data.withUnsafeBufferPointer { dp in
                            for r in 0..<n {
                                let row = (r * C + c) * P
                                for i in 0..<dout {
                                    let g = dp[r * dout + i]
                                    let gw = layer.weightScale * g
                                    let base = row + layer.weightOffset + i * din
                                    for j in 0..<din { jp[base + j] = gw * ap[r * din + j] }
                                    if let bo = layer.biasOffset { jp[row + bo + i] = layer.biasScale * g }
                                }
                            }
                        }
                    }
                }
            }
        }
        return J
    }

    /// The Jacobian of the `C` outputs at one input `x` (length `inputDim`): `C × P`.
    public func jacobian(_ w: [Double], _ x: [Double]) -> Matrix {
        precondition(x.count == inputDim, "input has \(x.count) entries, the network takes \(inputDim)")
        return jacobians(w, Matrix(rows: 1, cols: inputDim, data: x))
    }

    /// Jacobian–vector product `J(x_r; w)·v` for every row (`n × C`), by forward-mode tangent
    /// propagation (`DenseLayer.tangent`, then `ȧ = φ'(z) ⊙ ż`), without forming Jacobians.
    /// Costs about two forward passes.
    public func jvp(_ w: [Double], _ x: Matrix, tangent v: [Double]) -> Matrix {
        checkShapes(w, x)
        precondition(v.count == parameterCount, "tangent has \(v.count) entries, the network has \(parameterCount) parameters")
        var a = x
        var da: Matrix? = nil
        for layer in layers {
            let W = layer.weight(w)
            let z = layer.forward(W, w, a)
            let dz = layer.tangent(W, v, input: a, inputTangent: da)
            if layer.index == depth - 1 { return dz }
            let (values, slopes) = activation.valuesAndDerivatives(z, leakySlope: spec.leakySlope)
            da = dz.hadamard(slopes)
            a = values
        }
        preconditionFailure("an MLP has at least one layer")
    }
}
