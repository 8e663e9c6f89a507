import PKNumerics

/// Layers applied one after another, `f = f_{k−1} ∘ … ∘ f_0` (neural-tangents `stax.serial`,
/// PyTorch's `nn.Sequential`).
///
/// **Parameters and names.** The parameter vector is the concatenation of the children's, in
/// child order; child `i`'s tensor `t` is named `"<name_i>.<t>"`, where `name_i` is the name the
/// child was given, by default its index (`"0"`, `"1"`, … as PyTorch's `nn.Sequential` names its
/// modules). So `Sequential([Dense, Tanh, Dense])` has `0.weight, 0.bias, 2.weight, 2.bias`, and
/// `Sequential(mlp:)` names its dense layers `layers.l` to give exactly `MLP.layout`. Names must be
/// unique and non-empty; children without parameters contribute no tensors, whatever their name.
///
/// Derivatives compose: the pullback runs the children backwards, passing each one's input
/// cotangent to the child before it (the first child is asked for its input cotangent only when
/// the caller asks); the tangent runs forwards, starting from the caller's input tangent.
/// Piecewise linear when any child is.
public struct Sequential: Layer {
    /// One child: the name its parameter names start with, and the layer.
    public struct Child: Sendable {
        public let name: String
        public let layer: any Layer
        public init(name: String, layer: any Layer) {
            self.name = name
            self.layer = layer
        }
    }

    public let children: [Child]
    public let parameters: [LayerParameter]
    /// Child `i`'s parameters are scalars `offsets[i]..<offsets[i + 1]` of this layer's vector.
    let offsets: [Int]

    /// Children named by their index, `"0"`, `"1"`, ….
    public init(_ layers: [any Layer]) throws {
        try self.init(children: layers.enumerated().map { Child(name: String($0.offset), layer: $0.element) })
    }

    /// Children with given names. Throws when there are none, a name is empty or repeated, or a
    /// child's input shape is not the previous child's output shape.
    public init(children: [Child]) throws {
        guard !children.isEmpty else { throw LayerError("sequential: needs at least one layer") }
        var seen = Set<String>()
        for (i, child) in children.enumerated() {
            guard !child.name.isEmpty else { throw LayerError("sequential: layer \(i) has an empty name") }
            guard seen.insert(child.name).inserted else { throw LayerError("sequential: the name \"\(child.name)\" is used twice") }
            if i > 0, children[i - 1].layer.outputShape != child.layer.inputShape {
                throw LayerError("sequential: layer \(i) (\(type(of: child.layer))) takes \(child.layer.inputShape), layer \(i - 1) (\(type(of: children[i - 1].layer))) gives \(children[i - 1].layer.outputShape)")
            }
        }
        var parameters: [LayerParameter] = []
        var offsets = [0]
        for child in children {
            let own = child.layer.parameters
            parameters += own.map { $0.nested(in: child.name, leafOffset: parameters.leafCount) }
            offsets.append(offsets.last! + own.scalarCount)
        }
        self.children = children
        self.parameters = parameters
        self.offsets = offsets
    }

    public var inputShape: TensorShape { children.first!.layer.inputShape }
    public var outputShape: TensorShape { children.last!.layer.outputShape }
    public var isPiecewiseLinear: Bool { children.contains { $0.layer.isPiecewiseLinear } }
    /// The children's degrees added (nil when one is nil).
    public var segmentDegree: Int? {
        children.reduce(Optional(0)) { sum, child in sum.flatMap { s in child.layer.segmentDegree.map { s + $0 } } }
    }

    /// The children in order, each cutting the pieces further; a relu or leaky relu of slope
    /// ≥ 0 directly followed by a max pool as one layer (`MaxPool2D.rectifiedSegmentPieces`: cut
    /// only where the fused pattern changes, not at the silent sign changes of units that are not
    /// their window's maximum) unless `input.fusesRectifiedPools` is false.
    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        var a = input
        var i = 0
        while i < children.count {
            if a.fusesRectifiedPools, i + 1 < children.count, let activation = children[i].layer as? ActivationLayer,
               let slope = activation.poolFusionSlope, let pool = children[i + 1].layer as? MaxPool2D {
                a = pool.rectifiedSegmentPieces(a, slope: slope)
                i += 2
                continue
            }
            guard let next = children[i].layer.segmentPieces(a, start: childParameters(w, i), delta: childParameters(v, i)) else { return nil }
            a = next
            i += 1
        }
        return a
    }
    public var forwardFlops: Double { children.reduce(0) { $0 + $1.layer.forwardFlops } }

    /// Child `i`'s slice of `w`.
    func childParameters<S>(_ w: [S], _ i: Int) -> [S] { Array(w[offsets[i]..<offsets[i + 1]]) }

    /// Every child's cache, in order.
    struct Cache: Sendable { let children: [LayerCache] }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        var a = x
        var caches: [LayerCache] = []
        caches.reserveCapacity(children.count)
        for (i, child) in children.enumerated() {
            let (y, cache) = child.layer.forward(a, parameters: childParameters(w, i))
            caches.append(cache)
            a = y
        }
        return (a, LayerCache(Cache(children: caches)))
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func apply<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> DenseMatrix<S> {
        checkArguments(x, w)
        var a = x
        for (i, child) in children.enumerated() { a = child.layer.apply(a, parameters: childParameters(w, i)) }
        return a
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        let caches = cache.contents(as: Cache.self).children
        var gradient = [S](repeating: 0, count: offsets.last!)
        var u = cotangent
        for i in children.indices.reversed() {
            let (dx, g) = children[i].layer.pullback(u, cache: caches[i], needsInputCotangent: i > 0 || needsInputCotangent)
            gradient.replaceSubrange(offsets[i]..<offsets[i + 1], with: g)
            if i == 0 { return (dx, gradient) }
            u = dx!
        }
        preconditionFailure("a sequential layer has at least one child")
    }

    /// The children backwards, each writing its rows into its own columns (`offsets[i]` further
    /// right) and passing its input cotangent to the child before it. A child's input, needed only
    /// by a kind without its own rule, is recomputed on demand from `input` by the children before it.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        let caches = cache.contents(as: Cache.self).children
        var u = cotangent
        for i in children.indices.reversed() {
            let childInput = { () -> DenseMatrix<S> in
                var a = input()
                for j in 0..<i { a = children[j].layer.apply(a, parameters: childParameters(w, j)) }
                return a
            }
            let dx = children[i].layer.pullbackRows(u, repeats: repeats, cache: caches[i], parameters: childParameters(w, i),
                                                    input: childInput, needsInputCotangent: i > 0 || needsInputCotangent,
                                                    parameterRows: parameterRows.offset(by: offsets[i]))
            if i == 0 { return dx }
            u = dx!
        }
        preconditionFailure("a sequential layer has at least one child")
    }

    /// The children's patterns, in order.
    public func kinkPattern(_ x: Matrix, parameters w: [Double], into pattern: inout [Double]) -> Matrix {
        var a = x
        for (i, child) in children.enumerated() { a = child.layer.kinkPattern(a, parameters: childParameters(w, i), into: &pattern) }
        return a
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent v: [S], cache: LayerCache) -> DenseMatrix<S>? {
        precondition(v.count == parameterCount, "sequential jvp: parameter tangent has \(v.count) scalars, the layer has \(parameterCount)")
        let caches = cache.contents(as: Cache.self).children
        var t = inputTangent
        for (i, child) in children.enumerated() {
            t = child.layer.jvp(inputTangent: t, parameterTangent: childParameters(v, i), cache: caches[i])
        }
        return t
    }
}

// MARK: - JSON

extension Sequential {
    /// `{"kind": "sequential", "layers": [{…}, …]}`: at least one layer; each is built for the
    /// previous one's output shape, and named by its index.
    public struct Specification: LayerSpecification {
        public static let kinds = ["sequential"]
        public var layers: [LayerSpec]

        public init(_ layers: [LayerSpec]) { self.layers = layers }

        enum CodingKeys: String, CodingKey, CaseIterable { case kind, layers }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            layers = try c.decode([LayerSpec].self, forKey: .layers)
            guard !layers.isEmpty else {
                throw ConfigProblem.decodingError("\(ConfigProblem.fieldName(c.codingPath + [CodingKeys.layers])) needs at least one layer",
                                                  at: c.codingPath + [CodingKeys.layers])
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("sequential", forKey: .kind)
            try c.encode(layers, forKey: .layers)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
            var shape = input
            var built: [any Layer] = []
            for (i, spec) in layers.enumerated() {
                do {
                    let layer = try spec.specification.build(input: shape, defaults: defaults)
                    built.append(layer)
                    shape = layer.outputShape
                } catch let e as LayerError {
                    throw e.within("layers[\(i)]")
                }
            }
            return try Sequential(built)
        }
    }
}
