import Foundation
import Testing
@testable import PKTrace

/// Traces in a directory this process cannot write (see `ReadOnlyDirectory` for how that is
/// made real for root): reading works, or fails with a message that says what to do.
@Suite("Read-only directories", .serialized,
       .enabled(if: ReadOnlyDirectory.isAvailable, "needs chattr +i (as root) or chmod (otherwise) to make a directory read-only"))
struct ReadOnlyDirectoryTests {
    /// A closed trace (no -wal, no -shm): SQLite cannot create the side files it reads a
    /// WAL-mode file through, so the reader opens it immutable, and reads everything.
    @Test func closedTraceIsReadInPlace() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("t.sqlite").path
        try Fixture.trace(at: path)
        let undo = try #require(ReadOnlyDirectory.make(dir))
        defer { undo() }
        let r = try TraceReader.open(path)
        #expect(try r.checkpointSteps() == [0, 2, 4, 6])
        #expect(try r.validate().problems == [])
        #expect(try r.analyses() == [])
        r.close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["t.sqlite"])
    }

    /// A killed writer's -wal and -shm: SQLite reads the WAL through the existing -shm.
    @Test func pendingWALWithItsIndexIsReadInPlace() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("t.sqlite").path
        let live = try freshPath("live.sqlite")
        let w = try TraceWriter.create(at: live, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try w.appendStep(Fixture.step(0))
        try w.appendCheckpoint(step: 1, parameters: Fixture.parameters(step: 1))
        for s in ["", "-wal", "-shm"] { try FileManager.default.copyItem(atPath: live + s, toPath: path + s) }
        w.close()
        let undo = try #require(ReadOnlyDirectory.make(dir))
        defer { undo() }
        let r = try TraceReader.open(path)
        #expect(try r.checkpointSteps() == [0, 1], "the commits in the -wal are read")
        #expect(try r.validate().problems == [])
    }

    /// A -wal holding commits without its -shm cannot be read there: the error says to copy
    /// both files to a writable directory.
    @Test func pendingWALWithoutItsIndexSaysToCopyBothFiles() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("t.sqlite").path
        let live = try freshPath("live.sqlite")
        let w = try TraceWriter.create(at: live, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        for s in ["", "-wal"] { try FileManager.default.copyItem(atPath: live + s, toPath: path + s) }
        w.close()
        let undo = try #require(ReadOnlyDirectory.make(dir))
        defer { undo() }
        let e = expectTraceError { _ = try TraceReader.open(path) }
        #expect(e.map { if case .cannotOpenReadOnly = $0 { true } else { false } } == true)
        expectOneLine(e, mentions: ["t.sqlite", "cannot read", "t.sqlite-wal", "-shm", "copy", "writable directory"])
        // The copy the message asks for reads.
        undo()
        let copyDir = try temporaryDirectory()
        for s in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + s, toPath: copyDir.appendingPathComponent("t.sqlite" + s).path) }
        #expect(try TraceReader.open(copyDir.appendingPathComponent("t.sqlite").path).checkpointSteps() == [0])
    }

    /// Writing (storing an analysis) where nothing can be written fails with a message that says so.
    @Test func writingSaysTheDirectoryIsReadOnly() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("t.sqlite").path
        try Fixture.trace(at: path)
        let undo = try #require(ReadOnlyDirectory.make(dir))
        defer { undo() }
        let e = expectTraceError {
            let w = try AnalysisWriter.open(path)
            try w.save(StoredAnalysis(key: "k", settingsJSON: "{}", resultJSON: "{}", createdAt: "2025-01-01T00:00:00Z", toolVersion: "0"))
        }
        expectOneLine(e, mentions: ["t.sqlite", "read-only", "copy"])
    }
}
