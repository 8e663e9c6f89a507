/// How the path-kernel analysis reads an optimizer (`Docs/path-kernel.md` §2, §5; the section
/// "Kernel forms" of `Docs/optimizers.md`). Every optimizer the analyzer has a kernel for updates as
///
///     Δw_t = −η_t Σ_{s≤t} a_t b_s ρ^{t−s} · Dq_t ⊙ Dx_s ⊙ u_s  −  η_t λ_d (w_t − w_a),
///     u_s  = κ_s g_s + λ_c (w_s − w_a)
///
/// with `g_s` the mean batch gradient, `κ_s` the recorded clip scale (1 unless `clipped`),
/// `λ_c = coupledDecay`, `λ_d = decoupledDecay`, `w_a` the decay's anchor (`decayAnchor`: the
/// run's initial weights under `OptimizerSpec.decayAnchor` "initial", else 0), and `update` saying which sum it is. Parameter
/// groups with their own learning rates multiply the whole update by the constant diagonal
/// `M = diag(m_k)` (`learningRateScale`), which joins D: `Δw_t = −η_t M (…)`.
///
/// A chain declares its form (`GradientTransformation.kernelForm`): each component says what it
/// does to the form of the components before it (`kernelForm(after:)`), and a chain folds them.
/// An unknown component or an order the sum above cannot express (decay before a clip, two
/// moment estimators, a momentum after Adam, …) has no form: nil.
public struct KernelForm: Sendable, Equatable, CustomStringConvertible {
    /// Where the diagonal preconditioner `D = 1/(√v̂ + ε)` sits in the kernel.
    public enum PreconditionerSide: String, Sendable {
        /// `Dq_t`, with the query's Jacobian on step t: Adam (D scales the averaged first moment).
        case query
        /// `Dx_s`, with the training Jacobian on step s: RMSProp (D scales each gradient before
        /// any momentum sums it).
        case training
    }

    public enum Update: Sendable, Equatable {
        /// `Δw_t = −η_t u_t`: (S)GD, the path kernel of math §2 (summed forwards in time).
        case plain
        /// PyTorch's heavy ball on `u`: `a = 1`, `b_0 = 1`, `b_s = 1 − dampening`, ρ = μ, no D;
        /// Nesterov steps along `u_t + μ·buf_t`. The two-time kernel of math §5.
        case momentum(rho: Double, dampening: Double, nesterov: Bool)
        /// The preconditioned kernel of math §5 with constant `b`, `a_t = 1/(1 − β^{t+1})` when
        /// `biasCorrection` is β (Adam: β₁), else `a_t = 1`. `D` is read from the optimizer state
        /// (`GradientTransformation.preconditioner`). With group learning rates D includes M
        /// (Adam's and RMSProp's `D ⊙ M`), and plain (S)GD is this form with `D = M`: side
        /// `.query`, ρ = 0, no bias correction, b = 1.
        case preconditioned(side: PreconditionerSide, rho: Double, biasCorrection: Double?, b: Double)
        /// `.momentum` (PyTorch's heavy ball or Nesterov) with a constant diagonal `D = M` with
        /// the query (`Dq_t = M`, read from `preconditioner`): SGD momentum with parameter groups'
        /// own learning rates, `Δw_t = −η_t M Σ_{s≤t} c_{t,s} u_s`.
        case preconditionedMomentum(rho: Double, dampening: Double, nesterov: Bool)
    }

    public var update: Update
    /// λ_c: weight decay added to the gradient before the optimizer's core (part of `u_s`).
    public var coupledDecay: Double
    /// λ_d: the decay term `−η_t λ_d w_t` outside the sum (AdamW; not a combination of
    /// per-example gradients, so the analysis sizes it as its own term).
    public var decoupledDecay: Double
    /// With parameter groups: the decay `λ_k` of every parameter (of whichever decay the chain
    /// has, coupled or decoupled; a recorded optimizer has one at most), the scalars above then
    /// being the largest; nil: the scalar λ for every parameter. `decay(of:times:lambda:)` applies it.
    public var decayByParameter: [Double]? = nil
    /// With parameter groups that have their own learning rates: `m_k = η_k/η` of every
    /// parameter, `M = diag(m_k)` multiplying the whole update (PyTorch's group `lr` over the base
    /// rate, constant over the run); nil: 1 for all. The chain's `preconditioner(state)` already
    /// includes it (D ⊙ M, or M alone for (S)GD and momentum), and a decoupled decay's
    /// `decayByParameter` is then `m_k λ_k` (PyTorch's `lr_k λ_k w`).
    public var learningRateScale: [Double]? = nil
    /// Whether the gradient is clipped first (`κ_s` is then the trace's recorded clip scale).
    public var clipped: Bool
    /// `w_a`, the weights the decay pulls towards (P entries: the run's `w₀` under
    /// `OptimizerSpec.decayAnchor` "initial"); nil: 0. `decay(of:times:lambda:)` subtracts it.
    public var decayAnchor: [Double]? = nil

    public init(_ update: Update, coupledDecay: Double = 0, decoupledDecay: Double = 0, clipped: Bool = false) {
        self.update = update
        self.coupledDecay = coupledDecay
        self.decoupledDecay = decoupledDecay
        self.clipped = clipped
    }

    /// `w − w_a`, the displacement the decay acts on (`w` itself, unchanged, without an anchor).
    public func displacement(_ w: [Double]) -> [Double] {
        guard let anchor = decayAnchor else { return w }
        precondition(anchor.count == w.count, "decay: anchor of \(anchor.count) for \(w.count) parameters")
        return zip(w, anchor).map { $0 - $1 }
    }

    /// `c·λ_k·(w_k − w_{a,k})` for every parameter, with `λ_k` from `decayByParameter`, else the
    /// scalar `lambda` (`w_a` = `decayAnchor`, 0 without one).
    public func decay(of w: [Double], times c: Double, lambda: Double) -> [Double] {
        decay(ofDisplacement: displacement(w), times: c, lambda: lambda)
    }

    /// `c·λ_k·d_k` for a displacement `d` already taken from the anchor (a momentum buffer of
    /// displacements, `Σ_s c_{t,s}(w_s − w_a)`, whose coefficients need not sum to 1).
    public func decay(ofDisplacement w: [Double], times c: Double, lambda: Double) -> [Double] {
        guard let perParameter = decayByParameter else { return w.map { c * lambda * $0 } }
        precondition(perParameter.count == w.count, "decay: \(perParameter.count) decays for \(w.count) parameters")
        return zip(perParameter, w).map { (c * $0) * $1 }
    }

    /// The heavy ball's parameters when `update` is `.momentum` (no D), else nil (with group
    /// learning rates momentum is `.preconditionedMomentum`).
    public var momentum: (rho: Double, dampening: Double, nesterov: Bool)? {
        if case let .momentum(rho, dampening, nesterov) = update { return (rho, dampening, nesterov) }
        return nil
    }

    /// The optimizer this form is, by name: `SGD`, `SGD momentum`, `SGD Nesterov`, `Adam`,
    /// `AdamW` (Adam's form with a decoupled decay), `RMSProp`. (S)GD with group learning rates
    /// (`.preconditioned` without bias correction with the query, `.preconditionedMomentum`)
    /// keeps its name.
    public var name: String {
        switch update {
        case .plain, .preconditioned(.query, _, nil, _): return "SGD"
        case .momentum(_, _, let nesterov), .preconditionedMomentum(_, _, let nesterov): return nesterov ? "SGD Nesterov" : "SGD momentum"
        case .preconditioned(.query, _, _, _): return decoupledDecay > 0 ? "AdamW" : "Adam"
        case .preconditioned(.training, _, _, _): return "RMSProp"
        }
    }

    public var description: String {
        var s: String
        switch update {
        case .plain: s = "plain"
        case let .momentum(rho, dampening, nesterov):
            s = "momentum(ρ \(rho), dampening \(dampening)\(nesterov ? ", Nesterov" : ""))"
        case let .preconditioned(side, rho, beta, b):
            s = "preconditioned(D with the \(side.rawValue) side, ρ \(rho), bias correction \(beta.map { "β \($0)" } ?? "none"), b \(b))"
        case let .preconditionedMomentum(rho, dampening, nesterov):
            s = "preconditioned momentum(D with the query side, ρ \(rho), dampening \(dampening)\(nesterov ? ", Nesterov" : ""))"
        }
        if learningRateScale != nil { s += ", group learning rates" }
        if coupledDecay != 0 { s += ", coupled decay \(coupledDecay)" }
        if decoupledDecay != 0 { s += ", decoupled decay \(decoupledDecay)" }
        if decayAnchor != nil { s += ", decay towards w₀" }
        if clipped { s += ", clipped" }
        return s
    }

    /// The form of a chain's first components as the next component sees it: the form so far
    /// (`.plain` with no decay: the gradient itself) and whether the learning rate has been
    /// applied (after `ScaleByLearningRate` the updates are `Δw`, before it a direction).
    public struct Partial: Sendable, Equatable {
        public var form: KernelForm
        public var scaledByLearningRate: Bool

        public init(form: KernelForm, scaledByLearningRate: Bool) {
            self.form = form
            self.scaledByLearningRate = scaledByLearningRate
        }

        /// Before the first component: the updates are the gradient.
        public static let start = Partial(form: KernelForm(.plain), scaledByLearningRate: false)

        /// Before the learning rate and any core (momentum, Adam, RMSProp): `u = κ g + λ_c w`.
        var isDirection: Bool { !scaledByLearningRate && form.update == .plain }
    }
}

extension GradientTransformation {
    /// A transformation that does not declare its part has no kernel form.
    public func kernelForm(after prefix: KernelForm.Partial) -> KernelForm.Partial? { nil }

    /// The kernel form of this transformation as a full optimizer (a chain that ends in
    /// `ScaleByLearningRate`, possibly followed by `AddDecoupledWeightDecay`); nil when it has none.
    public var kernelForm: KernelForm? {
        guard let p = kernelForm(after: .start), p.scaledByLearningRate else { return nil }
        return p.form
    }
}
