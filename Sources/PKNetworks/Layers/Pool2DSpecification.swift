import PKNumerics

/// A pooling layer over 2-D windows, as its JSON form sees it: a kind name and the one initializer
/// both pools share.
public protocol Pool2DLayer: Layer {
    static var kind: String { get }
    var channels: Int { get }
    var window: Window2D { get }
    init(inputShape: TensorShape, kernel: (height: Int, width: Int), stride: (height: Int, width: Int)?,
         padding: Padding2D) throws
}

extension Pool2DLayer {
    /// `[C, H, W]` in, `[C, Ho, Wo]` out; no parameters.
    public var inputShape: TensorShape { .image(channels: channels, height: window.inputHeight, width: window.inputWidth) }
    public var outputShape: TensorShape { .image(channels: channels, height: window.outputHeight, width: window.outputWidth) }
    public var parameters: [LayerParameter] { [] }
}

extension Window2D {
    /// A pool's channels and window for `input` (an image), its padding checked (at most half the
    /// kernel, PyTorch's limit); the stride defaults to the kernel (PyTorch's default).
    static func pool(_ input: TensorShape, kernel: (height: Int, width: Int), stride: (height: Int, width: Int)?,
                     padding: Padding2D, layer: String) throws -> (channels: Int, window: Window2D) {
        guard let image = input.image, input.isValid else {
            throw LayerError("\(layer): needs an image input [C, H, W], got \(input)")
        }
        try checkPoolPadding(padding, kernel: kernel, layer: layer)
        let window = try Window2D(input: (image.height, image.width), kernel: kernel, stride: stride ?? kernel,
                                  padding: padding, layer: layer)
        return (image.channels, window)
    }
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

/// PyTorch's rule for pooling padding: explicit padding at most half the kernel, so that every
/// window holds at least one input position.
func checkPoolPadding(_ padding: Padding2D, kernel: (height: Int, width: Int), layer: String) throws {
    if case .explicit(let h, let w) = padding, h > kernel.height / 2 || w > kernel.width / 2 {
        throw LayerError("\(layer): padding \(padding) must be at most half the \(kernel.height)×\(kernel.width) kernel")
    }
}
