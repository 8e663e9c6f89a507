import Foundation

/// Learning-rate schedules: `η_t` for update `t = 0, 1, …, T − 1`.
///
/// With `warmupSteps = W > 0`, the first `W` updates ramp linearly, `η_t = η·(t + 1)/W`; the
/// schedule proper then runs on the shifted step `u = t − W` over `T − W` updates:
///
/// - `constant`: `η`
/// - `step`: `η · γ^⌊u / every⌋` (Keras/PyTorch `StepLR`)
/// - `cosine`: `η_min + (η − η_min) · ½(1 + cos(π u / (T − W)))` (Loshchilov & Hutter 2017,
///   SGDR, without restarts)
public struct ScheduleSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case constant, step, cosine }
    public var kind: Kind
    public var warmupSteps: Int
    /// `step`: multiply by `gamma` every `every` updates.
    public var every: Int
    public var gamma: Double
    /// `cosine`: the final learning rate.
    public var minLearningRate: Double

    public init(kind: Kind = .constant, warmupSteps: Int = 0, every: Int = 100, gamma: Double = 0.1,
                minLearningRate: Double = 0) {
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.every = every
        self.gamma = gamma
        self.minLearningRate = minLearningRate
    }

    public static let constant = ScheduleSpec()

    private enum CodingKeys: String, CodingKey { case kind, warmupSteps, every, gamma, minLearningRate }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ScheduleSpec()
        kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? d.kind
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? d.warmupSteps
        every = try c.decodeIfPresent(Int.self, forKey: .every) ?? d.every
        gamma = try c.decodeIfPresent(Double.self, forKey: .gamma) ?? d.gamma
        minLearningRate = try c.decodeIfPresent(Double.self, forKey: .minLearningRate) ?? d.minLearningRate
    }

    public func validate() throws {
        guard warmupSteps >= 0 else { throw OptimError("schedule.warmupSteps must be ≥ 0, got \(warmupSteps)") }
        guard every >= 1 else { throw OptimError("schedule.every must be ≥ 1, got \(every)") }
        guard gamma > 0, gamma.isFinite else { throw OptimError("schedule.gamma must be positive, got \(gamma)") }
        guard minLearningRate >= 0 else { throw OptimError("schedule.minLearningRate must be ≥ 0") }
    }

    /// The learning rate of update `t` in a run of `totalSteps` updates with base rate `base`.
    public func learningRate(step t: Int, totalSteps: Int, base: Double) -> Double {
        if warmupSteps > 0 && t < warmupSteps {
            return base * Double(t + 1) / Double(warmupSteps)
        }
        let u = t - warmupSteps
        switch kind {
        case .constant:
            return base
        case .step:
            return base * Foundation.pow(gamma, Double(u / every))
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let progress = min(Double(u) / Double(span), 1)
            return minLearningRate + (base - minLearningRate) * 0.5 * (1 + Foundation.cos(Double.pi * progress))
        }
    }
}

/// An invalid optimizer, schedule or loss setting, described in one line.
public struct OptimError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
