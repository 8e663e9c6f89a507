import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

/// The weights at every step of a recorded run, one segment `(w_t, w_{t+1})` at a time.
///
/// Between stored checkpoints the recorded steps are replayed (same batch, learning rate, loss
/// and update rule, through the very function training used), and the replay is checked against
/// the next stored checkpoint; the path then continues from the stored weights. The largest
/// relative mismatch `max|w_replay − w_stored| / max(1, max|w_stored|)` is kept for the report.
/// Only two weight vectors are held at a time.
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
    /// Relative mismatch above which the trace is declared inconsistent.
    public let tolerance: Double

    public init(run: TraceRun, reader: TraceReader) throws {
        self.run = run
        self.reader = reader
        do { optimizer = try run.optimizer.transformation() } catch {
            throw AnalysisError("\(run.path): the recorded optimizer cannot be rebuilt: \(error)")
        }
        current = try reader.checkpoint(step: 0)
        state = optimizer.initialState(parameterCount: run.model.parameterCount)
        tolerance = run.info.precision == .float32 ? 1e-4 : 1e-8
        let sparse = zip(run.checkpoints, run.checkpoints.dropFirst()).contains { $1 - $0 > 1 }
        checkpointResolution = try sparse && !optimizer.bufferNames.isEmpty && reader.optimizerState(step: 0) == nil
        try restoreState(at: 0)
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

    /// Replaces the running optimizer state by the one stored with the checkpoint at `step`, if any;
    /// true when there was one.
    @discardableResult
    private mutating func restoreState(at step: Int) throws -> Bool {
        guard let stored = try reader.optimizerState(step: step) else { return false }
        do {
            state = try optimizer.restoreState(count: stored.count, names: stored.names, values: stored.values,
                                               parameterCount: run.model.parameterCount)
        } catch {
            throw AnalysisError("\(run.path): the optimizer state stored at step \(step) does not fit the recorded optimizer: \(error)")
        }
        return true
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
        if storedNext && run.info.checkpointEvery == 1 {
            end = try reader.checkpoint(step: t + 1)
        } else {
            let batch = record.batch.map(Int.init)
            let result = optimizer.step(model: run.model, parameters: current, state: state, inputs: run.trainX.rows(at: batch),
                                        targets: run.trainY.rows(at: batch), loss: run.loss, learningRate: record.learningRate)
            state = result.state ?? state
            known = result.state != nil
            guard let next = result.next else {
                throw AnalysisError("\(run.path): replaying step \(t) gives a non-finite loss; the trace is inconsistent with its model and data")
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
                largestMismatch = max(largestMismatch, rel)
                guard rel <= tolerance else {
                    throw AnalysisError("\(run.path): replaying the recorded steps does not reach the checkpoint at step \(t + 1) (relative mismatch \(rel), tolerance \(tolerance)); the trace is inconsistent")
                }
                end = stored
            }
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
