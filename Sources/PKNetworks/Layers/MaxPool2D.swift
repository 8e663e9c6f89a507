import PKNumerics

/// Max pooling on NCHW images, PyTorch's `nn.MaxPool2d` (dilation 1, `ceil_mode=False`).
///
/// Shapes: input `[C, H, W]`, output `[C, Ho, Wo]` (`Window2D`); no parameters. Each channel
/// separately, `y[c, oy, ox] = x[c, a(c, oy, ox)]` where `a` is the arg-max of the window
/// (padding positions are never chosen: PyTorch pads with −∞). **Ties go to the first position
/// in the window in row-major order** (smallest `i`, then smallest `j`), so the arg-max, and hence
/// the derivative, is a deterministic function of `x`.
///
/// Piecewise linear: on each region where the arg-max is fixed the layer is a selection, so the
/// pullback routes `u` to the arg-max (`∂x[a] += u`) and the tangent reads `ẋ[a]`. Where two
/// window entries tie the derivative is the one-sided one the tie rule picks (an element of
/// the Clarke subdifferential; finite differences are not an oracle there). The stride defaults
/// to the kernel (PyTorch's default). Source: PyTorch, "MaxPool2d",
/// https://pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html.
public struct MaxPool2D: Layer {
    public let channels: Int
    public let padding: Padding2D
    public let window: Window2D

    public init(inputShape: TensorShape, kernel: (height: Int, width: Int), stride: (height: Int, width: Int)? = nil,
                padding: Padding2D = .valid) throws {
        (channels, window) = try Window2D.pool(inputShape, kernel: kernel, stride: stride, padding: padding, layer: Self.kind)
        self.padding = padding
    }

    public var isPiecewiseLinear: Bool { true }

    /// For every output entry (`n × C·Ho·Wo`, row-major), the column of its arg-max in its input row.
    struct Cache: Sendable {
        let rows: Int
        let argmax: [Int]
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        let g = window, n = x.rows, inCount = inputShape.count, outCount = outputShape.count
        var y = DenseMatrix<S>(rows: n, cols: outCount)
        var argmax = [Int](repeating: 0, count: n * outCount)
        x.data.withUnsafeBufferPointer { xp in
            for r in 0..<n {
                for c in 0..<channels {
                    let plane = c * g.inputPositions
                    for oy in 0..<g.outputHeight {
                        for ox in 0..<g.outputWidth {
                            var best = -1
                            for i in 0..<g.kernelHeight {
                                let yy = oy * g.strideHeight - g.padTop + i
                                guard yy >= 0 && yy < g.inputHeight else { continue }
                                for j in 0..<g.kernelWidth {
                                    let xx = ox * g.strideWidth - g.padLeft + j
                                    guard xx >= 0 && xx < g.inputWidth else { continue }
                                    let k = plane + yy * g.inputWidth + xx
                                    if best < 0 || xp[r * inCount + k] > xp[r * inCount + best] { best = k }
                                }
                            }
                            let o = r * outCount + c * g.outputPositions + oy * g.outputWidth + ox
                            argmax[o] = best
                            y.data[o] = xp[r * inCount + best]
                        }
                    }
                }
            }
        }
        return (y, LayerCache(Cache(rows: n, argmax: argmax)))
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        guard needsInputCotangent else { return (nil, []) }
        let c = cache.contents(as: Cache.self)
        let inCount = inputShape.count, outCount = outputShape.count
        precondition(cotangent.rows == c.rows && cotangent.cols == outCount, "maxpool2d pullback: cotangent is \(cotangent.rows)×\(cotangent.cols), outputs are \(c.rows)×\(outCount)")
        var dx = DenseMatrix<S>(rows: c.rows, cols: inCount)
        for r in 0..<c.rows {
            for o in 0..<outCount { dx.data[r * inCount + c.argmax[r * outCount + o]] += cotangent.data[r * outCount + o] }
        }
        return (dx, [])
    }

    /// Row `i`: `u_i` routed to the arg-max of example `i / repeats`; no parameters.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        guard needsInputCotangent else { return nil }
        let c = cache.contents(as: Cache.self)
        let m = cotangent.rows, inCount = inputShape.count, outCount = outputShape.count
        precondition(repeats >= 1 && m == c.rows * repeats && cotangent.cols == outCount,
                     "maxpool2d pullbackRows: cotangent is \(m)×\(cotangent.cols), outputs are \(c.rows)×\(outCount) repeated \(repeats) times")
        var dx = DenseMatrix<S>(rows: m, cols: inCount)
        for i in 0..<m {
            let r = i / repeats
            for o in 0..<outCount { dx.data[i * inCount + c.argmax[r * outCount + o]] += cotangent.data[i * outCount + o] }
        }
        return dx
    }

    /// The arg-max of every window of every example (ties to the first position).
    public func kinkPattern(_ x: Matrix, parameters w: [Double], into pattern: inout [Double]) -> Matrix {
        let (y, cache) = forward(x, parameters: w)
        pattern.append(contentsOf: cache.contents(as: Cache.self).argmax.map(Double.init))
        return y
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        guard let dx = inputTangent else { return nil }
        let c = cache.contents(as: Cache.self)
        let inCount = inputShape.count, outCount = outputShape.count
        var dy = DenseMatrix<S>(rows: c.rows, cols: outCount)
        for r in 0..<c.rows {
            for o in 0..<outCount { dy.data[r * outCount + o] = dx.data[r * inCount + c.argmax[r * outCount + o]] }
        }
        return dy
    }
}

// MARK: - JSON

extension MaxPool2D: Pool2DLayer {
    public static let kind = "maxpool2d"
    /// `{"kind": "maxpool2d", "kernel": 2, "stride": 2, "padding": "valid"}` (see `Pool2DSpecification`).
    public typealias Specification = Pool2DSpecification<MaxPool2D>
}
