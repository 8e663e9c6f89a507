/// One named tensor inside the flat parameter vector (a row of `parameter_layout`).
///
/// `offset` and `count` are in elements, not bytes; `count == shape.reduce(1, *)`. A trace's
/// layout entries, in position order, are contiguous and cover `0..<P` exactly (checked on write
/// and on read). The order of elements inside a tensor is row-major over `shape`.
public struct TensorLayout: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
    public var count: Int

    public init(name: String, shape: [Int], offset: Int, count: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
        self.count = count
    }
}
