import Foundation
import Testing
@testable import PKTrace

@Suite("Live traces, killed writers, full disks")
struct LiveTraceTests {
    /// A reader opened while the writer appends sees each committed checkpoint.
    @Test func readerSeesCommittedCheckpointsOfAnOpenWriter() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try w.appendStep(Fixture.step(0))
        #expect(FileManager.default.fileExists(atPath: path + "-wal"), "the writer is in WAL mode")
        let r = try TraceReader.open(path)
        #expect(r.run.status == .running)
        #expect(try r.checkpointSteps() == [0])
        try w.appendCheckpoint(step: 1, parameters: Fixture.parameters(step: 1))
        #expect(try r.checkpointSteps() == [0, 1], "the same reader sees the new commit")
        // bit-exact round trip: compared by bit pattern
        #expect(try r.checkpoint(step: 1).map(\.bitPattern) == Fixture.parameters(step: 1).map(\.bitPattern))
        #expect(try r.validate().problems == [])
        #expect(try TraceReader.open(path).steps().count == 1)
        w.close()
    }

    /// A writer killed mid-run (simulated by copying the main file and its WAL while the writer
    /// is open, without the -shm index) leaves a trace whose committed checkpoints all validate
    /// and whose step rows may run past the last checkpoint.
    @Test func killedWriterLeavesAValidPrefix() throws {
        let dir = try temporaryDirectory()
        let live = dir.appendingPathComponent("live.sqlite").path
        let killed = dir.appendingPathComponent("killed.sqlite").path
        let w = try TraceWriter.create(at: live, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        for s in 0..<5 {
            if s % 2 == 0 { try w.appendCheckpoint(step: s, parameters: Fixture.parameters(step: s)) }
            try w.appendStep(Fixture.step(s))
        }
        try FileManager.default.copyItem(atPath: live, toPath: killed)
        try FileManager.default.copyItem(atPath: live + "-wal", toPath: killed + "-wal")
        w.close()
        let r = try TraceReader.open(killed)
        #expect(r.run.status == .running)
        #expect(try r.checkpointSteps() == [0, 2, 4])
        for s in [0, 2, 4] { _ = try r.checkpoint(step: s) }
        let v = try r.validate()
        #expect(v.problems == [])
        #expect(v.lastStep == 4 && v.lastCheckpoint == 4)
    }

    /// Reading, validating and closing leave the main file byte-for-byte unchanged.
    @Test func readerNeverModifiesTheFile() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            let r = try TraceReader.open(path)
            _ = try r.data()
            _ = try r.steps()
            for s in try r.checkpointSteps() { _ = try r.checkpoint(step: s) }
            _ = try r.validate()
            _ = try r.analyses()
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(TraceReader.fileSize(path + "-wal") == 0)
    }

    /// SQLITE_FULL surfaces as `.diskFull`; everything committed before remains readable and valid.
    @Test func diskFullKeepsTheCommittedPrefix() throws {
        let path = try freshPath()
        let p = 4_000   // 32 KB per checkpoint, so two 64 KiB pages hold only a few
        let layout = [TensorLayout(name: "w", shape: [p], offset: 0, count: p)]
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: layout)
        try w.setMaxPageCountForTesting(try w.pageCountForTesting() + 2)
        var committed: [Int] = []
        var failure: TraceError?
        for s in 0..<50 {
            do {
                try w.appendCheckpoint(step: s, parameters: Fixture.parameters(step: s, count: p))
                try w.appendStep(Fixture.step(s))
                committed.append(s)
            } catch let e as TraceError {
                failure = e
                break
            }
        }
        let e = try #require(failure, "the page limit was never hit")
        #expect(e == .diskFull(path: path))
        expectOneLine(e, mentions: ["t.sqlite", "disk full", "everything committed before"])
        #expect(committed.count >= 1)
        w.close()

        let r = try TraceReader.open(path)
        #expect(try r.checkpointSteps() == committed)
        for s in committed {   // bit-exact round trip: compared by bit pattern
            #expect(try r.checkpoint(step: s).map(\.bitPattern) == Fixture.parameters(step: s, count: p).map(\.bitPattern))
        }
        #expect(try r.validate().problems == [])
    }

    /// The same through the background writer: firstError is disk full, finish rethrows it.
    @Test func diskFullInTheBackground() throws {
        let path = try freshPath()
        let p = 4_000
        let layout = [TensorLayout(name: "w", shape: [p], offset: 0, count: p)]
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: layout)
        try w.setMaxPageCountForTesting(try w.pageCountForTesting() + 2)
        let bg = BackgroundTraceWriter(writer: w)
        for s in 0..<50 {
            bg.enqueueCheckpoint(step: s, parameters: Fixture.parameters(step: s, count: p))
            bg.enqueueStep(Fixture.step(s))
        }
        bg.enqueueStatus(.finished, message: nil)
        let e = expectTraceError { try bg.finish() }
        #expect(e == .diskFull(path: path))
        #expect(bg.firstError == .diskFull(path: path))
        let r = try TraceReader.open(path)
        #expect(r.run.status == .running, "the status update after the failure was dropped")
        let cps = try r.checkpointSteps()
        #expect(!cps.isEmpty && cps.count < 50)
        #expect(try r.validate().problems == [])
    }

    /// The public `maxPageCount` of `create`: too small for the initial rows → disk full, and
    /// the partial file is removed.
    @Test func diskFullAtCreateRemovesThePartialFile() throws {
        let path = try freshPath()
        let big = DataArray(shape: [20_000, 3], values: [Double](repeating: 0.25, count: 60_000))
        let data = TraceData(trainX: big, trainY: DataArray(shape: [20_000], values: [Double](repeating: 1, count: 20_000)),
                             testX: Fixture.data().testX, testY: Fixture.data().testY)
        let e = expectTraceError {
            _ = try TraceWriter.create(at: path, run: Fixture.run(), data: data, layout: Fixture.layout, maxPageCount: 12)
        }
        #expect(e == .diskFullCreating(path: path))
        expectOneLine(e, mentions: ["t.sqlite", "disk full", "creating", "removed"])
        for suffix in ["", "-wal", "-shm"] { #expect(!FileManager.default.fileExists(atPath: path + suffix)) }
    }
}
