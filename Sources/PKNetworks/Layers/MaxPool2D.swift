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
    /// No parameters: a selection on each piece keeps the degree.
    public var segmentDegree: Int? { 0 }

    /// The input columns of every output's window (padding skipped), outputs and positions in
    /// the forward pass's order (so ties go to the first, as there).
    var windowEntries: [[Int]] {
        let g = window
        var out: [[Int]] = []
        for c in 0..<channels {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    var entries: [Int] = []
                    for i in 0..<g.kernelHeight {
                        let yy = oy * g.strideHeight - g.padTop + i
                        guard yy >= 0 && yy < g.inputHeight else { continue }
                        for j in 0..<g.kernelWidth {
                            let xx = ox * g.strideWidth - g.padLeft + j
                            guard xx >= 0 && xx < g.inputWidth else { continue }
                            entries.append(c * g.inputPositions + yy * g.inputWidth + xx)
                        }
                    }
                    out.append(entries)
                }
            }
        }
        return out
    }

    /// Crossings of one window closer than this (in t) count as one: where several entries cross
    /// at the same t (in exact arithmetic), their computed roots differ by ulps, and the arg-max
    /// between them is rounding noise. Costs at most a piece this short with its neighbour's pattern.
    static let coincident = 16 * Double.ulpOfOne

    /// The switching functions of a window are the pairwise differences of its entries (linear
    /// in the input): the arg-max can change only where one changes sign. Per row and window,
    /// after a screen that drops the entries provably below another on the whole piece (a window
    /// left with one entry cuts nothing and keeps it as its arg-max there), every crossing of the
    /// remaining entries inside the piece is found (`SegmentPieces.signChanges`), the arg-max
    /// read at the midpoint of each interval between them, and only the crossings where it
    /// changes cut the row (a crossing of two entries below the maximum is dropped; crossings
    /// within `coincident` of each other count as one). On every
    /// new piece each output is the coefficients of its arg-max at the piece's midpoint.
    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        pooledSegmentPieces(input, rectifier: nil)
    }

    /// This pool applied to `φ(input)`, φ a relu (`slope` 0) or a leaky relu of slope α =
    /// `slope` ≥ 0 for negative inputs (`ActivationLayer.poolFusionSlope`), as one layer: what
    /// `Sequential` runs for such an activation directly followed by this pool. φ is
    /// nondecreasing, so `max_i φ(z_i) = φ(max_i z_i)`: each window's output is `φ(z_a)` with `a`
    /// the first arg-max of the relu's inputs `z`, and its derivative routes the cotangent to
    /// `a` alone, times `φ'(z_a)` (1 if `z_a > 0`, else α). So the Jacobian of the pair changes
    /// only where a window's *fused pattern* changes: for a relu, the arg-max of `z` while the
    /// maximum is positive, or the maximum crossing 0 (below 0 every entry's output is 0 and its
    /// derivative 0, whichever is the arg-max); for a leaky relu with α > 0, the arg-max of `z`
    /// anywhere, or the maximum crossing 0. A sign change of a unit that is not its window's
    /// maximum, and (relu) a switch between two negative entries, changes neither the output
    /// nor the Jacobian: a *silent* breakpoint of the two layers taken apart, not cut here.
    ///
    /// The search is the pool's own on `z` (the screen, the pairwise crossings, the state read
    /// at the midpoint of each interval between them, a cut only where it changes), with the
    /// candidates' sign changes added to the crossings, the state being (arg-max, whether the
    /// maximum is positive). Relu: entries that are provably negative on the piece are dropped
    /// (never the positive maximum; none left: the window is 0 on the whole piece), and a window
    /// whose maximum is provably positive needs no sign changes. On every new piece each output
    /// is `φ'(z_a)` times the coefficients of its arg-max (relu below 0: zero).
    func rectifiedSegmentPieces(_ input: SegmentPieces, slope: Double) -> SegmentPieces {
        precondition(slope >= 0, "maxpool2d: fusing with an activation needs a nondecreasing one (slope \(slope))")
        return pooledSegmentPieces(input, rectifier: slope)
    }

    /// The search of `segmentPieces` (`rectifier` nil) or `rectifiedSegmentPieces` (the slope α).
    /// A window's state: its arg-max entry (a column ≥ 0) when there is no rectifier or the
    /// maximum is positive; below, `zero` (relu) or `−3 − a` (leaky relu, arg-max a); `unknown`
    /// in `dominant` when the screen proved nothing.
    private func pooledSegmentPieces(_ input: SegmentPieces, rectifier alpha: Double?) -> SegmentPieces {
        let windows = windowEntries, d = input.degree
        let unknown = -1, zero = -2
        /// The window's state at t: the first entry with the largest value (the forward pass's
        /// tie rule) and, under a rectifier, whether that value is positive.
        func state(_ r: Int, _ entries: [Int], at t: Double) -> Int {
            var best = entries[0], top = input.value(r, entries[0], at: t)
            for e in entries.dropFirst() {
                let y = input.value(r, e, at: t)
                if y > top { best = e; top = y }
            }
            guard let alpha, !(top > 0) else { return best }
            return alpha == 0 ? zero : -3 - best
        }
        var cuts = [[Double]](repeating: [], count: input.rows)
        var c = [Double](repeating: 0, count: d + 1)
        // Per row and window: the state on the whole row's piece when the screen below proves it
        // (`unknown`: not proven), so that its new pieces need not read it again.
        var dominant = [Int](repeating: unknown, count: input.rows * windows.count)
        var upper = [Double](), lower = [Double](), candidates = [Int]()
        for r in 0..<input.rows {
            let (lo, hi) = (input.lo[r], input.hi[r])
            var rowCuts: [Double] = []
            for (o, entries) in windows.enumerated() where entries.count > 1 || alpha != nil {
                // Screen: on [lo, hi] ⊆ [0, 1] each entry's polynomial p stays within
                // p(lo) ± ((hi − lo)·Σ_k k|c_k| + 8ε·Σ_k |c_k|) (the mean value theorem, |p'| ≤ Σ_k k|c_k|
                // there, and a margin for the rounding of p(lo)). An entry whose upper bound is below
                // the largest lower bound is never the arg-max (nor tied with it): only crossings
                // among the others can move the arg-max. One candidate left: it is the arg-max
                // throughout, and the window cuts nothing (under a rectifier, unless its sign may change).
                upper.removeAll(keepingCapacity: true)
                lower.removeAll(keepingCapacity: true)
                candidates.removeAll(keepingCapacity: true)
                var best = -Double.infinity
                for e in entries {
                    var value = 0.0, slope = 0.0, size = 0.0
                    for k in stride(from: d, through: 0, by: -1) {
                        let ck = input.coefficients[k][r, e]
                        value = value * lo + ck
                        slope += Double(k) * abs(ck)
                        size += abs(ck)
                    }
                    let reach = (hi - lo) * slope + 8 * Double.ulpOfOne * size
                    upper.append(value + reach)
                    lower.append(value - reach)
                    best = max(best, value - reach)
                }
                // Under a relu an entry that stays below 0 is never the positive maximum.
                for i in entries.indices where upper[i] >= best && !(alpha == 0 && upper[i] < 0) { candidates.append(i) }
                var crossings: [Double] = []
                if let alpha {
                    // The maximum is positive on the whole piece (some entry's lower bound is):
                    // only arg-max switches matter. Otherwise each candidate that may change sign
                    // there adds its sign changes.
                    if candidates.isEmpty {   // relu, every entry negative throughout (or NaN coefficients)
                        dominant[r * windows.count + o] = zero
                        continue
                    }
                    if candidates.count == 1 {
                        let i = candidates[0]
                        if best > 0 { dominant[r * windows.count + o] = entries[i]; continue }
                        if upper[i] < 0 { dominant[r * windows.count + o] = alpha == 0 ? zero : -3 - entries[i]; continue }
                    }
                    if !(best > 0) {
                        for i in candidates where lower[i] <= 0 && upper[i] >= 0 {
                            for k in 0...d { c[k] = input.coefficients[k][r, entries[i]] }
                            crossings += SegmentPieces.signChanges(c, in: lo, hi)
                        }
                    }
                } else if candidates.count <= 1 {   // (none only with NaN coefficients: nothing to cut)
                    if let only = candidates.first { dominant[r * windows.count + o] = entries[only] }
                    continue
                }
                if candidates.count > 1 {
                    for a in 0..<(candidates.count - 1) {
                        for b in (a + 1)..<candidates.count {
                            let (ea, eb) = (entries[candidates[a]], entries[candidates[b]])
                            for k in 0...d { c[k] = input.coefficients[k][r, ea] - input.coefficients[k][r, eb] }
                            crossings += SegmentPieces.signChanges(c, in: lo, hi)
                        }
                    }
                }
                guard !crossings.isEmpty else { continue }
                crossings.sort()
                var ends = [lo]
                for t in crossings where t > ends[ends.count - 1] + Self.coincident { ends.append(t) }
                ends.append(hi)
                var previous = state(r, entries, at: 0.5 * (ends[0] + ends[1]))
                for i in 1..<(ends.count - 1) {
                    let next = state(r, entries, at: 0.5 * (ends[i] + ends[i + 1]))
                    if next != previous { rowCuts.append(ends[i]) }
                    previous = next
                }
            }
            cuts[r] = rowCuts.sorted()
        }
        let s = input.split(cuts)
        var out = [Matrix](repeating: Matrix(rows: s.example.count, cols: windows.count), count: d + 1)
        for i in s.example.indices {
            let p = s.parent[i]
            for (o, entries) in windows.enumerated() {
                let known = dominant[p * windows.count + o]
                let a = known != unknown ? known : state(p, entries, at: s.midpoint[i])
                if a >= 0 {
                    for k in 0...d { out[k][i, o] = input.coefficients[k][p, a] }
                } else if a != zero, let alpha {
                    for k in 0...d { out[k][i, o] = alpha * input.coefficients[k][p, -3 - a] }
                }
            }
        }
        return SegmentPieces(example: s.example, lo: s.lo, hi: s.hi, coefficients: out, fusesRectifiedPools: input.fusesRectifiedPools)
    }

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

extension MaxPool2D: EventSweepLayer {
    /// The windows of `windowEntries` (forward order, padding left out: ties go to the first).
    public var sweepStage: SweepStage? { .maxPool(windows: windowEntries) }
}
