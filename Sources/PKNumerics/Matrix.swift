/// A dense, row-major matrix of `Double` (`Matrix`) or `Float` (`FloatMatrix`).
///
/// Priorities, in order: correctness, a layout that BLAS takes without copies, simplicity.
/// `data[r * cols + c]` is the element in row `r`, column `c`. Batches of examples are stored
/// one example per row: a batch of `n` inputs of dimension `d` is an `n × d` matrix.
///
/// Generic over the BLAS scalar so that the float32 kernels share every routine with the
/// float64 ones; members are `@inlinable` so that callers in other modules get specialized code.
public struct DenseMatrix<Scalar: BLASScalar>: Sendable, Equatable, CustomStringConvertible {
    public let rows: Int
    public let cols: Int
    /// Row-major storage, `rows * cols` elements.
    public var data: [Scalar]

    /// A `rows × cols` matrix filled with `value`.
    @inlinable
    public init(rows: Int, cols: Int, repeating value: Scalar = 0) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = [Scalar](repeating: value, count: rows * cols)
    }

    /// A `rows × cols` matrix over row-major `data`.
    @inlinable
    public init(rows: Int, cols: Int, data: [Scalar]) {
        precondition(data.count == rows * cols, "matrix data has \(data.count) elements, shape \(rows)×\(cols) needs \(rows * cols)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// A matrix from nested rows (all of equal length).
    @inlinable
    public init(_ nested: [[Scalar]]) {
        let r = nested.count
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "ragged rows")
        self.init(rows: r, cols: c, data: nested.flatMap { $0 })
    }

    /// The same matrix in another precision (rounded to nearest when narrowing).
    @inlinable
    public init<Other: BLASScalar>(_ other: DenseMatrix<Other>) {
        self.init(rows: other.rows, cols: other.cols, data: other.data.map { Scalar($0) })
    }

    @inlinable
    public static func identity(_ n: Int) -> DenseMatrix {
        var m = DenseMatrix(rows: n, cols: n)
        for i in 0..<n { m.data[i * n + i] = 1 }
        return m
    }

    @inlinable public subscript(r: Int, c: Int) -> Scalar {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    /// Row `r` as an array.
    @inlinable
    public func row(_ r: Int) -> [Scalar] { Array(data[(r * cols)..<((r + 1) * cols)]) }

    /// The rows at `indices`, in that order (an `indices.count × cols` matrix).
    @inlinable
    public func rows<S: Sequence>(at indices: S) -> DenseMatrix where S.Element: BinaryInteger {
        var out: [Scalar] = []
        out.reserveCapacity(indices.underestimatedCount * cols)
        var count = 0
        for i in indices {
            let r = Int(i)
            out.append(contentsOf: data[(r * cols)..<((r + 1) * cols)])
            count += 1
        }
        return DenseMatrix(rows: count, cols: cols, data: out)
    }

    /// Rows `range` (a contiguous block).
    @inlinable
    public func rows(_ range: Range<Int>) -> DenseMatrix {
        DenseMatrix(rows: range.count, cols: cols, data: Array(data[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    @inlinable
    public var transposed: DenseMatrix {
        var t = DenseMatrix(rows: cols, cols: rows)
        for r in 0..<rows { for c in 0..<cols { t.data[c * rows + r] = data[r * cols + c] } }
        return t
    }

    /// Reinterprets the storage with a new shape of the same size.
    @inlinable
    public func reshaped(rows: Int, cols: Int) -> DenseMatrix { DenseMatrix(rows: rows, cols: cols, data: data) }

    @inlinable
    public var frobeniusNorm: Scalar { data.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    public var description: String {
        var s = "\(Scalar.self == Double.self ? "Matrix" : "FloatMatrix")(\(rows)×\(cols))"
        if rows * cols <= 64 {
            for r in 0..<rows { s += "\n  " + row(r).map { "\($0)" }.joined(separator: " ") }
        }
        return s
    }

    // MARK: Elementwise

    @inlinable
    public func map(_ f: (Scalar) -> Scalar) -> DenseMatrix { DenseMatrix(rows: rows, cols: cols, data: data.map(f)) }

    @inlinable
    public static func + (a: DenseMatrix, b: DenseMatrix) -> DenseMatrix {
        precondition(a.rows == b.rows && a.cols == b.cols, "shape mismatch \(a.rows)×\(a.cols) + \(b.rows)×\(b.cols)")
        return DenseMatrix(rows: a.rows, cols: a.cols, data: zip(a.data, b.data).map(+))
    }

    @inlinable
    public static func - (a: DenseMatrix, b: DenseMatrix) -> DenseMatrix {
        precondition(a.rows == b.rows && a.cols == b.cols, "shape mismatch \(a.rows)×\(a.cols) - \(b.rows)×\(b.cols)")
        return DenseMatrix(rows: a.rows, cols: a.cols, data: zip(a.data, b.data).map(-))
    }

    @inlinable
    public static func * (s: Scalar, a: DenseMatrix) -> DenseMatrix { a.map { s * $0 } }

    /// Elementwise (Hadamard) product.
    @inlinable
    public func hadamard(_ b: DenseMatrix) -> DenseMatrix {
        precondition(rows == b.rows && cols == b.cols, "shape mismatch in hadamard")
        return DenseMatrix(rows: rows, cols: cols, data: zip(data, b.data).map(*))
    }

    /// Adds `v` (length `cols`) to every row.
    @inlinable
    public mutating func addRowVector(_ v: [Scalar]) {
        precondition(v.count == cols, "row vector has \(v.count) elements, matrix has \(cols) columns")
        for r in 0..<rows { for c in 0..<cols { data[r * cols + c] += v[c] } }
    }

    /// Column sums (length `cols`).
    @inlinable
    public func columnSums() -> [Scalar] {
        var s = [Scalar](repeating: 0, count: cols)
        for r in 0..<rows { for c in 0..<cols { s[c] += data[r * cols + c] } }
        return s
    }

    /// The column of the largest entry in row `r` (the first one on ties).
    @inlinable
    public func argmax(row r: Int) -> Int {
        var best = 0
        for c in 1..<max(cols, 1) where self[r, c] > self[r, best] { best = c }
        return best
    }

    /// True when every element is finite.
    @inlinable
    public var isFinite: Bool { data.allSatisfy { $0.isFinite } }
}

/// Float64 matrices: the analyzer's and the trainer's working type.
public typealias Matrix = DenseMatrix<Double>
/// Float32 matrices: the `--precision f32` kernels.
public typealias FloatMatrix = DenseMatrix<Float>
