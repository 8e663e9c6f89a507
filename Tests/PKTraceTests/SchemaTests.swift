import Foundation
import Testing
@testable import PKTrace

@Suite("Schema migrations and stored analyses")
struct SchemaTests {
    static let fake = Migration(version: 2, name: "v2-test-extra", sql: "CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT);")

    /// A writer opening an older trace applies the missing migrations, each recorded by name.
    @Test func openingAnOlderTraceAppliesMissingMigrations() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let w = try AnalysisWriter.open(path, migrations: TraceSchema.migrations + [Self.fake])
        w.close()
        let db = try SQLiteConnection(path: path, readOnly: true)
        let q = try db.prepare("SELECT version, name FROM schema_migrations ORDER BY version", "test")
        var rows: [String] = []
        while try q.step() { rows.append("\(q.int(0)) \(q.text(1) ?? "")") }
        #expect(rows == ["1 v1-initial", "2 v2-test-extra"])
        #expect(try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'extra'", "test") == 1)
        // This build knows version 1 only, so its reader now refuses the trace.
        let e = expectTraceError { _ = try TraceReader.open(path) }
        #expect(e == .schemaTooNew(path: path, found: 2, supported: 1))
    }

    /// Migrating an up-to-date trace is a no-op; a newer one is refused by writers too.
    @Test func upToDateIsANoOpAndNewerIsRefused() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        try AnalysisWriter.open(path).close()
        #expect(try TraceReader.open(path).schemaVersion == 1)
        try rawSQL(path, "INSERT INTO schema_migrations VALUES (999, 'future', '2100-01-01T00:00:00Z')")
        let e = expectTraceError { _ = try AnalysisWriter.open(path) }
        expectOneLine(e, mentions: ["t.sqlite", "999", "upgrade"])
    }

    /// A trace created with an explicit history holds exactly those migrations.
    @Test func createAppliesTheWholeHistoryInOrder() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout,
                                       maxPageCount: nil, migrations: TraceSchema.migrations + [Self.fake])
        w.close()
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try TraceSchema.currentVersion(db) == 2)
    }

    /// Analyses: saved, replaced by key, listed oldest first.
    @Test func storedAnalysesRoundTrip() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let a = StoredAnalysis(key: #"{"q":8}"#, settingsJSON: #"{"q":8}"#, resultJSON: #"{"r":1}"#, createdAt: "2025-02-01T00:00:00Z", toolVersion: "0.1")
        let b = StoredAnalysis(key: #"{"q":16}"#, settingsJSON: #"{"q":16}"#, resultJSON: #"{"r":2}"#, createdAt: "2025-02-01T00:01:00Z", toolVersion: "0.1")
        var a2 = a
        a2.resultJSON = #"{"r":3}"#
        let w = try AnalysisWriter.open(path)
        try w.save(a)
        try w.save(b)
        #expect(try TraceReader.open(path).analyses() == [a, b])
        try w.save(a2)
        w.close()
        let r = try TraceReader.open(path)
        #expect(try r.analyses() == [b, a2])
        #expect(try r.analysis(key: a.key) == a2)
        #expect(try r.analysis(key: "nope") == nil)
        #expect(try r.validate().problems == [])
    }
}
