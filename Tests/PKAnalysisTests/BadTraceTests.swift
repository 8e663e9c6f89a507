import Foundation
import Testing
import PKOptim
import PKTrace
import PKTraining
@testable import PKAnalysis

/// Traces the analyzer must handle with a clear message (or analyze partly, and say so).
@Suite("Analyzing imperfect traces", .serialized)
struct BadTraceTests {
    static func small(steps: Int = 6, lr: Double = 0.3) -> RunConfig {
        config(name: "small", data: #"{"kind":"moons","train":16,"test":6,"noise":0.1}"#,
               model: #"{"layers":[2,6,1],"activation":"tanh"}"#, loss: .logistic,
               optimizer: OptimizerSpec(kind: .gd, learningRate: lr), steps: steps)
    }

    @Test func divergedTraceIsAnalyzedUpToItsLastFiniteCheckpoint() throws {
        let cfg = config(name: "div", data: #"{"kind":"sine","train":16,"test":4}"#,
                         model: #"{"layers":[1,4,1],"activation":"identity"}"#, loss: .mse,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 1e3), steps: 500)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        #expect(reader.run.status == .diverged)
        let r = try analyze(path)
        #expect(r.run.notes.contains { $0.contains("diverged") })
        #expect(r.run.steps >= 1)
        #expect(r.run.steps == (try reader.checkpointSteps().last))
    }

    @Test func traceWithoutStepsIsAClearError() throws {
        var cfg = Self.small()
        cfg.training.checkpointEvery = 1000
        cfg.training.steps = 5000
        // Record only the initial checkpoint: stop before the first step.
        let path = try tempTracePath()
        let trainer = try Trainer(config: cfg)
        let recorder = TraceRecorder(path: path)
        trainer.run(observers: [recorder], shouldStop: { true })
        try recorder.finish()
        #expect { try analyze(path) } throws: { "\($0)".contains("nothing to analyze") }
    }

    @Test func missingStepLimitsTheAnalysisAndSaysSo() throws {
        let path = try recordTrace(Self.small(steps: 10))
        try sqlite(path, "DELETE FROM step WHERE step = 6")
        let r = try analyze(path)
        #expect(r.run.steps == 6)
        #expect(r.run.notes.contains { $0.contains("step 6 is missing") })
        #expect(r.reconstruction.test!.relativeResidual < 1e-9)
    }

    /// A trace whose writer is still open (WAL): the committed prefix is analyzed, and the note says so.
    @Test func traceStillBeingWrittenAnalyzesTheCommittedPrefix() throws {
        let cfg = Self.small(steps: 40)
        let path = try tempTracePath()
        let trainer = try Trainer(config: cfg)
        final class Pause: TrainingObserver {
            let body: (Int) -> Void
            init(_ body: @escaping (Int) -> Void) { self.body = body }
            func observe(_ e: TrainingEvent) { if case .checkpoint(let s, _, _) = e, s == 20 { body(s) } }
        }
        let recorder = TraceRecorder(path: path)
        var result: AnalysisResult?
        var failure: Error?
        let probe = Pause { _ in
            // Give the background writer a moment to commit, then analyze while the writer is open.
            Thread.sleep(forTimeInterval: 0.5)
            do { result = try analyze(path) } catch { failure = error }
        }
        trainer.run(observers: [recorder, probe])
        try recorder.finish()
        #expect(failure == nil, "\(String(describing: failure))")
        let r = try #require(result)
        #expect(r.run.status == "running")
        #expect(r.run.notes.contains { $0.contains("committed prefix") })
        #expect(r.run.steps > 0 && r.run.steps <= 20)
        #expect(r.reconstruction.test!.relativeResidual < 1e-9)
    }

    @Test func analysesAreStoredAndReusedByKey() throws {
        let path = try recordTrace(Self.small())
        let s1 = AnalysisSettings(nodes: 2), s2 = AnalysisSettings(nodes: 3)
        for s in [s1, s2] {
            var r = try PathAnalyzer(settings: s).analyze(reader: TraceReader.open(path))
            r.toolVersion = "test"
            try AnalysisStore.save(r, key: AnalysisStore.key(s), settings: s, path: path)
        }
        let reader = try TraceReader.open(path)
        #expect(try reader.analyses().count == 2)
        let stored = try #require(try reader.analysis(key: AnalysisStore.key(s1)))
        #expect(try AnalysisStore.decode(stored.resultJSON).settings.nodes == 2)
        #expect(try reader.validate().problems.isEmpty)
    }
}

func tempTracePath() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-bad-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("t.sqlite").path
}

/// Runs SQL on a trace with the `sqlite3` tool (Tools/apt-packages.txt).
func sqlite(_ file: String, _ sql: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["sqlite3", file, sql]
    try p.run()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
}

/// Divergence is detected for every loss, including a run that explodes while staying finite.
@Suite("Divergence")
struct DivergenceTests {
    /// Logistic loss at learning rate 1e200: the first update gives weights near 1e186 (finite,
    /// the loss finite too). The run must end `diverged` at that step, and the analysis must be a
    /// clean refusal (nothing finite to analyze), never a table of NaN.
    @Test func anExplodingLogisticRunIsMarkedDivergedAndNotAnalyzed() throws {
        let cfg = config(name: "boom", data: #"{"kind":"moons","train":16,"test":6}"#,
                         model: #"{"layers":[2,6,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 1e200), steps: 20)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        #expect(reader.run.status == .diverged)
        #expect(reader.run.statusMessage?.contains("exploded after update 0") == true, "\(reader.run.statusMessage ?? "")")
        #expect { try analyze(path) } throws: { "\($0)".contains("nothing to analyze") }
    }

    /// The rule itself: non-finite loss, non-finite weight, exploding loss, exploding weights.
    @Test func theRule() {
        var d = Divergence(initial: [0.5, -2])
        #expect(d.check(step: 0, loss: 0.7, next: [0.4, -2.1]) == nil)
        #expect(d.check(step: 1, loss: .nan, next: nil)?.contains("non-finite loss") == true)
        #expect(d.check(step: 1, loss: 0.6, next: [.infinity, 0])?.contains("non-finite parameters") == true)
        #expect(d.check(step: 1, loss: 1.5e8, next: nil)?.contains("loss exploded") == true)
        // Weights: 1e8 × max(1, 2) = 2e8 is the bound.
        #expect(d.check(step: 2, loss: 0.5, next: [1.9e8, 0]) == nil)
        #expect(d.check(step: 2, loss: 0.5, next: [2.1e8, 0])?.contains("weights exploded") == true)
    }
}
