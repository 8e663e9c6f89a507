import PKNumerics

/// A batch of examples along one straight segment of weights `w(t) = w + tΔw`, cut into pieces
/// on which every piecewise-linear layer met so far keeps its pattern (path-kernel math §1.1,
/// "Layer networks"): row r is example `example[r]` on `[lo[r], hi[r]] ⊆ [0, 1]`, where the
/// current activation is the polynomial `Σ_k coefficients[k][r, :] t^k` (exactly, up to the
/// rounding of the coefficients). `Layer.segmentPieces` carries it through a layer: linear
/// layers map the coefficients, layers with parameters raise the degree by one, piecewise-linear
/// layers cut the rows where a switching function changes sign.
///
/// Rows are in example order and, within an example, in increasing t, the pieces of one example
/// covering [0, 1] without overlap: a layer that cuts keeps that order, so the breakpoints of an
/// example are the `lo` of its rows after the first.
public struct SegmentPieces: Sendable {
    /// Per row: the example, and the ends of its piece.
    public var example: [Int], lo: [Double], hi: [Double]
    /// `coefficients[k]` (rows × width): the coefficient of `t^k`; at least one matrix.
    public var coefficients: [Matrix]
    /// Whether a `Sequential` carries a relu or leaky relu (slope ≥ 0) directly followed by a max
    /// pool as one layer, cutting only where the fused pattern changes (`MaxPool2D`'s
    /// `rectifiedSegmentPieces`: the silent sign changes of units that are not their window's
    /// maximum are no breakpoints), true by default; false: each layer on its own, every sign
    /// change of a pooled unit a breakpoint (the former search, kept as the reference the tests
    /// compare with). Every layer passes it on to its output.
    public var fusesRectifiedPools: Bool

    /// Every row of `x` on the whole segment, as a constant (degree 0).
    public init(examples x: Matrix, fusesRectifiedPools: Bool = true) {
        example = Array(0..<x.rows)
        lo = [Double](repeating: 0, count: x.rows)
        hi = [Double](repeating: 1, count: x.rows)
        coefficients = [x]
        self.fusesRectifiedPools = fusesRectifiedPools
    }

    public init(example: [Int], lo: [Double], hi: [Double], coefficients: [Matrix], fusesRectifiedPools: Bool) {
        precondition(example.count == lo.count && lo.count == hi.count && !coefficients.isEmpty
                     && coefficients.allSatisfy { $0.rows == example.count }, "segment pieces: inconsistent rows")
        self.example = example
        self.lo = lo
        self.hi = hi
        self.coefficients = coefficients
        self.fusesRectifiedPools = fusesRectifiedPools
    }

    public var rows: Int { example.count }
    public var width: Int { coefficients[0].cols }
    /// The polynomial degree carried (some leading coefficients may be zero).
    public var degree: Int { coefficients.count - 1 }

    /// The coefficients of entry (r, j), lowest degree first.
    public func polynomial(_ r: Int, _ j: Int) -> [Double] { coefficients.map { $0[r, j] } }

    /// Entry (r, j) at t (Horner).
    public func value(_ r: Int, _ j: Int, at t: Double) -> Double {
        var s = 0.0
        for k in stride(from: degree, through: 0, by: -1) { s = s * t + coefficients[k][r, j] }
        return s
    }

    /// The same polynomials on the same pieces, every coefficient matrix mapped by `f` (a linear
    /// map of the rows), stacked into one call: `f` sees `(degree + 1)·rows` rows.
    public func mapped(_ f: (Matrix) -> Matrix) -> SegmentPieces {
        let m = rows, d = degree
        let stacked = Matrix(rows: (d + 1) * m, cols: width, data: coefficients.flatMap(\.data))
        let y = f(stacked)
        precondition(y.rows == stacked.rows, "segment pieces: a linear map must keep the rows")
        let cols = y.cols
        let out = (0...d).map { k in Matrix(rows: m, cols: cols, data: Array(y.data[(k * m * cols)..<((k + 1) * m * cols)])) }
        return SegmentPieces(example: example, lo: lo, hi: hi, coefficients: out, fusesRectifiedPools: fusesRectifiedPools)
    }

    /// Cuts of one row closer than this (in t, on [0, 1]) count as one, and so do a cut and an
    /// end of its piece: where two switching functions (two units, two windows, two layers)
    /// change sign at the same t in exact arithmetic, their computed roots differ by ulps. Costs at most a piece this short with its neighbour's pattern.
    static let coincident = 16 * Double.ulpOfOne

    /// Each row split at its ascending cuts (those more than `coincident` inside its piece and
    /// after the previous cut; the others are dropped): the new rows' examples and
    /// ends, each one's row in `self` (`parent`) and its midpoint, where the caller reads the
    /// pattern of the layer that cut.
    func split(_ cuts: [[Double]]) -> (example: [Int], lo: [Double], hi: [Double], parent: [Int], midpoint: [Double]) {
        var ex: [Int] = [], l: [Double] = [], h: [Double] = [], parents: [Int] = [], mids: [Double] = []
        for r in 0..<rows {
            var ends = [lo[r]]
            for t in cuts[r] where t > ends[ends.count - 1] + Self.coincident && t < hi[r] - Self.coincident { ends.append(t) }
            ends.append(hi[r])
            for p in 0..<(ends.count - 1) {
                ex.append(example[r]); l.append(ends[p]); h.append(ends[p + 1])
                parents.append(r); mids.append(0.5 * (ends[p] + ends[p + 1]))
            }
        }
        return (ex, l, h, parents, mids)
    }

    /// These rows repeated onto the pieces of `finer`, whose every row lies inside one row of
    /// this (the same examples, cut further by the layers in between): what the other branch of a
    /// residual block needs.
    func refined(to finer: SegmentPieces) -> SegmentPieces {
        var parent: [Int] = []
        parent.reserveCapacity(finer.rows)
        var i = 0
        for j in 0..<finer.rows {
            while i < rows && !(example[i] == finer.example[j] && lo[i] <= finer.lo[j] && finer.hi[j] <= hi[i]) { i += 1 }
            precondition(i < rows, "segment pieces: a refined row lies in no piece")
            parent.append(i)
        }
        return SegmentPieces(example: finer.example, lo: finer.lo, hi: finer.hi,
                             coefficients: coefficients.map { $0.rows(at: parent) }, fusesRectifiedPools: finer.fusesRectifiedPools)
    }

    /// The sum of two sets of polynomials on the same pieces (degrees padded with zeros).
    static func + (a: SegmentPieces, b: SegmentPieces) -> SegmentPieces {
        precondition(a.example == b.example && a.lo == b.lo && a.hi == b.hi && a.width == b.width
                     && a.fusesRectifiedPools == b.fusesRectifiedPools, "segment pieces: adding different pieces")
        let d = max(a.degree, b.degree)
        let zero = Matrix(rows: a.rows, cols: a.width)
        let c = (0...d).map { k in (k <= a.degree ? a.coefficients[k] : zero) + (k <= b.degree ? b.coefficients[k] : zero) }
        return SegmentPieces(example: a.example, lo: a.lo, hi: a.hi, coefficients: c, fusesRectifiedPools: a.fusesRectifiedPools)
    }

    /// The points of (lo, hi) where the polynomial `c` changes sign (`Polynomial.signChanges`),
    /// after a screen that skips, for degree ≥ 3, a polynomial that cannot reach zero there:
    /// `|p(lo)| > (hi − lo)·Σ_k k|c_k| + 8ε·Σ_k |c_k|` bounds `|p(t) − p(lo)|` on `[lo, hi] ⊆ [0, 1]`
    /// by the mean value theorem (`|p'| ≤ Σ k|c_k|` there), with a margin for the rounding of `p(lo)`.
    static func signChanges(_ c: [Double], in lo: Double, _ hi: Double) -> [Double] {
        if c.count > 3 {
            var slope = 0.0, size = abs(c[0])
            for k in 1..<c.count { slope += Double(k) * abs(c[k]); size += abs(c[k]) }
            if abs(Polynomial.value(c, at: lo)) > (hi - lo) * slope + 8 * Double.ulpOfOne * size { return [] }
        }
        return Polynomial.signChanges(c, in: lo, hi)
    }
}

extension Layer {
    /// `segmentPieces` of a layer without parameters that is linear in its input (pooling by
    /// averages, flatten, the identity): the layer applied to every coefficient, pieces unchanged.
    public func linearSegmentPieces(_ input: SegmentPieces) -> SegmentPieces {
        input.mapped { apply($0, parameters: [Double]()) }
    }

    /// `segmentPieces` of a layer `f(x; w) = lin(x, W) + b` bilinear in its input and its weights
    /// plus a bias (dense, convolution), with the bias at `bias` in its parameters (nil: none).
    /// Along `W + tΔW`, `b + tΔb`, with input `Σ_k A_k t^k`, the output is `Σ_k Z_k t^k`,
    ///
    ///     Z_k = lin(A_k, W) + lin(A_{k−1}, ΔW)  (+ b in Z_0, + Δb in Z_1),
    ///
    /// one degree more: `lin(·, W)` is the layer with its bias zeroed, on all coefficients stacked
    /// (two calls), and `b` the layer's output for a zero input row (exactly `b`).
    public func affineSegmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double], bias: Range<Int>?) -> SegmentPieces {
        let m = input.rows, d = input.degree, width = outputShape.count
        func zeroBias(_ p: [Double]) -> [Double] {
            var p = p
            if let bias { for i in bias { p[i] = 0 } }
            return p
        }
        let lw = input.mapped { apply($0, parameters: zeroBias(w)) }.coefficients
        let lv = input.mapped { apply($0, parameters: zeroBias(v)) }.coefficients
        var z = [Matrix](repeating: Matrix(rows: m, cols: width), count: d + 2)
        for k in 0...d {
            z[k] = z[k] + lw[k]
            z[k + 1] = z[k + 1] + lv[k]
        }
        if bias != nil {
            let zeroRow = Matrix(rows: 1, cols: inputShape.count)
            let b = apply(zeroRow, parameters: w), db = apply(zeroRow, parameters: v)
            for r in 0..<m { for j in 0..<width {
                z[0][r, j] += b[0, j]
                z[1][r, j] += db[0, j]
            } }
        }
        return SegmentPieces(example: input.example, lo: input.lo, hi: input.hi, coefficients: z, fusesRectifiedPools: input.fusesRectifiedPools)
    }
}
