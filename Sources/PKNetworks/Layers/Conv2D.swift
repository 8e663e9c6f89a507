import PKNumerics

/// A 2-D convolution on NCHW images, PyTorch's `nn.Conv2d` (groups 1, dilation 1), computed by
/// im2col + GEMM, one GEMM per example.
///
/// Priorities, in order: PyTorch's layout and arithmetic (cross-correlation, weight
/// `[out, in, kh, kw]`), exact derivatives (checked against finite differences and a direct
/// loop), memory linear in the batch (patches are rebuilt per example, never stored for the
/// batch), then speed.
///
/// Shapes: input `[C, H, W]`, output `[O, Ho, Wo]` (`Window2D` gives `Ho`, `Wo` from the kernel,
/// the stride and the padding); tensors `weight` `[O, C, kh, kw]` and, with `bias`, `bias` `[O]`.
///
///     z[o, p] = s_W Σ_{c,i,j} W[o, c, i, j] · x[c, p_y·sh − padTop + i, p_x·sw − padLeft + j] + s_b b[o]
///
/// with `x` read as 0 in the padding (PyTorch: "Conv2d", https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html).
/// With `X = im2col(x)` (`(C·kh·kw) × (Ho·Wo)`, `Window2D.im2col`) and `W` read as
/// `O × (C·kh·kw)`, one example is `Z = s_W · W X + s_b b 1ᵀ`, so, with `U = ∂s/∂Z`:
/// `∂s/∂W = s_W U Xᵀ` (summed over examples), `∂s/∂b = s_b Σ_{examples, p} U`,
/// `∂s/∂x = col2im(s_W Wᵀ U)`; the tangent is `Ż = s_W (W im2col(ẋ) + Ẇ X) + s_b ḃ 1ᵀ`.
///
/// Parameterizations, with fan-in `n = C·kh·kw` (neural-tangents `stax.Conv`): `ntk`:
/// `W, b ~ N(0, 1)`, `s_W = σ_w/√n`, `s_b = σ_b`; `standard`: `W ~ N(0, σ_w²/n)`, `b ~ N(0, σ_b²)`,
/// `s_W = s_b = 1` (the same rule as `Dense`).
public struct Conv2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let padding: Padding2D
    /// Kernel, stride, padding and output size.
    public let window: Window2D
    public let hasBias: Bool
    public let parameterization: Parameterization
    public let sigmaW: Double
    public let sigmaB: Double
    /// `s_W = σ_w/√(C·kh·kw)` under `ntk`, 1 under `standard`.
    public let weightScale: Double
    /// `s_b = σ_b` under `ntk`, 1 under `standard`.
    public let biasScale: Double
    public let parameters: [LayerParameter]

    public init(inputShape: TensorShape, outputChannels: Int, kernel: (height: Int, width: Int),
                stride: (height: Int, width: Int) = (1, 1), padding: Padding2D = .valid, bias: Bool = true,
                parameterization: Parameterization = .ntk, sigmaW: Double = 1, sigmaB: Double = 0.1) throws {
        guard let image = inputShape.image, inputShape.isValid else {
            throw LayerError("conv2d: needs an image input [C, H, W], got \(inputShape)")
        }
        guard outputChannels >= 1 else { throw LayerError("conv2d: out must be at least 1, got \(outputChannels)") }
        try checkScales(sigmaW: sigmaW, sigmaB: sigmaB, layer: "conv2d")
        window = try Window2D(input: (image.height, image.width), kernel: kernel, stride: stride, padding: padding, layer: "conv2d")
        inputChannels = image.channels
        self.outputChannels = outputChannels
        self.padding = padding
        self.hasBias = bias
        self.parameterization = parameterization
        self.sigmaW = sigmaW
        self.sigmaB = sigmaB
        let w = parameterization.weightScaling(sigmaW: sigmaW, fanIn: image.channels * kernel.height * kernel.width)
        let b = parameterization.biasScaling(sigmaB: sigmaB)
        weightScale = w.forwardScale
        biasScale = b.forwardScale
        var tensors = [LayerParameter(name: "weight", shape: [outputChannels, image.channels, kernel.height, kernel.width],
                                      initialization: .normal(standardDeviation: w.standardDeviation), slot: 0)]
        if bias {
            tensors.append(LayerParameter(name: "bias", shape: [outputChannels],
                                          initialization: .normal(standardDeviation: b.standardDeviation), slot: 1))
        }
        parameters = tensors
    }

    public var inputShape: TensorShape { .image(channels: inputChannels, height: window.inputHeight, width: window.inputWidth) }
    public var outputShape: TensorShape { .image(channels: outputChannels, height: window.outputHeight, width: window.outputWidth) }
    public var isPiecewiseLinear: Bool { false }
    /// Bilinear in `x` and `W` plus the bias: one degree more along a segment (`affineSegmentPieces`).
    public var segmentDegree: Int? { 1 }

    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        let k = outputChannels * patchSize
        return affineSegmentPieces(input, start: w, delta: v, bias: hasBias ? k..<(k + outputChannels) : nil)
    }

    /// Rows of an example's patch matrix: `C·kh·kw`.
    var patchSize: Int { inputChannels * window.kernelPositions }

    /// `2·O·(C·kh·kw)·Ho·Wo` plus the bias and the patches.
    public var forwardFlops: Double {
        Double(window.outputPositions) * (2 * Double(outputChannels * patchSize) + Double(outputChannels + patchSize))
    }

    /// The input batch and `W` (`O·C·kh·kw` scalars).
    struct Cache<S: BLASScalar>: Sendable {
        let input: DenseMatrix<S>
        let weight: [S]
    }

    /// Writes `s_b b[o]` into every position of channel `o` of one output example (`o`: `O·Ho·Wo` scalars).
    func fillBias<S: BLASScalar>(_ b: UnsafePointer<S>, into o: UnsafeMutablePointer<S>) {
        let P = window.outputPositions, sB = S(biasScale)
        for c in 0..<outputChannels {
            let v = sB * b[c]
            for p in 0..<P { o[c * P + p] = v }
        }
    }

    // MARK: Forward

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        let weight = Array(w[0..<(outputChannels * patchSize)])
        return (convolve(x, weight: weight, bias: hasBias ? Array(w[(outputChannels * patchSize)...]) : nil),
                LayerCache(Cache(input: x, weight: weight)))
    }

    /// `s_W · W im2col(x_r) + s_b b 1ᵀ` for every example (`bias` nil: no bias term).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func convolve<S: BLASScalar>(_ x: DenseMatrix<S>, weight: [S], bias: [S]?) -> DenseMatrix<S> {
        let n = x.rows, O = outputChannels, K = patchSize, P = window.outputPositions, inCount = inputShape.count
        var out = DenseMatrix<S>(rows: n, cols: O * P)
        guard n > 0 else { return out }
        var cols = [S](repeating: 0, count: K * P)
        let sW = S(weightScale)
        x.data.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                out.data.withUnsafeMutableBufferPointer { op in
                    cols.withUnsafeMutableBufferPointer { cp in
                        for r in 0..<n {
                            let o = op.baseAddress! + r * O * P
                            if let bias { bias.withUnsafeBufferPointer { fillBias($0.baseAddress!, into: o) } }
                            window.im2col(xp.baseAddress! + r * inCount, channels: inputChannels, into: cp.baseAddress!)
                            S.gemm(transposeA: false, transposeB: false, m: O, n: P, k: K, alpha: sW,
                                   a: wp.baseAddress!, lda: K, b: cp.baseAddress!, ldb: P,
                                   beta: 1, c: o, ldc: P)
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: Pullback

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        let c = cache.contents(as: Cache<S>.self)
        let n = c.input.rows, O = outputChannels, K = patchSize, P = window.outputPositions, inCount = inputShape.count
        precondition(cotangent.rows == n && cotangent.cols == O * P, "conv2d pullback: cotangent is \(cotangent.rows)×\(cotangent.cols), outputs are \(n)×\(O * P)")
        var gradW = [S](repeating: 0, count: O * K)
        var biasSums = [S](repeating: 0, count: O)
        var dx = DenseMatrix<S>(rows: n, cols: needsInputCotangent ? inCount : 0)
        if n > 0 {
            var cols = [S](repeating: 0, count: K * P)
            var dcols = [S](repeating: 0, count: needsInputCotangent ? K * P : 0)
            let sW = S(weightScale)
            c.input.data.withUnsafeBufferPointer { xp in
                cotangent.data.withUnsafeBufferPointer { up in
                    c.weight.withUnsafeBufferPointer { wp in
                        gradW.withUnsafeMutableBufferPointer { gp in
                            cols.withUnsafeMutableBufferPointer { cp in
                                for r in 0..<n {
                                    let u = up.baseAddress! + r * O * P
                                    window.im2col(xp.baseAddress! + r * inCount, channels: inputChannels, into: cp.baseAddress!)
                                    // ∂s/∂W += s_W U Xᵀ
                                    S.gemm(transposeA: false, transposeB: true, m: O, n: K, k: P, alpha: sW,
                                           a: u, lda: P, b: cp.baseAddress!, ldb: P, beta: 1, c: gp.baseAddress!, ldc: K)
                                    for o in 0..<O { for p in 0..<P { biasSums[o] += u[o * P + p] } }
                                    guard needsInputCotangent else { continue }
                                    // ∂s/∂x = col2im(s_W Wᵀ U)
                                    dcols.withUnsafeMutableBufferPointer { dp in
                                        S.gemm(transposeA: true, transposeB: false, m: K, n: P, k: O, alpha: sW,
                                               a: wp.baseAddress!, lda: K, b: u, ldb: P, beta: 0, c: dp.baseAddress!, ldc: P)
                                        dx.data.withUnsafeMutableBufferPointer { xq in
                                            window.col2im(UnsafePointer(dp.baseAddress!), channels: inputChannels,
                                                          into: xq.baseAddress! + r * inCount)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if hasBias {
            let sB = S(biasScale)
            gradW.append(contentsOf: biasSums.map { sB * $0 })
        }
        return (needsInputCotangent ? dx : nil, gradW)
    }

    // MARK: Per-row pullback

    /// Per example `r` (rows `r·repeats ..< (r+1)·repeats`, stacked as an `(repeats·O) × (Ho·Wo)`
    /// matrix `U_r`): `X = im2col(x_r)` once and one GEMM `s_W U_r Xᵀ`, whose `O × (C·kh·kw)` block
    /// `c` is row `r·repeats + c`'s `∂W`; `∂b = s_b Σ_p u_i` per row. The input cotangent is
    /// `pullback`'s, row by row: `col2im(s_W Wᵀ U_i)`.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        let n = c.input.rows, R = repeats, m = cotangent.rows
        let O = outputChannels, K = patchSize, P = window.outputPositions, inCount = inputShape.count
        precondition(R >= 1 && m == n * R && cotangent.cols == O * P,
                     "conv2d pullbackRows: cotangent is \(m)×\(cotangent.cols), outputs are \(n)×\(O * P) repeated \(R) times")
        guard m > 0 else { return needsInputCotangent ? DenseMatrix(rows: 0, cols: inCount) : nil }
        var cols = [S](repeating: 0, count: K * P)
        var grads = [S](repeating: 0, count: R * O * K)
        let sW = S(weightScale), sB = S(biasScale)
        c.input.data.withUnsafeBufferPointer { xp in
            cotangent.data.withUnsafeBufferPointer { up in
                cols.withUnsafeMutableBufferPointer { cp in
                    grads.withUnsafeMutableBufferPointer { gp in
                        for r in 0..<n {
                            let u = up.baseAddress! + r * R * O * P
                            window.im2col(xp.baseAddress! + r * inCount, channels: inputChannels, into: cp.baseAddress!)
                            // ∂W of the R rows at once: (R·O) × K = s_W U_r Xᵀ.
                            S.gemm(transposeA: false, transposeB: true, m: R * O, n: K, k: P, alpha: sW,
                                   a: u, lda: P, b: cp.baseAddress!, ldb: P, beta: 0, c: gp.baseAddress!, ldc: K)
                            for k in 0..<R {
                                let row = parameterRows.row(r * R + k)
                                row.update(from: gp.baseAddress! + k * O * K, count: O * K)
                                guard hasBias else { continue }
                                for o in 0..<O {
                                    var sum: S = 0
                                    let uo = u + (k * O + o) * P
                                    for p in 0..<P { sum += uo[p] }
                                    row[O * K + o] = sB * sum
                                }
                            }
                        }
                    }
                }
            }
        }
        guard needsInputCotangent else { return nil }
        return inputCotangent(cotangent, weight: c.weight)
    }

    /// `col2im(s_W Wᵀ U_i)` for every row `i` of `cotangent` (`∂x` of each row; no cache needed).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func inputCotangent<S: BLASScalar>(_ cotangent: DenseMatrix<S>, weight: [S]) -> DenseMatrix<S> {
        let m = cotangent.rows, O = outputChannels, K = patchSize, P = window.outputPositions, inCount = inputShape.count
        var dx = DenseMatrix<S>(rows: m, cols: inCount)
        guard m > 0 else { return dx }
        var dcols = [S](repeating: 0, count: K * P)
        let sW = S(weightScale)
        cotangent.data.withUnsafeBufferPointer { up in
            weight.withUnsafeBufferPointer { wp in
                dcols.withUnsafeMutableBufferPointer { dp in
                    dx.data.withUnsafeMutableBufferPointer { xq in
                        for i in 0..<m {
                            S.gemm(transposeA: true, transposeB: false, m: K, n: P, k: O, alpha: sW,
                                   a: wp.baseAddress!, lda: K, b: up.baseAddress! + i * O * P, ldb: P, beta: 0, c: dp.baseAddress!, ldc: P)
                            window.col2im(UnsafePointer(dp.baseAddress!), channels: inputChannels, into: xq.baseAddress! + i * inCount)
                        }
                    }
                }
            }
        }
        return dx
    }

    // MARK: Tangent

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent v: [S], cache: LayerCache) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache<S>.self)
        precondition(v.count == parameterCount, "conv2d jvp: parameter tangent has \(v.count) scalars, the layer has \(parameterCount)")
        let weightCount = outputChannels * patchSize
        // Ẇ X + s_b ḃ, then W im2col(ẋ): the convolution is bilinear in (W, x).
        var out = convolve(c.input, weight: Array(v[0..<weightCount]), bias: hasBias ? Array(v[weightCount...]) : nil)
        if let dx = inputTangent {
            precondition(dx.rows == c.input.rows && dx.cols == c.input.cols, "conv2d jvp: input tangent is \(dx.rows)×\(dx.cols), inputs are \(c.input.rows)×\(c.input.cols)")
            out = out + convolve(dx, weight: c.weight, bias: nil)
        }
        return out
    }
}

// MARK: - JSON

extension Conv2D {
    /// `{"kind": "conv2d", "out": 8, "kernel": 3, "stride": 1, "padding": "same", "bias": true,
    /// "parameterization": "ntk", "sigmaW": 1.0, "sigmaB": 0.1}`: `out` (output channels) and
    /// `kernel` required; `kernel` and `stride` are one integer or `[height, width]`; `padding` is
    /// `"valid"` (default), `"same"`, an integer or `[height, width]`; `stride` defaults to 1, `bias`
    /// to true, the rest to `LayerDefaults`. The input must be an image `[C, H, W]`.
    public struct Specification: LayerSpecification {
        public static let kinds = ["conv2d"]
        public var outputChannels: Int
        public var kernel: (height: Int, width: Int)
        public var stride: (height: Int, width: Int)
        public var padding: Padding2D
        public var bias: Bool
        public var parameterization: Parameterization?
        public var sigmaW: Double?
        public var sigmaB: Double?

        public init(outputChannels: Int, kernel: (height: Int, width: Int), stride: (height: Int, width: Int) = (1, 1),
                    padding: Padding2D = .valid, bias: Bool = true, parameterization: Parameterization? = nil,
                    sigmaW: Double? = nil, sigmaB: Double? = nil) {
            self.outputChannels = outputChannels
            self.kernel = kernel
            self.stride = stride
            self.padding = padding
            self.bias = bias
            self.parameterization = parameterization
            self.sigmaW = sigmaW
            self.sigmaB = sigmaB
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case kind, outputChannels = "out", kernel, stride, padding, bias, parameterization, sigmaW, sigmaB
        }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            outputChannels = try c.decodeInteger(Int.self, forKey: .outputChannels, in: 1...ConfigLimits.maxWidth)
            kernel = try c.decodePair(forKey: .kernel, in: 1...ConfigLimits.maxWidth)
            stride = c.contains(.stride) ? try c.decodePair(forKey: .stride, in: 1...ConfigLimits.maxWidth) : (1, 1)
            padding = c.contains(.padding) ? try c.decodePadding(forKey: .padding) : .valid
            bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? true
            parameterization = try c.decodeChoiceIfPresent(Parameterization.self, forKey: .parameterization)
            sigmaW = try c.decodeNumberIfPresent(forKey: .sigmaW)
            sigmaB = try c.decodeNumberIfPresent(forKey: .sigmaB)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("conv2d", forKey: .kind)
            try c.encode(outputChannels, forKey: .outputChannels)
            try c.encodePair(kernel, forKey: .kernel)
            try c.encodePair(stride, forKey: .stride)
            try c.encodePadding(padding, forKey: .padding)
            try c.encode(bias, forKey: .bias)
            try c.encodeIfPresent(parameterization, forKey: .parameterization)
            try c.encodeIfPresent(sigmaW, forKey: .sigmaW)
            try c.encodeIfPresent(sigmaB, forKey: .sigmaB)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
            try Conv2D(inputShape: input, outputChannels: outputChannels, kernel: kernel, stride: stride, padding: padding,
                       bias: bias, parameterization: parameterization ?? defaults.parameterization,
                       sigmaW: sigmaW ?? defaults.sigmaW, sigmaB: sigmaB ?? defaults.sigmaB)
        }
    }
}

extension Conv2D: EventSweepLayer {
    /// Output `(o, oy, ox)` reads its window of every input channel c (any stride and padding:
    /// padding entries are left out), `W[o, c, i, j]` at `((o·C + c)·kh + i)·kw + j`; bias `o`
    /// after the weights.
    public var sweepStage: SweepStage? {
        let g = window, C = inputChannels, K = g.kernelPositions, positions = g.outputPositions
        let weights = outputChannels * C * K
        let bias = (0..<(outputChannels * positions)).map { hasBias ? Int32(weights + $0 / positions) : -1 }
        return .bilinear(SweepConnections(inputs: inputShape.count, outputs: outputShape.count, weightScale: weightScale,
                                          biasScale: biasScale, bias: bias, convolution: (g, C, outputChannels)) { out in
            let o = out / positions, p = out % positions
            var list: [(input: Int, weight: Int)] = []
            for c in 0..<C {
                for e in g.sweepWindow(channel: c, p / g.outputWidth, p % g.outputWidth) {
                    list.append((e.input, (o * C + c) * K + e.position))
                }
            }
            return list
        })
    }
}
