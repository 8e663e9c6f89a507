import Testing
import PKNetworks
import PKNumerics

/// Forward passes against the simplest implementations: a direct convolution loop, pooling
/// loops, LayerNorm's formula, dense loops; output sizes against PyTorch's formulas; and the
/// refusals of impossible layers.
@Suite("Layer forward passes against direct loops and formulas")
struct LayerForwardTests {
    /// `x[r]` read as `[C, H, W]` at `(c, y, x)`, 0 outside the map.
    static func pixel(_ x: Matrix, _ r: Int, _ shape: TensorShape, _ c: Int, _ y: Int, _ xx: Int) -> Double? {
        let (_, H, W) = shape.image!
        guard y >= 0, y < H, xx >= 0, xx < W else { return nil }
        return x[r, (c * H + y) * W + xx]
    }

    /// `(top, left)` padding, from the definitions (`same`: TensorFlow's split of
    /// `max((⌈n/s⌉ − 1)·s + k − n, 0)` with the smaller half first).
    static func pads(_ padding: Padding2D, _ n: (Int, Int), _ k: (Int, Int), _ s: (Int, Int)) -> (Int, Int) {
        switch padding {
        case .valid: return (0, 0)
        case .explicit(let h, let w): return (h, w)
        case .same:
            func half(_ n: Int, _ k: Int, _ s: Int) -> Int { max(((n + s - 1) / s - 1) * s + k - n, 0) / 2 }
            return (half(n.0, k.0, s.0), half(n.1, k.1, s.1))
        }
    }

    /// The convolution written out: `z[o, oy, ox] = s_W Σ W[o, c, i, j] x[c, oy·sh − pt + i, ox·sw − pl + j] + s_b b[o]`.
    static func directConvolution(_ conv: Conv2D, _ w: [Double], _ x: Matrix) -> Matrix {
        let (C, H, W) = conv.inputShape.image!
        let (O, Ho, Wo) = conv.outputShape.image!
        let kh = conv.window.kernelHeight, kw = conv.window.kernelWidth, sh = conv.window.strideHeight, sw = conv.window.strideWidth
        let (pt, pl) = pads(conv.padding, (H, W), (kh, kw), (sh, sw))
        var z = Matrix(rows: x.rows, cols: O * Ho * Wo)
        for r in 0..<x.rows {
            for o in 0..<O {
                for oy in 0..<Ho {
                    for ox in 0..<Wo {
                        var s = 0.0
                        for c in 0..<C {
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    if let v = pixel(x, r, conv.inputShape, c, oy * sh - pt + i, ox * sw - pl + j) {
                                        s += w[((o * C + c) * kh + i) * kw + j] * v
                                    }
                                }
                            }
                        }
                        let bias = conv.hasBias ? conv.biasScale * w[O * C * kh * kw + o] : 0
                        z[r, (o * Ho + oy) * Wo + ox] = conv.weightScale * s + bias
                    }
                }
            }
        }
        return z
    }

    static let convolutions: [Conv2D] = [
        try! Conv2D(inputShape: [2, 5, 6], outputChannels: 3, kernel: (3, 3), sigmaW: 1.2, sigmaB: 0.3),
        try! Conv2D(inputShape: [2, 6, 5], outputChannels: 3, kernel: (3, 2), stride: (2, 2), padding: .same, bias: false, parameterization: .standard),
        try! Conv2D(inputShape: [1, 5, 4], outputChannels: 2, kernel: (2, 3), stride: (2, 1), padding: .explicit(height: 1, width: 2)),
        try! Conv2D(inputShape: [3, 5, 5], outputChannels: 2, kernel: (4, 4), padding: .same),
        try! Conv2D(inputShape: [3, 2, 3], outputChannels: 4, kernel: (1, 1), parameterization: .standard),
    ]

    @Test(arguments: 0..<LayerForwardTests.convolutions.count)
    func convolutionMatchesTheDirectLoop(_ i: Int) {
        let conv = Self.convolutions[i]
        let w = randomVector(conv.parameterCount, seed: 30 + UInt64(i))
        let x = randomMatrix(rows: 3, cols: conv.inputShape.count, seed: 40 + UInt64(i))
        let z = conv.apply(x, parameters: w)
        #expect(relativeError(z.data, Self.directConvolution(conv, w, x).data) < Tolerance.roundOff, "case \(i)")
    }

    /// Output sizes and paddings from PyTorch's formula `⌊(H + 2p − k)/s⌋ + 1` and its `'same'`
    /// split (stride 1: `k − 1` in all, `⌊(k − 1)/2⌋` first), and TensorFlow's `⌈H/s⌉` for strided `same`.
    @Test func outputSizesFollowPyTorchAndTensorFlow() throws {
        func conv(_ h: Int, _ k: Int, _ s: Int, _ p: Padding2D) throws -> Conv2D {
            try Conv2D(inputShape: [1, h, h], outputChannels: 1, kernel: (k, k), stride: (s, s), padding: p)
        }
        #expect(try conv(28, 3, 1, .valid).outputShape == [1, 26, 26])
        #expect(try conv(28, 3, 1, .same).outputShape == [1, 28, 28])
        #expect(try conv(28, 3, 2, .explicit(height: 1, width: 1)).outputShape == [1, 14, 14])
        #expect(try conv(28, 5, 2, .same).outputShape == [1, 14, 14])
        #expect(try conv(7, 3, 2, .same).outputShape == [1, 4, 4])
        let even = try conv(5, 4, 1, .same).window
        #expect(even.padTop == 1 && even.padBottom == 2 && even.padLeft == 1 && even.padRight == 2)
        #expect(try conv(5, 1, 1, .valid).outputShape == [1, 5, 5])
        let pool = try MaxPool2D(inputShape: [3, 7, 6], kernel: (2, 2))
        #expect(pool.outputShape == [3, 3, 3])   // stride defaults to the kernel, floor mode
        #expect(try conv(5, 3, 1, .same).parameters.map(\.shape) == [[1, 1, 3, 3], [1]])
    }

    /// `(kind, layer)`; kind `avg` divides by `kh·kw` counting padding as 0, `max` skips padding.
    static let pools: [(String, any Layer)] = [
        ("avg", try! AvgPool2D(inputShape: [2, 4, 6], kernel: (2, 2))),
        ("avg", try! AvgPool2D(inputShape: [2, 5, 5], kernel: (3, 3), stride: (2, 2), padding: .same)),
        ("avg", try! AvgPool2D(inputShape: [1, 4, 4], kernel: (3, 2), stride: (1, 1), padding: .explicit(height: 1, width: 1))),
        ("max", try! MaxPool2D(inputShape: [2, 4, 4], kernel: (2, 2))),
        ("max", try! MaxPool2D(inputShape: [1, 5, 6], kernel: (3, 2), stride: (2, 1), padding: .same)),
        ("max", try! MaxPool2D(inputShape: [2, 5, 5], kernel: (3, 3), stride: (2, 2), padding: .explicit(height: 1, width: 1))),
    ]

    @Test(arguments: 0..<LayerForwardTests.pools.count)
    func poolingMatchesTheDirectLoop(_ k: Int) {
        let (kind, layer) = Self.pools[k]
        let window = (layer as? AvgPool2D)?.window ?? (layer as! MaxPool2D).window
        let padding = (layer as? AvgPool2D)?.padding ?? (layer as! MaxPool2D).padding
        let (C, H, W) = layer.inputShape.image!
        let (_, Ho, Wo) = layer.outputShape.image!
        let kh = window.kernelHeight, kw = window.kernelWidth, sh = window.strideHeight, sw = window.strideWidth
        let (pt, pl) = Self.pads(padding, (H, W), (kh, kw), (sh, sw))
        let x = randomMatrix(rows: 2, cols: layer.inputShape.count, seed: 50 + UInt64(k))
        let y = layer.apply(x, parameters: [Double]())
        for r in 0..<x.rows {
            for c in 0..<C {
                for oy in 0..<Ho {
                    for ox in 0..<Wo {
                        var values: [Double] = []
                        for i in 0..<kh { for j in 0..<kw {
                            if let v = Self.pixel(x, r, layer.inputShape, c, oy * sh - pt + i, ox * sw - pl + j) { values.append(v) }
                        } }
                        let expected = kind == "avg" ? values.reduce(0, +) / Double(kh * kw) : values.max()!
                        #expect(isClose(y[r, (c * Ho + oy) * Wo + ox], expected, tolerance: Tolerance.roundOff), "pool \(k) at \(r),\(c),\(oy),\(ox)")
                    }
                }
            }
        }
    }

    /// Ties go to the first window position in row-major order.
    @Test func maxPoolingTiesGoToTheFirstPosition() throws {
        let pool = try MaxPool2D(inputShape: [1, 2, 2], kernel: (2, 2))
        let x = Matrix(rows: 1, cols: 4, data: [1, 5, 5, 2])
        let (y, cache) = pool.forward(x, parameters: [Double]())
        #expect(y.data == [5])
        let (dx, _) = pool.pullback(Matrix(rows: 1, cols: 1, data: [1]), cache: cache, needsInputCotangent: true)
        #expect(dx?.data == [0, 1, 0, 0])
    }

    @Test(arguments: [TensorShape([6]), [2, 3, 3]], [true, false])
    func layerNormMatchesItsFormula(_ shape: TensorShape, affine: Bool) throws {
        let norm = try LayerNorm(inputShape: shape, epsilon: 1e-3, affine: affine)
        let d = shape.count
        let w = randomVector(max(norm.parameterCount, 1), seed: 60).prefix(norm.parameterCount).map { $0 }
        let x = randomMatrix(rows: 3, cols: d, seed: 61, scale: 2)
        let y = norm.apply(x, parameters: w)
        for r in 0..<3 {
            let row = x.row(r)
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)   // biased, as PyTorch
            for k in 0..<d {
                var expected = (row[k] - mean) / (variance + 1e-3).squareRoot()
                if affine { expected = w[k] * expected + w[d + k] }
                #expect(isClose(y[r, k], expected, tolerance: Tolerance.roundOff))
            }
        }
    }

    /// PyTorch's `nn.LayerNorm(4)` at its initialization on `[1, 2, 3, 4]`: `(x − 2.5)/√(1.25 + 1e-5)`.
    @Test func layerNormDefaultsArePyTorchs() throws {
        let norm = try LayerNorm(inputShape: [4])
        #expect(norm.epsilon == 1e-5)
        let w = norm.initialParameters(seed: 0)
        #expect(w == [1, 1, 1, 1, 0, 0, 0, 0])
        let y = norm.apply(Matrix(rows: 1, cols: 4, data: [1, 2, 3, 4]), parameters: w)
        for (k, v) in [-1.5, -0.5, 0.5, 1.5].enumerated() {
            #expect(isClose(y[0, k], v / (1.25 + 1e-5).squareRoot(), tolerance: Tolerance.roundOff))
        }
    }

    @Test(arguments: Parameterization.allCases, [true, false])
    func denseMatchesLoops(_ p: Parameterization, bias: Bool) throws {
        let dense = try Dense(inputs: 3, outputs: 2, bias: bias, parameterization: p, sigmaW: 1.3, sigmaB: 0.7)
        let w = randomVector(dense.parameterCount, seed: 70)
        let x = randomMatrix(rows: 4, cols: 3, seed: 71)
        let sW = p == .ntk ? 1.3 / 3.0.squareRoot() : 1, sb = p == .ntk ? 0.7 : 1
        let z = dense.apply(x, parameters: w)
        for r in 0..<4 {
            for i in 0..<2 {
                var expected = bias ? sb * w[6 + i] : 0
                for j in 0..<3 { expected += sW * w[3 * i + j] * x[r, j] }
                #expect(isClose(z[r, i], expected, tolerance: Tolerance.roundOff))
            }
        }
    }

    @Test(arguments: Activation.allCases)
    func activationLayerAppliesTheActivation(_ a: Activation) throws {
        let layer = try ActivationLayer(a, shape: [2, 2, 2], leakySlope: 0.2)
        let x = randomMatrix(rows: 2, cols: 8, seed: 80)
        let y = layer.apply(x, parameters: [Double]())
        #expect(y.data.map(\.bitPattern) == x.data.map { a.value($0, leakySlope: 0.2).bitPattern })
        #expect(layer.isPiecewiseLinear == (a == .relu || a == .leakyRelu))
    }

    @Test func flattenAndGlobalAveragePool() throws {
        let x = randomMatrix(rows: 2, cols: 12, seed: 90)
        let flat = try Flatten(inputShape: [3, 2, 2])
        #expect(flat.outputShape == [12] && flat.apply(x, parameters: [Double]()) == x)
        let pool = try GlobalAvgPool(inputShape: [3, 2, 2])
        let y = pool.apply(x, parameters: [Double]())
        #expect(pool.outputShape == [3])
        for r in 0..<2 { for c in 0..<3 {
            #expect(isClose(y[r, c], (0..<4).map { x[r, 4 * c + $0] }.reduce(0, +) / 4, tolerance: Tolerance.roundOff))
        } }
    }

    /// `(what, the phrase the error must contain)`.
    static let refusals: [(@Sendable () throws -> any Layer, String)] = [
        ({ try Conv2D(inputShape: [10], outputChannels: 2, kernel: (3, 3)) }, "needs an image input"),
        ({ try Conv2D(inputShape: [1, 2, 2], outputChannels: 2, kernel: (3, 3)) }, "does not fit"),
        ({ try Conv2D(inputShape: [1, 4, 4], outputChannels: 2, kernel: (3, 3), stride: (0, 1)) }, "stride"),
        ({ try Conv2D(inputShape: [1, 4, 4], outputChannels: 0, kernel: (3, 3)) }, "out must be at least 1"),
        ({ try Conv2D(inputShape: [1, 4, 4], outputChannels: 1, kernel: (3, 3), sigmaW: 0) }, "sigmaW"),
        ({ try MaxPool2D(inputShape: [1, 4, 4], kernel: (2, 2), padding: .explicit(height: 2, width: 0)) }, "at most half"),
        ({ try AvgPool2D(inputShape: [4], kernel: (2, 2)) }, "needs an image input"),
        ({ try GlobalAvgPool(inputShape: [4]) }, "needs an image input"),
        ({ try Dense(inputs: 0, outputs: 2) }, "at least 1"),
        ({ try Dense(inputs: 2, outputs: 2, sigmaB: -1) }, "sigmaB"),
        ({ try LayerNorm(inputShape: [3], epsilon: 0) }, "eps"),
        ({ try Sequential([Dense(inputs: 2, outputs: 3), Dense(inputs: 4, outputs: 1)]) }, "layer 1 (Dense) takes [4], layer 0 (Dense) gives [3]"),
        ({ try Sequential([]) }, "at least one layer"),
        ({ try Sequential(children: [.init(name: "a", layer: Dense(inputs: 2, outputs: 2)), .init(name: "a", layer: Dense(inputs: 2, outputs: 2))]) }, "used twice"),
        ({ try Residual(block: Dense(inputs: 2, outputs: 3)) }, "identity shortcut needs equal shapes"),
        ({ try Residual(block: Dense(inputs: 2, outputs: 3), shortcut: Dense(inputs: 2, outputs: 2)) }, "must agree"),
    ]

    @Test(arguments: 0..<LayerForwardTests.refusals.count)
    func impossibleLayersAreRefused(_ i: Int) {
        let (make, phrase) = Self.refusals[i]
        do {
            let layer = try make()
            Issue.record("built \(layer)")
        } catch {
            #expect("\(error)".contains(phrase), "\(error)")
        }
    }
}
