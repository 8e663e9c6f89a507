import PKNumerics

/// The optimizer of a run: its update rule (`Docs/optimizers.md`), learning rate, schedule and
/// hyper-parameters, in PyTorch's conventions. Built into a `GradientTransformation` chain by
/// `transformation()` (optax's design: `init(params) → state`, `update(g, state, w) → (Δw, state)`),
/// which training and the analyzer's replay share.
///
/// `gd` updates with every training example; the others use minibatches of
/// `training.batchSize` (every example when it is not given). `weightDecay` is coupled L2
/// (`g + λw`) except for `adamw`, whose decay is decoupled (`w ← w − ηλw`); with `decayAnchor`
/// "initial" either decay pulls towards the run's initial weights `w₀` instead of 0
/// (`g + λ(w − w₀)`, `w ← w − ηλ(w − w₀)`: NeuralUCB's TrainNN ridge, Docs/bandits-and-pruning.md).
public struct OptimizerSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Full-batch gradient descent (optionally with momentum).
        case gd
        /// Minibatch SGD: seeded shuffling each epoch (optionally momentum, Nesterov).
        case sgd
        /// Adam (torch.optim.Adam), coupled L2 decay.
        case adam
        /// AdamW (torch.optim.AdamW), decoupled decay.
        case adamw
        /// RMSProp (torch.optim.RMSprop, not centered).
        case rmsprop
    }
    /// What the weight decay pulls towards.
    public enum DecayAnchor: String, Codable, Sendable, CaseIterable {
        /// 0: `λw` (every optimizer's usual decay; the default, not written to JSON).
        case zero
        /// The run's initial weights `w₀`: `λ(w − w₀)` (the trace's step-0 checkpoint).
        case initial
    }
    public var kind: Kind
    public var learningRate: Double
    /// Weight decay λ (coupled L2, except decoupled for `adamw`).
    public var weightDecay: Double
    public var schedule: ScheduleSpec
    /// Heavy-ball momentum μ (sgd, gd, rmsprop); 0 = none.
    public var momentum: Double
    /// Momentum dampening (sgd, gd).
    public var dampening: Double
    public var nesterov: Bool
    public var beta1: Double
    public var beta2: Double
    /// RMSProp's smoothing constant.
    public var alpha: Double
    public var eps: Double
    /// Global-norm gradient clipping bound; nil = no clipping.
    public var clipNorm: Double?
    /// Parameter groups (PyTorch's `param_groups`: the usual AdamW set-up with no decay on biases
    /// and norms, or layers with their own learning rates): tensors whose name matches one of a
    /// group's patterns take its `weightDecay` and `learningRate` (each, when the group gives
    /// it); the first matching group wins, tensors in no group take the settings above. Empty: none.
    public var groups: [ParameterGroup] = []
    /// A fixed parameter mask (Neural Tangent Transfer's sparse networks,
    /// Docs/bandits-and-pruning.md): `false` entries are pruned, their learning-rate multiplier is
    /// 0 (they never move; pathkernel starts them at 0), `true` entries train as without a mask.
    /// Not part of `optimizer_json`: a trace stores it as its own tensor (`parameter_mask`,
    /// Docs/trace-format.md), a run gets it from `train --init`. nil: no mask.
    public var parameterMask: [Bool]? = nil
    /// What the decay pulls towards (`"decayAnchor"` in the JSON, absent = `.zero`). A trace that
    /// sets it is refused by a pathkernel older than the option (its optimizer_json has an
    /// unknown key), never analyzed as a decay towards 0.
    public var decayAnchor: DecayAnchor = .zero
    /// `w₀`, the weights of `decayAnchor` `.initial` (P entries). Not part of `optimizer_json`:
    /// the trainer sets it to the run's initialization, the analyzer to the trace's step-0
    /// checkpoint. nil with `.initial`: `transformation` checks settings only, and refuses to
    /// build for a model (it would not know where to pull).
    public var decayAnchorWeights: [Double]? = nil

    public init(kind: Kind, learningRate: Double, weightDecay: Double = 0, schedule: ScheduleSpec = .constant,
                momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false, beta1: Double = 0.9,
                beta2: Double = 0.999, alpha: Double = 0.99, eps: Double = 1e-8, clipNorm: Double? = nil) {
        self.kind = kind
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.beta1 = beta1
        self.beta2 = beta2
        self.alpha = alpha
        self.eps = eps
        self.clipNorm = clipNorm
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, learningRate, weightDecay, schedule, momentum, dampening, nesterov, beta1, beta2, alpha, eps, clipNorm, groups, decayAnchor
    }

    /// The JSON keys an optimizer spec accepts; any other is refused (with the closest of these).
    public static let jsonKeys = CodingKeys.allCases.map(\.rawValue)

    /// The JSON keys that apply to `kind`: `momentum`, `dampening`, `nesterov` for gd and sgd;
    /// `beta1`, `beta2`, `eps` for Adam and AdamW; `alpha`, `eps`, `momentum` for RMSProp; the
    /// rate, decay, schedule and clipping for all. Run configs refuse the others (the update
    /// rule would ignore them).
    public static func jsonKeys(for kind: Kind) -> [String] {
        let own: Set<CodingKeys>
        switch kind {
        case .gd, .sgd: own = [.momentum, .dampening, .nesterov]
        case .adam, .adamw: own = [.beta1, .beta2, .eps]
        case .rmsprop: own = [.alpha, .eps, .momentum]
        }
        let common: Set<CodingKeys> = [.kind, .learningRate, .weightDecay, .schedule, .clipNorm, .groups, .decayAnchor]
        return CodingKeys.allCases.filter { common.contains($0) || own.contains($0) }.map(\.rawValue)
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeChoice(Kind.self, forKey: .kind)
        learningRate = try c.decodeNumber(forKey: .learningRate)
        weightDecay = try c.decodeNumberIfPresent(forKey: .weightDecay) ?? 0
        schedule = try c.decodeIfPresent(ScheduleSpec.self, forKey: .schedule) ?? .constant
        momentum = try c.decodeNumberIfPresent(forKey: .momentum) ?? 0
        dampening = try c.decodeNumberIfPresent(forKey: .dampening) ?? 0
        nesterov = try c.decodeIfPresent(Bool.self, forKey: .nesterov) ?? false
        beta1 = try c.decodeNumberIfPresent(forKey: .beta1) ?? 0.9
        beta2 = try c.decodeNumberIfPresent(forKey: .beta2) ?? 0.999
        alpha = try c.decodeNumberIfPresent(forKey: .alpha) ?? 0.99
        eps = try c.decodeNumberIfPresent(forKey: .eps) ?? 1e-8
        clipNorm = try c.decodeNumberIfPresent(forKey: .clipNorm)
        groups = try c.decodeIfPresent([ParameterGroup].self, forKey: .groups) ?? []
        decayAnchor = try c.decodeChoiceIfPresent(DecayAnchor.self, forKey: .decayAnchor) ?? .zero
    }

    /// Encodes only what differs from the defaults besides kind, rate, decay and schedule, so
    /// that plain (S)GD configs read as before.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(weightDecay, forKey: .weightDecay)
        try c.encode(schedule, forKey: .schedule)
        let d = OptimizerSpec(kind: kind, learningRate: learningRate)
        if momentum != d.momentum { try c.encode(momentum, forKey: .momentum) }
        if dampening != d.dampening { try c.encode(dampening, forKey: .dampening) }
        if nesterov { try c.encode(nesterov, forKey: .nesterov) }
        if beta1 != d.beta1 { try c.encode(beta1, forKey: .beta1) }
        if beta2 != d.beta2 { try c.encode(beta2, forKey: .beta2) }
        if alpha != d.alpha { try c.encode(alpha, forKey: .alpha) }
        if eps != d.eps { try c.encode(eps, forKey: .eps) }
        try c.encodeIfPresent(clipNorm, forKey: .clipNorm)
        if !groups.isEmpty { try c.encode(groups, forKey: .groups) }
        if decayAnchor != .zero { try c.encode(decayAnchor, forKey: .decayAnchor) }
    }

    public func validate() throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw OptimError("optimizer.learningRate must be a positive number, got \(learningRate)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw OptimError("optimizer.weightDecay must be ≥ 0, got \(weightDecay)")
        }
        try schedule.validate()
        if decayAnchor == .initial && weightDecay == 0 && !groups.contains(where: { ($0.weightDecay ?? 0) > 0 }) {
            throw OptimError("optimizer.decayAnchor \"initial\" needs a weightDecay > 0 (it says what the decay pulls towards; without decay there is nothing to anchor)")
        }
        for (i, g) in groups.enumerated() {
            guard !g.parameters.isEmpty, !g.parameters.contains(where: \.isEmpty) else {
                throw OptimError("optimizer.groups[\(i)].parameters must list at least one non-empty tensor name or pattern")
            }
            guard g.weightDecay != nil || g.learningRate != nil else {
                throw OptimError("optimizer.groups[\(i)] sets neither weightDecay nor learningRate: give the group's tensors at least one of them (or remove the group)")
            }
            if let wd = g.weightDecay, !(wd >= 0 && wd.isFinite) {
                throw OptimError("optimizer.groups[\(i)].weightDecay must be ≥ 0, got \(wd)")
            }
            if let lr = g.learningRate, !(lr > 0 && lr.isFinite) {
                throw OptimError("optimizer.groups[\(i)].learningRate must be a positive number (the group's own base rate, as PyTorch's param_group lr), got \(lr)")
            }
            if let lr = g.learningRate, !((lr / learningRate).isFinite && lr / learningRate > 0) {
                throw OptimError("optimizer.groups[\(i)].learningRate \(lr) over learningRate \(learningRate) is not a finite positive ratio; bring the two rates closer")
            }
        }
        _ = try transformation(parameters: groups.isEmpty ? nil : [])
    }

    /// The weight decay and the learning-rate multiplier `m = learningRate_group / learningRate`
    /// of the tensor `name`: the first group whose pattern matches it sets what it gives, the rest
    /// comes from the top level (`weightDecay`, m = 1).
    public func settings(ofTensor name: String) -> (weightDecay: Double, rateMultiplier: Double) {
        guard let g = groups.first(where: { g in g.parameters.contains { ParameterGroup.matches($0, name) } }) else {
            return (weightDecay, 1)
        }
        return (g.weightDecay ?? weightDecay, g.learningRate.map { $0 / learningRate } ?? 1)
    }

    /// The update rule as a chain of transformations (`Transform.make`). With parameter groups it
    /// needs the model's parameter tensors `(name, count)` in layout order (each parameter's decay
    /// λ_k and learning-rate multiplier m_k follow its tensor's group, `settings(ofTensor:)`); a
    /// pattern that matches no tensor is an error naming it; `parameters: []` checks the settings
    /// only (every decay then the largest, every multiplier 1: the same components and buffers).
    ///
    /// Group learning rates follow PyTorch: a group's `learningRate` is its own base rate, and a
    /// schedule scales every group's by the same factor, so parameter k steps with
    /// `η_t m_k = η_t · learningRate_k / learningRate` (`η_t` the recorded rate of the top level).
    /// When every m_k is 1 the chain is the one without group rates, bit for bit.
    public func transformation(parameters: [(name: String, count: Int)]? = nil) throws -> Chain {
        var perParameter: [Double]? = nil
        var rates: [Double]? = nil
        var lambda = weightDecay
        if !groups.isEmpty {
            guard let parameters else {
                throw OptimError("optimizer.groups: the update rule needs the model's parameter tensors to place the groups")
            }
            lambda = max(weightDecay, groups.map { $0.weightDecay ?? weightDecay }.max() ?? 0)
            if !parameters.isEmpty {
                for (i, g) in groups.enumerated() {
                    if let unused = g.parameters.first(where: { pattern in !parameters.contains { ParameterGroup.matches(pattern, $0.name) } }) {
                        throw OptimError("optimizer.groups[\(i)]: \"\(unused)\" matches no parameter tensor (the model's: \(parameters.map(\.name).joined(separator: ", ")))")
                    }
                }
                var decays: [Double] = [], multipliers: [Double] = []
                for p in parameters {
                    let s = settings(ofTensor: p.name)
                    decays += repeatElement(s.weightDecay, count: p.count)
                    multipliers += repeatElement(s.rateMultiplier, count: p.count)
                }
                perParameter = decays
                if multipliers.contains(where: { $0 != 1 }) { rates = multipliers }
            }
        }
        if let mask = parameterMask, let parameters, !parameters.isEmpty {
            let P = parameters.reduce(0) { $0 + $1.count }
            guard mask.count == P else {
                throw OptimError("parameter mask has \(mask.count) entries, the model has \(P) parameters")
            }
            // Pruned entries step with rate 0: their gradient is masked with the update (for every
            // optimizer but a clip, whose norm would still see them: refused below).
            guard clipNorm == nil else {
                throw OptimError("a parameter mask (train --init) with clipNorm is not supported: the clip's norm would include the pruned entries' gradients; drop optimizer.clipNorm")
            }
            let base = rates ?? [Double](repeating: 1, count: P)
            rates = zip(base, mask).map { $1 ? $0 : 0 }
        }
        var anchor: [Double]? = nil
        if decayAnchor == .initial, let parameters, !parameters.isEmpty {
            let P = parameters.reduce(0) { $0 + $1.count }
            guard let w0 = decayAnchorWeights else {
                throw OptimError("optimizer.decayAnchor \"initial\": the run's initial weights are not known here (set decayAnchorWeights)")
            }
            guard w0.count == P else {
                throw OptimError("optimizer.decayAnchor \"initial\": the anchor has \(w0.count) weights, the model has \(P) parameters")
            }
            anchor = w0
        }
        return try Transform.make(kind: kind.rawValue, momentum: momentum, dampening: dampening, nesterov: nesterov,
                                  beta1: beta1, beta2: beta2, alpha: alpha, eps: eps, weightDecay: lambda,
                                  decoupled: kind == .adamw ? true : nil, clipNorm: clipNorm,
                                  decayByParameter: lambda > 0 ? perParameter : nil,
                                  learningRateByParameter: rates, decayAnchor: lambda > 0 ? anchor : nil)
    }

    /// A one-line human description, e.g. `sgd lr 0.1 (cosine, warm-up 10), momentum 0.9, weight decay 1e-4`.
    public var summary: String {
        var s = "\(kind.rawValue) lr \(learningRate)"
        var sched = schedule.kind.rawValue
        if schedule.warmupSteps > 0 { sched += ", warm-up \(schedule.warmupSteps)" }
        if schedule.kind != .constant || schedule.warmupSteps > 0 { s += " (\(sched))" }
        if momentum > 0 { s += ", \(nesterov ? "Nesterov " : "")momentum \(momentum)" }
        if kind == .adam || kind == .adamw { s += ", β = (\(beta1), \(beta2))" }
        if weightDecay > 0 { s += ", \(kind == .adamw ? "decoupled " : "")weight decay \(weightDecay)" }
        if decayAnchor == .initial { s += " towards w₀" }
        for g in groups {
            let parts = [g.learningRate.map { "lr \($0)" }, g.weightDecay.map { "weight decay \($0)" }].compactMap { $0 }
            s += ", \(parts.joined(separator: " and ")) on \(g.parameters.joined(separator: " "))"
        }
        if let clipNorm { s += ", clip ‖g‖ ≤ \(clipNorm)" }
        if let mask = parameterMask { s += ", mask: \(mask.lazy.filter { $0 }.count) of \(mask.count) parameters train" }
        return s
    }
}

/// Plain gradient descent written out directly: the reference that `Transform.sgd()` equals bit
/// for bit (tests); training and replay use the transformation chains.
/// Gradient descent as a value transformation. Stateless (its state is `Void`), so replay needs
/// only the recorded learning rates and batches.
public struct GradientDescent: Sendable {
    public let weightDecay: Double

    public init(weightDecay: Double = 0) { self.weightDecay = weightDecay }

    /// `Δw = −η (g + λ w)`.
    public func delta(gradient g: [Double], parameters w: [Double], learningRate eta: Double) -> [Double] {
        precondition(g.count == w.count, "gradient has \(g.count) entries, parameters \(w.count)")
        var d = [Double](repeating: 0, count: g.count)
        if weightDecay == 0 {
            for i in d.indices { d[i] = -eta * g[i] }
        } else {
            for i in d.indices { d[i] = -eta * (g[i] + weightDecay * w[i]) }
        }
        return d
    }
}

/// One parameter group of `OptimizerSpec.groups`: the tensors it covers (names as in the trace's
/// `parameter_layout`, or patterns where `*` matches any run of characters, dots included:
/// `*.bias`, `1.block.0.*`), their weight decay and their learning rate. Each of the two is
/// optional (nil: the optimizer's own), but a group gives at least one (`OptimizerSpec.validate`).
public struct ParameterGroup: Codable, Sendable, Equatable {
    public var parameters: [String]
    /// λ of the group's tensors; nil: the optimizer's `weightDecay`.
    public var weightDecay: Double?
    /// The group's base learning rate, absolute as PyTorch's param_group `lr` (a schedule scales
    /// it by the same factor as the optimizer's `learningRate`); nil: the optimizer's.
    public var learningRate: Double?

    public init(parameters: [String], weightDecay: Double? = nil, learningRate: Double? = nil) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        self.learningRate = learningRate
    }

    private enum CodingKeys: String, CodingKey, CaseIterable { case parameters, weightDecay, learningRate }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        parameters = try c.decode([String].self, forKey: .parameters)
        weightDecay = try c.decodeNumberIfPresent(forKey: .weightDecay)
        learningRate = try c.decodeNumberIfPresent(forKey: .learningRate)
    }

    /// Writes only the settings the group gives (a group with a decay only encodes as before).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(parameters, forKey: .parameters)
        try c.encodeIfPresent(weightDecay, forKey: .weightDecay)
        try c.encodeIfPresent(learningRate, forKey: .learningRate)
    }

    /// Whether `name` matches `pattern` (`*`: any run of characters, possibly empty; anything
    /// else literally).
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern), n = Array(name)
        // Greedy glob with backtracking to the last star.
        var i = 0, j = 0, star = -1, mark = 0
        while j < n.count {
            if i < p.count && p[i] != "*" && p[i] == n[j] { i += 1; j += 1 }
            else if i < p.count && p[i] == "*" { star = i; mark = j; i += 1 }
            else if star >= 0 { i = star + 1; mark += 1; j = mark }
            else { return false }
        }
        while i < p.count && p[i] == "*" { i += 1 }
        return i == p.count
    }
}
