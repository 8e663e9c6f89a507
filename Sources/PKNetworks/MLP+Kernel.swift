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
///
/// `Scalar` is the compute precision: `Double`, or `Float` for `--precision f32` (weights and
/// inputs rounded once, GEMMs in single precision). The reference implementation is the explicit
/// contraction `MLP.jacobians(w, A) · MLP.jacobians(w, B)ᵀ`; tests check this one against it.
public struct TangentFeatures<Scalar: BLASScalar>: Sendable {
    /// Number of examples n.
    public let count: Int
    /// Number of signal channels: C for a network's outputs, or one per cotangent.
    public let channels: Int
    /// Per layer: the input activations `a_l`, n × in_l, row r = example r.
    public let inputs: [DenseMatrix<Scalar>]
    /// Per layer: `δ_{l,c}` stacked channel-major, (channels·n) × out_l, row `c·n + r`.
    public let signals: [DenseMatrix<Scalar>]
    /// Per layer: `s_l²` (the weight scale, folded into the activation Grams' GEMM).
    public let weightScaleSquared: [Double]
    /// Per layer: `β_l²` (0 without biases).
    public let biasScaleSquared: [Double]
    /// The network's outputs `f(x_r)` (n × C) from the same forward pass.
    public let outputs: DenseMatrix<Scalar>
    /// `J(x_r; w) v` (n × C) for each tangent `v` passed to `MLP.tangentFeatures` (forward mode,
    /// fused into the same forward pass).
    public var outputTangents: [DenseMatrix<Scalar>] = []

    /// One channel: the signals of `Σ_c g[r, c] f_c(x_r)` from the C output channels, i.e. what a
    /// backward pass with cotangent `g` (n × C) gives, without one (a linear combination).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public func contracted(with g: Matrix) -> TangentFeatures {
        precondition(g.rows == count && g.cols == channels, "cotangent is \(g.rows)×\(g.cols), features have \(count) rows and \(channels) channels")
        let n = count, C = channels
        let combined = signals.map { s -> DenseMatrix<Scalar> in
            let width = s.cols
            var out = DenseMatrix<Scalar>(rows: n, cols: width)
            s.data.withUnsafeBufferPointer { sp in
                out.data.withUnsafeMutableBufferPointer { op in
                    for r in 0..<n {
                        for c in 0..<C {
                            let gc = Scalar(g[r, c])
                            if gc == 0 { continue }
                            let src = (c * n + r) * width, dst = r * width
                            for j in 0..<width { op[dst + j] += gc * sp[src + j] }
                        }
                    }
                }
            }
            return out
        }
        return TangentFeatures(count: n, channels: 1, inputs: inputs, signals: combined, weightScaleSquared: weightScaleSquared,
                               biasScaleSquared: biasScaleSquared, outputs: outputs, outputTangents: outputTangents)
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
    ///
    /// Row blocks of `A` run on `Parallel.threads` threads (single-threaded BLAS each).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public static func kernel(_ a: TangentFeatures, _ b: TangentFeatures, mode: KernelMode = .full) -> DenseMatrix<Scalar> {
        kernels(a, [(b, mode)])[0]
    }

    /// Several kernels of `A` against feature sets of the same examples (for instance `B` and
    /// `B.contracted(with: g)`), sharing the activation Grams: one `kernel(a, b, mode:)` per request.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public static func kernels(_ a: TangentFeatures, _ requests: [(TangentFeatures, KernelMode)]) -> [DenseMatrix<Scalar>] {
        for (b, mode) in requests {
            precondition(a.signals.count == b.signals.count, "features of different networks")
            precondition(b.count == requests[0].0.count, "the requests must share their examples")
            precondition(b.weightScaleSquared == a.weightScaleSquared, "features of different networks")
            if mode == .trace { precondition(a.channels == b.channels, "a trace kernel needs the same channels on both sides") }
        }
        let blocks = Parallel.ranges(a.count, minimum: 16)
        var parts = [[DenseMatrix<Scalar>]](repeating: [], count: blocks.count)
        parts.withUnsafeMutableBufferPointer { pp in
            Parallel.forEach(blocks.count) { p in
                pp[p] = kernelBlock(a, rows: blocks[p], requests)
            }
        }
        if parts.count == 1 { return parts[0] }
        return requests.indices.map { j in
            let cols = parts[0][j].cols
            var data: [Scalar] = []
            data.reserveCapacity(parts.reduce(0) { $0 + $1[j].data.count })
            for part in parts { data.append(contentsOf: part[j].data) }
            return DenseMatrix(rows: data.count / max(cols, 1), cols: cols, data: data)
        }
    }

    /// Rows `range` of each requested kernel (in `kernel`'s layout), on the calling thread.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    static func kernelBlock(_ a: TangentFeatures, rows range: Range<Int>, _ requests: [(TangentFeatures, KernelMode)]) -> [DenseMatrix<Scalar>] {
        let m = range.count, nA = a.count, Ca = a.channels, nB = requests[0].0.count
        var ga = DenseMatrix<Scalar>(rows: m, cols: nB)
        var out = requests.map { b, mode in
            mode == .trace ? DenseMatrix<Scalar>(rows: m, cols: nB) : DenseMatrix<Scalar>(rows: m * Ca, cols: nB * b.channels)
        }
        var gd = DenseMatrix<Scalar>(rows: 0, cols: 0)
        for l in a.signals.indices {
            DenseMatrix.gemm(a.inputs[l], rows: range, requests[0].0.inputs[l], rows: 0..<nB,
                             alpha: Scalar(a.weightScaleSquared[l]), into: &ga)
            let beta2 = Scalar(a.biasScaleSquared[l])
            for (j, (b, mode)) in requests.enumerated() {
                let Cb = b.channels
                switch mode {
                case .trace:
                    if gd.rows != m || gd.cols != nB { gd = DenseMatrix(rows: m, cols: nB) }
                    for c in 0..<Ca {
                        DenseMatrix.gemm(a.signals[l], rows: (c * nA + range.lowerBound)..<(c * nA + range.upperBound),
                                         b.signals[l], rows: (c * nB)..<((c + 1) * nB), beta: c == 0 ? 0 : 1, into: &gd)
                    }
                    out[j].data.withUnsafeMutableBufferPointer { kp in
                        gd.data.withUnsafeBufferPointer { dp in
                            ga.data.withUnsafeBufferPointer { ap in
                                for i in 0..<kp.count { kp[i] += dp[i] * (ap[i] + beta2) }
                            }
                        }
                    }
                case .full:
                    // Channel c of A against every channel of B: m × (Cb·nB), column kk·nB + r'.
                    if gd.rows != m || gd.cols != Cb * nB { gd = DenseMatrix(rows: m, cols: Cb * nB) }
                    let kc = nB * Cb
                    for c in 0..<Ca {
                        DenseMatrix.gemm(a.signals[l], rows: (c * nA + range.lowerBound)..<(c * nA + range.upperBound),
                                         b.signals[l], rows: 0..<(Cb * nB), into: &gd)
                        out[j].data.withUnsafeMutableBufferPointer { kp in
                            gd.data.withUnsafeBufferPointer { dp in
                                ga.data.withUnsafeBufferPointer { ap in
                                    if Cb == 1 && Ca == 1 {
                                        for i in 0..<(m * nB) { kp[i] += dp[i] * (ap[i] + beta2) }
                                        return
                                    }
                                    for r in 0..<m {
                                        let krow = (r * Ca + c) * kc, grow = r * Cb * nB, arow = r * nB
                                        for kk in 0..<Cb {
                                            let gbase = grow + kk * nB
                                            for r2 in 0..<nB {
                                                kp[krow + r2 * Cb + kk] += dp[gbase + r2] * (ap[arow + r2] + beta2)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension MLP {
    /// The tangent features of every row of `x` at weights `w` (see `TangentFeatures`), one
    /// channel per output, computed in `Scalar` precision: one forward pass and one stacked
    /// backward pass (all C channels in one GEMM per layer), row blocks on `Parallel.threads`.
    /// Each of `tangents` (length P) also gets its JVP `J(x; w) v` from the same forward pass
    /// (`outputTangents`; two more GEMMs per layer and tangent).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public func tangentFeatures<Scalar: BLASScalar>(_ w: [Double], _ x: Matrix, as _: Scalar.Type = Double.self,
                                                    tangents: [[Double]] = []) -> TangentFeatures<Scalar> {
        checkShapes(w, x)
        for v in tangents { precondition(v.count == parameterCount, "tangent has \(v.count) entries, the network has \(parameterCount) parameters") }
        let weights = layers.map { DenseMatrix<Scalar>(layer: $0, w) }
        let biases: [[Scalar]?] = layers.map { layer in
            layer.biasOffset.map { bo in (0..<layer.outputs).map { Scalar(layer.biasScale * w[bo + $0]) } }
        }
        let tangentWeights = tangents.map { v in layers.map { DenseMatrix<Scalar>(layer: $0, v) } }
        let tangentBiases: [[[Scalar]?]] = tangents.map { v in layers.map { layer in
            layer.biasOffset.map { bo in (0..<layer.outputs).map { Scalar(layer.biasScale * v[bo + $0]) } }
        } }
        let n = x.rows
        let xs = DenseMatrix<Scalar>(x)
        let blocks = Parallel.ranges(n, minimum: 32)
        var parts = [TangentFeatures<Scalar>?](repeating: nil, count: blocks.count)
        parts.withUnsafeMutableBufferPointer { pp in
            Parallel.forEach(blocks.count) { p in
                pp[p] = featureBlock(weights: weights, biases: biases, tangentWeights: tangentWeights,
                                     tangentBiases: tangentBiases, xs.rows(blocks[p]))
            }
        }
        return parts.count == 1 ? parts[0]! : TangentFeatures.concatenating(parts.map { $0! })
    }

    /// `tangentFeatures` of one row block, on the calling thread.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    func featureBlock<Scalar: BLASScalar>(weights: [DenseMatrix<Scalar>], biases: [[Scalar]?],
                                          tangentWeights: [[DenseMatrix<Scalar>]], tangentBiases: [[[Scalar]?]],
                                          _ x: DenseMatrix<Scalar>) -> TangentFeatures<Scalar> {
        let m = x.rows, C = outputDim, L = depth
        func affine(_ a: DenseMatrix<Scalar>, _ W: DenseMatrix<Scalar>, _ b: [Scalar]?, scale s: Scalar) -> DenseMatrix<Scalar> {
            var z = DenseMatrix<Scalar>(rows: m, cols: W.rows)
            if let b {
                z.data.withUnsafeMutableBufferPointer { zp in
                    for r in 0..<m { for j in 0..<W.rows { zp[r * W.rows + j] = b[j] } }
                }
            }
            DenseMatrix.gemm(a, W, transposeB: true, alpha: s, beta: 1, into: &z)
            return z
        }
        // Forward, keeping a_l and φ'(z_l); tangents ż = s(a Ẇᵀ + ȧ Wᵀ) + β ḃ, ȧ = φ'(z) ⊙ ż.
        var inputs: [DenseMatrix<Scalar>] = [], slopes: [DenseMatrix<Scalar>] = []
        var a = x
        var da = [DenseMatrix<Scalar>?](repeating: nil, count: tangentWeights.count)
        var output = DenseMatrix<Scalar>(rows: m, cols: C)
        var outputTangents: [DenseMatrix<Scalar>] = []
        for layer in layers {
            let l = layer.index, s = Scalar(layer.weightScale)
            inputs.append(a)
            var z = affine(a, weights[l], biases[l], scale: s)
            let dz = tangentWeights.indices.map { t in
                var dz = affine(a, tangentWeights[t][l], tangentBiases[t][l], scale: s)
                if let dat = da[t] { DenseMatrix.gemm(dat, weights[l], transposeB: true, alpha: s, beta: 1, into: &dz) }
                return dz
            }
            if l == L - 1 { output = z; outputTangents = dz; break }
            let d = activation.applyInPlace(&z, leakySlope: spec.leakySlope)
            slopes.append(d)
            for t in dz.indices { da[t] = dz[t].hadamard(d) }
            a = z
        }
        // Backward with the C channels stacked: δ_{L−1} = e_c, δ_{l−1} = s_l (δ_l W_l) ⊙ φ'(z_{l−1}).
        var signals = [DenseMatrix<Scalar>](repeating: DenseMatrix(rows: 0, cols: 0), count: L)
        var delta = DenseMatrix<Scalar>(rows: C * m, cols: C)
        for c in 0..<C { for r in 0..<m { delta[c * m + r, c] = 1 } }
        for l in stride(from: L - 1, through: 0, by: -1) {
            signals[l] = delta
            if l == 0 { break }
            var next = DenseMatrix<Scalar>(rows: C * m, cols: layers[l].inputs)
            DenseMatrix.gemm(delta, weights[l], alpha: Scalar(layers[l].weightScale), into: &next)
            let d = slopes[l - 1]
            next.data.withUnsafeMutableBufferPointer { np in
                d.data.withUnsafeBufferPointer { dp in
                    let size = dp.count
                    for c in 0..<C {
                        for i in 0..<size { np[c * size + i] *= dp[i] }
                    }
                }
            }
            delta = next
        }
        return TangentFeatures(count: m, channels: C, inputs: inputs, signals: signals,
                               weightScaleSquared: layers.map { $0.weightScale * $0.weightScale },
                               biasScaleSquared: layers.map { $0.biasOffset == nil ? 0 : $0.biasScale * $0.biasScale },
                               outputs: output, outputTangents: outputTangents)
    }
}

extension TangentFeatures {
    /// The features of the examples of `parts`, in order (same network and channels).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public static func concatenating(_ parts: [TangentFeatures]) -> TangentFeatures {
        let n = parts.reduce(0) { $0 + $1.count }, C = parts[0].channels
        let inputs = parts[0].inputs.indices.map { l in
            DenseMatrix(rows: n, cols: parts[0].inputs[l].cols, data: parts.flatMap { $0.inputs[l].data })
        }
        let signals = parts[0].signals.indices.map { l -> DenseMatrix<Scalar> in
            let width = parts[0].signals[l].cols
            var data: [Scalar] = []
            data.reserveCapacity(C * n * width)
            for c in 0..<C {
                for part in parts {
                    let size = part.count * width
                    data.append(contentsOf: part.signals[l].data[(c * size)..<((c + 1) * size)])
                }
            }
            return DenseMatrix(rows: C * n, cols: width, data: data)
        }
        return TangentFeatures(count: n, channels: C, inputs: inputs, signals: signals,
                               weightScaleSquared: parts[0].weightScaleSquared, biasScaleSquared: parts[0].biasScaleSquared,
                               outputs: DenseMatrix(rows: n, cols: parts[0].outputs.cols, data: parts.flatMap { $0.outputs.data }),
                               outputTangents: parts[0].outputTangents.indices.map { t in
                                   DenseMatrix(rows: n, cols: parts[0].outputs.cols, data: parts.flatMap { $0.outputTangents[t].data })
                               })
    }
}

extension DenseMatrix {
    /// Layer `layer`'s weight matrix `W` (`outputs × inputs`) from the flat parameters, in this precision.
    init(layer: DenseLayer, _ w: [Double]) {
        self.init(rows: layer.outputs, cols: layer.inputs,
                  data: w[layer.weightOffset..<(layer.weightOffset + layer.weightCount)].map { Scalar($0) })
    }
}
