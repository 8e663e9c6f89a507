/// How a parameter tensor's initial values are drawn (`Layer.initialParameters(seed:)`).
public enum ParameterInitialization: Sendable, Equatable {
    /// Every entry `standardDeviation · ξ`, `ξ` a standard normal from the tensor's own stream.
    case normal(standardDeviation: Double)
    /// Every entry equal to the value (LayerNorm's `γ = 1`, `β = 0`); no random numbers drawn.
    case constant(Double)
}

/// One parameter tensor a layer declares: its name relative to the layer, its shape, how it is
/// initialized, and which random stream initializes it.
///
/// Combinators rename their children's tensors (`Sequential`: `"<child name>.<name>"`) and
/// renumber `leaf` so that it counts, in flattening order, the leaf layers with parameters of
/// the whole composition. The stream of a tensor is
/// `PortableRandom.stream(seed:label: MLP.initializationStreamLabel + 2·leaf + slot)`, which for
/// an MLP as a `Sequential` is exactly `MLP.initialParameters`'s assignment (`2l` for
/// `layers.l.weight`, `2l + 1` for `layers.l.bias`): activation layers have no parameters and
/// take no number, and switching a bias off does not move any other tensor's stream.
public struct LayerParameter: Sendable, Equatable {
    /// `weight`, `bias`; after composition `layers.0.weight`, `block.0.bias`.
    public var name: String
    /// Row-major shape: `[out, in]` (Dense), `[out, in, kh, kw]` (Conv2D), `[out]` (biases),
    /// the normalized shape (LayerNorm).
    public var shape: [Int]
    public var initialization: ParameterInitialization
    /// Index of the leaf layer (a layer that declares tensors itself) among the leaves with
    /// parameters, in flattening order: 0 in a leaf's own list.
    public var leaf: Int
    /// Place of the tensor in its leaf: 0 for the weight, 1 for the bias. At most 2 (the stream
    /// rule `2·leaf + slot` has room for two tensors per leaf; a kind with more needs a new rule).
    public var slot: Int

    public init(name: String, shape: [Int], initialization: ParameterInitialization, leaf: Int = 0, slot: Int) {
        precondition((0..<2).contains(slot), "parameter \(name): slot \(slot), a leaf layer has at most two tensors")
        self.name = name
        self.shape = shape
        self.initialization = initialization
        self.leaf = leaf
        self.slot = slot
    }

    /// Number of scalars.
    public var count: Int { shape.reduce(1, *) }

    /// The same tensor as a combinator lists it: `"<prefix>.<name>"`, leaf number shifted.
    public func nested(in prefix: String, leafOffset: Int) -> LayerParameter {
        var p = self
        p.name = "\(prefix).\(name)"
        p.leaf += leafOffset
        return p
    }
}

extension Array where Element == LayerParameter {
    /// Number of leaf layers with parameters these tensors come from (`max leaf + 1`, 0 if none).
    var leafCount: Int { (map(\.leaf).max() ?? -1) + 1 }
    /// Total number of scalars.
    var scalarCount: Int { reduce(0) { $0 + $1.count } }
}
