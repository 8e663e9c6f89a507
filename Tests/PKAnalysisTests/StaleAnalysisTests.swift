import Foundation
import Testing
import PKOptim
import PKTrace
import PKTraining
@testable import PKAnalysis

/// An analysis stored while its run was still being written must read as out of date once the
/// run has gone on (schema v3 stores what the analysis saw; `AnalysisStore.staleness`).
@Suite("Stale analyses", .serialized)
struct StaleAnalysisTests {
    /// Analyzed at checkpoint 20 of a 40-step run while the writer appends, stored with the basis
    /// read before the analysis; once the run has finished, the stored analysis is stale and the
    /// message says what it covered and what the trace holds now.
    @Test func analysisOfARunStillBeingWrittenIsStaleOnceItFinishes() throws {
        let path = try tempTracePath()
        let trainer = try Trainer(config: BadTraceTests.small(steps: 40))
        final class AtCheckpoint: TrainingObserver {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
            func observe(_ e: TrainingEvent) { if case .checkpoint(20, _, _) = e { body() } }
        }
        let recorder = TraceRecorder(path: path)
        var failure: Error?
        let probe = AtCheckpoint {
            Thread.sleep(forTimeInterval: 0.5)   // let the background writer commit checkpoint 20
            do {
                let reader = try TraceReader.open(path)
                let before = try reader.basis()
                var r = try PathAnalyzer(settings: AnalysisSettings(nodes: 2)).analyze(reader: reader)
                r.toolVersion = "test"
                let s = AnalysisSettings(nodes: 2)
                try AnalysisStore.save(r, key: AnalysisStore.key(s), settings: s, path: path, basis: before)
                // Fresh while nothing changed (the trainer is paused in this observer).
                let stored = try #require(try reader.analyses().last)
                #expect(stored.basis == before)
                #expect(AnalysisStore.staleness(of: stored, result: r, now: try reader.basis()) == nil)
            } catch { failure = error }
        }
        trainer.run(observers: [recorder, probe])
        try recorder.finish()
        #expect(failure == nil, "\(String(describing: failure))")

        let reader = try TraceReader.open(path)
        let stored = try #require(try reader.analyses().last)
        let result = try AnalysisStore.decode(stored.resultJSON)
        #expect(result.run.status == "running" && result.run.steps == 20)
        let now = try reader.basis()
        #expect(now.status == .finished && now.lastStep == 39 && now.lastCheckpoint == 40)
        let stale = try #require(AnalysisStore.staleness(of: stored, result: result, now: now))
        for w in ["running", "finished, with 40 steps and its last checkpoint at step 40"] {
            #expect(stale.contains(w), "'\(w)' not in: \(stale)")
        }
        // An analysis stored before schema v3 (no basis) is judged by its result instead.
        var legacy = stored
        legacy.basis = nil
        #expect(AnalysisStore.staleness(of: legacy, result: result, now: now)?.contains("covers 20 steps") == true)
        // The command that refreshes it names its settings.
        #expect(AnalysisStore.refreshCommand(path: path, stored: stored) == "pathkernel analyze \(path) --nodes 2 --force")
    }

    @Test func settingsRoundTripThroughTheirCommandLine() {
        var s = AnalysisSettings(nodes: 8, adaptiveTolerance: 1e-6, queries: .test, maxQueries: 20, kernel: .trace,
                                 ridge: 1e-3, precision: .f32, scope: .exact)
        s.momentumTolerance = 1e-8
        #expect(s.commandLineArguments == ["--nodes", "8", "--adaptive", "1e-06", "--queries", "test", "--max-queries", "20",
                                           "--kernel", "trace", "--ridge", "0.001", "--precision", "f32", "--scope", "exact",
                                           "--momentum-tolerance", "1e-08"])
        #expect(AnalysisSettings().commandLineArguments == [])
    }
}
