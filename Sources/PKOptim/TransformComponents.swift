import Foundation

// The components optimizers are chained from. Each follows PyTorch's arithmetic (torch.optim,
// single-tensor code path) where PyTorch has the same operation; Docs/optimizers.md gives the
// formulas and where each deviates.

/// Rescales the updates so that their global 2-norm is at most `maxNorm`: `u ← κ u` with
/// `κ = maxNorm/‖u‖` when `‖u‖ > maxNorm` and `κ = 1` otherwise (optax's `clip_by_global_norm`;
/// PyTorch's `clip_grad_norm_` uses `maxNorm/(‖u‖ + 1e-6)` instead). `κ` is reported as
/// `UpdateInfo.clipScale`, `‖u‖` as `gradientNorm`. A non-finite norm leaves the updates as they
/// are (κ = 1), so a diverged gradient stays visible to the trainer.
public struct ClipByGlobalNorm: GradientTransformation {
    public let maxNorm: Double

    public init(maxNorm: Double) {
        precondition(maxNorm > 0 && maxNorm.isFinite, "clipByGlobalNorm: maxNorm must be positive, got \(maxNorm)")
        self.maxNorm = maxNorm
    }

    public var bufferNames: [String] { [] }
    public var description: String { "clipByGlobalNorm(\(maxNorm))" }

    /// `‖u‖₂`, summed in index order (deterministic on every machine), rescaled when the plain
    /// sum of squares overflows.
    public static func globalNorm(_ u: [Double]) -> Double {
        var s = 0.0
        for x in u { s += x * x }
        if s.isFinite { return s.squareRoot() }
        var m = 0.0
        for x in u { m = Swift.max(m, Swift.abs(x)) }
        guard m.isFinite, m > 0 else { return s.isNaN ? .nan : m }
        var r = 0.0
        for x in u { let y = x / m; r += y * y }
        return m * r.squareRoot()
    }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        let norm = Self.globalNorm(updates)
        guard norm.isFinite, norm > maxNorm else {
            return UpdateResult(updates: updates, state: advanced(state), info: UpdateInfo(clipScale: 1, gradientNorm: norm))
        }
        let scale = maxNorm / norm
        return UpdateResult(updates: updates.map { $0 * scale }, state: advanced(state),
                            info: UpdateInfo(clipScale: scale, gradientNorm: norm))
    }

    /// Kernel form: the gradient itself times the recorded κ (`clipped`), so only at the start
    /// (after other clips at most): a clip after decay or a core would scale those too.
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard p.isDirection, p.form.coupledDecay == 0, p.form.decoupledDecay == 0 else { return nil }
        var q = p
        q.form.clipped = true
        return q
    }
}

/// `w − w_a`, or `w` itself (the same array, no arithmetic) without an anchor.
func anchoredDisplacement(_ w: [Double], _ anchor: [Double]?, _ who: String) -> [Double] {
    guard let anchor else { return w }
    precondition(anchor.count == w.count, "\(who): anchor has \(anchor.count) entries, parameters \(w.count)")
    return zip(w, anchor).map { $0 - $1 }
}

/// Coupled L2 weight decay: `u ← u + λ w` (PyTorch's `weight_decay` of SGD, Adam and RMSprop,
/// added to the gradient before anything else the optimizer does). λ = 0 leaves `u` untouched.
/// With an anchor `w_a` (`OptimizerSpec.decayAnchor`, NeuralUCB's ridge towards `w₀`) the decay
/// pulls towards it instead of 0: `u ← u + λ (w − w_a)`; without one the arithmetic is today's, bit for bit.
public struct AddDecayedWeights: GradientTransformation {
    /// λ, or with parameter groups the largest group's λ.
    public let weightDecay: Double
    /// With parameter groups (`OptimizerSpec.groups`): `λ_k` of every parameter; nil: λ for all.
    public let perParameter: [Double]?
    /// `w_a`, the weights the decay pulls towards (P entries); nil: 0.
    public let anchor: [Double]?

    public init(weightDecay: Double, perParameter: [Double]? = nil, anchor: [Double]? = nil) {
        precondition(weightDecay >= 0 && weightDecay.isFinite, "addDecayedWeights: λ must be ≥ 0, got \(weightDecay)")
        self.weightDecay = weightDecay
        self.perParameter = perParameter
        self.anchor = anchor
    }

    public var bufferNames: [String] { [] }
    public var description: String {
        "addDecayedWeights(\(weightDecay)\(perParameter == nil ? "" : ", per group")\(anchor == nil ? "" : ", towards w₀"))"
    }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        guard weightDecay != 0 else { return UpdateResult(updates: updates, state: advanced(state)) }
        let w = anchoredDisplacement(w, anchor, "addDecayedWeights")
        var u = updates
        if let lambda = perParameter {
            precondition(lambda.count == w.count, "addDecayedWeights: \(lambda.count) decays for \(w.count) parameters")
            for i in u.indices { u[i] = updates[i] + lambda[i] * w[i] }
        } else {
            for i in u.indices { u[i] = updates[i] + weightDecay * w[i] }
        }
        return UpdateResult(updates: u, state: advanced(state))
    }

    /// Kernel form: before any core, `λ w` joins `u` (coupled, λ_c); after a core (momentum, Adam,
    /// RMSProp) and before the learning rate it is the term `−η λ w_t` outside the sum (decoupled,
    /// λ_d: optax's `adamw`). After the learning rate it would add `λ w` itself: no form.
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard !p.scaledByLearningRate else { return nil }
        var q = p
        if p.form.update == .plain { q.form.coupledDecay += weightDecay } else { q.form.decoupledDecay += weightDecay }
        if let perParameter { q.form.decayByParameter = perParameter }
        if let anchor { q.form.decayAnchor = anchor }
        return q
    }
}

/// `u ← −η_t u`: turns a descent direction into the parameter change. The last component of
/// every optimizer (before `AddDecoupledWeightDecay`).
///
/// With parameter groups that have their own learning rates (`OptimizerSpec.groups`), every
/// parameter k has a constant multiplier `m_k = η_k/η` (PyTorch's group `lr` over the base rate)
/// and `u_k ← −(η_t m_k) u_k`: PyTorch's `p.add_(u, alpha=−lr_k)` with the group's scheduled
/// rate `lr_k = η_t m_k`. `M = diag(m_k)` is constant and diagonal, so the update is the kernel
/// forms' preconditioned one with `D = M` (`preconditioner`, `kernelForm(after:)`).
public struct ScaleByLearningRate: GradientTransformation {
    /// `m_k` of every parameter (group learning rates); nil: 1 for all (`u ← −η_t u`).
    public let perParameter: [Double]?

    public init(perParameter: [Double]? = nil) {
        if let m = perParameter {
            precondition(m.allSatisfy { $0 >= 0 && $0.isFinite }, "scaleByLearningRate: multipliers must be ≥ 0 and finite")
        }
        self.perParameter = perParameter
    }

    public var bufferNames: [String] { [] }
    public var description: String { perParameter == nil ? "scaleByLearningRate()" : "scaleByLearningRate(per group)" }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        var u = updates
        if let m = perParameter {
            precondition(m.count == u.count, "scaleByLearningRate: \(m.count) multipliers for \(u.count) parameters")
            for i in u.indices { u[i] = -(eta * m[i]) * updates[i] }
        } else {
            for i in u.indices { u[i] = -eta * updates[i] }
        }
        return UpdateResult(updates: u, state: advanced(state))
    }

    /// `M = diag(m_k)` with group learning rates (constant, so any state gives it); nil without.
    public func preconditioner(_ state: OptimizerState) -> [Double]? { perParameter }

    /// Kernel form: turns the direction into `Δw` (`.plain` if no core came before), once. With
    /// group rates, `Δw_t = −η_t M (…)`: M joins the preconditioner (`learningRateScale`; the
    /// chain's `preconditioner` multiplies it into D), so `.plain` becomes
    /// `.preconditioned(.query, ρ 0, no bias correction, b 1)` (`Δw_t = −η_t M u_t`) and
    /// `.momentum` becomes `.preconditionedMomentum` (D = M with the query; M is constant, so
    /// Nesterov's `u_t + μ buf_t` takes it as a whole); Adam's and RMSProp's forms keep their
    /// shape with `D ⊙ M`. A decay added after a core and before the rate (optax's AdamW order)
    /// is scaled by M too: its per-parameter decay becomes `m_k λ_k`.
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard !p.scaledByLearningRate else { return nil }
        var q = p
        q.scaledByLearningRate = true
        guard let m = perParameter else { return q }
        q.form.learningRateScale = m
        switch q.form.update {
        case .plain:
            q.form.update = .preconditioned(side: .query, rho: 0, biasCorrection: nil, b: 1)
        case let .momentum(rho, dampening, nesterov):
            q.form.update = .preconditionedMomentum(rho: rho, dampening: dampening, nesterov: nesterov)
        case .preconditioned, .preconditionedMomentum:
            break
        }
        if q.form.decoupledDecay > 0 {
            // One per-parameter decay list serves one decay (a recorded optimizer has one at most).
            guard q.form.coupledDecay == 0 else { return nil }
            let lambda = q.form.decayByParameter ?? [Double](repeating: q.form.decoupledDecay, count: m.count)
            guard lambda.count == m.count else { return nil }
            q.form.decayByParameter = zip(m, lambda).map { $0 * $1 }
        }
        return q
    }
}

/// Decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW): adds `−η_t λ w_t` to an update
/// that already includes the learning rate, so it goes after `ScaleByLearningRate`. PyTorch
/// applies it as `w ← w(1 − ηλ)` before the Adam step; the sum is the same change. The term is
/// reported as `UpdateInfo.decoupledDecay`. λ = 0 leaves `u` untouched (and reports nil).
public struct AddDecoupledWeightDecay: GradientTransformation {
    /// λ, or with parameter groups the largest group's λ.
    public let weightDecay: Double
    /// With parameter groups (`OptimizerSpec.groups`): `λ_k` of every parameter; nil: λ for all.
    public let perParameter: [Double]?

    /// `w_a`, the weights the decay pulls towards (`w ← w − ηλ(w − w_a)`); nil: 0.
    public let anchor: [Double]?

    public init(weightDecay: Double, perParameter: [Double]? = nil, anchor: [Double]? = nil) {
        precondition(weightDecay >= 0 && weightDecay.isFinite, "addDecoupledWeightDecay: λ must be ≥ 0, got \(weightDecay)")
        self.weightDecay = weightDecay
        self.perParameter = perParameter
        self.anchor = anchor
    }

    public var bufferNames: [String] { [] }
    public var description: String {
        "addDecoupledWeightDecay(\(weightDecay)\(perParameter == nil ? "" : ", per group")\(anchor == nil ? "" : ", towards w₀"))"
    }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        guard weightDecay != 0 else { return UpdateResult(updates: updates, state: advanced(state)) }
        let w = anchoredDisplacement(w, anchor, "addDecoupledWeightDecay")
        var decay = w
        var u = updates
        if let lambda = perParameter {
            precondition(lambda.count == w.count, "addDecoupledWeightDecay: \(lambda.count) decays for \(w.count) parameters")
            for i in u.indices {
                decay[i] = -(eta * lambda[i]) * w[i]
                u[i] = updates[i] + decay[i]
            }
            return UpdateResult(updates: u, state: advanced(state), info: UpdateInfo(decoupledDecay: decay))
        }
        let c = eta * weightDecay
        for i in u.indices {
            decay[i] = -c * w[i]
            u[i] = updates[i] + decay[i]
        }
        return UpdateResult(updates: u, state: advanced(state), info: UpdateInfo(decoupledDecay: decay))
    }

    /// Kernel form: the term `−η λ w_t` outside the sum (λ_d), after the learning rate only.
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard p.scaledByLearningRate else { return nil }
        var q = p
        q.form.decoupledDecay += weightDecay
        if let perParameter { q.form.decayByParameter = perParameter }
        if let anchor { q.form.decayAnchor = anchor }
        return q
    }
}

/// Momentum with torch.optim.SGD's conventions. Buffer `momentum_buffer`:
///
///     b_0 = u_0                                   (first update: no dampening)
///     b_t = μ b_{t−1} + (1 − dampening) u_t
///     out_t = b_t                  (heavy ball)   or   u_t + μ b_t   (Nesterov)
public struct ScaleByMomentum: GradientTransformation {
    public let momentum: Double
    public let dampening: Double
    public let nesterov: Bool

    public init(momentum: Double, dampening: Double = 0, nesterov: Bool = false) {
        precondition(momentum >= 0 && momentum.isFinite, "scaleByMomentum: μ must be ≥ 0, got \(momentum)")
        precondition(dampening >= 0 && dampening <= 1, "scaleByMomentum: dampening must be in [0, 1], got \(dampening)")
        precondition(!nesterov || (momentum > 0 && dampening == 0), "scaleByMomentum: Nesterov needs μ > 0 and zero dampening")
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
    }

    public var bufferNames: [String] { ["momentum_buffer"] }
    public var description: String { "scaleByMomentum(\(momentum), dampening: \(dampening), nesterov: \(nesterov))" }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        var buf: [Double]
        if state.count == 0 {
            buf = updates
        } else {
            buf = state.buffer(0)
            let mu = momentum, a = 1 - dampening
            for i in buf.indices { buf[i] = mu * buf[i] + a * updates[i] }
        }
        var out = buf
        if nesterov {
            for i in out.indices { out[i] = updates[i] + momentum * buf[i] }
        }
        return UpdateResult(updates: out, state: advanced(state, [buf]))
    }

    /// Kernel form: on `u` itself, PyTorch's heavy ball `.momentum(μ, dampening, nesterov)`; after
    /// RMSProp's scaling (no momentum yet, nothing added after it), RMSProp with momentum:
    /// `.preconditioned(training side, ρ = μ)`, which needs `b_s = 1` (no dampening, since
    /// `b_0 = 1`) and no Nesterov. Anything else has no form.
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard !p.scaledByLearningRate else { return nil }
        var q = p
        switch p.form.update {
        case .plain:
            q.form.update = .momentum(rho: momentum, dampening: dampening, nesterov: nesterov)
        case .preconditioned(.training, 0, nil, 1) where dampening == 0 && !nesterov && p.form.decoupledDecay == 0:
            q.form.update = .preconditioned(side: .training, rho: momentum, biasCorrection: nil, b: 1)
        default:
            return nil
        }
        return q
    }

    /// The output of update `t` (0-based) as a combination of this component's inputs:
    /// `out_t = Σ_{s≤t} c_s u_s`, returned as `[c_0, …, c_t]`. Heavy ball: `c_0 = μ^t`,
    /// `c_s = (1 − dampening) μ^{t−s}` for `s ≥ 1`; Nesterov: `μ` times those, plus 1 at `s = t`.
    public func weights(step t: Int) -> [Double] {
        precondition(t >= 0, "weights(step:): negative step \(t)")
        var c = [1.0]
        for _ in 0..<t {
            for s in c.indices { c[s] *= momentum }
            c.append(1 - dampening)
        }
        if nesterov {
            for s in c.indices { c[s] *= momentum }
            c[t] += 1
        }
        return c
    }
}

/// Adam's scaling with torch.optim.Adam's conventions (the learning rate and the sign come from
/// `ScaleByLearningRate`). Buffers `exp_avg` (m) and `exp_avg_sq` (v), zero at the start; at update
/// `t` (0-based, PyTorch's `step = t + 1`):
///
///     m ← β₁ m + (1 − β₁) u,   v ← β₂ v + (1 − β₂) u²
///     denom = √v / √(1 − β₂^{t+1}) + ε                (ε after the square root)
///     out   = (m / denom) / (1 − β₁^{t+1})
///
/// so `Δw = −η · D_t ⊙ m̂_t` with `D_t = 1/(√v̂_t + ε)` (`preconditioner`) and
/// `m̂_t = m_t/(1 − β₁^{t+1})` (`UpdateInfo.firstMomentScale` = `1/(1 − β₁^{t+1})`).
public struct ScaleByAdam: GradientTransformation {
    public let beta1: Double
    public let beta2: Double
    public let eps: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        precondition(beta1 >= 0 && beta1 < 1, "scaleByAdam: β₁ must be in [0, 1), got \(beta1)")
        precondition(beta2 >= 0 && beta2 < 1, "scaleByAdam: β₂ must be in [0, 1), got \(beta2)")
        precondition(eps >= 0 && eps.isFinite, "scaleByAdam: ε must be ≥ 0, got \(eps)")
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
    }

    public var bufferNames: [String] { ["exp_avg", "exp_avg_sq"] }
    public var description: String { "scaleByAdam(beta1: \(beta1), beta2: \(beta2), eps: \(eps))" }

    /// `1 − β^step`, PyTorch's bias correction (`step` = updates applied, counting this one).
    static func biasCorrection(_ beta: Double, _ step: Int) -> Double { 1 - Foundation.pow(beta, Double(step)) }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        var m = state.buffer(0), v = state.buffer(1)
        let step = state.count + 1
        let bc1 = Self.biasCorrection(beta1, step)
        let sqrtBC2 = Self.biasCorrection(beta2, step).squareRoot()
        let a1 = 1 - beta1, a2 = 1 - beta2
        var out = updates
        for i in out.indices {
            let g = updates[i]
            m[i] = beta1 * m[i] + a1 * g
            v[i] = beta2 * v[i] + a2 * (g * g)
            let denom = v[i].squareRoot() / sqrtBC2 + eps
            out[i] = (m[i] / denom) / bc1
        }
        return UpdateResult(updates: out, state: advanced(state, [m, v]), info: UpdateInfo(firstMomentScale: 1 / bc1))
    }

    /// Kernel form: on `u` itself, `.preconditioned(query side, ρ = β₁, bias correction β₁,
    /// b = 1 − β₁)`: `Δw_t = −η_t D_t ⊙ Σ_s (1 − β₁)β₁^{t−s} u_s / (1 − β₁^{t+1})`.
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard p.isDirection else { return nil }
        var q = p
        q.form.update = .preconditioned(side: .query, rho: beta1, biasCorrection: beta1, b: 1 - beta1)
        return q
    }

    /// `D_t = 1/(√v̂_t + ε)` with `v̂_t = v_t/(1 − β₂^{count})`, from a state after `count ≥ 1`
    /// updates (a fresh state gives `1/ε`). Computed as the update computes `denom`.
    public func preconditioner(_ state: OptimizerState) -> [Double]? {
        let v = state.buffer(1)
        guard state.count > 0 else { return v.map { _ in 1 / eps } }
        let sqrtBC2 = Self.biasCorrection(beta2, state.count).squareRoot()
        return v.map { 1 / ($0.squareRoot() / sqrtBC2 + eps) }
    }

    /// `m̂` after update `t` (0-based) as a combination of this component's inputs:
    /// `m̂_t = Σ_{s≤t} c_s u_s` with `c_s = (1 − β₁) β₁^{t−s} / (1 − β₁^{t+1})`; the weights sum to 1.
    public func firstMomentWeights(step t: Int) -> [Double] {
        precondition(t >= 0, "firstMomentWeights(step:): negative step \(t)")
        let bc1 = Self.biasCorrection(beta1, t + 1)
        return (0...t).map { s in (1 - beta1) * Foundation.pow(beta1, Double(t - s)) / bc1 }
    }
}

/// RMSProp's scaling with torch.optim.RMSprop's conventions (not centered; momentum is a separate
/// `ScaleByMomentum` after it). Buffer `square_avg`, zero at the start, no bias correction:
///
///     v ← α v + (1 − α) u²,   out = u / (√v + ε)      (ε after the square root)
///
/// so `Δw = −η D_t ⊙ u_t` with `D_t = 1/(√v_t + ε)` (`preconditioner`).
public struct ScaleByRMS: GradientTransformation {
    public let alpha: Double
    public let eps: Double

    public init(alpha: Double = 0.99, eps: Double = 1e-8) {
        precondition(alpha >= 0 && alpha < 1, "scaleByRMS: α must be in [0, 1), got \(alpha)")
        precondition(eps >= 0 && eps.isFinite, "scaleByRMS: ε must be ≥ 0, got \(eps)")
        self.alpha = alpha
        self.eps = eps
    }

    public var bufferNames: [String] { ["square_avg"] }
    public var description: String { "scaleByRMS(alpha: \(alpha), eps: \(eps))" }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        var v = state.buffer(0)
        let a = 1 - alpha
        var out = updates
        for i in out.indices {
            let g = updates[i]
            v[i] = alpha * v[i] + a * (g * g)
            out[i] = g / (v[i].squareRoot() + eps)
        }
        return UpdateResult(updates: out, state: advanced(state, [v]))
    }

    /// Kernel form: on `u` itself, `.preconditioned(training side, ρ = 0, no bias correction,
    /// b = 1)`: `Δw_t = −η_t D_t ⊙ u_t` (a `ScaleByMomentum` after it sets ρ = μ).
    public func kernelForm(after p: KernelForm.Partial) -> KernelForm.Partial? {
        guard p.isDirection else { return nil }
        var q = p
        q.form.update = .preconditioned(side: .training, rho: 0, biasCorrection: nil, b: 1)
        return q
    }

    /// `D_t = 1/(√v_t + ε)` from the state after update t.
    public func preconditioner(_ state: OptimizerState) -> [Double]? {
        state.buffer(0).map { 1 / ($0.squareRoot() + eps) }
    }
}
