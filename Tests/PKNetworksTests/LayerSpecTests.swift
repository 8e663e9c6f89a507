import Foundation
import Testing
import PKNetworks
import PKNumerics

/// The JSON form of layer lists: the worked examples of `Docs/networks.md`, round trips, the
/// registry, and one-line refusals.
@Suite("Layer lists in JSON")
struct LayerSpecTests {
    static func decode(_ json: String) throws -> LayerSpec {
        try JSONDecoder().decode(LayerSpec.self, from: Data(json.utf8))
    }

    /// `Docs/networks.md`, "A small CNN" (input `[1, 8, 8]`).
    static let smallCNN = """
        {"kind": "sequential", "layers": [
          {"kind": "conv2d", "out": 4, "kernel": 3, "padding": "same"},
          {"kind": "relu"},
          {"kind": "maxpool2d", "kernel": 2},
          {"kind": "conv2d", "out": 8, "kernel": 3},
          {"kind": "relu"},
          {"kind": "globalavgpool"},
          {"kind": "dense", "out": 10}
        ]}
        """

    /// `Docs/networks.md`, "A residual block" (input `[1, 4, 4]`).
    static let residualNet = """
        {"kind": "sequential", "layers": [
          {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"},
          {"kind": "residual",
           "block": {"kind": "sequential", "layers": [
             {"kind": "layernorm"},
             {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"},
             {"kind": "gelu"},
             {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same", "bias": false}]},
           "shortcut": {"kind": "conv2d", "out": 3, "kernel": 1, "bias": false}},
          {"kind": "globalavgpool"},
          {"kind": "dense", "out": 1}
        ]}
        """

    @Test func smallCNNIsTheLayerBuiltInSwift() throws {
        let fromJSON = try Self.decode(Self.smallCNN).build(input: [1, 8, 8])
        let built = try LayerCompositionTests.smallCNN()
        #expect(fromJSON.layout == built.layout)
        let w = built.initialParameters(seed: 3)
        #expect(fromJSON.initialParameters(seed: 3).map(\.bitPattern) == w.map(\.bitPattern))
        let x = randomMatrix(rows: 2, cols: 64, seed: 4)
        #expect(fromJSON.forward(w, x).data.map(\.bitPattern) == built.forward(w, x).data.map(\.bitPattern))
    }

    @Test func residualNetLayout() throws {
        let net = try Self.decode(Self.residualNet).build(input: [1, 4, 4])
        #expect(net.layout.map(\.name) == [
            "0.weight", "0.bias",
            "1.block.0.weight", "1.block.0.bias", "1.block.1.weight", "1.block.1.bias", "1.block.3.weight",
            "1.shortcut.weight",
            "3.weight", "3.bias",
        ])
        let built = try LayerCompositionTests.residualNet()
        #expect(net.layout.map(\.shape) == built.layout.map(\.shape))
        #expect(net.layout.map(\.offset) == built.layout.map(\.offset))
        #expect(net.parameters.map(\.leaf) == built.parameters.map(\.leaf))
    }

    /// Decoding, encoding and decoding again gives the same JSON (keys sorted).
    @Test(arguments: [smallCNN, residualNet,
                      #"{"kind": "leaky-relu", "leakySlope": 0.2}"#,
                      #"{"kind": "conv2d", "out": 2, "kernel": [3, 1], "stride": [2, 1], "padding": [1, 0], "parameterization": "standard", "sigmaW": 1.4, "sigmaB": 0}"#,
                      #"{"kind": "avgpool2d", "kernel": 3, "stride": 2, "padding": "same"}"#,
                      #"{"kind": "layernorm", "eps": 0.001, "affine": false}"#])
    func roundTrip(_ json: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let once = try encoder.encode(Self.decode(json))
        let twice = try encoder.encode(JSONDecoder().decode(LayerSpec.self, from: once))
        #expect(once == twice, "\(String(decoding: once, as: UTF8.self))")
    }

    @Test func defaultsAndOverrides() throws {
        let defaults = LayerDefaults(parameterization: .standard, sigmaW: 2, sigmaB: 0.5, leakySlope: 0.3)
        let list = try Self.decode(#"{"kind": "sequential", "layers": [{"kind": "dense", "out": 3}, {"kind": "leaky-relu"}, {"kind": "dense", "out": 1, "parameterization": "ntk", "sigmaW": 1.5}]}"#)
        let net = try list.build(input: [4], defaults: defaults) as! Sequential
        let first = net.children[0].layer as! Dense, act = net.children[1].layer as! ActivationLayer, last = net.children[2].layer as! Dense
        #expect(first.parameterization == .standard && first.sigmaW == 2 && first.sigmaB == 0.5)
        #expect(act.leakySlope == 0.3)
        #expect(last.parameterization == .ntk && last.sigmaW == 1.5 && last.sigmaB == 0.5)
    }

    @Test func everyKindIsRegisteredOnce() {
        let kinds = LayerRegistry.kinds
        #expect(Set(kinds).count == kinds.count)
        #expect(Set(kinds) == Set(["dense", "flatten", "conv2d", "avgpool2d", "maxpool2d", "globalavgpool", "layernorm",
                                   "sequential", "residual"] + Activation.allCases.map(\.rawValue)))
    }

    /// `(JSON, input shape, a phrase the error must contain)`: decoding and building errors alike.
    static let refusals: [(String, TensorShape, String)] = [
        (#"{"kind": "conv3d", "out": 2, "kernel": 3}"#, [1, 4, 4], #"unknown layer kind "conv3d""#),
        (#"{"kind": "conv3d", "out": 2, "kernel": 3}"#, [1, 4, 4], #"did you mean "conv2d""#),
        (#"{"kind": "sequential", "layers": [{"kind": "relu"}, {"kind": "maxpool"}]}"#, [1, 4, 4], #"unknown layer kind "maxpool" in layers[1]"#),
        (#"{"kind": "conv2d", "out": 2, "kernal": 3}"#, [1, 4, 4], "did you mean 'kernel'"),
        (#"{"kind": "conv2d", "out": 2, "kernel": [3, 3, 3]}"#, [1, 4, 4], "one integer or [height, width]"),
        (#"{"kind": "conv2d", "out": 2, "kernel": 0}"#, [1, 4, 4], "kernel must be an integer in 1…"),
        (#"{"kind": "conv2d", "out": 2, "kernel": 3, "padding": "full"}"#, [1, 4, 4], #"must be "valid", "same""#),
        (#"{"kind": "tanh", "leakySlope": 0.1}"#, [3], "unknown key 'leakySlope'"),
        (#"{"kind": "sequential", "layers": []}"#, [3], "needs at least one layer"),
        (#"{"kind": "sequential", "layers": [{"kind": "conv2d", "out": 2, "kernel": 3}, {"kind": "dense", "out": 1}]}"#, [1, 4, 4],
         "layers[1]: dense: needs a feature vector input [d], got [2, 2, 2] (put a flatten layer before it)"),
        (#"{"kind": "sequential", "layers": [{"kind": "flatten"}, {"kind": "residual", "block": {"kind": "sequential", "layers": [{"kind": "dense", "out": 2}, {"kind": "conv2d", "out": 1, "kernel": 1}]}}]}"#,
         [1, 2, 2], "layers[1].block.layers[1]: conv2d: needs an image input [C, H, W], got [2]"),
        (#"{"kind": "residual", "block": {"kind": "dense", "out": 2}}"#, [3], "identity shortcut needs equal shapes"),
        (#"{"kind": "maxpool2d", "kernel": 5}"#, [1, 4, 4], "does not fit"),
        (#"{"kind": "layernorm"}"#, [0, 3], "must have positive sizes"),
    ]

    @Test(arguments: 0..<LayerSpecTests.refusals.count)
    func badListsAreRefused(_ i: Int) {
        let (json, shape, phrase) = Self.refusals[i]
        do {
            let layer = try Self.decode(json).build(input: shape)
            Issue.record("built \(layer) from \(json)")
        } catch {
            #expect("\(error)".contains(phrase), "\(error)")
        }
    }

    /// The MLP spec keeps its own JSON: a layer list is not a `ModelSpec`.
    @Test func modelSpecIsUntouched() {
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(ModelSpec.self, from: Data(Self.smallCNN.utf8))
        }
    }
}
