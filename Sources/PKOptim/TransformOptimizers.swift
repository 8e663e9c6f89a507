/// Builders for gradient transformations and the optimizers chained from them (optax style).
/// Every optimizer is a `Chain` whose output is the parameter change `Δw` (learning rate
/// included); the learning rate itself is passed to each `update`, so schedules stay outside.
///
///     let opt = try Transform.make(kind: "adamw", weightDecay: 0.01, clipNorm: 1)
///     var state = opt.initialState(parameterCount: w.count)
///     let r = opt.update(gradient, state: state, parameters: w, learningRate: eta)
///     w = w + r.updates; state = r.state        // r.info.clipScale goes to the trace
public enum Transform {
    // MARK: Components

    public static func chain(_ components: any GradientTransformation...) -> Chain { Chain(components) }
    public static func chain(_ components: [any GradientTransformation]) -> Chain { Chain(components) }

    public static func clipByGlobalNorm(_ maxNorm: Double) -> ClipByGlobalNorm { ClipByGlobalNorm(maxNorm: maxNorm) }
    public static func addDecayedWeights(_ weightDecay: Double) -> AddDecayedWeights { AddDecayedWeights(weightDecay: weightDecay) }
    /// `u ← −η_t u`; with `perParameter` (parameter groups' learning-rate multipliers m_k),
    /// `u_k ← −(η_t m_k) u_k`.
    public static func scaleByLearningRate(perParameter: [Double]? = nil) -> ScaleByLearningRate {
        ScaleByLearningRate(perParameter: perParameter)
    }
    public static func addDecoupledWeightDecay(_ weightDecay: Double) -> AddDecoupledWeightDecay {
        AddDecoupledWeightDecay(weightDecay: weightDecay)
    }
    public static func scaleByMomentum(_ momentum: Double, dampening: Double = 0, nesterov: Bool = false) -> ScaleByMomentum {
        ScaleByMomentum(momentum: momentum, dampening: dampening, nesterov: nesterov)
    }
    public static func scaleByAdam(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) -> ScaleByAdam {
        ScaleByAdam(beta1: beta1, beta2: beta2, eps: eps)
    }
    public static func scaleByRMS(alpha: Double = 0.99, eps: Double = 1e-8) -> ScaleByRMS {
        ScaleByRMS(alpha: alpha, eps: eps)
    }

    // MARK: Optimizers (torch.optim conventions; components that would do nothing are left out)

    /// torch.optim.SGD: `chain(addDecayedWeights(λ), scaleByMomentum(μ, dampening, nesterov),
    /// scaleByLearningRate())`. Without momentum, bit-identical to `GradientDescent.delta`.
    public static func sgd(weightDecay: Double = 0, momentum: Double = 0, dampening: Double = 0,
                           nesterov: Bool = false) -> Chain {
        var c = [any GradientTransformation]()
        if weightDecay != 0 { c.append(addDecayedWeights(weightDecay)) }
        if momentum != 0 { c.append(scaleByMomentum(momentum, dampening: dampening, nesterov: nesterov)) }
        precondition(momentum != 0 || !nesterov, "sgd: Nesterov needs a momentum")
        c.append(scaleByLearningRate())
        return Chain(c)
    }

    /// torch.optim.Adam (coupled L2 `weightDecay`): `chain(addDecayedWeights(λ), scaleByAdam,
    /// scaleByLearningRate())`.
    public static func adam(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) -> Chain {
        var c = [any GradientTransformation]()
        if weightDecay != 0 { c.append(addDecayedWeights(weightDecay)) }
        c.append(scaleByAdam(beta1: beta1, beta2: beta2, eps: eps))
        c.append(scaleByLearningRate())
        return Chain(c)
    }

    /// torch.optim.AdamW (decoupled decay, PyTorch's default λ = 0.01): `chain(scaleByAdam,
    /// scaleByLearningRate(), addDecoupledWeightDecay(λ))`, i.e.
    /// `Δw = −η λ w_t − η m̂_t/(√v̂_t + ε)`.
    public static func adamW(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01) -> Chain {
        var c: [any GradientTransformation] = [scaleByAdam(beta1: beta1, beta2: beta2, eps: eps), scaleByLearningRate()]
        if weightDecay != 0 { c.append(addDecoupledWeightDecay(weightDecay)) }
        return Chain(c)
    }

    /// torch.optim.RMSprop, not centered: `chain(addDecayedWeights(λ), scaleByRMS(α, ε),
    /// scaleByMomentum(μ), scaleByLearningRate())`. (PyTorch's momentum buffer starts at zero, so its
    /// first value `0·μ + x` equals SGD momentum's `b_0 = x`.)
    public static func rmsprop(alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0, momentum: Double = 0) -> Chain {
        var c = [any GradientTransformation]()
        if weightDecay != 0 { c.append(addDecayedWeights(weightDecay)) }
        c.append(scaleByRMS(alpha: alpha, eps: eps))
        if momentum != 0 { c.append(scaleByMomentum(momentum)) }
        c.append(scaleByLearningRate())
        return Chain(c)
    }

    // MARK: Factory

    /// The optimizer kinds `make` accepts.
    public static let kinds = ["gd", "sgd", "adam", "adamw", "rmsprop"]

    /// An optimizer from config-style settings, checked (an invalid or inapplicable setting throws
    /// an `OptimError` naming it). The result is one flat chain:
    /// `[clipByGlobalNorm(clipNorm)] + the optimizer's components`, with the optimizer
    /// - `gd`, `sgd`: `sgd(...)` (the two differ only in how the trainer draws batches);
    /// - `adam`: `adam(...)`, or `adamW(...)` when `decoupled` is true;
    /// - `adamw`: `adamW(...)` (`decoupled: false` is an error);
    /// - `rmsprop`: `rmsprop(...)`.
    /// `weightDecay` is coupled L2 (added to the gradient) unless `decoupled` is true, which adds
    /// `−η λ w` after the learning-rate scaling instead (for `sgd` that is SGDW). With parameter
    /// groups, `decayByParameter` gives every parameter its λ_k (`weightDecay` is then the
    /// largest) and `learningRateByParameter` its learning-rate multiplier m_k (`η_t m_k` scales
    /// its update: `scaleByLearningRate(perParameter:)`, and the decoupled decay becomes
    /// `−η_t m_k λ_k w_k`).
    /// `decayAnchor` (P weights, `OptimizerSpec.decayAnchor`) makes either decay pull towards
    /// it: `λ(w − w_a)` in place of `λw`. `momentum`,
    /// `dampening` and `nesterov` apply to `sgd` (and `momentum` to `rmsprop`), `beta1`, `beta2` to
    /// Adam, `alpha` to RMSProp, `eps` to both. The learning rate is not a setting here: it is
    /// passed to every `update` (schedules live in the trainer).
    public static func make(kind: String, momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false,
                            beta1: Double = 0.9, beta2: Double = 0.999, alpha: Double = 0.99, eps: Double = 1e-8,
                            weightDecay: Double = 0, decoupled: Bool? = nil, clipNorm: Double? = nil,
                            decayByParameter: [Double]? = nil, learningRateByParameter: [Double]? = nil,
                            decayAnchor: [Double]? = nil) throws -> Chain {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw OptimError("optimizer: " + message()) }
        }
        try check(kinds.contains(kind), "unknown kind \"\(kind)\" (supported: \(kinds.joined(separator: ", ")))")
        try check(weightDecay >= 0 && weightDecay.isFinite, "weightDecay must be ≥ 0, got \(weightDecay)")
        try check(momentum >= 0 && momentum < 1, "momentum must be in [0, 1), got \(momentum)")
        try check(dampening >= 0 && dampening <= 1, "dampening must be in [0, 1], got \(dampening)")
        try check(eps >= 0 && eps.isFinite, "eps must be ≥ 0, got \(eps)")
        if let clipNorm { try check(clipNorm > 0 && clipNorm.isFinite, "clipNorm must be positive, got \(clipNorm)") }
        let isSGD = kind == "gd" || kind == "sgd"
        try check(isSGD || (dampening == 0 && !nesterov), "dampening and nesterov apply to sgd only (kind \(kind))")
        try check(isSGD || kind == "rmsprop" || momentum == 0, "momentum applies to sgd and rmsprop only (kind \(kind))")
        try check(!nesterov || (momentum > 0 && dampening == 0), "nesterov needs momentum > 0 and zero dampening (PyTorch's rule)")
        try check(!(kind == "adamw" && decoupled == false), "adamw always decouples its weight decay (use adam for coupled L2)")
        if kind == "adam" || kind == "adamw" {
            try check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got \(beta1)")
            try check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got \(beta2)")
        }
        if kind == "rmsprop" { try check(alpha >= 0 && alpha < 1, "alpha must be in [0, 1), got \(alpha)") }

        let decouple = decoupled ?? (kind == "adamw")
        let coupledDecay = decouple ? 0 : weightDecay
        var optimizer: Chain
        switch kind {
        case "adam", "adamw":
            optimizer = decouple ? adamW(beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
                                 : adam(beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        case "rmsprop":
            optimizer = rmsprop(alpha: alpha, eps: eps, weightDecay: coupledDecay, momentum: momentum)
        default:
            optimizer = sgd(weightDecay: coupledDecay, momentum: momentum, dampening: dampening, nesterov: nesterov)
        }
        if decouple && kind != "adam" && kind != "adamw" && weightDecay != 0 {
            optimizer = Chain(optimizer.components + [addDecoupledWeightDecay(weightDecay)])
        }
        if let clipNorm { optimizer = Chain([clipByGlobalNorm(clipNorm)] + optimizer.components) }
        if let decayByParameter {
            // Parameter groups: the decay component applies each parameter's own λ_k.
            optimizer = Chain(optimizer.components.map { c -> any GradientTransformation in
                if let d = c as? AddDecayedWeights { return AddDecayedWeights(weightDecay: d.weightDecay, perParameter: decayByParameter) }
                if let d = c as? AddDecoupledWeightDecay { return AddDecoupledWeightDecay(weightDecay: d.weightDecay, perParameter: decayByParameter) }
                return c
            })
        }
        if let anchor = decayAnchor {
            // Anchored decay (NeuralUCB's ridge towards w₀): both decay components pull towards it.
            try check(anchor.allSatisfy(\.isFinite), "the decay anchor's weights must be finite")
            optimizer = Chain(optimizer.components.map { c -> any GradientTransformation in
                if let d = c as? AddDecayedWeights { return AddDecayedWeights(weightDecay: d.weightDecay, perParameter: d.perParameter, anchor: anchor) }
                if let d = c as? AddDecoupledWeightDecay { return AddDecoupledWeightDecay(weightDecay: d.weightDecay, perParameter: d.perParameter, anchor: anchor) }
                return c
            })
        }
        if let m = learningRateByParameter {
            // Parameter groups with their own learning rates: parameter k steps with η_t m_k. The
            // rate scales the whole update, so the decoupled decay (added after it, PyTorch's
            // lr_k·λ_k·w) takes m_k λ_k; a coupled decay is inside u and meets m_k with the rest.
            try check(m.allSatisfy { $0 >= 0 && $0.isFinite }, "learning-rate multipliers must be ≥ 0 and finite (0: a masked, never-moving parameter)")
            optimizer = Chain(optimizer.components.map { c -> any GradientTransformation in
                if c is ScaleByLearningRate { return ScaleByLearningRate(perParameter: m) }
                if let d = c as? AddDecoupledWeightDecay {
                    let lambda = d.perParameter ?? [Double](repeating: d.weightDecay, count: m.count)
                    precondition(lambda.count == m.count, "make: \(lambda.count) decays for \(m.count) learning-rate multipliers")
                    return AddDecoupledWeightDecay(weightDecay: d.weightDecay, perParameter: zip(m, lambda).map { $0 * $1 }, anchor: d.anchor)
                }
                return c
            })
        }
        return optimizer
    }
}
