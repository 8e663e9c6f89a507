/// A dense, row-major matrix of `Double`.
///
/// Priorities, in order: correctness, a layout that BLAS takes without copies, simplicity.
/// `data[r * cols + c]` is the element in row `r`, column `c`. Batches of examples are stored
/// one example per row: a batch of `n` inputs of dimension `d` is an `n × d` matrix.
public struct Matrix: Sendable, Equatable, CustomStringConvertible {
    public private(set) var rows: Int
    public private(set) var cols: Int
    /// Row-major storage, `rows * cols` elements.
    public var data: [Double]

    /// A `rows × cols` matrix filled with `value`.
    public init(rows: Int, cols: Int, repeating value: Double = 0) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = [Double](repeating: value, count: rows * cols)
    }

    /// A `rows × cols` matrix over row-major `data`.
    public init(rows: Int, cols: Int, data: [Double]) {
        precondition(data.count == rows * cols, "matrix data has \(data.count) elements, shape \(rows)×\(cols) needs \(rows * cols)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// A matrix from nested rows (all of equal length).
    public init(_ nested: [[Double]]) {
        let r = nested.count
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "ragged rows")
        self.init(rows: r, cols: c, data: nested.flatMap { $0 })
    }

    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m.data[i * n + i] = 1 }
        return m
    }

    @inlinable public subscript(r: Int, c: Int) -> Double {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    /// Row `r` as an array.
    public func row(_ r: Int) -> [Double] { Array(data[(r * cols)..<((r + 1) * cols)]) }

    /// The rows at `indices`, in that order (an `indices.count × cols` matrix).
    public func rows<S: Sequence>(at indices: S) -> Matrix where S.Element: BinaryInteger {
        var out: [Double] = []
        var count = 0
        for i in indices {
            let r = Int(i)
            out.append(contentsOf: data[(r * cols)..<((r + 1) * cols)])
            count += 1
        }
        return Matrix(rows: count, cols: cols, data: out)
    }

    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for r in 0..<rows { for c in 0..<cols { t.data[c * rows + r] = data[r * cols + c] } }
        return t
    }

    /// Reinterprets the storage with a new shape of the same size.
    public func reshaped(rows: Int, cols: Int) -> Matrix { Matrix(rows: rows, cols: cols, data: data) }

    public var frobeniusNorm: Double { data.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    public var description: String {
        var s = "Matrix(\(rows)×\(cols))"
        if rows * cols <= 64 {
            for r in 0..<rows { s += "\n  " + row(r).map { String($0) }.joined(separator: " ") }
        }
        return s
    }

    // MARK: Elementwise

    public func map(_ f: (Double) -> Double) -> Matrix { Matrix(rows: rows, cols: cols, data: data.map(f)) }

    public static func + (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.rows == b.rows && a.cols == b.cols, "shape mismatch \(a.rows)×\(a.cols) + \(b.rows)×\(b.cols)")
        return Matrix(rows: a.rows, cols: a.cols, data: zip(a.data, b.data).map(+))
    }

    public static func - (a: Matrix, b: Matrix) -> Matrix {
        precondition(a.rows == b.rows && a.cols == b.cols, "shape mismatch \(a.rows)×\(a.cols) - \(b.rows)×\(b.cols)")
        return Matrix(rows: a.rows, cols: a.cols, data: zip(a.data, b.data).map(-))
    }

    public static func * (s: Double, a: Matrix) -> Matrix { a.map { s * $0 } }

    /// Elementwise (Hadamard) product.
    public func hadamard(_ b: Matrix) -> Matrix {
        precondition(rows == b.rows && cols == b.cols, "shape mismatch in hadamard")
        return Matrix(rows: rows, cols: cols, data: zip(data, b.data).map(*))
    }

    /// Adds `v` (length `cols`) to every row.
    public mutating func addRowVector(_ v: [Double]) {
        precondition(v.count == cols, "row vector has \(v.count) elements, matrix has \(cols) columns")
        for r in 0..<rows { for c in 0..<cols { data[r * cols + c] += v[c] } }
    }

    /// Column sums (length `cols`).
    public func columnSums() -> [Double] {
        var s = [Double](repeating: 0, count: cols)
        for r in 0..<rows { for c in 0..<cols { s[c] += data[r * cols + c] } }
        return s
    }

    /// The column of the largest entry in row `r` (the first one on ties).
    public func argmax(row r: Int) -> Int {
        var best = 0
        for c in 1..<max(cols, 1) where self[r, c] > self[r, best] { best = c }
        return best
    }

    /// True when every element is finite.
    public var isFinite: Bool { data.allSatisfy { $0.isFinite } }
}
