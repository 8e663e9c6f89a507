import PKNumerics

/// What one forward pass keeps for reverse mode: the input of every dense layer and `φ'` at every
/// hidden pre-activation. Pull back any number of cotangents without redoing the forward pass.
///
/// Shapes (`n` examples, widths `d_0…d_L` from the spec):
/// - `layerInputs[l]`: `a_l`, `n × d_l`, `l = 0..<L` (`layerInputs[0]` is `x`);
/// - `activationDerivatives[l]`: `φ'(z_l)`, `n × d_{l+1}`, `l = 0..<L−1` (hidden layers only);
/// - `output`: `f(x; w)`, `n × d_L`.
public struct ForwardCache: Sendable {
    public let model: MLP
    /// `W_l` for every layer (`d_{l+1} × d_l`).
    public let weights: [Matrix]
    public let layerInputs: [Matrix]
    public let activationDerivatives: [Matrix]
    public let output: Matrix

    /// The back-propagated signals of the scalar `s = Σ_r ⟨cotangent[r, :], f(x_r; w)⟩`:
    /// `δ_l = ∂s/∂z_l`, `n × d_{l+1}`, for `l = 0..<L` (so `δ_{L−1} = cotangent`).
    ///
    /// Row `r` of `δ_l` depends on row `r` of the cotangent only; with the cotangent `e_c` in
    /// every row it is `∂f_c(x_r)/∂z_l`, the factor of the per-example Jacobian (§6 of the math).
    public func signals(cotangent: Matrix) -> [Matrix] {
        precondition(cotangent.rows == output.rows && cotangent.cols == output.cols,
                     "cotangent is \(cotangent.rows)×\(cotangent.cols), outputs are \(output.rows)×\(output.cols)")
        let L = model.depth
        var deltas = [Matrix](repeating: cotangent, count: L)
        for l in stride(from: L - 1, to: 0, by: -1) {
            let da = model.layers[l].inputGradient(weights[l], signal: deltas[l])
            deltas[l - 1] = da.hadamard(activationDerivatives[l - 1])
        }
        return deltas
    }

    /// `∂/∂w Σ_r ⟨cotangent[r, :], f(x_r; w)⟩`, length `P`. With `cotangent = ∂L/∂f` this is the
    /// gradient of `L`: pass per-example gradients divided by `n` for a mean loss.
    public func pullback(_ cotangent: Matrix) -> [Double] {
        let deltas = signals(cotangent: cotangent)
        var gradient = [Double](repeating: 0, count: model.parameterCount)
        for layer in model.layers {
            layer.accumulateParameterGradient(input: layerInputs[layer.index], signal: deltas[layer.index],
                                              into: &gradient)
        }
        return gradient
    }
}

extension MLP {
    /// One forward pass, keeping what reverse mode needs.
    public func forwardCache(_ w: [Double], _ x: Matrix) -> ForwardCache {
        checkShapes(w, x)
        var weights: [Matrix] = [], inputs: [Matrix] = [], derivatives: [Matrix] = []
        var a = x
        for layer in layers {
            let W = layer.weight(w)
            let z = layer.forward(W, w, a)
            weights.append(W)
            inputs.append(a)
            if layer.index == depth - 1 {
                return ForwardCache(model: self, weights: weights, layerInputs: inputs,
                                    activationDerivatives: derivatives, output: z)
            }
            let (values, slopes) = activation.valuesAndDerivatives(z, leakySlope: spec.leakySlope)
            derivatives.append(slopes)
            a = values
        }
        preconditionFailure("an MLP has at least one layer")
    }

    /// The outputs (`n × outputDim`) and a pullback sharing one forward pass:
    /// `pullback(cotangent)` equals `vjp(w, x, cotangent: cotangent)`.
    public func forwardWithPullback(_ w: [Double], _ x: Matrix) -> (output: Matrix, pullback: @Sendable (Matrix) -> [Double]) {
        let cache = forwardCache(w, x)
        return (cache.output, { cache.pullback($0) })
    }

    /// Vector–Jacobian product `∂/∂w Σ_r ⟨cotangent[r, :], f(x_r; w)⟩` (length `P`); `cotangent` is
    /// `n × outputDim`. This is the loss gradient when `cotangent = ∂L/∂f`.
    public func vjp(_ w: [Double], _ x: Matrix, cotangent: Matrix) -> [Double] {
        forwardCache(w, x).pullback(cotangent)
    }
}

extension MLP {
    /// The pre-activations `z_l = s_W W_l a_l + s_b b_l` of the hidden layers `l = 0 … L−2`
    /// (`n × d_{l+1}` each; the output layer's is left out): what the activation-pattern
    /// diagnostics compare between two weight vectors (ntk-family contract §5).
    public func hiddenPreActivations(_ w: [Double], _ x: Matrix) -> [Matrix] {
        checkShapes(w, x)
        var out: [Matrix] = []
        var a = x
        for layer in layers where layer.index < depth - 1 {
            let z = layer.forward(layer.weight(w), w, a)
            out.append(z)
            a = activation.values(z, leakySlope: spec.leakySlope)
        }
        return out
    }
}
