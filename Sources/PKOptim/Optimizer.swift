import PKNumerics

/// Optimizers as pure value transformations (in the style of optax):
/// `update(gradient, state, parameters, learningRate) → (delta, newState)`, with the new
/// parameters `w + delta`. The state is a value, so it can be stored and replayed exactly.
///
/// Implemented now: gradient descent (full-batch `gd`, minibatch `sgd`) with optional L2 weight
/// decay, `Δw = −η_t (∇L_B(w) + λ w)` where `∇L_B` is the mean-over-batch loss gradient. This is
/// the update of section 2 of the path-kernel math: the weight-decay part is the `R_wd` term.
public struct OptimizerSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Full-batch gradient descent: every update uses every training example.
        case gd
        /// Minibatch stochastic gradient descent: seeded shuffling each epoch.
        case sgd
    }
    public var kind: Kind
    public var learningRate: Double
    /// L2 weight decay λ (coupled: added to the gradient).
    public var weightDecay: Double
    public var schedule: ScheduleSpec

    public init(kind: Kind, learningRate: Double, weightDecay: Double = 0, schedule: ScheduleSpec = .constant) {
        self.kind = kind
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.schedule = schedule
    }

    private enum CodingKeys: String, CodingKey { case kind, learningRate, weightDecay, schedule }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0
        schedule = try c.decodeIfPresent(ScheduleSpec.self, forKey: .schedule) ?? .constant
    }

    public func validate() throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw OptimError("optimizer.learningRate must be a positive number, got \(learningRate)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw OptimError("optimizer.weightDecay must be ≥ 0, got \(weightDecay)")
        }
        try schedule.validate()
    }

    /// A one-line human description, e.g. `sgd lr 0.1 (cosine, warm-up 10), weight decay 1e-4`.
    public var summary: String {
        var s = "\(kind.rawValue) lr \(learningRate)"
        var sched = schedule.kind.rawValue
        if schedule.warmupSteps > 0 { sched += ", warm-up \(schedule.warmupSteps)" }
        if schedule.kind != .constant || schedule.warmupSteps > 0 { s += " (\(sched))" }
        if weightDecay > 0 { s += ", weight decay \(weightDecay)" }
        return s
    }
}

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
