import Foundation
import Testing
import PKOptim
import PKTrace
import PKTraining
@testable import PKAnalysis

/// A trace copied through the public writer with some of its parts changed: what another program
/// (or a training loop doing something it did not record) could have written.
struct TraceParts {
    var run: RunInfo
    var data: TraceData
    var layout: [TensorLayout]
    var steps: [StepRecord]
    var checkpoints: [(step: Int, w: [Double], state: StoredOptimizerState?)]

    init(_ path: String) throws {
        let r = try TraceReader.open(path)
        run = r.run
        data = try r.data()
        layout = r.layout
        steps = try r.steps()
        checkpoints = try r.checkpointSteps().map { ($0, try r.checkpoint(step: $0), try r.optimizerState(step: $0)) }
    }

    /// Writes the parts to a new trace and returns its path.
    func write() throws -> String {
        let path = try tempTracePath()
        let w = try TraceWriter.create(at: path, run: run, data: data, layout: layout)
        try w.appendSteps(steps)
        for c in checkpoints { try w.appendCheckpoint(step: c.step, parameters: c.w, optimizerState: c.state) }
        try w.setStatus(run.status, message: run.statusMessage)
        w.close()
        return path
    }
}

/// The step check: every recorded step is recomputed from the stored weights and compared with
/// the stored next weights, whatever `checkpoint_every` is. A training loop that did something
/// the trace does not record must be an error (or, when allowed, a marked report), never
/// "reconstruction residual at round-off".
@Suite("Step check", .serialized)
struct StepCheckTests {
    static func clippedRun(checkpointEvery: Int) -> RunConfig {
        // lr 0.5 and clip 0.05: the clip is active at every step.
        config(name: "clip", data: #"{"kind":"moons","train":16,"test":6}"#,
               model: #"{"layers":[2,6,1],"activation":"tanh"}"#, loss: .logistic,
               optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.5, clipNorm: 0.05), steps: 8, batchSize: 8,
               checkpointEvery: checkpointEvery)
    }

    /// The recorded optimizer without its clip: like PyTorch's unrecorded `clip_grad_norm_`.
    static func withoutClip(_ path: String) throws -> String {
        var parts = try TraceParts(path)
        parts.run.optimizerJSON = #"{"kind":"sgd","learningRate":0.5}"#
        parts.steps = parts.steps.map { var s = $0; s.clipScale = nil; return s }
        return try parts.write()
    }

    @Test func aConsistentTraceChecksEveryStep() throws {
        let path = try recordTrace(Self.clippedRun(checkpointEvery: 1))
        let r = try analyze(path)
        #expect(r.replay.checkedSteps == 8)
        #expect(r.replay.inconsistent == false)
        // Every stored step is the recorded update up to round-off (tolerance 1e-8 relative).
        #expect(r.replay.largestMismatch < 1e-13)
    }

    @Test(arguments: [1, 4])
    func anUnrecordedClipIsAnErrorNamingTheStep(checkpointEvery: Int) throws {
        let path = try Self.withoutClip(recordTrace(Self.clippedRun(checkpointEvery: checkpointEvery)))
        #expect { try analyze(path) } throws: { error in
            let m = "\(error)"
            return m.contains(checkpointEvery == 1 ? "step 0 is not a step of the recorded loss and optimizer" : "does not reach the checkpoint at step 4")
                && m.contains("relative mismatch") && m.contains("--allow-inconsistent-steps")
        }
    }

    @Test func aWeightClampIsCaughtAtTheStepItHappened() throws {
        var parts = try TraceParts(recordTrace(Self.clippedRun(checkpointEvery: 1)))
        // Clamp the weights stored after step 5 (an unrecorded `p.data.clamp_` in the loop).
        let big = parts.checkpoints[6].w.map(abs).max()!
        parts.checkpoints[6].w = parts.checkpoints[6].w.map { min(max($0, -0.9 * big), 0.9 * big) }
        let path = try parts.write()
        #expect { try analyze(path) } throws: { "\($0)".contains("step 5 is not a step") }
    }

    @Test func allowedInconsistencyIsAnalyzedAndMarked() throws {
        let path = try Self.withoutClip(recordTrace(Self.clippedRun(checkpointEvery: 1)))
        var settings = AnalysisSettings()
        settings.allowInconsistentSteps = true
        let r = try analyze(path, settings)
        #expect(r.replay.inconsistent == true)
        #expect(r.replay.largestMismatch > r.replay.tolerance)
        #expect(r.replay.worstStep != nil)
        #expect(r.run.notes.first?.hasPrefix("INCONSISTENT TRACE") == true)
        // The JVP decomposition still telescopes; the kernel form (recorded loss, no clip) does not.
        #expect(r.reconstruction.test!.relativeResidual < 1e-9)
        #expect(r.reconstruction.test!.kernelFormMaxAbs > 1e-3)
    }

    /// A resumed run (optimizer state at step 0 counts earlier updates): its momentum buffer holds
    /// gradients from before the trace, so neither momentum kernel applies, windowed included;
    /// the JVP route analyzes it, with a note. (Heavy ball without dampening updates the same
    /// whatever the count, so the step check still passes on the relabelled trace.)
    @Test func aResumedMomentumRunHasNoKernelFormEvenWindowed() throws {
        let cfg = config(name: "resumed", data: #"{"kind":"moons","train":16,"test":6}"#,
                         model: #"{"layers":[2,6,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1, momentum: 0.9), steps: 8, batchSize: 8)
        var parts = try TraceParts(recordTrace(cfg))
        parts.checkpoints = parts.checkpoints.map { c in
            var c = c
            c.state = c.state.map { StoredOptimizerState(names: $0.names, count: $0.count + 5, values: $0.values) }
            return c
        }
        let path = try parts.write()
        for tolerance in [nil, 1e-6] as [Double?] {
            var settings = AnalysisSettings()
            settings.momentumTolerance = tolerance
            let r = try analyze(path, settings)
            #expect(r.settings.pathKernel?.hasPrefix("none") == true, "\(r.settings.pathKernel ?? "")")
            #expect(r.run.notes.contains { $0.contains("not fresh") })
            #expect(r.reconstruction.test!.relativeResidual < 1e-9)
        }
    }

    /// inspect's summary decodes the specs through the shared check: a bad spec is listed even
    /// when the data cannot be read (it used to be skipped silently).
    @Test func inspectListsABadSpecEvenWithUnreadableData() throws {
        let path = try recordTrace(Self.clippedRun(checkpointEvery: 1))
        try sqlite(path, #"UPDATE run SET loss_json = '{"kind":"hinge"}'"#)
        try sqlite(path, "UPDATE data SET shape = '[-1,2]' WHERE split = 'test' AND role = 'x'")
        let summary = try TraceSummary.make(path: path)
        #expect(summary.problems.contains { $0.hasPrefix("loss_json") }, "\(summary.problems)")
        #expect(summary.problems.contains { $0.contains("data test x") }, "\(summary.problems)")
        #expect(summary.train.final == nil)
    }

    /// float32 checkpoints (of a float64 training run): every step is recomputed from rounded
    /// weights, so the check runs at its float32 tolerance (1e-4) and passes, with every step
    /// stored and with sparse checkpoints, for plain SGD and for Adam.
    @Test(arguments: [1, 4], [OptimizerSpec(kind: .sgd, learningRate: 0.3), OptimizerSpec(kind: .adam, learningRate: 0.02)])
    func float32CheckpointsPassTheStepCheck(checkpointEvery: Int, optimizer: OptimizerSpec) throws {
        var cfg = config(name: "f32", data: #"{"kind":"moons","train":16,"test":6}"#,
                         model: #"{"layers":[2,6,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: optimizer, steps: 8, batchSize: 8, checkpointEvery: checkpointEvery)
        cfg.training.precision = .float32
        let r = try analyze(try recordTrace(cfg))
        #expect(r.replay.tolerance == 1e-4)
        #expect((r.replay.checkedSteps ?? 0) > 0 && r.replay.inconsistent == false)
        // Single-precision rounding of the stored weights: about 1e-7 relative per step.
        #expect(r.replay.largestMismatch < 1e-5, "\(r.replay.largestMismatch)")
    }
}
