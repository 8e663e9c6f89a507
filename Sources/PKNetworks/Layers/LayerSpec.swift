import PKNumerics

/// What a JSON layer list leaves to the network: the parameterization and scales of the layers
/// with weights (`dense`, `conv2d`) that do not set their own, and the leaky-ReLU slope. The
/// defaults are `ModelSpec`'s.
public struct LayerDefaults: Sendable, Equatable {
    public var parameterization: Parameterization
    public var sigmaW: Double
    public var sigmaB: Double
    public var leakySlope: Double

    public init(parameterization: Parameterization = .ntk, sigmaW: Double = 1, sigmaB: Double = 0.1, leakySlope: Double = 0.01) {
        self.parameterization = parameterization
        self.sigmaW = sigmaW
        self.sigmaB = sigmaB
        self.leakySlope = leakySlope
    }
}

/// The JSON form of one layer kind: it decodes and encodes its object (`{"kind": "conv2d", …}`,
/// unknown keys refused with the closest valid one) and builds the layer for an input shape.
///
/// Every kind's specification is nested in the kind's own file (`Conv2D.Specification`) and
/// listed once in `LayerRegistry.specifications`. Objects are shape-free: `build` gets the input
/// shape from the layer before it (or the network's input), so a list never repeats a width.
public protocol LayerSpecification: Codable, Sendable {
    /// The `kind` names this type reads (one for most kinds; the activation layer reads one per
    /// activation).
    static var kinds: [String] { get }
    /// The layer for inputs of shape `input`; throws a `LayerError` naming the setting.
    func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer
}

/// Any layer's JSON object, of whatever kind: decoding reads `kind` and hands the object to that
/// kind's specification (`LayerRegistry`); encoding writes that specification.
///
///     {"kind": "sequential", "layers": [
///         {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"kind": "relu"},
///         {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 10}]}
///
/// Not a run config's `model` yet: training and the analyzer read `ModelSpec` (`{"kind": "mlp"}`).
public struct LayerSpec: Codable, Sendable {
    public let specification: any LayerSpecification

    public init(_ specification: any LayerSpecification) { self.specification = specification }

    private enum KindKey: String, CodingKey { case kind }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: KindKey.self)
        let kind = try c.decode(String.self, forKey: .kind)
        guard let type = LayerRegistry.specification(for: kind) else {
            let place = c.codingPath.isEmpty ? "at the top level" : "in \(ConfigProblem.fieldName(c.codingPath))"
            if kind.lowercased().hasPrefix("batchnorm") {
                throw ConfigProblem.decodingError("layer kind \"\(kind)\" \(place) is refused: batch normalization in training mode makes an example's output depend on the other examples of its batch, so per-example Jacobians, the tangent kernel and the path kernel are undefined; use layernorm",
                                                  at: c.codingPath + [KindKey.kind])
            }
            var message = "unknown layer kind \"\(kind)\" \(place) (supported: \(LayerRegistry.kinds.joined(separator: ", ")))"
            if let close = ConfigProblem.closest(to: kind, among: LayerRegistry.kinds) { message += "; did you mean \"\(close)\"?" }
            throw ConfigProblem.decodingError(message, at: c.codingPath + [KindKey.kind])
        }
        specification = try type.init(from: decoder)
    }

    public func encode(to encoder: Encoder) throws { try specification.encode(to: encoder) }

    /// The layer for inputs of shape `input`.
    public func build(input: TensorShape, defaults: LayerDefaults = LayerDefaults()) throws -> any Layer {
        guard input.isValid else { throw LayerError("the input shape \(input) must have positive sizes") }
        return try specification.build(input: input, defaults: defaults)
    }
}

// MARK: - Shared JSON helpers of the layer specifications

extension KeyedDecodingContainer {
    /// A size pair: one integer for both axes (`3`) or `[height, width]`, each in `range`.
    func decodePair(forKey key: Key, in range: ClosedRange<Int>) throws -> (height: Int, width: Int) {
        if case .list? = try? decode(JSONValue.self, forKey: key) {
            let values = try decodeIntegers(Int.self, forKey: key, in: range)
            guard values.count == 2 else {
                throw ConfigProblem.decodingError("\(ConfigProblem.fieldName(codingPath + [key])) must be one integer or [height, width], got \(values.count) numbers",
                                                  at: codingPath + [key])
            }
            return (values[0], values[1])
        }
        let v = try decodeInteger(Int.self, forKey: key, in: range)
        return (v, v)
    }

    /// `"valid"`, `"same"`, one integer `p` (`[p, p]`) or `[height, width]` (explicit padding).
    func decodePadding(forKey key: Key) throws -> Padding2D {
        if case .string(let s)? = try? decode(JSONValue.self, forKey: key) {
            switch s {
            case "valid": return .valid
            case "same": return .same
            default:
                throw ConfigProblem.decodingError("\(ConfigProblem.fieldName(codingPath + [key])) must be \"valid\", \"same\", an integer or [height, width], got \"\(s)\"",
                                                  at: codingPath + [key])
            }
        }
        let (h, w) = try decodePair(forKey: key, in: 0...ConfigLimits.maxWidth)
        return .explicit(height: h, width: w)
    }
}

extension KeyedEncodingContainer {
    /// One integer when both axes agree, else `[height, width]`.
    mutating func encodePair(_ pair: (height: Int, width: Int), forKey key: Key) throws {
        if pair.height == pair.width { try encode(pair.height, forKey: key) } else { try encode([pair.height, pair.width], forKey: key) }
    }

    mutating func encodePadding(_ padding: Padding2D, forKey key: Key) throws {
        switch padding {
        case .valid: try encode("valid", forKey: key)
        case .same: try encode("same", forKey: key)
        case .explicit(let h, let w): try encodePair((h, w), forKey: key)
        }
    }
}
