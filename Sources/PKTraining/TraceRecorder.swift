import Foundation
import PKData
import PKNetworks
import PKNumerics
import PKTrace

/// The observer that writes a run into a trace file.
///
/// Everything is written by a `BackgroundTraceWriter` on its own thread, so the training thread
/// never waits on the disk: on `started` it creates the file, the run row, the data and the
/// parameter layout there (the training thread only builds their descriptions); step rows and
/// checkpoints follow in order. A failure, creating the file or writing (disk full, for
/// instance), makes `stopReason` non-nil and the loop stops with status `aborted` at its next
/// step; everything committed before stays valid, and `finish()` throws the error.
public final class TraceRecorder: TrainingObserver {
    public let path: String
    private var writer: BackgroundTraceWriter?
    /// Testing hook: cap the SQLite file at this many pages (simulates a full disk).
    var maxPageCount: Int? = nil

    public init(path: String) { self.path = path }

    public var stopReason: String? {
        writer?.firstError.map { "\($0)" }
    }

    public func observe(_ event: TrainingEvent) {
        switch event {
        case .started(let start):
            let path = path, maxPageCount = maxPageCount
            writer = BackgroundTraceWriter(path: path) {
                try TraceWriter.create(at: path, run: TraceRecorder.runInfo(start),
                                       data: TraceRecorder.traceData(start.data, inputShape: start.model.spec.input),
                                       layout: start.model.layout.map {
                                           TensorLayout(name: $0.name, shape: $0.shape, offset: $0.offset, count: $0.count)
                                       }, maxPageCount: maxPageCount, mask: start.config.optimizer.parameterMask)
            }
        case .step(let s):
            writer?.enqueueStep(StepRecord(step: s.step, epoch: s.epoch, learningRate: s.learningRate,
                                           batch: s.batch.map { Int32($0) }, loss: s.loss, clipScale: s.clipScale))
        case .checkpoint(let step, let parameters, let state):
            writer?.enqueueCheckpoint(step: step, parameters: parameters, optimizerState: state.map {
                let (names, values) = $0.flattened()
                return StoredOptimizerState(names: names, count: $0.count, values: values)
            })
        case .finished(let outcome):
            writer?.enqueueStatus(outcome.status, message: outcome.message)
        }
    }

    /// Waits until everything is on disk and closes the file; throws the first error (creating
    /// the file or writing).
    public func finish() throws {
        defer {
            if let w = writer { writerCPUSeconds = w.cpuSeconds }
            writer = nil
        }
        try writer?.finish()
    }

    /// CPU seconds the writing took (`BackgroundTraceWriter.cpuSeconds`), known after `finish()`.
    public private(set) var writerCPUSeconds: Double? = nil

    static func runInfo(_ start: TrainingStart) -> RunInfo {
        let now = ISO8601DateFormatter().string(from: Date())
        let c = start.config
        func json<T: Encodable>(_ v: T) -> String {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            return String(decoding: (try? enc.encode(v)) ?? Data(), as: UTF8.self)
        }
        return RunInfo(toolVersion: ToolInfo.version, name: c.name, seed: c.seed, status: .running,
                       statusMessage: nil, createdAt: now, updatedAt: now, finishedAt: nil,
                       task: start.data.train.task.rawValue, numOutputs: start.data.train.outputDim,
                       modelJSON: json(c.model), lossJSON: json(c.loss), optimizerJSON: json(c.optimizer),
                       configJSON: c.encoded(), precision: c.training.precision,
                       checkpointEvery: c.training.checkpointEvery, plannedSteps: start.plannedSteps)
    }

    /// Inputs as `[n, d]`, or `[n, C, H, W]` when `inputShape` is an image shape `[C, H, W]` (a
    /// layer network's input); targets as `[n]` (class indices) for classification, `[n, C]` for regression.
    static func traceData(_ split: DataSplit, inputShape: [Int]? = nil) -> TraceData {
        func x(_ d: Dataset) -> DataArray {
            if let s = inputShape, s.count == 3, s.reduce(1, *) == d.x.cols { return DataArray(shape: [d.x.rows] + s, values: d.x.data) }
            return DataArray(shape: [d.x.rows, d.x.cols], values: d.x.data)
        }
        func y(_ d: Dataset) -> DataArray {
            d.task == .regression ? DataArray(shape: [d.y.rows, d.y.cols], values: d.y.data)
                                  : DataArray(shape: [d.y.rows], values: d.y.data)
        }
        return TraceData(trainX: x(split.train), trainY: y(split.train), testX: x(split.test), testY: y(split.test))
    }
}

