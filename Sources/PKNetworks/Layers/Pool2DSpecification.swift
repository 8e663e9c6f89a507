import PKNumerics

/// A pooling layer over 2-D windows, as its JSON form sees it: a kind name and the one initializer
/// both pools share.
public protocol Pool2DLayer: Layer {
    static var kind: String { get }
    init(inputShape: TensorShape, kernel: (height: Int, width: Int), stride: (height: Int, width: Int)?,
         padding: Padding2D) throws
}

/// The JSON form of a 2-D pooling layer (`avgpool2d`, `maxpool2d`):
/// `{"kind": "<kind>", "kernel": 2, "stride": 2, "padding": "valid"}`. `kernel` required (one
/// integer or `[height, width]`); `stride` defaults to the kernel, `padding` to `"valid"`
/// (`"same"`, an integer or `[height, width]` up to half the kernel also accepted).
public struct Pool2DSpecification<Pool: Pool2DLayer>: LayerSpecification {
    public static var kinds: [String] { [Pool.kind] }
    public var kernel: (height: Int, width: Int)
    public var stride: (height: Int, width: Int)?
    public var padding: Padding2D

    public init(kernel: (height: Int, width: Int), stride: (height: Int, width: Int)? = nil, padding: Padding2D = .valid) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case kind, kernel, stride, padding }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kernel = try c.decodePair(forKey: .kernel, in: 1...ConfigLimits.maxWidth)
        stride = c.contains(.stride) ? try c.decodePair(forKey: .stride, in: 1...ConfigLimits.maxWidth) : nil
        padding = c.contains(.padding) ? try c.decodePadding(forKey: .padding) : .valid
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Pool.kind, forKey: .kind)
        try c.encodePair(kernel, forKey: .kernel)
        if let stride { try c.encodePair(stride, forKey: .stride) }
        try c.encodePadding(padding, forKey: .padding)
    }

    public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
        try Pool(inputShape: input, kernel: kernel, stride: stride, padding: padding)
    }
}
