/// One update of the run (a row of the `step` table).
///
/// Indexing: `step` s is the update that takes the weights stored (or not) as checkpoint s to
/// those of checkpoint s + 1. `loss` is the batch loss at the weights *before* the update (the
/// weights of checkpoint s). A NaN loss (diverged run) is stored as SQL NULL, because SQLite
/// cannot store NaN, and reads back as NaN; ±infinity is stored as is.
/// `batch` lists the training-example indices of the minibatch in the order used.
public struct StepRecord: Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    public var learningRate: Double
    public var batch: [Int32]
    public var loss: Double
    /// The factor gradient clipping applied at this step (1 when it did not clip); nil when the
    /// optimizer does not clip (schema v2).
    public var clipScale: Double?

    public init(step: Int, epoch: Int, learningRate: Double, batch: [Int32], loss: Double, clipScale: Double? = nil) {
        self.step = step
        self.epoch = epoch
        self.learningRate = learningRate
        self.batch = batch
        self.loss = loss
        self.clipScale = clipScale
    }

    /// Equality compares `loss` and `learningRate` by bit pattern so that NaN losses of
    /// diverged runs compare equal to themselves (a round trip is then testable with `==`).
    public static func == (a: StepRecord, b: StepRecord) -> Bool {
        a.step == b.step && a.epoch == b.epoch && a.batch == b.batch
            && a.learningRate.bitPattern == b.learningRate.bitPattern
            && (a.loss.bitPattern == b.loss.bitPattern || (a.loss.isNaN && b.loss.isNaN))
            && a.clipScale?.bitPattern == b.clipScale?.bitPattern
    }
}

/// An optimizer's state stored with a checkpoint (schema v2): named buffers of one value per
/// parameter (`names.count × parameterCount` values, buffer-major) and the optimizer's step count.
/// Restoring it lets replay continue exactly from that checkpoint.
public struct StoredOptimizerState: Sendable, Equatable {
    public var names: [String]
    public var count: Int
    public var values: [Double]

    public init(names: [String], count: Int, values: [Double]) {
        self.names = names
        self.count = count
        self.values = values
    }
}
