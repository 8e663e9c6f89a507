import Foundation
import Testing
@testable import PKTrace

/// Writers fold their WAL into the main file when they close, even while a reader is open, so
/// that the main file alone holds the trace; readers leave no `-wal`/`-shm` they created.
@Suite("WAL folding and side files")
struct SideFileTests {
    static func sideFiles(_ path: String) -> [String] {
        ["-wal", "-shm"].filter { FileManager.default.fileExists(atPath: path + $0) }
    }

    /// Copies the main file alone (as a user copying `run.sqlite` would) into a fresh directory.
    static func copyMainFileOnly(_ path: String) throws -> String {
        let copy = try freshPath("copy.sqlite")
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        return copy
    }

    static let analysis = StoredAnalysis(key: #"{"q":8}"#, settingsJSON: #"{"q":8}"#, resultJSON: #"{"r":1}"#,
                                         createdAt: "2025-02-01T00:00:00Z", toolVersion: "0.1")

    /// `analyze` keeps a reader open while it saves: the analysis must still reach the main file.
    @Test func savedAnalysisReachesTheMainFileWhileAReaderIsOpen() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let reader = try TraceReader.open(path)
        _ = try reader.steps()
        let w = try AnalysisWriter.open(path)
        try w.save(Self.analysis)
        w.close()
        #expect(TraceReader.fileSize(path + "-wal") == 0, "the WAL is folded and emptied")
        let copy = try Self.copyMainFileOnly(path)
        #expect(try TraceReader.open(copy).analyses() == [Self.analysis])
        reader.close()
        #expect(Self.sideFiles(path) == [], "the reader created the side files, so it removes them")
    }

    /// The training writer, closed while a reader is open, leaves every commit in the main file.
    @Test func closedWriterLeavesEverythingInTheMainFileWhileAReaderIsOpen() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        let reader = try TraceReader.open(path)
        #expect(try reader.checkpointSteps() == [0])
        try w.appendStep(Fixture.step(0))
        try w.appendCheckpoint(step: 1, parameters: Fixture.parameters(step: 1))
        try w.setStatus(.finished, message: nil)
        w.close()
        let copy = try TraceReader.open(try Self.copyMainFileOnly(path))
        #expect(copy.run.status == .finished)
        #expect(try copy.checkpointSteps() == [0, 1])
        #expect(try copy.validate().problems == [])
        reader.close()
        #expect(Self.sideFiles(path) == [])
    }

    /// Reading a closed trace leaves no side files, whether the reader is closed or released.
    @Test func readerLeavesNoSideFiles() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        #expect(Self.sideFiles(path) == [])
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try TraceReader.open(path)
        _ = try r.validate()
        _ = try r.analyses()
        #expect(Self.sideFiles(path) == ["-wal", "-shm"], "SQLite reads a WAL-mode file through them")
        r.close()
        #expect(Self.sideFiles(path) == [])
        do { _ = try TraceReader.open(path).steps() }   // released, not closed
        #expect(Self.sideFiles(path) == [])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the main file is untouched")
        // Failed opens clean up too.
        try rawSQL(path, "INSERT INTO schema_migrations VALUES (999, 'future', '2100-01-01T00:00:00Z')")
        _ = expectTraceError { _ = try TraceReader.open(path) }
        #expect(Self.sideFiles(path) == [])
    }

    /// Side files in use by another connection stay: the last reader to close removes them.
    @Test func readersRemoveSideFilesOnlyWhenNobodyUsesThem() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let first = try TraceReader.open(path)
        let second = try TraceReader.open(path)
        _ = try second.steps()
        first.close()
        #expect(Self.sideFiles(path) == ["-wal", "-shm"], "the second reader still uses them")
        #expect(try second.checkpointSteps() == [0, 2, 4, 6])
        second.close()
        #expect(Self.sideFiles(path) == [])
    }

    /// A killed writer's `-wal` holds commits: readers leave it (and the main file) as found.
    @Test func readerLeavesAKilledWritersWAL() throws {
        let dir = try temporaryDirectory()
        let live = dir.appendingPathComponent("live.sqlite").path
        let killed = dir.appendingPathComponent("killed.sqlite").path
        let w = try TraceWriter.create(at: live, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try FileManager.default.copyItem(atPath: live, toPath: killed)
        try FileManager.default.copyItem(atPath: live + "-wal", toPath: killed + "-wal")
        w.close()
        let main = try Data(contentsOf: URL(fileURLWithPath: killed))
        let wal = try Data(contentsOf: URL(fileURLWithPath: killed + "-wal"))
        #expect(try TraceReader.open(killed).checkpointSteps() == [0])
        #expect(try Data(contentsOf: URL(fileURLWithPath: killed)) == main)
        #expect(try Data(contentsOf: URL(fileURLWithPath: killed + "-wal")) == wal)
    }

    /// A live writer's side files are never touched by a reader.
    @Test func readerLeavesALiveWritersSideFiles() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try TraceReader.open(path).close()
        #expect(Self.sideFiles(path) == ["-wal", "-shm"])
        try w.appendStep(Fixture.step(0))
        try w.appendCheckpoint(step: 1, parameters: Fixture.parameters(step: 1))
        w.close()
        #expect(Self.sideFiles(path) == [])
        #expect(try TraceReader.open(path).checkpointSteps() == [0, 1])
    }
}
