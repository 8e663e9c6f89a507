import PKData
import PKNetworks
import PKOptim
import PKTrace

/// What the training loop tells its observers, in this order: `started`, `checkpoint(0)`, then
/// for each update `t` a `step(t)` (loss at `w_t`, the batch and rate used) followed, when due,
/// by `checkpoint(t + 1)`, and finally `finished`. Recording and progress printing are observers.
public enum TrainingEvent: Sendable {
    case started(TrainingStart)
    case step(StepInfo)
    /// Weights *before* update `step` (step 0 = initialization; step T = final), with the
    /// optimizer's state at that point when it keeps one (momentum, Adam, RMSProp).
    case checkpoint(step: Int, parameters: [Double], optimizerState: OptimizerState?)
    case finished(TrainingOutcome)
}

public struct TrainingStart: Sendable {
    public let config: RunConfig
    public let model: any Network
    public let data: DataSplit
    public let plannedSteps: Int
}

public struct StepInfo: Sendable, Equatable {
    public let step: Int
    public let epoch: Int
    public let learningRate: Double
    public let batch: [Int]
    /// Mean batch loss at the weights before the update (NaN or ±∞ when the run diverged here).
    public let loss: Double
    /// The factor gradient clipping applied (1 when it did not clip); nil without clipping.
    public var clipScale: Double? = nil
}

public struct TrainingOutcome: Sendable {
    public let status: RunStatus
    public let message: String?
    /// Updates completed.
    public let stepsDone: Int
    public let finalParameters: [Double]
    public let lastLoss: Double?
}

/// Receives training events on the training thread; must return quickly.
public protocol TrainingObserver: AnyObject {
    func observe(_ event: TrainingEvent)
    /// Non-nil asks the loop to stop with status `aborted` and this message (for example a
    /// recorder that can no longer write).
    var stopReason: String? { get }
}

extension TrainingObserver {
    public var stopReason: String? { nil }
}
