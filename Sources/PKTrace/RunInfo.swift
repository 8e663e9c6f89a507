/// The single `run` row of a trace: what was trained, how, and how far it got.
///
/// The JSON fields are opaque to the store: it writes and returns them verbatim and never parses
/// them (the training and analysis modules own their meaning). Timestamps are ISO-8601 UTC
/// strings such as `2025-01-31T12:00:00Z`; the store does not parse them either.
///
/// Does not hold: `status`, `updatedAt` and `finishedAt` of a `TraceReader`'s `run` are a
/// snapshot taken when the reader was opened; a live writer may have moved on since.
public struct RunInfo: Sendable, Equatable {
    /// The pathkernel version that wrote the trace.
    public var toolVersion: String
    public var name: String
    /// Stored as a signed 64-bit integer with the same bit pattern (seeds ≥ 2^63 read negative in SQL).
    public var seed: UInt64
    public var status: RunStatus
    /// Why the run ended (divergence detail, abort reason); nil while running or when finished cleanly.
    public var statusMessage: String?
    public var createdAt: String
    public var updatedAt: String
    /// Set when the status leaves `running`; nil before.
    public var finishedAt: String?
    /// `regression`, `binary` or `multiclass`.
    public var task: String
    /// Network outputs: C for regression, 1 for binary (a logit), K for multiclass.
    public var numOutputs: Int
    public var modelJSON: String
    public var lossJSON: String
    public var optimizerJSON: String
    /// The full run config as given.
    public var configJSON: String
    public var precision: Precision
    /// Checkpoint interval in updates (≥ 1).
    public var checkpointEvery: Int
    /// Number of updates the run was asked for (≥ 0).
    public var plannedSteps: Int

    /// The task names the format allows.
    public static let tasks: Set<String> = ["regression", "binary", "multiclass"]

    public init(toolVersion: String, name: String, seed: UInt64, status: RunStatus, statusMessage: String?,
                createdAt: String, updatedAt: String, finishedAt: String?, task: String, numOutputs: Int,
                modelJSON: String, lossJSON: String, optimizerJSON: String, configJSON: String,
                precision: Precision, checkpointEvery: Int, plannedSteps: Int) {
        self.toolVersion = toolVersion
        self.name = name
        self.seed = seed
        self.status = status
        self.statusMessage = statusMessage
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
        self.task = task
        self.numOutputs = numOutputs
        self.modelJSON = modelJSON
        self.lossJSON = lossJSON
        self.optimizerJSON = optimizerJSON
        self.configJSON = configJSON
        self.precision = precision
        self.checkpointEvery = checkpointEvery
        self.plannedSteps = plannedSteps
    }
}
