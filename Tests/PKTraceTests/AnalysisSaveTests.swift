import Foundation
import Testing
@testable import PKTrace

/// Saving an analysis: all or nothing under a kill, and a clear message when another process
/// keeps the trace busy.
@Suite("Saving analyses")
struct AnalysisSaveTests {
    static func analysis(_ result: String) -> StoredAnalysis {
        StoredAnalysis(key: "k", settingsJSON: "{}", resultJSON: result, createdAt: "2025-02-01T00:00:00Z", toolVersion: "0.1")
    }

    /// A process killed while saving (simulated by copying the main file and its -wal, without
    /// the -shm, inside the save's transaction just before the commit, when the new row's pages
    /// have already spilled into the -wal): the copy holds the old analysis, complete.
    @Test func killedWhileSavingLeavesTheOldAnalysis() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("t.sqlite").path
        let killed = dir.appendingPathComponent("killed.sqlite").path
        try Fixture.trace(at: path)
        let old = Self.analysis(#"{"r":1}"#)
        let w = try AnalysisWriter.open(path)
        try w.save(old)
        try w.foldWAL()
        // 8 MB: more than SQLite's default 2 MB page cache, so the transaction writes pages to
        // the -wal before it commits.
        let big = "{\"r\":\"" + String(repeating: "x", count: 8 << 20) + "\"}"
        var walBytesAtKill = 0
        w.beforeCommitForTesting = {
            try? FileManager.default.copyItem(atPath: path, toPath: killed)
            try? FileManager.default.copyItem(atPath: path + "-wal", toPath: killed + "-wal")
            walBytesAtKill = TraceReader.fileSize(path + "-wal")
        }
        try w.save(Self.analysis(big))
        w.close()
        #expect(walBytesAtKill > 1 << 20, "the uncommitted row had reached the -wal")
        let r = try TraceReader.open(killed)
        #expect(try r.analyses() == [old])
        #expect(try r.validate().problems == [])
        #expect(try TraceReader.open(path).analyses().map(\.resultJSON.count) == [big.count])
    }

    /// Another process holds the write lock past the busy timeout: the save fails with `.busy`,
    /// saying what to do, and stores nothing; once the lock is released, saving works.
    @Test func busyTraceSaysWhatToDo() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let w = try AnalysisWriter.open(path, migrations: TraceSchema.migrations, busyTimeoutMilliseconds: 200)
        let other = try SQLiteConnection(path: path, readOnly: false)
        try other.exec("BEGIN IMMEDIATE", "test")
        let e = expectTraceError { try w.save(Self.analysis("{}")) }
        #expect(e == .busy(path: path, operation: "saving an analysis"))
        expectOneLine(e, mentions: ["t.sqlite", "busy", "another process", "wait", "run the command again"])
        try other.exec("COMMIT", "test")
        other.close()
        try w.save(Self.analysis("{}"))
        w.close()
        #expect(try TraceReader.open(path).analyses() == [Self.analysis("{}")])
    }
}
