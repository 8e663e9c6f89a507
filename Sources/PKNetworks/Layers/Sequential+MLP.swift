extension Sequential {
    /// The MLP of a `{"kind": "mlp"}` spec as layers: `Dense` named `layers.l` (`l = 0..<L`), each
    /// hidden one followed by the spec's activation named `activation.l`; the output layer is
    /// linear. Its `layout`, `initialParameters(seed:)`, outputs, VJPs and JVPs are `MLP`'s, bit for
    /// bit in Double (the same GEMM calls in the same order; `Tests/PKNetworksTests/MLPAsLayersTests.swift`).
    public init(mlp spec: ModelSpec) throws {
        try spec.validate()
        var children: [Child] = []
        let depth = spec.layers.count - 1
        for l in 0..<depth {
            children.append(Child(name: "layers.\(l)", layer: try Dense(
                inputs: spec.layers[l], outputs: spec.layers[l + 1], bias: spec.bias,
                parameterization: spec.parameterization, sigmaW: spec.sigmaW, sigmaB: spec.sigmaB)))
            if l < depth - 1 {
                children.append(Child(name: "activation.\(l)", layer: try ActivationLayer(
                    spec.activation, shape: .features(spec.layers[l + 1]), leakySlope: spec.leakySlope)))
            }
        }
        try self.init(children: children)
    }
}
