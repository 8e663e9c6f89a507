/// The result of `TraceReader.validate()`: counts, the committed extent, and every problem found.
///
/// A trace is sound when `problems` is empty. A killed run is sound: its step rows may extend
/// past its last checkpoint, which is not a problem. Problems are one-line, human-readable
/// strings that name the step, split or table concerned.
public struct TraceValidation: Sendable, Equatable {
    /// Step rows stored.
    public var stepCount: Int
    /// Checkpoints stored.
    public var checkpointCount: Int
    /// The highest step row stored (nil without step rows).
    public var lastStep: Int?
    /// The highest checkpoint step stored (nil without checkpoints).
    public var lastCheckpoint: Int?
    /// Steps in `0..<lastStep` that have no row.
    public var missingSteps: [Int]
    /// Checkpoints whose blob fails its length or checksum check.
    public var corruptCheckpoints: [Int]
    public var problems: [String]

    public init(stepCount: Int = 0, checkpointCount: Int = 0, lastStep: Int? = nil, lastCheckpoint: Int? = nil,
                missingSteps: [Int] = [], corruptCheckpoints: [Int] = [], problems: [String] = []) {
        self.stepCount = stepCount
        self.checkpointCount = checkpointCount
        self.lastStep = lastStep
        self.lastCheckpoint = lastCheckpoint
        self.missingSteps = missingSteps
        self.corruptCheckpoints = corruptCheckpoints
        self.problems = problems
    }

    /// True when no problem was found.
    public var isValid: Bool { problems.isEmpty }
}
