/// The shape of one example as a layer sees it: `[d]` for a feature vector, `[C, H, W]` for an
/// image (channels, height, width).
///
/// A batch of `n` examples is an `n × count` matrix whose row `r` is example `r` flattened
/// row-major, which for images is PyTorch's NCHW order: entry `(c, y, x)` of an image is column
/// `(c·H + y)·W + x`. Layers never reorder the batch; only the meaning of the columns changes.
public struct TensorShape: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByArrayLiteral {
    /// The sizes of the axes of one example, outermost first.
    public let dimensions: [Int]

    public init(_ dimensions: [Int]) { self.dimensions = dimensions }
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// A feature vector of `d` entries.
    public static func features(_ d: Int) -> TensorShape { TensorShape([d]) }
    /// An image with `channels` planes of `height × width` pixels.
    public static func image(channels: Int, height: Int, width: Int) -> TensorShape { TensorShape([channels, height, width]) }

    /// Number of scalars of one example (the columns of a batch).
    public var count: Int { dimensions.reduce(1, *) }

    /// `(C, H, W)` when this is an image shape (three axes), else nil.
    public var image: (channels: Int, height: Int, width: Int)? {
        dimensions.count == 3 ? (dimensions[0], dimensions[1], dimensions[2]) : nil
    }

    /// `[2]`, `[1, 28, 28]`.
    public var description: String { "[\(dimensions.map(String.init).joined(separator: ", "))]" }

    public init(from decoder: Decoder) throws { dimensions = try [Int](from: decoder) }
    public func encode(to encoder: Encoder) throws { try dimensions.encode(to: encoder) }

    /// True when every axis is at least 1 and the count does not overflow.
    var isValid: Bool {
        guard !dimensions.isEmpty, dimensions.allSatisfy({ $0 >= 1 }) else { return false }
        var product = 1
        for d in dimensions {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { return false }
            product = p
        }
        return true
    }
}
