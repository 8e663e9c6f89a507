import Foundation
import Testing
@testable import PKTrace

@Suite("Background writer")
struct BackgroundWriterTests {
    /// Steps and checkpoints enqueued from another thread arrive complete and in order.
    @Test func manyStepsAndCheckpointsFromAnotherThread() async throws {
        let path = try freshPath()
        let writer = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        let bg = BackgroundTraceWriter(writer: writer)
        let total = 2_000, every = 50
        let producer = Task.detached {
            for s in 0..<total {
                if s % every == 0 { bg.enqueueCheckpoint(step: s, parameters: Fixture.parameters(step: s)) }
                bg.enqueueStep(Fixture.step(s, batch: [Int32(s % 5)]))
            }
            bg.enqueueCheckpoint(step: total, parameters: Fixture.parameters(step: total))
            bg.enqueueStatus(.finished, message: nil)
        }
        await producer.value
        try bg.finish()
        #expect(bg.firstError == nil)

        let r = try TraceReader.open(path)
        #expect(r.run.status == .finished)
        #expect(try r.steps() == (0..<total).map { Fixture.step($0, batch: [Int32($0 % 5)]) })
        let expectedCheckpoints = Array(stride(from: 0, through: total, by: every))
        #expect(try r.checkpointSteps() == expectedCheckpoints)
        for s in expectedCheckpoints {   // bit-exact round trip: compared by bit pattern
            #expect(try r.checkpoint(step: s).map(\.bitPattern) == Fixture.parameters(step: s).map(\.bitPattern))
        }
        #expect(try r.validate().problems == [])
    }

    /// Steps enqueued without a following checkpoint are flushed by the timer, not only by finish.
    @Test func bufferedStepsReachTheDiskWithinAFlushInterval() throws {
        let path = try freshPath()
        let bg = BackgroundTraceWriter(writer: try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(),
                                                                       layout: Fixture.layout))
        for s in 0..<3 { bg.enqueueStep(Fixture.step(s)) }
        let r = try TraceReader.open(path)
        let deadline = Date().addingTimeInterval(5)
        var seen = 0
        while Date() < deadline {
            seen = try r.steps().count
            if seen == 3 { break }
            usleep(20_000)
        }
        #expect(seen == 3)
        try bg.finish()
    }

    /// A write failure is kept, later work is dropped, and finish rethrows it.
    @Test func firstErrorIsKeptAndRethrown() throws {
        let path = try freshPath()
        let writer = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        let bg = BackgroundTraceWriter(writer: writer)
        bg.enqueueCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        bg.enqueueCheckpoint(step: 1, parameters: [1, 2, 3])        // wrong count: fails
        bg.enqueueCheckpoint(step: 2, parameters: Fixture.parameters(step: 2))   // dropped
        let e = expectTraceError { try bg.finish() }
        expectOneLine(e, mentions: ["t.sqlite", "step 1", "3 parameters"])
        #expect(bg.firstError == e)
        #expect(try TraceReader.open(path).checkpointSteps() == [0])
        let again = expectTraceError { try bg.finish() }   // finish is idempotent and rethrows
        #expect(again == e)
    }

    /// Created on the writer's thread: work enqueued before the file exists lands in it, in order.
    @Test func createsTheTraceOnItsThread() throws {
        let path = try freshPath()
        let bg = BackgroundTraceWriter(path: path) {
            try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        }
        bg.enqueueCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        for s in 0..<4 { bg.enqueueStep(Fixture.step(s)) }
        bg.enqueueCheckpoint(step: 4, parameters: Fixture.parameters(step: 4))
        bg.enqueueStatus(.finished, message: nil)
        #expect(bg.cpuSeconds == nil)   // known after finish
        try bg.finish()
        #expect((bg.cpuSeconds ?? 0) > 0)
        let r = try TraceReader.open(path)
        #expect(r.run.status == .finished)
        #expect(try r.steps() == (0..<4).map { Fixture.step($0) })
        #expect(try r.checkpointSteps() == [0, 4])
        #expect(try r.checkpoint(step: 4).map(\.bitPattern) == Fixture.parameters(step: 4).map(\.bitPattern))
        #expect(try r.validate().problems == [])
    }

    /// A creation failure (here: a file is already there) is the first error: everything
    /// enqueued is dropped, the existing file is untouched, and finish rethrows it.
    @Test func creationFailureIsTheFirstError() throws {
        let path = try freshPath()
        try Data("not a trace".utf8).write(to: URL(fileURLWithPath: path))
        let bg = BackgroundTraceWriter(path: path) {
            try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        }
        bg.enqueueCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        bg.enqueueStep(Fixture.step(0))
        let e = expectTraceError { try bg.finish() }
        if case .fileExists? = e {} else { Issue.record("expected fileExists, got \(String(describing: e))") }
        #expect(bg.firstError == e)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not a trace")
    }

    /// An idle writer folds the WAL into the main file as it goes (so `finish` has little left
    /// to copy): once `foldThreshold` bytes of checkpoints are committed, the main file alone
    /// holds them while the writer is still open, and a reader sees every checkpoint.
    @Test func idleWriterFoldsTheWALAsItGoes() throws {
        let path = try freshPath()
        let count = 40_000   // 320 KB a checkpoint
        let layout = [TensorLayout(name: "w", shape: [count], offset: 0, count: count)]
        let bg = BackgroundTraceWriter(path: path) {
            try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: layout)
        }
        for s in 0..<6 {
            bg.enqueueCheckpoint(step: s, parameters: Fixture.parameters(step: s, count: count))
            bg.enqueueStep(Fixture.step(s))
        }
        /// Checkpoints in the main file alone (`immutable=1` ignores the WAL); nil while a fold is
        /// half-way (reading a file being written that way may see it torn).
        func folded() -> Int? {
            guard let db = try? SQLiteConnection(path: path, readOnly: true, immutable: true) else { return nil }
            defer { db.close() }
            return try? db.scalarInt("SELECT count(*) FROM checkpoint", "counting checkpoints")
        }
        // 1 MiB is reached with the fourth checkpoint: the writer folds then or at a later idle
        // moment, so at least four are in the main file; the rest may wait for the next MiB or close.
        func committed() -> [Int]? { try? TraceReader.open(path).checkpointSteps() }
        let deadline = Date().addingTimeInterval(60)
        while (committed() != Array(0..<6) || (folded() ?? 0) < 4) && Date() < deadline { usleep(20_000) }
        #expect(committed() == Array(0..<6))
        #expect((folded() ?? 0) >= 4, "the main file alone holds \(String(describing: folded())) checkpoints before finish")
        bg.enqueueCheckpoint(step: 6, parameters: Fixture.parameters(step: 6, count: count))
        try bg.finish()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        let r = try TraceReader.open(path)
        #expect(try r.checkpointSteps() == Array(0...6))
        #expect(try r.checkpoint(step: 3).map(\.bitPattern) == Fixture.parameters(step: 3, count: count).map(\.bitPattern))
    }
}
