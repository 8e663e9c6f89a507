import PKNumerics
import PKTrace

extension DataArray {
    /// The array as a matrix, one example per row: `shape[0]` rows of `shape[1...]`'s product
    /// (1 for rank 1: class indices). The one conversion from the store's arrays, shared by the
    /// analyzer's `TraceRun` and `inspect`'s `TraceSummary`.
    public var matrix: Matrix {
        let n = shape.first ?? 0
        let d = shape.count > 1 ? shape[1...].reduce(1, *) : 1
        return Matrix(rows: n, cols: d, data: values)
    }
}
