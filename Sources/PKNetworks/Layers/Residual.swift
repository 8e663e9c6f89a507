import PKNumerics

/// A residual block `y = F(x) + x`, or `y = F(x) + P(x)` with a projection shortcut `P` (He et al.
/// 2016, "Deep Residual Learning for Image Recognition"; neural-tangents builds it as
/// `serial(FanOut(2), parallel(F, Identity or P), FanInSum())`).
///
/// Shapes: `F` and `P` both take the block's input shape and give the same output shape; without
/// `P`, `F` must keep the shape. Parameters: `F`'s tensors named `block.<name>`, then `P`'s named
/// `shortcut.<name>` (the order the design contract fixes: the block's, then the projection's).
/// Derivatives are sums over the two branches: `∂x = ∂x_F + ∂x_P` (`∂x_P = u` for the identity),
/// `ẏ = Ḟ + Ṗ` (`Ṗ = ẋ`). Piecewise linear when a branch is.
public struct Residual: Layer {
    public let block: any Layer
    /// The projection, or nil for the identity shortcut.
    public let shortcut: (any Layer)?
    public let parameters: [LayerParameter]

    public init(block: any Layer, shortcut: (any Layer)? = nil) throws {
        if let shortcut {
            guard shortcut.inputShape == block.inputShape, shortcut.outputShape == block.outputShape else {
                throw LayerError("residual: the shortcut maps \(shortcut.inputShape) → \(shortcut.outputShape), the block \(block.inputShape) → \(block.outputShape); they must agree")
            }
        } else {
            guard block.outputShape == block.inputShape else {
                throw LayerError("residual: the block maps \(block.inputShape) → \(block.outputShape); an identity shortcut needs equal shapes (add a projection shortcut)")
            }
        }
        self.block = block
        self.shortcut = shortcut
        let own = block.parameters.map { $0.nested(in: "block", leafOffset: 0) }
        parameters = own + (shortcut?.parameters ?? []).map { $0.nested(in: "shortcut", leafOffset: own.leafCount) }
    }

    public var inputShape: TensorShape { block.inputShape }
    public var outputShape: TensorShape { block.outputShape }
    public var isPiecewiseLinear: Bool { block.isPiecewiseLinear || (shortcut?.isPiecewiseLinear ?? false) }
    /// The larger of the branches' degrees (the identity's is 0): the sum's degree is its
    /// terms' largest; nil when a branch's is.
    public var segmentDegree: Int? {
        guard let b = block.segmentDegree else { return nil }
        guard let shortcut else { return b }
        return shortcut.segmentDegree.map { max(b, $0) }
    }

    /// The block on the input's pieces; the shortcut (the input itself, or the projection) on
    /// the block's finer pieces, which it may cut further; the two sums on the finest pieces.
    public func segmentPieces(_ input: SegmentPieces, start w: [Double], delta v: [Double]) -> SegmentPieces? {
        let k = blockParameterCount
        guard let f = block.segmentPieces(input, start: Array(w[0..<k]), delta: Array(v[0..<k])) else { return nil }
        let x = input.refined(to: f)
        guard let shortcut else { return f + x }
        guard let p = shortcut.segmentPieces(x, start: Array(w[k...]), delta: Array(v[k...])) else { return nil }
        return f.refined(to: p) + p
    }
    public var forwardFlops: Double { block.forwardFlops + (shortcut?.forwardFlops ?? 0) + Double(outputShape.count) }

    var blockParameterCount: Int { block.parameterCount }

    struct Cache: Sendable {
        let block: LayerCache
        let shortcut: LayerCache?
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        checkArguments(x, w)
        let k = blockParameterCount
        let (fx, blockCache) = block.forward(x, parameters: Array(w[0..<k]))
        guard let shortcut else { return (fx + x, LayerCache(Cache(block: blockCache, shortcut: nil))) }
        let (px, shortcutCache) = shortcut.forward(x, parameters: Array(w[k...]))
        return (fx + px, LayerCache(Cache(block: blockCache, shortcut: shortcutCache)))
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func apply<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> DenseMatrix<S> {
        checkArguments(x, w)
        let k = blockParameterCount
        let fx = block.apply(x, parameters: Array(w[0..<k]))
        return fx + (shortcut?.apply(x, parameters: Array(w[k...])) ?? x)
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool)
        -> (input: DenseMatrix<S>?, parameters: [S]) {
        let c = cache.contents(as: Cache.self)
        let (dxBlock, gBlock) = block.pullback(cotangent, cache: c.block, needsInputCotangent: needsInputCotangent)
        guard let shortcut, let shortcutCache = c.shortcut else {
            return (needsInputCotangent ? dxBlock! + cotangent : nil, gBlock)
        }
        let (dxShortcut, gShortcut) = shortcut.pullback(cotangent, cache: shortcutCache, needsInputCotangent: needsInputCotangent)
        return (needsInputCotangent ? dxBlock! + dxShortcut! : nil, gBlock + gShortcut)
    }

    /// Both branches on the same rows, the block's into the first columns and the shortcut's after
    /// them; the input cotangents add (`+ u` for the identity shortcut).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        let c = cache.contents(as: Cache.self)
        let k = blockParameterCount
        let dxBlock = block.pullbackRows(cotangent, repeats: repeats, cache: c.block, parameters: Array(w[0..<k]), input: input,
                                         needsInputCotangent: needsInputCotangent, parameterRows: parameterRows)
        guard let shortcut, let shortcutCache = c.shortcut else {
            return needsInputCotangent ? dxBlock! + cotangent : nil
        }
        let dxShortcut = shortcut.pullbackRows(cotangent, repeats: repeats, cache: shortcutCache, parameters: Array(w[k...]), input: input,
                                               needsInputCotangent: needsInputCotangent, parameterRows: parameterRows.offset(by: k))
        return needsInputCotangent ? dxBlock! + dxShortcut! : nil
    }

    /// The block's pattern, then the shortcut's.
    public func kinkPattern(_ x: Matrix, parameters w: [Double], into pattern: inout [Double]) -> Matrix {
        let k = blockParameterCount
        let fx = block.kinkPattern(x, parameters: Array(w[0..<k]), into: &pattern)
        guard let shortcut else { return fx + x }
        return fx + shortcut.kinkPattern(x, parameters: Array(w[k...]), into: &pattern)
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent v: [S], cache: LayerCache) -> DenseMatrix<S>? {
        precondition(v.count == parameterCount, "residual jvp: parameter tangent has \(v.count) scalars, the layer has \(parameterCount)")
        let c = cache.contents(as: Cache.self)
        let k = blockParameterCount
        let tBlock = block.jvp(inputTangent: inputTangent, parameterTangent: Array(v[0..<k]), cache: c.block)
        let tShortcut: DenseMatrix<S>?
        if let shortcut, let shortcutCache = c.shortcut {
            tShortcut = shortcut.jvp(inputTangent: inputTangent, parameterTangent: Array(v[k...]), cache: shortcutCache)
        } else {
            tShortcut = inputTangent
        }
        switch (tBlock, tShortcut) {
        case let (a?, b?): return a + b
        case let (a?, nil): return a
        case let (nil, b?): return b
        case (nil, nil): return nil
        }
    }
}

// MARK: - JSON

extension Residual {
    /// `{"kind": "residual", "block": {…}, "shortcut": {…}}`: `block` required (usually a
    /// `sequential`), `shortcut` optional (absent: the identity). Both are built for the residual
    /// layer's input shape.
    public struct Specification: LayerSpecification {
        public static let kinds = ["residual"]
        public var block: LayerSpec
        public var shortcut: LayerSpec?

        public init(block: LayerSpec, shortcut: LayerSpec? = nil) {
            self.block = block
            self.shortcut = shortcut
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case kind, block, shortcut }

        public init(from decoder: Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            block = try c.decode(LayerSpec.self, forKey: .block)
            shortcut = try c.decodeIfPresent(LayerSpec.self, forKey: .shortcut)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("residual", forKey: .kind)
            try c.encode(block, forKey: .block)
            try c.encodeIfPresent(shortcut, forKey: .shortcut)
        }

        public func build(input: TensorShape, defaults: LayerDefaults) throws -> any Layer {
            let blockLayer: any Layer
            do { blockLayer = try block.specification.build(input: input, defaults: defaults) } catch let e as LayerError { throw e.within("block") }
            var shortcutLayer: (any Layer)? = nil
            if let shortcut {
                do { shortcutLayer = try shortcut.specification.build(input: input, defaults: defaults) } catch let e as LayerError { throw e.within("shortcut") }
            }
            return try Residual(block: blockLayer, shortcut: shortcutLayer)
        }
    }
}
