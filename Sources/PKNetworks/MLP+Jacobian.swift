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

extension MLP {
    /// Explicit Jacobians from tangent features, combined in place, for one layer and a range of
    /// rows (single-threaded; the caller splits rows over threads): for every row in `rows` of the
    /// features' `C·n` (channel-major, row `c·n + r` = `∂f_c(x_r)/∂w`),
    ///
    ///     target[row] = decay · target[row] + Σ_j weight_j · (J_j[row] ⊙ d)
    ///
    /// restricted to layer l, where `J_j` is the Jacobian that `nodes[j].features` describe
    /// (`∂f_c/∂W_l = s_W δ aᵀ`, `∂f_c/∂b_l = s_b δ`) and `d` (`scale`) a per-parameter P-vector
    /// (nil: every entry 1, the same bits without reading it).
    /// Storage is the layer's own: `weights` is `(rows·out) × in` (row `row·out + i` holds
    /// `∂/∂W_l[i, :]`), `bias` is `rows × out` (nil without biases). Nodes four at a time: one pass
    /// over a row's block per group. The preconditioned path kernel builds its query side with
    /// this (path-kernel math §5); `jacobians(_:_:)` is its oracle.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateLayerJacobians<S: BLASScalar>(_ nodes: [(features: TangentFeatures<S>, weight: Double)], layer l: Int,
                                                        rows: Range<Int>, scale: UnsafePointer<S>?, decay: Double,
                                                        weights target: UnsafeMutablePointer<S>, bias: UnsafeMutablePointer<S>?) {
        layers[l].accumulateJacobians(nodes, block: l, rows: rows, scale: scale, decay: decay, weights: target, bias: bias)
    }
}

extension DenseLayer {
    /// `MLP.accumulateLayerJacobians` for any network's factor block (`Network.featureBlocks`):
    /// this layer is block `l` of the nodes' features.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateJacobians<S: BLASScalar>(_ nodes: [(features: TangentFeatures<S>, weight: Double)], block l: Int,
                                                   rows: Range<Int>, scale: UnsafePointer<S>?, decay: Double,
                                                   weights target: UnsafeMutablePointer<S>, bias: UnsafeMutablePointer<S>?) {
        guard let first = nodes.first?.features else { return }
        let n = first.count
        let layer = self, din = layer.inputs, dout = layer.outputs
        let weights = nodes.map { S($0.weight) }
        let sW = S(layer.weightScale), sB = S(layer.biasScale)
        let sBase = scale.map { $0 + layer.weightOffset }
        // Raw pointers of the nodes' activations and signals (read only). Their arrays belong to
        // `nodes`, whose lifetime is extended to the end of this function explicitly: a pointer
        // must never outlive its array's last use, which the optimizer may move (the class of the
        // released-scratch bug fixed in the preconditioned route).
        defer { withExtendedLifetime(nodes) {} }
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
                    // o = dec·o + s ⊙ (c₀a₀ + c₁a₁ + c₂a₂ + c₃a₃) (dec 0: assign, 1: add), in C (AVX2).
                    S.scaledCombination(target + (row * dout + i) * din, scale: sBase.map { $0 + i * din }, (a0, a1, a2, a3),
                                        (w0 * d0[i], w1 * d1[i], w2 * d2[i], w3 * d3[i]), decay: dec, count: din)
                }
            }
            if let bias, let bo = layer.biasOffset {
                for i in 0..<dout {
                    var v: S = 0
                    for j in nodes.indices { v += weights[j] * dl[j][row * dout + i] }
                    let old: S = decay == 0 ? 0 : S(decay) * bias[row * dout + i]
                    bias[row * dout + i] = scale.map { old + sB * v * $0[bo + i] } ?? old + sB * v
                }
            }
        }
    }

    /// The factored form of `accumulateJacobians` for a block whose input `a` does not depend on
    /// the parameters (an MLP's first layer: `a = x` at every node) and with no diagonal scale:
    /// every node's term `s_W ω_j δ_j aᵀ` shares `aᵀ`, so only its left factor is kept,
    /// `u ← decay·u + s_W Σ_j ω_j δ_j` (`out` scalars per row instead of `out·in`), and the bias
    /// rows `b ← decay·b + s_b Σ_j ω_j δ_j` as in `accumulateJacobians`.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateFactoredJacobians<S: BLASScalar>(_ nodes: [(features: TangentFeatures<S>, weight: Double)], block l: Int,
                                                           rows: Range<Int>, decay: Double,
                                                           weights target: UnsafeMutablePointer<S>, bias: UnsafeMutablePointer<S>?) {
        let dout = outputs
        let weights = nodes.map { S($0.weight) }
        let sW = S(weightScale), sB = S(biasScale), dec = S(decay)
        defer { withExtendedLifetime(nodes) {} }
        let dl = nodes.map { $0.features.signals[l].data.withUnsafeBufferPointer { $0.baseAddress! } }
        for row in rows {
            for i in 0..<dout {
                var v: S = 0
                for j in nodes.indices { v += weights[j] * dl[j][row * dout + i] }
                target[row * dout + i] = dec * target[row * dout + i] + sW * v
                if let bias { bias[row * dout + i] = dec * bias[row * dout + i] + sB * v }
            }
        }
    }

    /// `accumulateJacobians` for one row of R whose nodes are rows of one feature set at
    /// different points (exact quadrature's per-query nodes, path-kernel math §1.1): `target`
    /// (this block's `out·in` scalars of the row) and `bias` (its `out`) become
    /// `decay·old + Σ_j ω_j scale ⊙ J_j`, J_j the block's Jacobian of feature row `sources[j].row`
    /// (a signal row `c·n + r`, whose input row is `r`), as `accumulateJacobians` sums the nodes
    /// of one row: in groups of four, the decay with the first group.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateJacobianRow<S: BLASScalar>(_ features: TangentFeatures<S>, block l: Int, sources: [(row: Int, weight: Double)],
                                                     scale: UnsafePointer<S>?, decay: Double,
                                                     weights target: UnsafeMutablePointer<S>, bias: UnsafeMutablePointer<S>?) {
        let n = features.count, din = inputs, dout = outputs
        let sW = S(weightScale), sB = S(biasScale)
        let sBase = scale.map { $0 + weightOffset }
        defer { withExtendedLifetime(features) {} }
        let a = features.inputs[l].data.withUnsafeBufferPointer { $0.baseAddress! }
        let dl = features.signals[l].data.withUnsafeBufferPointer { $0.baseAddress! }
        if sources.isEmpty {
            let dec = S(decay)
            for e in 0..<(dout * din) { target[e] = decay == 0 ? 0 : dec * target[e] }
            if let bias, biasOffset != nil { for i in 0..<dout { bias[i] = decay == 0 ? 0 : dec * bias[i] } }
            return
        }
        let weights = sources.map { S($0.weight) }
        for g in stride(from: 0, to: sources.count, by: 4) {
            let dec: S = g == 0 ? S(decay) : 1
            let last = sources.count - 1
            let j = (g, min(g + 1, last), min(g + 2, last), min(g + 3, last))
            let w0 = weights[j.0] * sW
            let w1 = g + 1 <= last ? weights[j.1] * sW : 0
            let w2 = g + 2 <= last ? weights[j.2] * sW : 0
            let w3 = g + 3 <= last ? weights[j.3] * sW : 0
            let r = (sources[j.0].row, sources[j.1].row, sources[j.2].row, sources[j.3].row)
            let a0 = a + (r.0 % n) * din, a1 = a + (r.1 % n) * din, a2 = a + (r.2 % n) * din, a3 = a + (r.3 % n) * din
            let d0 = dl + r.0 * dout, d1 = dl + r.1 * dout, d2 = dl + r.2 * dout, d3 = dl + r.3 * dout
            for i in 0..<dout {
                S.scaledCombination(target + i * din, scale: sBase.map { $0 + i * din }, (a0, a1, a2, a3),
                                    (w0 * d0[i], w1 * d1[i], w2 * d2[i], w3 * d3[i]), decay: dec, count: din)
            }
        }
        if let bias, let bo = biasOffset {
            for i in 0..<dout {
                var v: S = 0
                for (j, source) in sources.enumerated() { v += weights[j] * dl[source.row * dout + i] }
                let old: S = decay == 0 ? 0 : S(decay) * bias[i]
                bias[i] = scale.map { old + sB * v * $0[bo + i] } ?? old + sB * v
            }
        }
    }

    /// `accumulateJacobians` / `accumulateJacobianRow` for one row of R kept compact over the
    /// block's nonzero inputs (a block whose input is the data, an MLP's first layer: every
    /// Jacobian of the row is `δ aᵀ` with the row's own input `a`, so R's scalars at the inputs
    /// that are 0 stay 0 and are not stored). `support`: the `count` ascending indices of the
    /// inputs kept; `target` holds `out × count` scalars, output i's at `i·count`; `terms`: the
    /// nodes as (features, signal row, input row, weight), summed in groups of four with the decay
    /// in the first group, as the two full forms do. Every kept scalar and the bias rows are
    /// computed by the same operations as in the full forms, so they are the same numbers.
    /// `scratch`: `4·count` scalars.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateCompactJacobianRow<S: BLASScalar>(_ terms: [(features: TangentFeatures<S>, signalRow: Int, inputRow: Int, weight: Double)],
                                                            block l: Int, support: UnsafePointer<Int32>, count n: Int,
                                                            scale: UnsafePointer<S>?, decay: Double, weights target: UnsafeMutablePointer<S>,
                                                            bias: UnsafeMutablePointer<S>?, scratch: UnsafeMutablePointer<S>) {
        let din = inputs, dout = outputs
        let sW = S(weightScale), sB = S(biasScale)
        let sBase = scale.map { $0 + weightOffset }
        defer { withExtendedLifetime(terms) {} }
        if terms.isEmpty {
            let dec = S(decay)
            for e in 0..<(dout * n) { target[e] = decay == 0 ? 0 : dec * target[e] }
            if let bias, biasOffset != nil { for i in 0..<dout { bias[i] = decay == 0 ? 0 : dec * bias[i] } }
            return
        }
        let weights = terms.map { S($0.weight) }
        let a = terms.map { $0.features.inputs[l].data.withUnsafeBufferPointer { $0.baseAddress! } }
        let dl = terms.map { $0.features.signals[l].data.withUnsafeBufferPointer { $0.baseAddress! } }
        // Node slot j's inputs at the support, gathered at scratch + j·n.
        let gathered = (UnsafePointer(scratch), UnsafePointer(scratch + n), UnsafePointer(scratch + 2 * n), UnsafePointer(scratch + 3 * n))
        let last = terms.count - 1
        for g in stride(from: 0, to: terms.count, by: 4) {
            let dec: S = g == 0 ? S(decay) : 1
            let j = (g, min(g + 1, last), min(g + 2, last), min(g + 3, last))
            let w0 = weights[j.0] * sW
            let w1 = g + 1 <= last ? weights[j.1] * sW : 0
            let w2 = g + 2 <= last ? weights[j.2] * sW : 0
            let w3 = g + 3 <= last ? weights[j.3] * sW : 0
            for (slot, t) in [j.0, j.1, j.2, j.3].enumerated() {
                let row = a[t] + terms[t].inputRow * din, out = scratch + slot * n
                for k in 0..<n { out[k] = row[Int(support[k])] }
            }
            let d0 = dl[j.0] + terms[j.0].signalRow * dout, d1 = dl[j.1] + terms[j.1].signalRow * dout
            let d2 = dl[j.2] + terms[j.2].signalRow * dout, d3 = dl[j.3] + terms[j.3].signalRow * dout
            for i in 0..<dout {
                S.scaledCombination(target + i * n, scale: sBase.map { $0 + i * din }, at: support,
                                    gathered,
                                    (w0 * d0[i], w1 * d1[i], w2 * d2[i], w3 * d3[i]), decay: dec, count: n)
            }
        }
        if let bias, let bo = biasOffset {
            for i in 0..<dout {
                var v: S = 0
                for (t, term) in terms.enumerated() { v += weights[t] * dl[t][term.signalRow * dout + i] }
                let old: S = decay == 0 ? 0 : S(decay) * bias[i]
                bias[i] = scale.map { old + sB * v * $0[bo + i] } ?? old + sB * v
            }
        }
    }

    /// The factored form of `accumulateJacobianRow` (as `accumulateFactoredJacobians`: the
    /// block's input does not move along the segment and no scale applies): `target` (`out`
    /// scalars) becomes `decay·u + s_W Σ_j ω_j δ_j`, `bias` `decay·b + s_b Σ_j ω_j δ_j`, δ_j the
    /// signal row `sources[j].row`.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func accumulateFactoredJacobianRow<S: BLASScalar>(_ features: TangentFeatures<S>, block l: Int, sources: [(row: Int, weight: Double)],
                                                             decay: Double, weights target: UnsafeMutablePointer<S>,
                                                             bias: UnsafeMutablePointer<S>?) {
        let dout = outputs
        let weights = sources.map { S($0.weight) }
        let sW = S(weightScale), sB = S(biasScale), dec = S(decay)
        defer { withExtendedLifetime(features) {} }
        let dl = features.signals[l].data.withUnsafeBufferPointer { $0.baseAddress! }
        for i in 0..<dout {
            var v: S = 0
            for (j, source) in sources.enumerated() { v += weights[j] * dl[source.row * dout + i] }
            target[i] = dec * target[i] + sW * v
            if let bias { bias[i] = dec * bias[i] + sB * v }
        }
    }
}
