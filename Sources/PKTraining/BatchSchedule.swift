import PKNumerics

/// The batches of a run, step by step, drawn from the run's seed.
///
/// `gd`: every step is the whole training set in index order. `sgd`: each epoch is a
/// permutation of `0..<n` (Fisher–Yates with `PortableRandom.stream(seed:label: 0xBA7C)`,
/// drawn afresh each epoch), cut into consecutive batches of `batchSize`; the last, smaller
/// batch is kept unless `dropLast`.
public struct BatchSchedule: Sendable {
    public let count: Int
    public let batchSize: Int
    public let dropLast: Bool
    public let fullBatch: Bool
    private var rng: PortableRandom
    private var order: [Int] = []
    private var cursor = 0
    public private(set) var epoch = -1

    public static let streamLabel: UInt64 = 0xBA7C

    public init(count n: Int, batchSize: Int?, dropLast: Bool, fullBatch: Bool, seed: UInt64) {
        precondition(n >= 1, "empty training set")
        count = n
        self.fullBatch = fullBatch || (batchSize ?? n) >= n
        self.batchSize = self.fullBatch ? n : batchSize!
        self.dropLast = dropLast
        rng = PortableRandom.stream(seed: seed, label: BatchSchedule.streamLabel)
    }

    /// The next batch and the epoch it belongs to.
    public mutating func next() -> (epoch: Int, indices: [Int]) {
        if fullBatch {
            epoch += 1
            return (epoch, Array(0..<count))
        }
        let remaining = order.count - cursor
        if remaining == 0 || (dropLast && remaining < batchSize) {
            order = rng.permutation(count)
            cursor = 0
            epoch += 1
        }
        let end = min(cursor + batchSize, order.count)
        let batch = Array(order[cursor..<end])
        cursor = end
        return (epoch, batch)
    }
}
