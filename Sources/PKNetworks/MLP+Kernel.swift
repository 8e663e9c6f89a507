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
    /// Tiles of the result run on `Parallel.threads` threads (single-threaded BLAS each); see `kernels`.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public static func kernel(_ a: TangentFeatures, _ b: TangentFeatures, mode: KernelMode = .full) -> DenseMatrix<Scalar> {
        kernels(a, [(b, mode)])[0]
    }

    /// Fewest examples along the cut side of a kernel tile: `kernels` cuts the longer of A's and
    /// B's examples into 1, 2, 4 or 8 parts of at least this many, and into two from 64 on
    /// (`Parallel.powerOfTwoRanges`). W1 on 2 cores (200 × 1000): 2 tiles of 500 beat 4 of 250 and
    /// row blocks of A (which pack all of B once per block).
    public static var kernelTileMinimum: Int { 256 }

    /// Several kernels of `A` against feature sets of the same examples (for instance `B` and
    /// `B.contracted(with: g)`), sharing the activation Grams: one `kernel(a, b, mode:)` per request.
    ///
    /// The result is cut along the longer side (B's examples when nB ≥ nA, else A's) into tiles
    /// that run side by side, each writing its part of the results in place: per layer one GEMM
    /// for the activation Gram of the tile, the signal Grams, and one pass that multiplies them
    /// into the results (the first layer assigns, so the results are never zero-filled). Cutting
    /// the longer side packs the other, shorter side's features once per tile rather than the
    /// longer side once per row block. Signals one column wide (an MLP's last layer with one
    /// output) give their Gram as a product inside that pass, without a GEMM.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public static func kernels(_ a: TangentFeatures, _ requests: [(TangentFeatures, KernelMode)]) -> [DenseMatrix<Scalar>] {
        kernels(a, requests, tileMinimum: kernelTileMinimum)
    }

    /// `kernels` with tiles of at least `tileMinimum` along the cut side (tests cut small problems).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    static func kernels(_ a: TangentFeatures, _ requests: [(TangentFeatures, KernelMode)], tileMinimum: Int) -> [DenseMatrix<Scalar>] {
        for (b, mode) in requests {
            precondition(a.signals.count == b.signals.count, "features of different networks")
            precondition(b.count == requests[0].0.count, "the requests must share their examples")
            precondition(b.weightScaleSquared == a.weightScaleSquared, "features of different networks")
            if mode == .trace { precondition(a.channels == b.channels, "a trace kernel needs the same channels on both sides") }
        }
        guard let first = requests.first else { return [] }
        let nA = a.count, Ca = a.channels, nB = first.0.count
        let shapes = requests.map { b, mode in mode == .trace ? (rows: nA, cols: nB) : (rows: nA * Ca, cols: nB * b.channels) }
        if nA == 0 || nB == 0 || a.signals.isEmpty {
            return shapes.map { DenseMatrix(rows: $0.rows, cols: $0.cols) }
        }
        let alongB = nB >= nA
        let tiles = Parallel.powerOfTwoRanges(alongB ? nB : nA, minimum: tileMinimum, pairFrom: 64)
        let L = a.signals.count, R = requests.count
        // Every operand's storage, gathered once: A's inputs and signals, B's inputs (shared by
        // the requests), each request's signals.
        let operands = a.inputs.map(\.data) + a.signals.map(\.data) + first.0.inputs.map(\.data)
            + requests.flatMap { $0.0.signals.map(\.data) }
        let data = withUninitializedArrays(shapes.map { $0.rows * $0.cols }) { (out: [UnsafeMutablePointer<Scalar>]) in
            withBufferPointers(operands) { p in
                let grams = GramOperands(aInputs: Array(p[0..<L]), aSignals: Array(p[L..<(2 * L)]), bInputs: Array(p[(2 * L)..<(3 * L)]),
                                         bSignals: (0..<R).map { j in Array(p[(3 * L + j * L)..<(3 * L + (j + 1) * L)]) })
                Parallel.forEach(tiles.count) { t in
                    kernelTile(a, rows: alongB ? 0..<nA : tiles[t], columns: alongB ? tiles[t] : 0..<nB, requests, grams, into: out)
                }
            }
        }
        return zip(shapes, data).map { DenseMatrix(rows: $0.rows, cols: $0.cols, data: $1) }
    }

    /// Raw storage of the feature matrices `kernels` reads (see `kernelTile`).
    struct GramOperands {
        let aInputs: [UnsafePointer<Scalar>]
        let aSignals: [UnsafePointer<Scalar>]
        let bInputs: [UnsafePointer<Scalar>]
        /// Per request, per layer.
        let bSignals: [[UnsafePointer<Scalar>]]
    }

    /// The entries of every requested kernel between A's examples `ra` and B's examples `cb`,
    /// written into `out` (one pointer per request, `kernel`'s layout), on the calling thread.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    static func kernelTile(_ a: TangentFeatures, rows ra: Range<Int>, columns cb: Range<Int>,
                           _ requests: [(TangentFeatures, KernelMode)], _ p: GramOperands, into out: [UnsafeMutablePointer<Scalar>]) {
        let mA = ra.count, mB = cb.count, nA = a.count, Ca = a.channels, nB = requests[0].0.count
        let r0 = ra.lowerBound, c0 = cb.lowerBound
        if mA == 0 || mB == 0 { return }
        let widest = requests.map { $0.1 == .full ? $0.0.channels : 1 }.max() ?? 1
        let ga = UnsafeMutablePointer<Scalar>.allocate(capacity: mA * mB)
        let gd = UnsafeMutablePointer<Scalar>.allocate(capacity: mA * mB * widest)
        defer { ga.deallocate(); gd.deallocate() }
        for l in a.signals.indices {
            let assign = l == 0
            let k = a.inputs[l].cols, width = a.signals[l].cols
            let beta2 = Scalar(a.biasScaleSquared[l])
            // ga = s_l² A_l[ra] B_l[cb]ᵀ
            rawGemm(transposeB: true, m: mA, n: mB, k: k, alpha: Scalar(a.weightScaleSquared[l]), a: p.aInputs[l] + r0 * k, lda: k,
                    b: p.bInputs[l] + c0 * k, ldb: k, beta: 0, c: ga, ldc: mB)
            for (j, (b, mode)) in requests.enumerated() {
                let Cb = b.channels, K = out[j], sA = p.aSignals[l], sB = p.bSignals[j][l]
                switch mode {
                case .trace:
                    if width == 1 && Ca == 1 {
                        // One channel, one column: the signal Gram is the product δ_A(r) δ_B(r').
                        for i in 0..<mA {
                            Scalar.hadamardUpdate(K + (r0 + i) * nB + c0, sB + c0, scale: sA[r0 + i], ga + i * mB, shift: beta2,
                                                  count: mB, assign: assign)
                        }
                        continue
                    }
                    for c in 0..<Ca {
                        rawGemm(transposeB: true, m: mA, n: mB, k: width, alpha: 1, a: sA + (c * nA + r0) * width, lda: width,
                                b: sB + (c * nB + c0) * width, ldb: width, beta: c == 0 ? 0 : 1, c: gd, ldc: mB)
                    }
                    for i in 0..<mA {
                        Scalar.hadamardUpdate(K + (r0 + i) * nB + c0, gd + i * mB, scale: nil, ga + i * mB, shift: beta2, count: mB, assign: assign)
                    }
                case .full:
                    let ldk = nB * Cb
                    for c in 0..<Ca {
                        if width == 1 && Cb == 1 {
                            for i in 0..<mA {
                                Scalar.hadamardUpdate(K + ((r0 + i) * Ca + c) * ldk + c0, sB + c0, scale: sA[c * nA + r0 + i], ga + i * mB,
                                                      shift: beta2, count: mB, assign: assign)
                            }
                            continue
                        }
                        // Channel c of A against every channel of B: mA × (Cb·mB), column kk·mB + r'.
                        for kk in 0..<Cb {
                            rawGemm(transposeB: true, m: mA, n: mB, k: width, alpha: 1, a: sA + (c * nA + r0) * width, lda: width,
                                    b: sB + (kk * nB + c0) * width, ldb: width, beta: 0, c: gd + kk * mB, ldc: Cb * mB)
                        }
                        if Cb == 1 {
                            for i in 0..<mA {
                                Scalar.hadamardUpdate(K + ((r0 + i) * Ca + c) * ldk + c0, gd + i * mB, scale: nil, ga + i * mB, shift: beta2,
                                                      count: mB, assign: assign)
                            }
                            continue
                        }
                        for i in 0..<mA {
                            let krow = K + ((r0 + i) * Ca + c) * ldk + c0 * Cb, grow = gd + i * Cb * mB, arow = ga + i * mB
                            for kk in 0..<Cb {
                                for r2 in 0..<mB {
                                    let v = grow[kk * mB + r2] * (arow[r2] + beta2)
                                    if assign { krow[r2 * Cb + kk] = v } else { krow[r2 * Cb + kk] += v }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `body` with the base addresses of `arrays`' storage (valid during `body`; an empty array
/// gives a pointer that must not be read).
func withBufferPointers<Scalar: BLASScalar, R>(_ arrays: [[Scalar]], _ body: ([UnsafePointer<Scalar>]) -> R) -> R {
    var pointers: [UnsafePointer<Scalar>] = []
    pointers.reserveCapacity(arrays.count)
    func level(_ i: Int) -> R {
        if i == arrays.count { return body(pointers) }
        return arrays[i].withUnsafeBufferPointer { buffer in
            pointers.append(buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Scalar>.alignment)!)
            return level(i + 1)
        }
    }
    return level(0)
}

/// `C ← α·A·op(B) + β·C`, row-major on raw storage (`op(B) = Bᵀ` when `transposeB`); `k = 0`
/// gives `β·C` (0 for β = 0), nothing is read for an empty result.
@inline(__always)
func rawGemm<Scalar: BLASScalar>(transposeB: Bool, m: Int, n: Int, k: Int, alpha: Scalar,
                                 a: UnsafePointer<Scalar>?, lda: Int, b: UnsafePointer<Scalar>?, ldb: Int,
                                 beta: Scalar, c: UnsafeMutablePointer<Scalar>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        for r in 0..<m { for j in 0..<n { c[r * ldc + j] = beta == 0 ? 0 : beta * c[r * ldc + j] } }
        return
    }
    Scalar.gemm(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a!, lda: max(lda, 1),
                b: b!, ldb: max(ldb, 1), beta: beta, c: c, ldc: max(ldc, 1))
}

/// Arrays of `counts[i]` elements each, allocated without being zero-filled, whose every element
/// `body` writes through the pointers it is given (the arrays' storage, valid during `body`).
func withUninitializedArrays<Scalar: BLASScalar>(_ counts: [Int], _ body: ([UnsafeMutablePointer<Scalar>]) -> Void) -> [[Scalar]] {
    func level(_ i: Int, _ pointers: [UnsafeMutablePointer<Scalar>]) -> [[Scalar]] {
        if i == counts.count {
            body(pointers)
            return []
        }
        var rest: [[Scalar]] = []
        let array = [Scalar](unsafeUninitializedCapacity: max(counts[i], 1)) { buffer, initialized in
            rest = level(i + 1, pointers + [buffer.baseAddress!])
            initialized = counts[i]
        }
        return [array] + rest
    }
    return level(0, [])
}

extension MLP {
    /// The tangent features of every row of `x` at weights `w` (see `TangentFeatures`), one
    /// channel per output, computed in `Scalar` precision: one forward pass and one stacked
    /// backward pass, row blocks on `Parallel.threads` (`tangentFeatures(_:batches:as:tangents:)`).
    /// Each of `tangents` (length P) also gets its JVP `J(x; w) v` from the same forward pass
    /// (`outputTangents`; two more GEMMs per layer and tangent).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public func tangentFeatures<Scalar: BLASScalar>(_ w: [Double], _ x: Matrix, as _: Scalar.Type = Double.self,
                                                    tangents: [[Double]] = []) -> TangentFeatures<Scalar> {
        tangentFeatures(w, batches: [x], as: Scalar.self, tangents: tangents)[0]
    }

    /// Fewest rows of a feature block: `tangentFeatures` cuts the batches' rows, laid end to end,
    /// into 1, 2, 4 or 8 parts of at least this many, and into two from 64 rows on
    /// (`Parallel.powerOfTwoRanges`). Each part's GEMMs pack every weight matrix once, so the
    /// packing per row falls as parts grow: W1 (1,200 rows) runs 4 parts of 300 faster than 8 of 150.
    public static var featureBlockMinimum: Int { 256 }

    /// The tangent features of several batches at the same weights (for instance the queries and
    /// the training points of a kernel), one `TangentFeatures` per batch, equal to
    /// `tangentFeatures(w, x)` of each to round-off. One parallel pass for all of them: their
    /// rows, laid end to end, are cut into a power-of-two number of equal parts (a part may span
    /// two batches), so two small batches still make large, evenly shared GEMMs. Each part
    /// writes its rows of the features in place (no concatenation, no zero-fill first).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public func tangentFeatures<Scalar: BLASScalar>(_ w: [Double], batches: [Matrix], as _: Scalar.Type = Double.self,
                                                    tangents: [[Double]] = []) -> [TangentFeatures<Scalar>] {
        tangentFeatures(w, batches: batches, as: Scalar.self, tangents: tangents, blockMinimum: Self.featureBlockMinimum)
    }

    /// `tangentFeatures(_:batches:as:tangents:)` with parts of at least `blockMinimum` rows.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    func tangentFeatures<Scalar: BLASScalar>(_ w: [Double], batches: [Matrix], as _: Scalar.Type,
                                             tangents: [[Double]], blockMinimum: Int) -> [TangentFeatures<Scalar>] {
        for x in batches { checkShapes(w, x) }
        for v in tangents { precondition(v.count == parameterCount, "tangent has \(v.count) entries, the network has \(parameterCount) parameters") }
        let L = depth, C = outputDim, T = tangents.count, P = parameterCount
        func scaledBiases(_ v: [Double]) -> [[Scalar]?] {
            layers.map { layer in layer.biasOffset.map { bo in (0..<layer.outputs).map { Scalar(layer.biasScale * v[bo + $0]) } } }
        }
        let biases = scaledBiases(w)
        let tangentBiases = tangents.map(scaledBiases)
        // The parameters in `Scalar`: float64 reads `w` in place.
        func rounded(_ vectors: [[Double]]) -> [Scalar] {
            let total = vectors.reduce(0) { $0 + $1.count }
            return [Scalar](unsafeUninitializedCapacity: total) { out, initialized in
                var at = 0
                for v in vectors {
                    v.withUnsafeBufferPointer { vp in for i in 0..<vp.count { out[at + i] = Scalar(vp[i]) } }
                    at += v.count
                }
                initialized = total
            }
        }
        let converted: [Scalar]? = Scalar.self == Double.self ? nil : rounded([w])
        let tangentParameters = rounded(tangents)
        // Per batch: inputs[0..<L], signals[0..<L], outputs, outputTangents[0..<T].
        let perBatch = 2 * L + 1 + T
        var counts: [Int] = []
        for x in batches {
            let n = x.rows
            counts += layers.map { n * $0.inputs } + layers.map { C * n * $0.outputs } + [n * C] + Array(repeating: n * C, count: T)
        }
        var offsets = [0]
        for x in batches { offsets.append(offsets.last! + x.rows) }
        let parts = Parallel.powerOfTwoRanges(offsets.last!, minimum: blockMinimum, pairFrom: 64)
        let pieces: [[(batch: Int, rows: Range<Int>)]] = parts.map { part in
            batches.indices.compactMap { bi in
                let lo = max(part.lowerBound, offsets[bi]), hi = min(part.upperBound, offsets[bi + 1])
                return lo < hi ? (bi, (lo - offsets[bi])..<(hi - offsets[bi])) : nil
            }
        }
        let arrays = withUninitializedArrays(counts) { (pointers: [UnsafeMutablePointer<Scalar>]) in
            func run(_ wp: UnsafePointer<Scalar>) {
                tangentParameters.withUnsafeBufferPointer { tp in
                    Parallel.forEach(parts.count) { p in
                        for piece in pieces[p] {
                            let base = piece.batch * perBatch
                            let storage = FeatureStorage(count: batches[piece.batch].rows, inputs: Array(pointers[base..<(base + L)]),
                                                         signals: Array(pointers[(base + L)..<(base + 2 * L)]), outputs: pointers[base + 2 * L],
                                                         outputTangents: Array(pointers[(base + 2 * L + 1)..<(base + perBatch)]))
                            featureRows(piece.rows, of: batches[piece.batch], weights: wp, biases: biases,
                                        tangentWeights: tp.baseAddress, tangentStride: P, tangentBiases: tangentBiases, into: storage)
                        }
                    }
                }
            }
            if let converted {
                converted.withUnsafeBufferPointer { run($0.baseAddress!) }
            } else {
                w.withUnsafeBufferPointer { run(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: Scalar.self)) }
            }
        }
        return batches.indices.map { bi in
            let n = batches[bi].rows, base = bi * perBatch
            return TangentFeatures(count: n, channels: C,
                                   inputs: layers.map { DenseMatrix(rows: n, cols: $0.inputs, data: arrays[base + $0.index]) },
                                   signals: layers.map { DenseMatrix(rows: C * n, cols: $0.outputs, data: arrays[base + L + $0.index]) },
                                   weightScaleSquared: layers.map { $0.weightScale * $0.weightScale },
                                   biasScaleSquared: layers.map { $0.biasOffset == nil ? 0 : $0.biasScale * $0.biasScale },
                                   outputs: DenseMatrix(rows: n, cols: C, data: arrays[base + 2 * L]),
                                   outputTangents: (0..<T).map { DenseMatrix(rows: n, cols: C, data: arrays[base + 2 * L + 1 + $0]) })
        }
    }

    /// Where one batch's features go: `TangentFeatures`' matrices as raw row-major storage.
    struct FeatureStorage<Scalar: BLASScalar> {
        let count: Int
        let inputs: [UnsafeMutablePointer<Scalar>]
        let signals: [UnsafeMutablePointer<Scalar>]
        let outputs: UnsafeMutablePointer<Scalar>
        let outputTangents: [UnsafeMutablePointer<Scalar>]
    }

    /// The features of rows `rows` of `x`, written into their rows of `out`, on the calling thread.
    ///
    /// Forward: `z_l = s_l a_l W_lᵀ + β_l b_l` straight into `a_{l+1}`'s rows, then `φ` in place;
    /// ReLU keeps no derivative (`φ'(z_l) = [a_{l+1} > 0]` is read back from the activation),
    /// other activations keep `φ'(z_l)` for the block. Tangents: `ż = s(a Ẇᵀ + ȧ Wᵀ) + β ḃ`,
    /// `ȧ = φ'(z) ⊙ ż`. Backward, channel by channel into `signals`: `δ_{L−1} = e_c`,
    /// `δ_{L−2} = s_{L−1} W_{L−1}[c, :] ⊙ φ'(z_{L−2})` (the product by `e_c` written out),
    /// `δ_{l−1} = s_l (δ_l W_l) ⊙ φ'(z_{l−1})`.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    func featureRows<Scalar: BLASScalar>(_ rows: Range<Int>, of x: Matrix, weights wp: UnsafePointer<Scalar>, biases: [[Scalar]?],
                                         tangentWeights tp: UnsafePointer<Scalar>?, tangentStride P: Int, tangentBiases: [[[Scalar]?]],
                                         into out: FeatureStorage<Scalar>) {
        let m = rows.count, r0 = rows.lowerBound, n = out.count, C = outputDim, L = depth, T = tangentBiases.count
        if m == 0 { return }
        let d = inputDim
        x.data.withUnsafeBufferPointer { xp in
            let src = xp.baseAddress! + r0 * d, dst = out.inputs[0] + r0 * d
            for i in 0..<(m * d) { dst[i] = Scalar(src[i]) }
        }
        let relu = activation == .relu
        func affine(_ a: UnsafePointer<Scalar>, _ W: UnsafePointer<Scalar>, _ b: [Scalar]?, _ layer: DenseLayer, into z: UnsafeMutablePointer<Scalar>) {
            let o = layer.outputs
            if let b { b.withUnsafeBufferPointer { bp in for r in 0..<m { (z + r * o).update(from: bp.baseAddress!, count: o) } } }
            rawGemm(transposeB: true, m: m, n: o, k: layer.inputs, alpha: Scalar(layer.weightScale), a: a, lda: layer.inputs,
                    b: W, ldb: layer.inputs, beta: b == nil ? 0 : 1, c: z, ldc: o)
        }
        // φ'(z_l) of this block's rows, kept for activations other than ReLU (l < L − 1).
        var slopes: [[Scalar]] = []
        // The tangents' ȧ_l of this block's rows (none at l = 0).
        var inputTangents: [[Scalar]] = []
        for layer in layers {
            let l = layer.index, o = layer.outputs, k = layer.inputs
            let a = UnsafePointer(out.inputs[l] + r0 * k), W = wp + layer.weightOffset
            let z = (l < L - 1 ? out.inputs[l + 1] : out.outputs) + r0 * o
            affine(a, W, biases[l], layer, into: z)
            var zTangents: [[Scalar]] = []
            for t in 0..<T {
                var zt = [Scalar](unsafeUninitializedCapacity: m * o) { $1 = m * o }
                zt.withUnsafeMutableBufferPointer { zp in
                    affine(a, tp! + t * P + layer.weightOffset, tangentBiases[t][l], layer, into: zp.baseAddress!)
                    if l > 0 {
                        inputTangents[t].withUnsafeBufferPointer { ap in
                            rawGemm(transposeB: true, m: m, n: o, k: k, alpha: Scalar(layer.weightScale), a: ap.baseAddress, lda: k,
                                    b: W, ldb: k, beta: 1, c: zp.baseAddress!, ldc: o)
                        }
                    }
                }
                zTangents.append(zt)
            }
            if l == L - 1 {
                for t in 0..<T { zTangents[t].withUnsafeBufferPointer { (out.outputTangents[t] + r0 * o).update(from: $0.baseAddress!, count: m * o) } }
                break
            }
            if relu {
                Scalar.reluInPlace(z, count: m * o)
                for t in 0..<T {
                    zTangents[t].withUnsafeMutableBufferPointer { zp in
                        Scalar.multiplyByStep(zp.baseAddress!, of: z, into: zp.baseAddress!, count: m * o)
                    }
                }
            } else {
                let act = activation, alpha = spec.leakySlope
                let slope = [Scalar](unsafeUninitializedCapacity: m * o) { sp, initialized in
                    if act == .tanh {
                        // One vector pass, the bits of the loop below (`Tanh`).
                        if m * o > 0 { Scalar.tanhInPlace(z, derivatives: sp.baseAddress!, count: m * o) }
                    } else {
                        for i in 0..<(m * o) {
                            let (v, dv) = act.valueAndDerivative(Double(z[i]), leakySlope: alpha)
                            z[i] = Scalar(v)
                            sp[i] = Scalar(dv)
                        }
                    }
                    initialized = m * o
                }
                for t in 0..<T { for i in 0..<(m * o) { zTangents[t][i] *= slope[i] } }
                slopes.append(slope)
            }
            inputTangents = zTangents
        }
        // δ ← δ ⊙ φ'(z_l) on this block's m × width rows at `delta`.
        func multiplySlope(_ l: Int, _ delta: UnsafeMutablePointer<Scalar>, width: Int) {
            if relu {
                Scalar.multiplyByStep(delta, of: out.inputs[l + 1] + r0 * width, into: delta, count: m * width)
            } else {
                slopes[l].withUnsafeBufferPointer { sp in for i in 0..<(m * width) { delta[i] *= sp[i] } }
            }
        }
        // δ_{L−1} = e_c.
        for c in 0..<C {
            for r in 0..<m {
                let row = out.signals[L - 1] + (c * n + r0 + r) * C
                for kk in 0..<C { row[kk] = kk == c ? 1 : 0 }
            }
        }
        if L == 1 { return }
        // δ_{L−2} = s_{L−1} W_{L−1}[c, :] ⊙ φ'(z_{L−2}) (e_c W is W's row c, exactly).
        let top = layers[L - 1], width = top.inputs, s = Scalar(top.weightScale)
        for c in 0..<C {
            let v = (0..<width).map { j in s * wp[top.weightOffset + c * width + j] }
            let dst = out.signals[L - 2] + (c * n + r0) * width
            v.withUnsafeBufferPointer { vp in
                if relu {
                    let a = out.inputs[L - 1] + r0 * width
                    for r in 0..<m { Scalar.multiplyByStep(vp.baseAddress!, of: a + r * width, into: dst + r * width, count: width) }
                } else {
                    slopes[L - 2].withUnsafeBufferPointer { sp in
                        for r in 0..<m { for j in 0..<width { dst[r * width + j] = vp[j] * sp[r * width + j] } }
                    }
                }
            }
        }
        // δ_{l−1} = s_l (δ_l W_l) ⊙ φ'(z_{l−1}).
        for l in stride(from: L - 2, through: 1, by: -1) {
            let layer = layers[l], o = layer.outputs, k = layer.inputs
            for c in 0..<C {
                let dst = out.signals[l - 1] + (c * n + r0) * k
                rawGemm(transposeB: false, m: m, n: k, k: o, alpha: Scalar(layer.weightScale), a: out.signals[l] + (c * n + r0) * o, lda: o,
                        b: wp + layer.weightOffset, ldb: k, beta: 0, c: dst, ldc: k)
                multiplySlope(l - 1, dst, width: k)
            }
        }
    }
}


extension TangentFeatures {
    /// The features of the examples of `parts`, in order (same network and channels).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    /// Row `g` of the result: `Σ (weight · row)` over `groups[g]`, in every channel, for feature
    /// sets whose rows are Jacobian rows (every block's input is the constant 1, as a layer
    /// network's), where the kernel with any other set is linear in the rows: the weighted sum of
    /// rows has the weighted sum of their kernels. Outputs are zero and no output tangents are kept.
    /// (An MLP's rows are outer products of activations and signals and do not add up this way.)
    public func weightedRowSums(_ groups: [[(row: Int, weight: Double)]]) -> TangentFeatures {
        precondition(inputs.allSatisfy { $0.cols == 1 && $0.data.allSatisfy { $0 == 1 } },
                     "weightedRowSums needs Jacobian rows (every block's input 1)")
        let n = count, m = groups.count, C = channels
        let sums = signals.map { s -> DenseMatrix<Scalar> in
            let width = s.cols
            var out = DenseMatrix<Scalar>(rows: C * m, cols: width)
            s.data.withUnsafeBufferPointer { sp in
                out.data.withUnsafeMutableBufferPointer { op in
                    for c in 0..<C {
                        for (g, group) in groups.enumerated() {
                            let dst = op.baseAddress! + (c * m + g) * width
                            for (row, weight) in group {
                                precondition(row >= 0 && row < n, "row \(row) of \(n)")
                                let w = Scalar(weight), src = sp.baseAddress! + (c * n + row) * width
                                for j in 0..<width { dst[j] += w * src[j] }
                            }
                        }
                    }
                }
            }
            return out
        }
        return TangentFeatures(count: m, channels: C, inputs: inputs.map { _ in DenseMatrix(rows: m, cols: 1, data: [Scalar](repeating: 1, count: m)) },
                               signals: sums, weightScaleSquared: weightScaleSquared, biasScaleSquared: biasScaleSquared,
                               outputs: DenseMatrix(rows: m, cols: outputs.cols), outputTangents: [])
    }

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
