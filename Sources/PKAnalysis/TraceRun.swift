import Foundation
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
import PKTraceCheck

/// A recorded run as the analyzer sees it: the model, loss, optimizer, data and the usable
/// prefix of steps (everything committed up to the last valid checkpoint).
///
/// The one place the analyzer decodes a trace: `load` reads the run row, data, step rows and
/// checkpoint list once, checks them (`TraceCheck`, which also decodes the specs `inspect` shows)
/// and converts the data (`DataArray.matrix`, shared with `TraceSummary`). Only the weights and
/// optimizer states are read later, streamed one checkpoint at a time by `WeightPath`.
public struct TraceRun: Sendable {
    public let path: String
    public let info: RunInfo
    public let model: any Network
    public let loss: LossKind
    public let optimizer: OptimizerSpec
    public let trainX: Matrix
    /// Targets in the loss's format: regression n × C, classification n × 1 (class index / 0-1).
    public let trainY: Matrix
    public let testX: Matrix
    public let testY: Matrix
    /// Stored checkpoint steps within the usable prefix, ascending; first is 0, last is `steps`.
    public let checkpoints: [Int]
    /// Step rows `0..<steps`.
    public let stepRecords: [StepRecord]
    /// Number of updates analyzed (the last usable checkpoint).
    public var steps: Int { checkpoints.last ?? 0 }
    /// Notes for the report (committed prefix of a running trace, diverged run, …).
    public let notes: [String]

    public var isClassification: Bool { info.task != "regression" }

    public static func load(_ reader: TraceReader) throws -> TraceRun {
        let info = reader.run
        // Every value read from the trace is checked before use (TraceCheck, the store's own checks).
        let data = try reader.data()
        let steps = try reader.steps()
        let stored = try reader.checkpointSteps()
        let check = TraceCheck.check(reader, data: data, steps: steps, checkpoints: stored)
        guard check.isSound, let model = check.model, let lossSpec = check.loss, let optimizer = check.optimizer else {
            let more = check.problems.count > 1 ? " (and \(check.problems.count - 1) more problem\(check.problems.count == 2 ? "" : "s"): `pathkernel inspect` lists them)" : ""
            throw AnalysisError("\(reader.path) breaks the trace format's rules: \(check.problems.first ?? "unreadable specs")\(more); see Docs/trace-format.md")
        }
        var notes: [String] = []
        switch info.status {
        case .running:
            notes.append("the trace is still being written (or its writer was killed): analyzing the committed prefix")
        case .diverged:
            notes.append("the run diverged (\(info.statusMessage ?? "")): analyzing up to the last finite checkpoint")
        case .aborted:
            notes.append("the run was aborted (\(info.statusMessage ?? "")): analyzing what was committed")
        case .finished:
            break
        }
        // Usable prefix: checkpoints whose preceding step rows all exist.
        var present = Set<Int>()
        for s in steps { present.insert(s.step) }
        var firstMissing = 0
        while present.contains(firstMissing) { firstMissing += 1 }
        let usable = stored.filter { $0 <= firstMissing }
        guard usable.first == 0 else {
            throw AnalysisError("\(reader.path): the trace has no initial checkpoint (step 0); nothing to analyze")
        }
        guard let last = usable.last, last > 0 else {
            throw AnalysisError("\(reader.path): the trace has no update with a checkpoint after it yet; nothing to analyze (train longer, or wait for the first checkpoint)")
        }
        if let lastStored = stored.last, lastStored > last {
            notes.append("step \(firstMissing) is missing from the trace: analyzing steps 0..<\(last) only")
        }
        return TraceRun(path: reader.path, info: info, model: model, loss: lossSpec.kind, optimizer: optimizer,
                        trainX: data.trainX.matrix, trainY: data.trainY.matrix,
                        testX: data.testX.matrix, testY: data.testY.matrix,
                        checkpoints: usable, stepRecords: Array(steps.filter { $0.step < last }.sorted { $0.step < $1.step }),
                        notes: notes)
    }
}

/// A trace the analyzer cannot use, in one line that says what to do.
public struct AnalysisError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
