import PKNumerics

extension MLP {
    /// Base of the random-stream labels used by `initialParameters`: layer `l` draws its weights
    /// from `PortableRandom.stream(seed:label: base + 2l)` and its bias from `base + 2l + 1`.
    /// (Offset from 0 so that no stream equals the plain `PortableRandom(seed:)` another
    /// consumer of the run seed may use.)
    public static let initializationStreamLabel: UInt64 = 0x1A17_0000

    /// Initial parameters in `layout` order, a deterministic function of `seed` (bit-identical on
    /// every machine: only `PortableRandom` is used).
    ///
    /// Each tensor has its own stream, so switching biases on or off leaves the weights unchanged.
    /// Every entry is `scale · ξ`, `ξ` a standard normal: `ntk` uses scale 1 for weights and
    /// biases; `standard` uses `σ_w/√fan-in` for weights and `σ_b` for biases. The same seed thus
    /// gives the same function under both parameterizations.
    public func initialParameters(seed: UInt64) -> [Double] {
        var w = [Double](repeating: 0, count: parameterCount)
        let ntk = spec.parameterization == .ntk
        for layer in layers {
            let label = MLP.initializationStreamLabel + 2 * UInt64(layer.index)
            var rng = PortableRandom.stream(seed: seed, label: label)
            let weightStd = ntk ? 1 : spec.sigmaW / Double(layer.inputs).squareRoot()
            for k in layer.weightOffset..<(layer.weightOffset + layer.weightCount) { w[k] = weightStd * rng.normal() }
            if let bo = layer.biasOffset {
                var brng = PortableRandom.stream(seed: seed, label: label + 1)
                let biasStd = ntk ? 1 : spec.sigmaB
                for k in bo..<(bo + layer.outputs) { w[k] = biasStd * brng.normal() }
            }
        }
        return w
    }
}
