/// What a trace held at one moment, in four values that are cheap to read (index lookups, no
/// blob): the run's status, its last step row, its last checkpoint and that checkpoint's
/// checksum. An analysis is stored with the basis it was computed from (schema v3); when the
/// trace's basis has changed since, the analysis no longer describes the trace.
///
/// Does not hold: it is not a hash of the content. A trace edited in place without changing its
/// status, its last step number or its last checkpoint (an earlier row rewritten with sqlite3)
/// keeps its basis. Appending step rows or checkpoints, finishing, diverging or aborting a run,
/// and recording a new run at the same path all change it.
public struct TraceBasis: Sendable, Equatable, Codable {
    public var status: RunStatus
    /// The highest step row, nil when there is none.
    public var lastStep: Int?
    /// The highest checkpoint step, nil when there is none.
    public var lastCheckpoint: Int?
    /// The CRC-32 of that checkpoint's blob (its stored `checksum`).
    public var checkpointChecksum: Int64?

    public init(status: RunStatus, lastStep: Int?, lastCheckpoint: Int?, checkpointChecksum: Int64?) {
        self.status = status
        self.lastStep = lastStep
        self.lastCheckpoint = lastCheckpoint
        self.checkpointChecksum = checkpointChecksum
    }

    /// "running, with 114 steps and its last checkpoint at step 110".
    public var summary: String {
        // (A hand-edited step number can be Int.max: no + 1 that overflows.)
        let steps = lastStep.map { $0 == 0 ? "1 step" : $0 < Int.max ? "\($0 + 1) steps" : "steps up to \($0)" } ?? "no steps"
        let checkpoint = lastCheckpoint.map { "its last checkpoint at step \($0)" } ?? "no checkpoint"
        return "\(status.rawValue), with \(steps) and \(checkpoint)"
    }

    /// nil when `self` equals `earlier`; else one clause saying what changed since then.
    public func changes(since earlier: TraceBasis) -> String? {
        if self == earlier { return nil }
        if status == earlier.status && lastStep == earlier.lastStep && lastCheckpoint == earlier.lastCheckpoint {
            return "the trace's last checkpoint (step \(lastCheckpoint.map(String.init) ?? "none")) was rewritten since"
        }
        return "it was computed when the trace was \(earlier.summary); the trace is now \(summary)"
    }
}
