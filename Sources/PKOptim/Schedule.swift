import Foundation
import PKNumerics

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
    public enum Kind: String, Codable, Sendable, CaseIterable { case constant, step, cosine }
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

    private enum CodingKeys: String, CodingKey, CaseIterable { case kind, warmupSteps, every, gamma, minLearningRate }

    /// The JSON keys a schedule accepts; any other is refused (with the closest of these).
    public static let jsonKeys = CodingKeys.allCases.map(\.rawValue)
    public static let warmupStepsRange = 0...ConfigLimits.maxSteps
    public static let everyRange = 1...ConfigLimits.maxSteps

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ScheduleSpec()
        kind = try c.decodeChoiceIfPresent(Kind.self, forKey: .kind) ?? d.kind
        warmupSteps = try c.decodeIntegerIfPresent(Int.self, forKey: .warmupSteps, in: ScheduleSpec.warmupStepsRange) ?? d.warmupSteps
        every = try c.decodeIntegerIfPresent(Int.self, forKey: .every, in: ScheduleSpec.everyRange) ?? d.every
        gamma = try c.decodeNumberIfPresent(forKey: .gamma) ?? d.gamma
        minLearningRate = try c.decodeNumberIfPresent(forKey: .minLearningRate) ?? d.minLearningRate
    }

    public func validate() throws {
        guard ScheduleSpec.warmupStepsRange.contains(warmupSteps) else {
            throw OptimError("optimizer.schedule.warmupSteps must be \(ConfigLimits.describe(ScheduleSpec.warmupStepsRange)), got \(warmupSteps)")
        }
        guard ScheduleSpec.everyRange.contains(every) else {
            throw OptimError("optimizer.schedule.every must be \(ConfigLimits.describe(ScheduleSpec.everyRange)), got \(every)")
        }
        guard gamma > 0, gamma.isFinite else { throw OptimError("optimizer.schedule.gamma must be positive, got \(gamma)") }
        guard minLearningRate >= 0, minLearningRate.isFinite else {
            throw OptimError("optimizer.schedule.minLearningRate must be a finite number ≥ 0, got \(minLearningRate)")
        }
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
