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

/// Explicit per-row parameter vectors (Jacobian rows and combinations of them) kept layer by
/// layer, so that each layer's weight block of every row is one matrix: `weights[l]` is
/// `(rows·out_l) × in_l` (row `row·out_l + i` holds `∂/∂W_l[i, :]`), `biases[l]` is
/// `rows × out_l` (0 × 0 without biases). `flattened()` gives the usual `rows × P` layout.
public struct LayeredRows: Sendable {
    public let rows: Int
    public var weights: [Matrix]
    public var biases: [Matrix]

    public init(rows: Int, model: MLP) {
        self.rows = rows
        weights = model.layers.map { Matrix(rows: rows * $0.outputs, cols: $0.inputs) }
        biases = model.layers.map { $0.biasOffset == nil ? Matrix(rows: 0, cols: 0) : Matrix(rows: rows, cols: $0.outputs) }
    }

    /// `rows × P` in the model's parameter order.
    public func flattened(model: MLP) -> Matrix {
        let P = model.parameterCount
        var out = Matrix(rows: rows, cols: P)
        for layer in model.layers {
            let l = layer.index, block = layer.weightCount
            for row in 0..<rows {
                for e in 0..<block { out.data[row * P + layer.weightOffset + e] = weights[l].data[row * block + e] }
                if let bo = layer.biasOffset {
                    for i in 0..<layer.outputs { out.data[row * P + bo + i] = biases[l][row, i] }
                }
            }
        }
        return out
    }
}

extension MLP {
    /// Explicit Jacobians from tangent features, combined in place: for every row of `target`
    /// (channel-major, row `c·n + r` = `∂f_c(x_r)/∂w`, of the features' `C·n`),
    ///
    ///     target[row] = decay · target[row] + Σ_j weight_j · (J_j[row] ⊙ d)
    ///
    /// where `J_j` is the Jacobian that `nodes[j].features` describe (`∂f_c/∂W_l = s_W δ aᵀ`,
    /// `∂f_c/∂b_l = s_b δ`) and `d` a per-parameter scale (nil: ones). Rows split over
    /// `Parallel.threads`. The preconditioned path kernel builds its query side with
    /// `accumulateLayerJacobians` (path-kernel math §5); `jacobians(_:_:)` is the oracle of both.
    public func accumulateJacobians(_ nodes: [(features: TangentFeatures<Double>, weight: Double)], scaledBy d: [Double]?,
                                    decay: Double, into target: inout LayeredRows) {
        guard let first = nodes.first?.features else { return }
        let n = first.count, C = first.channels, P = parameterCount
        precondition(target.rows == C * n, "target has \(target.rows) rows, expected \(C * n)")
        precondition(d == nil || d!.count == P, "scale has \(d!.count) entries, the network has \(P) parameters")
        for f in nodes { precondition(f.features.count == n && f.features.channels == C, "features of different shapes") }
        let scale = d ?? [Double](repeating: 1, count: P)
        let parts = Parallel.ranges(C * n, minimum: 8)
        for layer in layers {
            let l = layer.index
            scale.withUnsafeBufferPointer { sp in
                target.weights[l].data.withUnsafeMutableBufferPointer { wp in
                    let w = wp.baseAddress!
                    if layer.biasOffset != nil {
                        target.biases[l].data.withUnsafeMutableBufferPointer { bp in
                            let b = bp.baseAddress!
                            Parallel.forEach(parts.count) { p in
                                accumulateLayerJacobians(nodes, layer: l, rows: parts[p], scale: sp.baseAddress!, decay: decay, weights: w, bias: b)
                            }
                        }
                    } else {
                        Parallel.forEach(parts.count) { p in
                            accumulateLayerJacobians(nodes, layer: l, rows: parts[p], scale: sp.baseAddress!, decay: decay, weights: w, bias: nil)
                        }
                    }
                }
            }
        }
    }

    /// `accumulateJacobians` for one layer and a range of rows, on raw storage (single-threaded):
    /// `weights` is the layer's `(rows·out) × in` block (row `row·out + i`), `bias` its
    /// `rows × out` block (nil without biases), `scale` the whole P-vector `d`. Rows of the
    /// features' `C·n` (channel-major). Nodes four at a time: one pass over a row's block per group.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateLayerJacobians<S: BLASScalar>(_ nodes: [(features: TangentFeatures<S>, weight: Double)], layer l: Int,
                                                        rows: Range<Int>, scale: UnsafePointer<S>, decay: Double,
                                                        weights target: UnsafeMutablePointer<S>, bias: UnsafeMutablePointer<S>?) {
        guard let first = nodes.first?.features else { return }
        let n = first.count
        let layer = layers[l], din = layer.inputs, dout = layer.outputs
        let weights = nodes.map { S($0.weight) }
        let sW = S(layer.weightScale), sB = S(layer.biasScale)
        let sBase = scale + layer.weightOffset
        // Raw pointers of the nodes' activations and signals (read only; the features outlive this call).
        let a = nodes.map { $0.features.inputs[l].data.withUnsafeBufferPointer { $0.baseAddress! } }
        let dl = nodes.map { $0.features.signals[l].data.withUnsafeBufferPointer { $0.baseAddress! } }
        for row in rows {
            let r = row % n
            for g in stride(from: 0, to: nodes.count, by: 4) {
                let dec: S = g == 0 ? S(decay) : 1
                let i0 = g, i1 = min(g + 1, nodes.count - 1), i2 = min(g + 2, nodes.count - 1), i3 = min(g + 3, nodes.count - 1)
                let w0 = weights[i0] * sW
                let w1 = g + 1 < nodes.count ? weights[i1] * sW : 0
                let w2 = g + 2 < nodes.count ? weights[i2] * sW : 0
                let w3 = g + 3 < nodes.count ? weights[i3] * sW : 0
                let a0 = a[i0] + r * din, a1 = a[i1] + r * din, a2 = a[i2] + r * din, a3 = a[i3] + r * din
                let d0 = dl[i0] + row * dout, d1 = dl[i1] + row * dout, d2 = dl[i2] + row * dout, d3 = dl[i3] + row * dout
                for i in 0..<dout {
                    let c0 = w0 * d0[i], c1 = w1 * d1[i], c2 = w2 * d2[i], c3 = w3 * d3[i]
                    let o = target + (row * dout + i) * din, s = sBase + i * din
                    if dec == 0 {
                        for k in 0..<din { o[k] = s[k] * (c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]) }
                    } else if dec == 1 {
                        for k in 0..<din { o[k] += s[k] * (c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]) }
                    } else {
                        for k in 0..<din { o[k] = dec * o[k] + s[k] * (c0 * a0[k] + c1 * a1[k] + c2 * a2[k] + c3 * a3[k]) }
                    }
                }
            }
            if let bias, let bo = layer.biasOffset {
                for i in 0..<dout {
                    var v: S = 0
                    for j in nodes.indices { v += weights[j] * dl[j][row * dout + i] }
                    let old: S = decay == 0 ? 0 : S(decay) * bias[row * dout + i]
                    bias[row * dout + i] = old + sB * v * scale[bo + i]
                }
            }
        }
    }
}
