import Testing
import PKNetworks
import PKNumerics

/// Names, order and offsets of composed layers (the worked examples of `Docs/networks.md`,
/// "Layers"), initialization streams, and the piecewise-linear flag.
@Suite("Layer composition: names, layout, initialization")
struct LayerCompositionTests {
    /// `Docs/networks.md`'s small CNN: conv 1→4 3×3 same, relu, maxpool 2, conv 4→8 3×3 valid,
    /// relu, global average pool, dense 8→10, on 1×8×8 images.
    static func smallCNN() throws -> Sequential {
        try Sequential([
            try Conv2D(inputShape: [1, 8, 8], outputChannels: 4, kernel: (3, 3), padding: .same),
            try ActivationLayer(.relu, shape: [4, 8, 8]),
            try MaxPool2D(inputShape: [4, 8, 8], kernel: (2, 2)),
            try Conv2D(inputShape: [4, 4, 4], outputChannels: 8, kernel: (3, 3)),
            try ActivationLayer(.relu, shape: [8, 2, 2]),
            try GlobalAvgPool(inputShape: [8, 2, 2]),
            try Dense(inputs: 8, outputs: 10),
        ])
    }

    @Test func smallCNNLayout() throws {
        let cnn = try Self.smallCNN()
        #expect(cnn.layout == [
            ParameterTensor(name: "0.weight", shape: [4, 1, 3, 3], offset: 0, count: 36),
            ParameterTensor(name: "0.bias", shape: [4], offset: 36, count: 4),
            ParameterTensor(name: "3.weight", shape: [8, 4, 3, 3], offset: 40, count: 288),
            ParameterTensor(name: "3.bias", shape: [8], offset: 328, count: 8),
            ParameterTensor(name: "6.weight", shape: [10, 8], offset: 336, count: 80),
            ParameterTensor(name: "6.bias", shape: [10], offset: 416, count: 10),
        ])
        #expect(cnn.parameterCount == 426 && cnn.outputShape == [10] && cnn.isPiecewiseLinear)
    }

    /// `Docs/networks.md`'s residual block on 2×4×4 maps: stem conv, then a block
    /// (layernorm, conv, gelu, conv without bias) with a 1×1 projection shortcut to 3 channels.
    static func residualNet() throws -> Sequential {
        let block = try Sequential([
            try LayerNorm(inputShape: [2, 4, 4]),
            try Conv2D(inputShape: [2, 4, 4], outputChannels: 3, kernel: (3, 3), padding: .same),
            try ActivationLayer(.gelu, shape: [3, 4, 4]),
            try Conv2D(inputShape: [3, 4, 4], outputChannels: 3, kernel: (3, 3), padding: .same, bias: false),
        ])
        return try Sequential(children: [
            .init(name: "stem", layer: try Conv2D(inputShape: [1, 4, 4], outputChannels: 2, kernel: (3, 3), padding: .same)),
            .init(name: "res", layer: try Residual(block: block,
                                                   shortcut: try Conv2D(inputShape: [2, 4, 4], outputChannels: 3, kernel: (1, 1), bias: false))),
            .init(name: "pool", layer: try GlobalAvgPool(inputShape: [3, 4, 4])),
            .init(name: "head", layer: try Dense(inputs: 3, outputs: 1)),
        ])
    }

    @Test func residualLayout() throws {
        let net = try Self.residualNet()
        #expect(net.layout.map(\.name) == [
            "stem.weight", "stem.bias",
            "res.block.0.weight", "res.block.0.bias", "res.block.1.weight", "res.block.1.bias", "res.block.3.weight",
            "res.shortcut.weight",
            "head.weight", "head.bias",
        ])
        #expect(net.layout.map(\.shape) == [[2, 1, 3, 3], [2], [2, 4, 4], [2, 4, 4], [3, 2, 3, 3], [3], [3, 3, 3, 3], [3, 2, 1, 1], [1, 3], [1]])
        #expect(net.layout.map(\.offset) == [0, 18, 20, 52, 84, 138, 141, 222, 228, 231])
        #expect(net.parameterCount == 232 && !net.isPiecewiseLinear)
        // Leaf numbers (the initialization streams): stem 0, layernorm 1, convs 2 and 3, shortcut 4, head 5.
        #expect(net.parameters.map(\.leaf) == [0, 0, 1, 1, 2, 2, 3, 4, 5, 5])
        #expect(net.parameters.map(\.slot) == [0, 1, 0, 1, 0, 1, 0, 0, 0, 1])
    }

    @Test func defaultNamesAreIndicesAsInPyTorch() throws {
        let net = try Sequential([try Dense(inputs: 3, outputs: 4), try ActivationLayer(.tanh, shape: [4]),
                                  try Dense(inputs: 4, outputs: 1, bias: false)])
        #expect(net.layout.map(\.name) == ["0.weight", "0.bias", "2.weight"])
        let nested = try Sequential([net, try ActivationLayer(.relu, shape: [1])])
        #expect(nested.layout.map(\.name) == ["0.0.weight", "0.0.bias", "0.2.weight"])
    }

    /// Each tensor draws from its own stream: an extra parameterless layer, or a bias switched
    /// off, leaves every other tensor's values unchanged; LayerNorm starts at γ = 1, β = 0.
    @Test func initializationStreamsFollowTheLeaves() throws {
        let a = try Sequential([try Dense(inputs: 3, outputs: 4), try Dense(inputs: 4, outputs: 2)])
        let b = try Sequential([try Dense(inputs: 3, outputs: 4, bias: false), try ActivationLayer(.tanh, shape: [4]),
                                try Dense(inputs: 4, outputs: 2)])
        let wa = a.initialParameters(seed: 5), wb = b.initialParameters(seed: 5)
        #expect(wa[0..<12].map(\.bitPattern) == wb[0..<12].map(\.bitPattern))      // 0.weight
        #expect(wa[16...].map(\.bitPattern) == wb[12...].map(\.bitPattern))        // the second dense layer
        let net = try Self.residualNet()
        let w = net.initialParameters(seed: 1)
        let norm = net.layout[2], shift = net.layout[3]
        #expect(w[norm.offset..<(norm.offset + norm.count)].allSatisfy { $0 == 1 })
        #expect(w[shift.offset..<(shift.offset + shift.count)].allSatisfy { $0 == 0 })
        #expect(w.map(\.bitPattern) == net.initialParameters(seed: 1).map(\.bitPattern))
        #expect(w.map(\.bitPattern) != net.initialParameters(seed: 2).map(\.bitPattern))
    }

    /// A conv layer's initialization follows the parameterization with fan-in `C·kh·kw`, and
    /// both parameterizations give the same initial function (as for dense layers).
    @Test func convolutionParameterizations() throws {
        let ntk = try Conv2D(inputShape: [3, 5, 5], outputChannels: 4, kernel: (3, 3), sigmaW: 1.5, sigmaB: 0.2)
        let standard = try Conv2D(inputShape: [3, 5, 5], outputChannels: 4, kernel: (3, 3), parameterization: .standard, sigmaW: 1.5, sigmaB: 0.2)
        #expect(isClose(ntk.weightScale, 1.5 / 27.0.squareRoot(), tolerance: 1e-15) && isClose(ntk.biasScale, 0.2, tolerance: 0))
        #expect(ntk.parameters.map(\.initialization) == [.normal(standardDeviation: 1), .normal(standardDeviation: 1)])
        #expect(standard.parameters[1].initialization == .normal(standardDeviation: 0.2))
        if case .normal(let std) = standard.parameters[0].initialization {
            #expect(isClose(std, 1.5 / 27.0.squareRoot(), tolerance: 1e-15))
        } else {
            Issue.record("standard conv weights are not normal")
        }
        let x = randomMatrix(rows: 2, cols: 75, seed: 3)
        let a = ntk.forward(ntk.initialParameters(seed: 9), x), b = standard.forward(standard.initialParameters(seed: 9), x)
        #expect(relativeError(a.data, b.data) < Tolerance.roundOff)
    }
}
