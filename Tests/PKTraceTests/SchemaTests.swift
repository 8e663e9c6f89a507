import Foundation
import Testing
@testable import PKTrace

@Suite("Schema migrations and stored analyses")
struct SchemaTests {
    static let fake = Migration(version: TraceSchema.latestVersion + 1, name: "test-extra",
                                sql: "CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT);")
    static let names = (TraceSchema.migrations + [fake]).map { "\($0.version) \($0.name)" }

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
        #expect(rows == Self.names)
        #expect(try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'extra'", "test") == 1)
        // This build does not know the extra version, so its reader now refuses the trace.
        let e = expectTraceError { _ = try TraceReader.open(path) }
        #expect(e == .schemaTooNew(path: path, found: Self.fake.version, supported: TraceSchema.latestVersion))
    }

    /// Two writers opening an older trace at once (two `pathkernel analyze`) both read the old
    /// version before either migrates: the second must skip what the first applied (it failed
    /// with "duplicate column" or "table already exists" when it ran the migration again).
    @Test func concurrentWritersApplyAMigrationOnce() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let blocker = try SQLiteConnection(path: path, readOnly: false)
        try blocker.exec("BEGIN IMMEDIATE", "test")   // the writers read the version, then wait for this lock
        let errors = LockedStrings()
        let done = DispatchGroup()
        for _ in 0..<2 {   // threads of their own: the global queue may run the two one after the other
            done.enter()
            Thread {
                do { try AnalysisWriter.open(path, migrations: TraceSchema.migrations + [Self.fake]).close() } catch {
                    errors.append("\(error)")
                }
                done.leave()
            }.start()
        }
        Thread.sleep(forTimeInterval: 0.5)   // both have read the version by now
        try blocker.exec("COMMIT", "test")
        done.wait()
        blocker.close()
        #expect(errors.values == [])
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.scalarInt("SELECT count(*) FROM schema_migrations WHERE version = \(Self.fake.version)", "test") == 1)
    }

    /// Migrating an up-to-date trace is a no-op; a newer one is refused by writers too.
    @Test func upToDateIsANoOpAndNewerIsRefused() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        try AnalysisWriter.open(path).close()
        #expect(try TraceReader.open(path).schemaVersion == TraceSchema.latestVersion)
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
        #expect(try TraceSchema.currentVersion(db) == Self.fake.version)
    }

    /// Analyses: saved with their basis, replaced by key, listed oldest first.
    @Test func storedAnalysesRoundTrip() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let basis = try TraceReader.open(path).basis()
        let a = StoredAnalysis(key: #"{"q":8}"#, settingsJSON: #"{"q":8}"#, resultJSON: #"{"r":1}"#, createdAt: "2025-02-01T00:00:00Z", toolVersion: "0.1",
                               basis: basis)
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

    /// The basis: status, last step row, last checkpoint and its checksum, read together; it
    /// changes with every commit that adds to the run, and says how.
    @Test func basisFollowsTheTrace() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        let r = try TraceReader.open(path)
        let empty = try r.basis()
        #expect(empty == TraceBasis(status: .running, lastStep: nil, lastCheckpoint: nil, checkpointChecksum: nil))
        #expect(empty.summary == "running, with no steps and no checkpoint")
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try w.appendSteps([Fixture.step(0), Fixture.step(1)])
        try w.appendCheckpoint(step: 2, parameters: Fixture.parameters(step: 2))
        let partial = try r.basis()
        let crc = Int64(CRC32.checksum(BlobCoding.float64Bytes(Fixture.parameters(step: 2))))
        #expect(partial == TraceBasis(status: .running, lastStep: 1, lastCheckpoint: 2, checkpointChecksum: crc))
        #expect(try r.basis().changes(since: partial) == nil)
        try w.appendStep(Fixture.step(2))
        #expect(try r.basis().changes(since: partial) != nil, "a step row alone changes it")
        try w.appendStep(Fixture.step(3))
        try w.appendCheckpoint(step: 4, parameters: Fixture.parameters(step: 4))
        try w.setStatus(.finished, message: nil)
        w.close()
        let done = try r.basis()
        #expect(done.changes(since: partial) == "it was computed when the trace was running, with 2 steps and its last checkpoint at step 2; the trace is now finished, with 4 steps and its last checkpoint at step 4")
        // Rewriting the last checkpoint in place (same steps, same status) changes the checksum.
        try rawSQL(path, "UPDATE checkpoint SET checksum = checksum + 1 WHERE step = 4")
        #expect(try r.basis().changes(since: done)?.contains("rewritten") == true)
    }

    /// A version-2 trace with an analysis stored by an older pathkernel: the analysis reads with
    /// no basis; a writer applies migration 3 (the analysis keeps its NULL basis), and analyses
    /// saved afterwards carry theirs.
    @Test func versionTwoAnalysesReadAndMigrate() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout,
                                       maxPageCount: nil, migrations: Array(TraceSchema.migrations.prefix(2)))
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        w.close()
        try rawSQL(path, "INSERT INTO analysis (key, settings_json, result_json, created_at, tool_version) VALUES ('old', '{}', '{\"r\":0}', '2025-01-01T00:00:00Z', '0.0')")
        let old = StoredAnalysis(key: "old", settingsJSON: "{}", resultJSON: #"{"r":0}"#, createdAt: "2025-01-01T00:00:00Z", toolVersion: "0.0")
        let r2 = try TraceReader.open(path)
        #expect(r2.schemaVersion == 2)
        #expect(try r2.analyses() == [old])
        let aw = try AnalysisWriter.open(path)
        let basis = try r2.basis()
        let new = StoredAnalysis(key: "new", settingsJSON: "{}", resultJSON: "{}", createdAt: "2025-02-01T00:00:00Z", toolVersion: "0.1", basis: basis)
        try aw.save(new)
        aw.close()
        let r3 = try TraceReader.open(path)
        #expect(r3.schemaVersion == TraceSchema.latestVersion)
        #expect(try r3.analyses() == [old, new])
    }

    /// Docs/trace-format.md lists every migration after the first with its exact SQL.
    @Test func migrationsAreDocumentedWithTheirSQL() throws {
        let doc = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Docs/trace-format.md"), encoding: .utf8)
        func normalized(_ s: String) -> String { s.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let text = normalized(doc)
        for m in TraceSchema.migrations.dropFirst() {
            let named = text.contains("`\(m.name)`")
            #expect(named, "migration \(m.version) is not named in the docs")
            for statement in m.sql.split(separator: ";").map({ normalized(String($0)) }) where !statement.isEmpty {
                let documented = text.contains(statement + ";")
                #expect(documented, "undocumented SQL of migration \(m.version): \(statement)")
            }
        }
    }
}

@Suite("Optimizer state and clip scales (schema v2)")
struct OptimizerStateTests {
    @Test func stateAndClipScaleRoundTrip() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        var s0 = Fixture.step(0), s1 = Fixture.step(1)
        s0.clipScale = 0.25
        s1.clipScale = 1
        try w.appendSteps([s0, s1])
        let P = Fixture.parameterCount
        let state = StoredOptimizerState(names: ["m", "v"], count: 2, values: (0..<(2 * P)).map { Double($0) / 7 })
        try w.appendCheckpoint(step: 2, parameters: Fixture.parameters(step: 2), optimizerState: state)
        let bad = StoredOptimizerState(names: ["m"], count: 1, values: [1, 2])
        let e = expectTraceError { try w.appendCheckpoint(step: 3, parameters: Fixture.parameters(step: 3), optimizerState: bad) }
        expectOneLine(e, mentions: ["optimizer state", "step 3"])
        w.close()
        let r = try TraceReader.open(path)
        #expect(try r.optimizerState(step: 2) == state)
        #expect(try r.optimizerState(step: 0) == nil)
        #expect(try r.steps().map(\.clipScale) == [0.25, 1])
        // A damaged state blob is reported, not returned.
        try rawSQL(path, "UPDATE optimizer_state SET data = zeroblob(length(data)) WHERE step = 2")
        let c = expectTraceError { _ = try TraceReader.open(path).optimizerState(step: 2) }
        expectOneLine(c, mentions: ["optimizer state", "checksum"])
    }

    /// A version-1 trace (no optimizer_state table, no clip_scale column) reads as "no state, no
    /// clipping"; a writer opening it applies migration 2.
    @Test func versionOneTracesReadAndMigrate() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout,
                                       maxPageCount: nil, migrations: [TraceSchema.migrations[0]])
        w.close()
        try rawSQL(path, "INSERT INTO step (step, epoch, learning_rate, batch_size, batch, loss) VALUES (0, 0, 0.1, 1, x'00000000', 1.0)")
        let old = try TraceReader.open(path)
        #expect(old.schemaVersion == 1)
        #expect(try old.steps().map(\.clipScale) == [nil])
        #expect(try old.optimizerState(step: 0) == nil)
        try AnalysisWriter.open(path).close()
        let r = try TraceReader.open(path)
        #expect(r.schemaVersion == TraceSchema.latestVersion)
        #expect(try r.steps().map(\.clipScale) == [nil])
        #expect(try r.optimizerState(step: 0) == nil)
    }
}
