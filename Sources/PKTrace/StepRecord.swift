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

    public init(step: Int, epoch: Int, learningRate: Double, batch: [Int32], loss: Double) {
        self.step = step
        self.epoch = epoch
        self.learningRate = learningRate
        self.batch = batch
        self.loss = loss
    }

    /// Equality compares `loss` and `learningRate` by bit pattern so that NaN losses of
    /// diverged runs compare equal to themselves (a round trip is then testable with `==`).
    public static func == (a: StepRecord, b: StepRecord) -> Bool {
        a.step == b.step && a.epoch == b.epoch && a.batch == b.batch
            && a.learningRate.bitPattern == b.learningRate.bitPattern
            && (a.loss.bitPattern == b.loss.bitPattern || (a.loss.isNaN && b.loss.isNaN))
    }
}
