/// A dense Float64 array in row-major order, as stored in the `data` table.
///
/// Invariant (checked when written and when read, not by the initializer): every dimension is
/// ≥ 0 and `values.count == shape.reduce(1, *)`. A rank-0 shape `[]` would hold one value; the
/// store uses rank 1 (`[n]`, class indices), rank 2 (`[n, d]`) and rank 4 (`[n, C, H, W]`, images).
public struct DataArray: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Double]

    public init(shape: [Int], values: [Double]) {
        self.shape = shape
        self.values = values
    }

    /// Number of elements the shape calls for.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Rows: `shape[0]`, or 0 for rank 0.
    public var rows: Int { shape.first ?? 0 }
}
