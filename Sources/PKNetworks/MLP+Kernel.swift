import PKNumerics

/// Tangent features of a batch at one weight vector: per dense layer, the layer's scaled input
/// activations and its back-propagated output signals. Two feature sets, possibly at different
/// weights, give the tangent kernel `Θ(x, x'; u, v) = J(x; u) J(x'; v)ᵀ` by GEMMs alone, never
/// forming n×P Jacobians ("structured derivatives": Novak et al. 2022, "Fast Finite Width
/// Neural Tangent Kernel"; path-kernel math §6).
///
/// Layer `l` computes `z_l = s_l W_l a_l + β_l b_l`, so `∂f_c/∂W_l = s_l δ_{l,c} a_lᵀ` and
/// `∂f_c/∂b_l = β_l δ_{l,c}` with `δ_{l,c} = ∂f_c/∂z_l`, and
/// `Θ_ck(x, x') = Σ_l (δ_{l,c}(x)·δ_{l,k}(x')) (s_l² a_l(x)·a_l(x') + β_l²)`.
public struct TangentFeatures: Sendable {
    /// Number of examples n.
    public let count: Int
    /// Number of signal channels: C for a network's outputs, or one per cotangent.
    public let channels: Int
    /// Per layer: `s_l · a_l`, n × in_l, row r = example r.
    public let scaledInputs: [Matrix]
    /// Per layer: `δ_{l,c}` stacked channel-major, (channels·n) × out_l, row `c·n + r`.
    public let signals: [Matrix]
    /// Per layer: `β_l²` (0 without biases).
    public let biasScaleSquared: [Double]

    /// Channel `c`'s signals of layer `l` (n × out_l).
    func signals(layer l: Int, channel c: Int) -> Matrix {
        let s = signals[l]
        return Matrix(rows: count, cols: s.cols, data: Array(s.data[(c * count * s.cols)..<((c + 1) * count * s.cols)]))
    }
}

/// How a C×C tangent-kernel block is kept.
public enum KernelMode: String, Codable, Sendable, CaseIterable {
    /// Every C×C block.
    case full
    /// Each block's trace (one number per pair); the block is read as `trace/C · I_C`.
    case trace
}

extension TangentFeatures {
    /// `Θ(A, B)`. `.full`: (nA·Ca) × (nB·Cb), row `r·Ca + c`, column `r'·Cb + k` (the layout of
    /// `J_A J_Bᵀ` with Jacobians stacked as in `MLP.jacobians`). `.trace` (needs Ca = Cb): nA × nB,
    /// entry `Σ_c Θ_cc(a_r, b_r')`.
    public static func kernel(_ a: TangentFeatures, _ b: TangentFeatures, mode: KernelMode = .full) -> Matrix {
        precondition(a.signals.count == b.signals.count, "features of different networks")
        let nA = a.count, nB = b.count, Ca = a.channels, Cb = b.channels
        switch mode {
        case .trace:
            precondition(Ca == Cb, "a trace kernel needs the same channels on both sides")
            var k = Matrix(rows: nA, cols: nB)
            for l in a.signals.indices {
                let ga = Matrix.product(a.scaledInputs[l], b.scaledInputs[l], transposeB: true)
                let beta2 = a.biasScaleSquared[l]
                var gd = Matrix(rows: nA, cols: nB)
                for c in 0..<Ca {
                    Matrix.gemm(a.signals(layer: l, channel: c), b.signals(layer: l, channel: c), transposeB: true,
                                alpha: 1, beta: 1, into: &gd)
                }
                for i in k.data.indices { k.data[i] += gd.data[i] * (ga.data[i] + beta2) }
            }
            return k
        case .full:
            var k = Matrix(rows: nA * Ca, cols: nB * Cb)
            for l in a.signals.indices {
                let ga = Matrix.product(a.scaledInputs[l], b.scaledInputs[l], transposeB: true)
                let beta2 = a.biasScaleSquared[l]
                let gd = Matrix.product(a.signals[l], b.signals[l], transposeB: true)   // (Ca·nA) × (Cb·nB)
                let kc = k.cols, gdc = gd.cols
                for c in 0..<Ca {
                    for r in 0..<nA {
                        let grow = (c * nA + r) * gdc
                        let krow = (r * Ca + c) * kc
                        let garow = r * nB
                        for kk in 0..<Cb {
                            let gbase = grow + kk * nB
                            for r2 in 0..<nB {
                                k.data[krow + r2 * Cb + kk] += gd.data[gbase + r2] * (ga.data[garow + r2] + beta2)
                            }
                        }
                    }
                }
            }
            return k
        }
    }
}

extension ForwardCache {
    /// Tangent features with one channel per cotangent (each n × C): channel j's signals are
    /// those of `Σ_c cotangents[j][r, c] f_c(x_r)`. One backward pass per channel, no forward pass.
    public func tangentFeatures(cotangents: [Matrix]) -> TangentFeatures {
        let n = output.rows
        let L = model.depth
        var stacked = (0..<L).map { Matrix(rows: cotangents.count * n, cols: model.layers[$0].outputs) }
        for (j, g) in cotangents.enumerated() {
            let deltas = signals(cotangent: g)
            for l in 0..<L {
                let count = n * deltas[l].cols
                stacked[l].data.replaceSubrange((j * count)..<((j + 1) * count), with: deltas[l].data)
            }
        }
        return TangentFeatures(count: n, channels: cotangents.count,
                               scaledInputs: model.layers.map { $0.weightScale * layerInputs[$0.index] },
                               signals: stacked,
                               biasScaleSquared: model.layers.map { $0.biasOffset == nil ? 0 : $0.biasScale * $0.biasScale })
    }

    /// Tangent features of the network's C outputs (channel c = output c).
    public func tangentFeatures() -> TangentFeatures {
        let n = output.rows, C = output.cols
        return tangentFeatures(cotangents: (0..<C).map { c in
            var e = Matrix(rows: n, cols: C)
            for r in 0..<n { e[r, c] = 1 }
            return e
        })
    }
}

extension MLP {
    /// The tangent features of every row of `x` at weights `w` (see `TangentFeatures`).
    public func tangentFeatures(_ w: [Double], _ x: Matrix) -> TangentFeatures {
        forwardCache(w, x).tangentFeatures()
    }
}
