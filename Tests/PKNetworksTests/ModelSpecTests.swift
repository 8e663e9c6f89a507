import Foundation
import Testing
import PKNetworks

@Suite("ModelSpec: JSON and validation")
struct ModelSpecTests {
    @Test func roundTrip() throws {
        let spec = ModelSpec(layers: [2, 16, 3], activation: .leakyRelu, parameterization: .standard,
                             sigmaW: 1.25, sigmaB: 0.5, bias: false, leakySlope: 0.05)
        let data = try JSONEncoder().encode(spec)
        #expect(try JSONDecoder().decode(ModelSpec.self, from: data) == spec)
        let keys = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(Set(keys?.keys.map { $0 } ?? [])
                == ["kind", "layers", "activation", "parameterization", "sigmaW", "sigmaB", "bias", "leakySlope"])
    }

    @Test func defaultsOnDecode() throws {
        let spec = try JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[2,8,1],"activation":"gelu"}"#.utf8))
        #expect(spec == ModelSpec(layers: [2, 8, 1], activation: .gelu))
        #expect(spec.kind == "mlp" && spec.parameterization == .ntk && spec.bias)
        #expect(isClose(spec.sigmaW, 1, tolerance: 0) && isClose(spec.sigmaB, 0.1, tolerance: 0)
                && isClose(spec.leakySlope, 0.01, tolerance: 0))
    }

    /// `(JSON, a phrase the error message must contain)`.
    static let undecodable: [(String, String)] = [
        (#"{"kind":"cnn","layers":[2,1],"activation":"relu"}"#, "unknown model kind \"cnn\""),
        (#"{"layers":[2,1],"activation":"swish"}"#, "unknown activation \"swish\""),
        (#"{"layers":[2,1],"activation":"relu","parameterization":"mup"}"#, "unknown parameterization \"mup\""),
        (#"{"activation":"relu"}"#, "layers"),
    ]

    @Test(arguments: 0..<ModelSpecTests.undecodable.count)
    func decodingRejects(_ i: Int) {
        let (json, phrase) = Self.undecodable[i]
        do {
            _ = try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8))
            Issue.record("decoded \(json)")
        } catch {
            #expect("\(error)".contains(phrase), "\(error)")
        }
    }

    /// `(spec, the field the message must name)`.
    static let invalid: [(ModelSpec, String)] = [
        (ModelSpec(layers: [], activation: .relu), "model.layers"),
        (ModelSpec(layers: [3], activation: .relu), "model.layers"),
        (ModelSpec(layers: [3, 0, 1], activation: .relu), "model.layers[1]"),
        (ModelSpec(layers: [3, 4, -1], activation: .relu), "model.layers[2]"),
        (ModelSpec(layers: [3, 1], activation: .relu, kind: "cnn"), "model.kind"),
        (ModelSpec(layers: [3, 1], activation: .relu, sigmaW: 0), "model.sigmaW"),
        (ModelSpec(layers: [3, 1], activation: .relu, sigmaW: .infinity), "model.sigmaW"),
        (ModelSpec(layers: [3, 1], activation: .relu, sigmaB: -0.1), "model.sigmaB"),
        (ModelSpec(layers: [3, 1], activation: .relu, leakySlope: .nan), "model.leakySlope"),
    ]

    @Test(arguments: 0..<ModelSpecTests.invalid.count)
    func validationRejects(_ i: Int) {
        let (spec, field) = Self.invalid[i]
        #expect(throws: ModelSpecError.self) { try spec.validate() }
        do {
            _ = try MLP(spec: spec)
            Issue.record("built an MLP from \(spec)")
        } catch {
            #expect("\(error)".contains(field), "\(error)")
        }
    }

    static let cnn = #"{"kind":"sequential","input":[1,8,8],"parameterization":"standard","layers":[{"kind":"conv2d","out":4,"kernel":3,"padding":"same"},{"kind":"relu"},{"kind":"maxpool2d","kernel":2},{"kind":"conv2d","out":8,"kernel":3},{"kind":"relu"},{"kind":"globalavgpool"},{"kind":"dense","out":10}]}"#

    /// A layer list round-trips, writes exactly its kind's keys, and builds the worked example of
    /// Docs/networks.md (P = 426, the same layout) as a `LayerNetwork`.
    @Test func sequentialRoundTripAndBuild() throws {
        let spec = try JSONDecoder().decode(ModelSpec.self, from: Data(Self.cnn.utf8))
        #expect(spec.kind == "sequential" && spec.input == [1, 8, 8] && spec.parameterization == .standard)
        let data = try JSONEncoder().encode(spec)
        #expect(try JSONDecoder().decode(ModelSpec.self, from: data) == spec)
        let keys = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(Set(keys?.keys.map { $0 } ?? []) == Set(ModelSpec.sequentialJSONKeys))
        let network = try Networks.make(spec)
        #expect(network is LayerNetwork)
        #expect(network.parameterCount == 426 && network.inputDim == 64 && network.outputDim == 10)
        #expect(network.layout.map(\.name) == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"])
        #expect(network.layout.map(\.offset) == [0, 36, 40, 328, 336, 416])
        #expect(network.isPiecewiseLinear)
        #expect(network.summary == "sequential [1, 8, 8]: conv2d(4, 3) relu maxpool2d(2) conv2d(8, 3) relu globalavgpool dense(10)")
        var other = spec
        other.layerList!.removeLast()
        #expect(other != spec)
        // An MLP spec still builds an MLP, and an MLP refuses a layer list.
        #expect(try Networks.make(ModelSpec(layers: [2, 3, 1], activation: .tanh)) is MLP)
        #expect(throws: ModelSpecError.self) { try MLP(spec: spec) }
    }

    /// `(JSON, a phrase the error must contain)` for layer lists that cannot be built or read.
    static let badSequential: [(String, String)] = [
        (#"{"kind":"sequential","layers":[{"kind":"dense","out":2}]}"#, "input"),
        (#"{"kind":"sequential","input":[4],"layers":[]}"#, "at least one layer"),
        (#"{"kind":"sequential","input":[4],"layers":[{"kind":"dense","out":2}],"activation":"relu"}"#, "activation"),
        (#"{"kind":"sequential","input":[4],"layers":[{"kind":"conv2d","out":2,"kernel":3}]}"#, "model.layers[0]"),
        (#"{"kind":"sequential","input":[1,4,4],"layers":[{"kind":"conv2d","out":2,"kernel":3}]}"#, "must be a vector"),
        (#"{"kind":"sequential","input":[4],"layers":[{"kind":"dense","out":2},{"kind":"batchnorm"}]}"#, "per-example Jacobians"),
        (#"{"kind":"sequential","input":[0,4],"layers":[{"kind":"dense","out":2}]}"#, "input"),
    ]

    @Test(arguments: 0..<ModelSpecTests.badSequential.count)
    func sequentialRejects(_ i: Int) {
        let (json, phrase) = Self.badSequential[i]
        do {
            let spec = try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8))
            _ = try Networks.make(spec)
            Issue.record("built \(json)")
        } catch {
            #expect("\(error)".contains(phrase), "\(error)")
        }
    }

    @Test func validSpecPasses() throws {
        try ModelSpec(layers: [784, 256, 256, 10], activation: .relu).validate()
    }
}
