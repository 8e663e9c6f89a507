import PKNumerics

/// A layer used as a whole network: the flat parameter vector's layout, its initialization, and
/// the outputs and derivatives with respect to the parameters (the calls `MLP` offers).
extension Layer {
    /// The parameter tensors with their offsets in the flat vector, in flattening order (the
    /// order of `parameters`): the layout a trace records (`ParameterTensor`, as `MLP.layout`).
    public var layout: [ParameterTensor] {
        var offset = 0
        return parameters.map { p in
            defer { offset += p.count }
            return ParameterTensor(name: p.name, shape: p.shape, offset: offset, count: p.count)
        }
    }

    /// Initial parameters in `layout` order, a deterministic function of `seed` (only
    /// `PortableRandom` is used, so the bits are the same on every machine).
    ///
    /// Each tensor with `.normal(σ)` is filled in storage order with `σ · ξ`, `ξ` standard normals
    /// from its own stream `PortableRandom.stream(seed: seed, label: MLP.initializationStreamLabel
    /// + 2·leaf + slot)` (`LayerParameter`); `.constant(c)` tensors are `c`. For an MLP built by
    /// `Sequential(mlp:)` this equals `MLP.initialParameters(seed:)` bit for bit.
    public func initialParameters(seed: UInt64) -> [Double] {
        var w: [Double] = []
        w.reserveCapacity(parameterCount)
        for p in parameters {
            switch p.initialization {
            case .constant(let c):
                w.append(contentsOf: repeatElement(c, count: p.count))
            case .normal(let std):
                var rng = PortableRandom.stream(seed: seed, label: MLP.initializationStreamLabel + 2 * UInt64(p.leaf) + UInt64(p.slot))
                for _ in 0..<p.count { w.append(std * rng.normal()) }
            }
        }
        return w
    }

    /// `f(x_r; w)` for every row: `x` is `n × inputShape.count`, the result `n × outputShape.count`.
    public func forward<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>) -> DenseMatrix<S> {
        apply(x, parameters: w)
    }

    /// Vector–Jacobian product `∂/∂w Σ_r ⟨cotangent[r, :], f(x_r; w)⟩` (`parameterCount` scalars);
    /// `cotangent` is `n × outputShape.count`.
    public func vjp<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>, cotangent: DenseMatrix<S>) -> [S] {
        let (output, cache) = forward(x, parameters: w)
        precondition(cotangent.rows == output.rows && cotangent.cols == output.cols,
                     "vjp: cotangent is \(cotangent.rows)×\(cotangent.cols), outputs are \(output.rows)×\(output.cols)")
        return pullback(cotangent, cache: cache, needsInputCotangent: false).parameters
    }

    /// Jacobian–vector product `J(x_r; w) · v` for every row (`n × outputShape.count`), by forward
    /// mode (input tangent zero).
    public func jvp<S: BLASScalar>(_ w: [S], _ x: DenseMatrix<S>, tangent v: [S]) -> DenseMatrix<S> {
        precondition(v.count == parameterCount, "jvp: tangent has \(v.count) entries, the layer has \(parameterCount) parameters")
        let (_, cache) = forward(x, parameters: w)
        return jvp(inputTangent: nil, parameterTangent: v, cache: cache)
            ?? DenseMatrix(rows: x.rows, cols: outputShape.count)
    }
}
