import Foundation
import PKNumerics

/// How initial weights and the forward pass share the scale `σ_w/√fan-in`
/// (Jacot et al. 2018, "Neural Tangent Kernel"; neural-tangents `stax.Dense`).
///
/// For a dense layer with fan-in `n`:
/// - `ntk`: `W_ij ~ N(0, 1)`, `b_i ~ N(0, 1)`, `z = (σ_w/√n)·W a + σ_b·b`.
/// - `standard`: `W_ij ~ N(0, σ_w²/n)`, `b_i ~ N(0, σ_b²)`, `z = W a + b`.
///
/// Both give the same function at initialization (with the same seed this package draws the same
/// standard normals for both); they differ in the gradient, hence in training and in the kernel.
public enum Parameterization: String, Codable, Sendable, CaseIterable {
    case standard, ntk
}

/// A network description as it appears in run configs and traces (`Docs/networks.md`).
///
/// Two kinds:
/// - `{"kind": "mlp", "layers": [widths], "activation": …}` (the default kind): a dense network
///   with one hidden activation, built as `MLP`;
/// - `{"kind": "sequential", "input": [C, H, W] or [d], "layers": [layer objects]}`: any list
///   of layers (`LayerSpec`: conv2d, pooling, layernorm, residual blocks, per-layer activations
///   and biases), built as `LayerNetwork`. `parameterization`, `sigmaW`, `sigmaB` and
///   `leakySlope` are then the defaults of the layers that do not set their own.
///
/// Decoding fills missing optional keys with the defaults below and rejects unknown `kind`s and
/// keys (the keys of the other kind included); encoding writes every key of the kind. Shape and
/// range checks are in `validate()`.
public struct ModelSpec: Codable, Sendable, Equatable {
    /// The architecture family: `"mlp"` or `"sequential"`.
    public var kind: String = "mlp"
    /// `mlp`: widths `[input, hidden…, output]`, for example `[2, 64, 64, 1]`: at least two, all
    /// positive. Empty for `sequential`.
    public var layers: [Int]
    /// `mlp`: nonlinearity of every hidden layer; the output layer is linear. (`sequential`:
    /// unused, `.identity`.)
    public var activation: Activation
    public var parameterization: Parameterization = .ntk
    /// Weight scale `σ_w` (> 0).
    public var sigmaW: Double = 1.0
    /// Bias scale `σ_b` (≥ 0).
    public var sigmaB: Double = 0.1
    /// `mlp`: whether the dense layers have biases (`sequential`: per layer).
    public var bias: Bool = true
    /// Slope `α` of leaky ReLU for negative inputs.
    public var leakySlope: Double = 0.01
    /// `sequential`: the shape of one input example, `[C, H, W]` for images or `[d]`.
    public var input: [Int]? = nil
    /// `sequential`: the layers, applied in order (the children `0`, `1`, … of a `Sequential`).
    public var layerList: [LayerSpec]? = nil

    public static let supportedKinds = ["mlp", "sequential"]

    public init(layers: [Int], activation: Activation, parameterization: Parameterization = .ntk,
                sigmaW: Double = 1.0, sigmaB: Double = 0.1, bias: Bool = true, leakySlope: Double = 0.01,
                kind: String = "mlp") {
        self.kind = kind
        self.layers = layers
        self.activation = activation
        self.parameterization = parameterization
        self.sigmaW = sigmaW
        self.sigmaB = sigmaB
        self.bias = bias
        self.leakySlope = leakySlope
    }

    /// A `sequential` spec: `layers` applied in order to inputs of shape `input`.
    public init(input: [Int], layers: [LayerSpec], parameterization: Parameterization = .ntk,
                sigmaW: Double = 1.0, sigmaB: Double = 0.1, leakySlope: Double = 0.01) {
        self.kind = "sequential"
        self.layers = []
        self.activation = .identity
        self.input = input
        self.layerList = layers
        self.parameterization = parameterization
        self.sigmaW = sigmaW
        self.sigmaB = sigmaB
        self.leakySlope = leakySlope
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, layers, activation, parameterization, sigmaW, sigmaB, bias, leakySlope
    }
    private enum SequentialKeys: String, CodingKey, CaseIterable {
        case kind, input, layers, parameterization, sigmaW, sigmaB, leakySlope
    }

    /// The JSON keys an `mlp` model spec accepts; any other is refused (with the closest of these).
    public static let jsonKeys = CodingKeys.allCases.map(\.rawValue)
    /// The JSON keys a `sequential` model spec accepts.
    public static let sequentialJSONKeys = SequentialKeys.allCases.map(\.rawValue)

    /// The layers' defaults a `sequential` spec gives (`LayerDefaults`).
    public var layerDefaults: LayerDefaults {
        LayerDefaults(parameterization: parameterization, sigmaW: sigmaW, sigmaB: sigmaB, leakySlope: leakySlope)
    }

    public init(from decoder: Decoder) throws {
        let k = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try k.decodeIfPresent(String.self, forKey: .kind) ?? "mlp"
        guard ModelSpec.supportedKinds.contains(kind) else {
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: k,
                debugDescription: "unknown model kind \"\(kind)\" (supported: \(ModelSpec.supportedKinds.joined(separator: ", ")))")
        }
        self.kind = kind
        if kind == "sequential" {
            try decoder.rejectUnknownKeys(SequentialKeys.self)
            let c = try decoder.container(keyedBy: SequentialKeys.self)
            layers = []
            activation = .identity
            input = try c.decodeIntegers(Int.self, forKey: .input, in: 1...ConfigLimits.maxWidth)
            let list = try c.decode([LayerSpec].self, forKey: .layers)
            guard !list.isEmpty else {
                throw ConfigProblem.decodingError("model.layers of a sequential model needs at least one layer", at: c.codingPath + [SequentialKeys.layers])
            }
            layerList = list
            parameterization = try Self.decodeParameterization(c, .parameterization) ?? parameterization
            sigmaW = try c.decodeNumberIfPresent(forKey: .sigmaW) ?? sigmaW
            sigmaB = try c.decodeNumberIfPresent(forKey: .sigmaB) ?? sigmaB
            leakySlope = try c.decodeNumberIfPresent(forKey: .leakySlope) ?? leakySlope
            return
        }
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = k
        layers = try c.decodeIntegers(Int.self, forKey: .layers, in: 1...ConfigLimits.maxWidth)
        let name = try c.decode(String.self, forKey: .activation)
        guard let activation = Activation(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                forKey: .activation, in: c,
                debugDescription: "unknown activation \"\(name)\" (supported: \(Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.activation = activation
        parameterization = try Self.decodeParameterization(c, .parameterization) ?? parameterization
        sigmaW = try c.decodeNumberIfPresent(forKey: .sigmaW) ?? sigmaW
        sigmaB = try c.decodeNumberIfPresent(forKey: .sigmaB) ?? sigmaB
        bias = try c.decodeIfPresent(Bool.self, forKey: .bias) ?? bias
        leakySlope = try c.decodeNumberIfPresent(forKey: .leakySlope) ?? leakySlope
    }

    private static func decodeParameterization<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Parameterization? {
        guard let p = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = Parameterization(rawValue: p) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                   debugDescription: "unknown parameterization \"\(p)\" (supported: standard, ntk)")
        }
        return value
    }

    public func encode(to encoder: Encoder) throws {
        if kind == "sequential" {
            var c = encoder.container(keyedBy: SequentialKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encode(input ?? [], forKey: .input)
            try c.encode(layerList ?? [], forKey: .layers)
            try c.encode(parameterization, forKey: .parameterization)
            try c.encode(sigmaW, forKey: .sigmaW)
            try c.encode(sigmaB, forKey: .sigmaB)
            try c.encode(leakySlope, forKey: .leakySlope)
            return
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(layers, forKey: .layers)
        try c.encode(activation, forKey: .activation)
        try c.encode(parameterization, forKey: .parameterization)
        try c.encode(sigmaW, forKey: .sigmaW)
        try c.encode(sigmaB, forKey: .sigmaB)
        try c.encode(bias, forKey: .bias)
        try c.encode(leakySlope, forKey: .leakySlope)
    }

    /// Equal when the kinds, settings and (for `sequential`) the layer lists' JSON are equal.
    public static func == (a: ModelSpec, b: ModelSpec) -> Bool {
        guard a.kind == b.kind, a.layers == b.layers, a.activation == b.activation, a.parameterization == b.parameterization,
              a.sigmaW == b.sigmaW, a.sigmaB == b.sigmaB, a.bias == b.bias, a.leakySlope == b.leakySlope, a.input == b.input
        else { return false }
        func json(_ l: [LayerSpec]?) -> Data? {
            let e = JSONEncoder()
            e.outputFormatting = .sortedKeys
            return try? e.encode(l ?? [])
        }
        return json(a.layerList) == json(b.layerList)
    }

    /// Throws a `ModelSpecError` naming the first bad field.
    public func validate() throws {
        guard ModelSpec.supportedKinds.contains(kind) else {
            throw ModelSpecError("model.kind \"\(kind)\" is not supported (supported: \(ModelSpec.supportedKinds.joined(separator: ", ")))")
        }
        if kind == "sequential" {
            try validateScales()
            _ = try LayerNetwork.buildRoot(self)
            return
        }
        guard layers.count >= 2 else {
            throw ModelSpecError("model.layers needs at least an input and an output width, got \(layers)")
        }
        if let i = layers.firstIndex(where: { !(1...ConfigLimits.maxWidth).contains($0) }) {
            throw ModelSpecError("model.layers[\(i)] must be \(ConfigLimits.describe(1...ConfigLimits.maxWidth)), got \(layers[i]) in \(layers)")
        }
        let parameters = zip(layers, layers.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 + (bias ? $1.1 : 0) }
        guard parameters <= ConfigLimits.maxParameters else {
            throw ModelSpecError("model.layers \(layers) make \(parameters) parameters, more than the limit of \(ConfigLimits.maxParameters) (800 MB per copy of the weights); use smaller widths")
        }
        // Parameters counted without overflow: at most 2^31 (16 GiB of float64 weights).
        var count = 0
        for l in 0..<(layers.count - 1) {
            let (w, o1) = layers[l].multipliedReportingOverflow(by: layers[l + 1])
            let (sum, o2) = count.addingReportingOverflow(w)
            guard !o1, !o2, sum + layers[l + 1] <= 1 << 31 else {
                throw ModelSpecError("model.layers \(layers) has more than 2^31 parameters")
            }
            count = sum + layers[l + 1]
        }
        try validateScales()
    }

    private func validateScales() throws {
        guard sigmaW > 0, sigmaW.isFinite else {
            throw ModelSpecError("model.sigmaW must be a positive number, got \(sigmaW)")
        }
        guard sigmaB >= 0, sigmaB.isFinite else {
            throw ModelSpecError("model.sigmaB must be ≥ 0, got \(sigmaB)")
        }
        guard leakySlope.isFinite else {
            throw ModelSpecError("model.leakySlope must be finite, got \(leakySlope)")
        }
    }
}

/// An invalid model spec, described in one line.
public struct ModelSpecError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
