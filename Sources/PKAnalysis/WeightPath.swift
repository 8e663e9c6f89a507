import PKNetworks
import PKNumerics
import PKOptim
import PKStep
import PKTrace

/// The weights at every step of a recorded run, one segment `(w_t, w_{t+1})` at a time.
///
/// Every recorded step is recomputed (same batch, learning rate, loss and update rule, through
/// the very function training used) — the step check. Where the next weights are stored (every
/// step with `checkpoint_every = 1`, else at each checkpoint) the recomputed update is compared
/// with them, and the path continues from the stored weights. The largest relative mismatch
/// `max|w_replay − w_stored| / max(1, max|w_stored|)` and its step are kept for the report; one
/// above `tolerance` means the stored weights were not gradient steps of the recorded loss and
/// optimizer (an unrecorded clip, penalty, label smoothing or weight clamp) and is an error unless
/// `allowMismatch`. Only two weight vectors are held at a time. At checkpoint resolution (stateful
/// optimizer, sparse checkpoints, no stored state) no step can be recomputed: nothing is checked.
public struct WeightPath {
    public let run: TraceRun
    private let reader: TraceReader
    private let optimizer: Chain
    /// The optimizer's state at `current` (restored from the trace at each stored checkpoint).
    private var state: OptimizerState
    private var checkpointIndex = 0
    public private(set) var t = 0
    public private(set) var current: [Double]
    public private(set) var largestMismatch = 0.0
    /// The step `t` whose update `w_t → w_{t+1}` had the largest mismatch (nil: none checked).
    public private(set) var worstStep: Int? = nil
    /// Stored weights compared with recomputed ones (every step with `checkpoint_every = 1`).
    public private(set) var checkedSteps = 0
    /// Relative mismatch above which the trace is declared inconsistent.
    public let tolerance: Double
    /// Go on past a mismatch above `tolerance` (continuing from the stored weights).
    public let allowMismatch: Bool

    public init(run: TraceRun, reader: TraceReader, allowMismatch: Bool = false) throws {
        self.run = run
        self.reader = reader
        self.allowMismatch = allowMismatch
        do { optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors) } catch {
            throw AnalysisError("\(run.path): the recorded optimizer cannot be rebuilt: \(error)")
        }
        current = try reader.checkpoint(step: 0)
        state = optimizer.initialState(parameterCount: run.model.parameterCount)
        tolerance = run.info.precision == .float32 ? 1e-4 : 1e-8
        let sparse = zip(run.checkpoints, run.checkpoints.dropFirst()).contains { $1 - $0 > 1 }
        initialStoredState = try reader.optimizerState(step: 0)
        checkpointResolution = sparse && !optimizer.bufferNames.isEmpty && initialStoredState == nil
        if let stored = initialStoredState { try restoreState(stored, at: 0) }
    }

    public struct Segment {
        public let step: Int
        public let start: [Double]
        public let end: [Double]
        public let record: StepRecord
        /// Per-example output gradients `g_i` at `start` on the batch, |B| × C, when the step was
        /// replayed; nil when both ends are stored checkpoints.
        public let outputGradient: Matrix?
        /// Updates the segment covers: 1, or the checkpoint interval at checkpoint resolution.
        public var span: Int = 1
        /// The optimizer's state after this step's update, when known: replayed, or stored with
        /// the checkpoint at `step + 1`. nil otherwise (the analyzer then runs the update itself).
        public var state: OptimizerState? = nil
        public var delta: [Double] { zip(end, start).map { $0 - $1 } }
    }

    /// True when the steps between checkpoints cannot be replayed (an optimizer with state, sparse
    /// checkpoints, no stored state): segments then run from checkpoint to checkpoint.
    public private(set) var checkpointResolution = false

    /// The step check's figures so far (what the report's replay line says).
    var summary: ReplaySummary {
        ReplaySummary(checkpointResolution: checkpointResolution, largestMismatch: largestMismatch, tolerance: tolerance,
                      worstStep: worstStep, checkedSteps: checkedSteps)
    }

    /// The optimizer state stored with the checkpoint at step 0 (nil: none), as read; a count above
    /// 0 means the run was resumed with buffers that hold gradients from before the trace.
    public let initialStoredState: StoredOptimizerState?

    /// Replaces the running optimizer state by the one stored with the checkpoint at `step`, if any;
    /// true when there was one.
    @discardableResult
    private mutating func restoreState(at step: Int) throws -> Bool {
        guard let stored = try reader.optimizerState(step: step) else { return false }
        try restoreState(stored, at: step)
        return true
    }

    /// Replaces the running optimizer state by `stored`, the state stored at `step`.
    private mutating func restoreState(_ stored: StoredOptimizerState, at step: Int) throws {
        do {
            state = try optimizer.restoreState(count: stored.count, names: stored.names, values: stored.values,
                                               parameterCount: run.model.parameterCount)
        } catch {
            throw AnalysisError("\(run.path): the optimizer state stored at step \(step) does not fit the recorded optimizer: \(error)")
        }
    }

    /// The next segment, or nil after the last analyzed step.
    ///
    /// When `w_{t+1}` is a stored checkpoint the segment reads it and computes nothing (the
    /// analyzer gets `g_i` from its own forward pass at `w_t`; the kernel-form reconstruction checks
    /// that the stored step is the recorded update). Otherwise the step is replayed.
    public mutating func next() throws -> Segment? {
        guard t < run.steps else { return nil }
        let record = run.stepRecords[t]
        if checkpointResolution {
            let to = run.checkpoints[checkpointIndex + 1]
            let end = try reader.checkpoint(step: to)
            let seg = Segment(step: t, start: current, end: end, record: record, outputGradient: nil, span: to - t)
            checkpointIndex += 1
            current = end
            t = to
            return seg
        }
        let storedNext = checkpointIndex + 1 < run.checkpoints.count && run.checkpoints[checkpointIndex + 1] == t + 1
        var end: [Double]
        var gradient: Matrix? = nil
        var known = false
        let batch = record.batch.map(Int.init)
        let result = optimizer.step(model: run.model, parameters: current, state: state, inputs: run.trainX.rows(at: batch),
                                    targets: run.trainY.rows(at: batch), loss: run.loss, learningRate: record.learningRate)
        state = result.state ?? state
        known = result.state != nil
        guard let next = result.next else {
            throw AnalysisError("\(run.path): recomputing step \(t) from the stored weights gives a non-finite loss or update; the trace is inconsistent with its model and data")
        }
        end = next
        gradient = result.outputGradient
        if storedNext {
            let stored = try reader.checkpoint(step: t + 1)
            var diff = 0.0, scale = 1.0
            for i in stored.indices {
                diff = max(diff, abs(stored[i] - end[i]))
                scale = max(scale, abs(stored[i]))
            }
            let rel = diff / scale
            checkedSteps += 1
            if rel > largestMismatch || worstStep == nil { worstStep = t }
            largestMismatch = max(largestMismatch, rel)
            guard rel <= tolerance || allowMismatch else {
                let what = run.info.checkpointEvery == 1
                    ? "step \(t) is not a step of the recorded loss and optimizer: recomputing it from the stored w_\(t) misses the stored w_\(t + 1)"
                    : "replaying the recorded steps does not reach the checkpoint at step \(t + 1)"
                throw AnalysisError("\(run.path): \(what) (relative mismatch \(String(format: "%.2e", rel)), tolerance \(String(format: "%.0e", tolerance))). The training loop did something the trace does not record (gradient clipping, a penalty, label smoothing, a weight clamp?); record it, or pass --allow-inconsistent-steps to analyze anyway (the report is then marked)")
            }
            end = stored
        }
        if storedNext {
            checkpointIndex += 1
            if try restoreState(at: t + 1) { known = true }
        }
        var seg = Segment(step: t, start: current, end: end, record: record, outputGradient: gradient)
        if known && !optimizer.bufferNames.isEmpty { seg.state = state }
        current = end
        t += 1
        return seg
    }
}

/// The step check's figures of a walked path (`WeightPath.summary`): what the report's replay
/// line and the inconsistency note read, and what a shard's part carries to the merge.
struct ReplaySummary: Codable, Equatable {
    var checkpointResolution: Bool
    var largestMismatch: Double
    var tolerance: Double
    var worstStep: Int?
    var checkedSteps: Int
}
