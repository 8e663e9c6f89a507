/// When a run has diverged: the rule training stops on, the same for every loss and optimizer.
///
/// A step diverges when its batch loss is not finite, when an updated weight is not finite, or
/// when the run *explodes* while staying finite: the largest absolute weight exceeds
/// `growth` × max(1, the initial largest absolute weight), or the batch loss exceeds
/// `growth` × max(1, the first step's loss). A logistic run at learning rate 1e200 ends its
/// first update with weights near 1e186: finite, but no float64 kernel of them is (their
/// squares overflow), and nothing learned by gradient descent grows by eight orders of magnitude.
public struct Divergence: Sendable {
    /// The explosion factor (1e8).
    public static let growth = 1e8

    public let initialScale: Double
    public private(set) var firstLoss: Double? = nil

    /// `initial`: the weights before the first update.
    public init(initial: [Double]) {
        initialScale = max(1, initial.reduce(0) { max($0, abs($1)) })
    }

    /// Why step `t` diverged (its batch loss, and its updated weights when they were computed),
    /// or nil when it did not.
    public mutating func check(step t: Int, loss: Double, next: [Double]?) -> String? {
        guard loss.isFinite else { return "non-finite loss (\(loss)) at step \(t)" }
        if firstLoss == nil { firstLoss = loss }
        if let first = firstLoss, abs(loss) > Divergence.growth * max(1, abs(first)) {
            return "the loss exploded at step \(t): \(loss), more than \(Divergence.growth) × the first step's \(first)"
        }
        guard let next else { return nil }
        var largest = 0.0
        for v in next {
            guard v.isFinite else { return "non-finite parameters after update \(t)" }
            largest = max(largest, abs(v))
        }
        if largest > Divergence.growth * initialScale {
            return "the weights exploded after update \(t): max |w| = \(largest), more than \(Divergence.growth) × the initial scale \(initialScale)"
        }
        return nil
    }
}
