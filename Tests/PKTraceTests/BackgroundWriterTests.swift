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
}
