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

    @Test func validSpecPasses() throws {
        try ModelSpec(layers: [784, 256, 256, 10], activation: .relu).validate()
    }
}
