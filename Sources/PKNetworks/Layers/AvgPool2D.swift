import PKNumerics

/// Average pooling on NCHW images, PyTorch's `nn.AvgPool2d` (with `count_include_pad=True`,
/// `ceil_mode=False`, its defaults).
///
/// Shapes: input `[C, H, W]`, output `[C, Ho, Wo]` (`Window2D`); no parameters. Each channel
/// separately:
///
///     y[c, oy, ox] = (1/(kh·kw)) Σ_{i<kh, j<kw} x[c, oy·sh − padTop + i, ox·sw − padLeft + j]
///
/// with padding entries counted as 0 (so the divisor is always `kh·kw`). The stride defaults to
/// the kernel (PyTorch's default). Padding: `valid` (PyTorch's default), `same`, or explicit up
/// to half the kernel (PyTorch's limit). Linear in `x`: the tangent is the layer applied to `ẋ`,
/// the pullback spreads `u/(kh·kw)` over each window (source: PyTorch, "AvgPool2d",
/// https://pytorch.org/docs/stable/generated/torch.nn.AvgPool2d.html).
public struct AvgPool2D: Layer {
    public let channels: Int
    public let padding: Padding2D
    public let window: Window2D

    public init(inputShape: TensorShape, kernel: (height: Int, width: Int), stride: (height: Int, width: Int)? = nil,
                padding: Padding2D = .valid) throws {
        (channels, window) = try Window2D.pool(inputShape, kernel: kernel, stride: stride, padding: padding, layer: Self.kind)
        self.padding = padding
    }

    public var isPiecewiseLinear: Bool { false }
    /// Linear, no parameters: the degree is kept and the coefficients pooled (`linearSegmentPieces`).
    public var segmentDegree: Int? { 0 }

    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        linearSegmentPieces(input)
    }

    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        return (pool(x), .empty)
    }

    /// The pooled batch (`n × C·Ho·Wo`).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func pool<S: BLASScalar>(_ x: DenseMatrix<S>) -> DenseMatrix<S> {
        let g = window, n = x.rows, inCount = inputShape.count, outCount = outputShape.count
        var y = DenseMatrix<S>(rows: n, cols: outCount)
        let divisor = S(g.kernelPositions)
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                for r in 0..<n {
                    for c in 0..<channels {
                        let src = r * inCount + c * g.inputPositions
                        let dst = r * outCount + c * g.outputPositions
                        for oy in 0..<g.outputHeight {
                            for ox in 0..<g.outputWidth {
                                var sum: S = 0
                                for i in 0..<g.kernelHeight {
                                    let yy = oy * g.strideHeight - g.padTop + i
                                    guard yy >= 0 && yy < g.inputHeight else { continue }
                                    for j in 0..<g.kernelWidth {
                                        let xx = ox * g.strideWidth - g.padLeft + j
                                        if xx >= 0 && xx < g.inputWidth { sum += xp[src + yy * g.inputWidth + xx] }
                                    }
                                }
                                yp[dst + oy * g.outputWidth + ox] = sum / divisor
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        guard needsInputCotangent else { return (nil, []) }
        let g = window, n = cotangent.rows, inCount = inputShape.count, outCount = outputShape.count
        precondition(cotangent.cols == outCount, "avgpool2d pullback: cotangent has \(cotangent.cols) columns, outputs have \(outCount)")
        var dx = DenseMatrix<S>(rows: n, cols: inCount)
        let divisor = S(g.kernelPositions)
        cotangent.data.withUnsafeBufferPointer { up in
            dx.data.withUnsafeMutableBufferPointer { dp in
                for r in 0..<n {
                    for c in 0..<channels {
                        let dst = r * inCount + c * g.inputPositions
                        let src = r * outCount + c * g.outputPositions
                        for oy in 0..<g.outputHeight {
                            for ox in 0..<g.outputWidth {
                                let share = up[src + oy * g.outputWidth + ox] / divisor
                                for i in 0..<g.kernelHeight {
                                    let yy = oy * g.strideHeight - g.padTop + i
                                    guard yy >= 0 && yy < g.inputHeight else { continue }
                                    for j in 0..<g.kernelWidth {
                                        let xx = ox * g.strideWidth - g.padLeft + j
                                        if xx >= 0 && xx < g.inputWidth { dp[dst + yy * g.inputWidth + xx] += share }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, [])
    }

    /// The pullback itself, which keeps no cache and treats rows alike: linear, no parameters.
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        pullback(cotangent, cache: cache, needsInputCotangent: needsInputCotangent).input
    }

    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        inputTangent.map { pool($0) }
    }
}

// MARK: - JSON

extension AvgPool2D: Pool2DLayer {
    public static let kind = "avgpool2d"
    /// `{"kind": "avgpool2d", "kernel": 2, "stride": 2, "padding": "valid"}` (see `Pool2DSpecification`).
    public typealias Specification = Pool2DSpecification<AvgPool2D>
}

extension AvgPool2D: EventSweepLayer {
    /// Each output averages its window's entries over `kh·kw` (padding counts as 0).
    public var sweepStage: SweepStage? {
        let g = window, positions = g.outputPositions, scale = 1 / Double(g.kernelPositions)
        return .linear(SweepLinearMap(inputs: inputShape.count, outputs: outputShape.count) { out in
            let c = out / positions, p = out % positions
            return g.sweepWindow(channel: c, p / g.outputWidth, p % g.outputWidth).map { (input: $0.input, value: scale) }
        })
    }
}
