import Foundation
import Testing
@testable import PKTrace

/// Each damaged or foreign input gives a `TraceError` whose description is one line naming the
/// file and the problem.
@Suite("Bad input")
struct BadInputTests {
    enum Case: String, CaseIterable, CustomTestStringConvertible {
        case nonexistentPath, emptyFile, randomBytes, truncatedTrace, foreignSQLiteFile, schemaFromTheFuture,
             checkpointBlobLengthMismatch, checkpointFlippedByte, checkpointCountMismatch, missingCheckpoint,
             nanInDataAtCreate, existingFileAtCreate, leftoverWALAtCreate, interruptedCreation, missingRunRow
        var testDescription: String { rawValue }
    }

    /// The words each case's description must contain (besides the file name).
    static func words(_ c: Case) -> [String] {
        switch c {
        case .nonexistentPath: ["no such file"]
        case .emptyFile: ["empty"]
        case .randomBytes: ["not a pathkernel trace", "SQLite header"]
        case .truncatedTrace: ["truncated"]
        case .foreignSQLiteFile: ["not a pathkernel trace", "application_id"]
        case .schemaFromTheFuture: ["schema version 999", "upgrade pathkernel"]
        case .checkpointBlobLengthMismatch: ["step 2", "100 bytes"]
        case .checkpointFlippedByte: ["step 2", "checksum"]
        case .checkpointCountMismatch: ["step 2", "count 20"]
        case .missingCheckpoint: ["no checkpoint at step 5", "0, 2, 4, 6"]
        case .nanInDataAtCreate: ["test x", "nan"]
        case .existingFileAtCreate: ["already exists"]
        case .leftoverWALAtCreate: ["case.sqlite-wal", "without its trace", "delete"]
        case .interruptedCreation: ["not a pathkernel trace", "no tables", "interrupted"]
        case .missingRunRow: ["run row is missing"]
        }
    }

    @Test(arguments: Case.allCases)
    func givesAOneLineError(_ c: Case) throws {
        let path = try freshPath("case.sqlite")
        let fm = FileManager.default
        let error: TraceError?
        switch c {
        case .nonexistentPath:
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .emptyFile:
            _ = fm.createFile(atPath: path, contents: Data())
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .randomBytes:
            var g = SystemRandomNumberGenerator()
            _ = fm.createFile(atPath: path, contents: Data((0..<65_536).map { _ in UInt8.random(in: 0...255, using: &g) }))
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .truncatedTrace:
            try Fixture.trace(at: path)   // closed: the WAL is folded into the main file
            #expect(!fm.fileExists(atPath: path + "-wal"))
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .foreignSQLiteFile:
            let db = try SQLiteConnection(path: path, readOnly: false, create: true)
            try db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'hi')", "test")
            db.close()
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .schemaFromTheFuture:
            try Fixture.trace(at: path)
            try rawSQL(path, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', '2100-01-01T00:00:00Z')")
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .checkpointBlobLengthMismatch:
            try Fixture.trace(at: path)
            try rawSQL(path, "UPDATE checkpoint SET params = substr(params, 1, 100) WHERE step = 2")
            let r = try TraceReader.open(path)
            error = expectTraceError { _ = try r.checkpoint(step: 2) }
        case .checkpointFlippedByte:
            try Fixture.trace(at: path)
            error = flipByte(path: path, step: 2)
        case .checkpointCountMismatch:
            try Fixture.trace(at: path)
            try rawSQL(path, "UPDATE checkpoint SET count = 20 WHERE step = 2")
            let r = try TraceReader.open(path)
            error = expectTraceError { _ = try r.checkpoint(step: 2) }
        case .missingCheckpoint:
            try Fixture.trace(at: path)
            let r = try TraceReader.open(path)
            error = expectTraceError { _ = try r.checkpoint(step: 5) }
        case .nanInDataAtCreate:
            var data = Fixture.data()
            data.testX.values[4] = .nan
            error = expectTraceError { _ = try TraceWriter.create(at: path, run: Fixture.run(), data: data, layout: Fixture.layout) }
            #expect(!fm.fileExists(atPath: path), "no file is created for invalid input")
        case .existingFileAtCreate:
            try Fixture.trace(at: path)
            error = expectTraceError { _ = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout) }
            #expect(try TraceReader.open(path).checkpointSteps() == [0, 2, 4, 6], "the existing trace is untouched")
        case .leftoverWALAtCreate:
            // A trace deleted without its -wal (or whose creation was killed, then deleted):
            // SQLite would replay the stale WAL into a new file at the same path.
            let live = try freshPath("live.sqlite")
            let w = try TraceWriter.create(at: live, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
            try fm.copyItem(atPath: live + "-wal", toPath: path + "-wal")
            w.close()
            error = expectTraceError { _ = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout) }
            #expect(!fm.fileExists(atPath: path), "nothing is created next to the leftover -wal")
            #expect(!(error?.description.contains("never overwritten") ?? true), "a -wal is not a trace")
        case .interruptedCreation:
            // Killed after the writer set WAL mode, before the application id and the tables.
            let db = try SQLiteConnection(path: path, readOnly: false, create: true)
            try db.exec("PRAGMA page_size = 65536; PRAGMA journal_mode = WAL", "test")
            db.close()
            error = expectTraceError { _ = try TraceReader.open(path) }
        case .missingRunRow:
            try Fixture.trace(at: path)
            try rawSQL(path, "DELETE FROM run")
            error = expectTraceError { _ = try TraceReader.open(path) }
        }
        #expect(error != nil)
        expectOneLine(error, mentions: ["case.sqlite"] + Self.words(c))
    }

    /// Flips one bit of checkpoint `step`'s blob with a read-modify-write through SQLite (the
    /// blob keeps its length), then reads the checkpoint.
    func flipByte(path: String, step: Int) -> TraceError? {
        do {
            let db = try SQLiteConnection(path: path, readOnly: false)
            let q = try db.prepare("SELECT params FROM checkpoint WHERE step = ?", "test")
            try q.bind(1, step)
            _ = try q.step()
            var bytes = q.blob(0) { Array($0) }
            q.reset()
            bytes[17] ^= 0x01
            let u = try db.prepare("UPDATE checkpoint SET params = ? WHERE step = ?", "test")
            try u.bind(1, blob: bytes)
            try u.bind(2, step)
            try u.step()
            db.close()
        } catch {
            Issue.record("could not corrupt the checkpoint: \(error)")
        }
        return expectTraceError { _ = try TraceReader.open(path).checkpoint(step: step) }
    }

    /// A flipped byte and a wrong length are listed by validate() too, which does not throw for them.
    @Test func validateListsCorruptCheckpointsWithoutThrowing() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        _ = flipByte(path: path, step: 4)
        try rawSQL(path, "UPDATE checkpoint SET params = substr(params, 1, 100) WHERE step = 2")
        let v = try TraceReader.open(path).validate()
        #expect(v.corruptCheckpoints == [2, 4])
        #expect(v.problems.count == 2)
        #expect(v.problems.contains { $0.contains("step 2") && $0.contains("100 bytes") })
        #expect(v.problems.contains { $0.contains("step 4") && $0.contains("checksum") })
    }

    /// A deleted step row is listed by validate().
    @Test func validateListsAMissingStepRow() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        try rawSQL(path, "DELETE FROM step WHERE step = 3")
        let v = try TraceReader.open(path).validate()
        #expect(v.missingSteps == [3])
        #expect(v.problems.count == 1)
        #expect(v.problems.first?.contains("step rows missing: 3") == true, "\(v.problems)")
        #expect(v.stepCount == 5 && v.lastStep == 5)
    }

    /// A checkpoint past the step rows (e.g. written without its steps) is a problem.
    @Test func validateFlagsACheckpointBeyondTheSteps() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try w.appendStep(Fixture.step(0))
        try w.appendCheckpoint(step: 1, parameters: Fixture.parameters(step: 1))   // fine: after step 0
        try w.appendCheckpoint(step: 3, parameters: Fixture.parameters(step: 3))   // steps 1, 2 missing
        w.close()
        let v = try TraceReader.open(path).validate()
        #expect(v.problems.count == 1)
        #expect(v.problems.first?.contains("step 3") == true, "\(v.problems)")
    }

    /// Data corruption is reported by data() and validate().
    @Test func corruptDataIsNamed() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        try rawSQL(path, "UPDATE data SET checksum = checksum + 1 WHERE split = 'train' AND role = 'y'")
        let r = try TraceReader.open(path)
        expectOneLine(expectTraceError { _ = try r.data() }, mentions: ["t.sqlite", "train y", "checksum"])
        #expect(try r.validate().problems.count == 1)
    }

    /// Inconsistent input to create is refused before any file exists.
    @Test(arguments: [
        ("layout gap", ["offset 13 should be 12"]),
        ("layout count", ["count 5 is not the product"]),
        ("label", ["train y", "not a class index"]),
        ("rows", ["test", "3 rows but y has 2"]),
        ("task", ["task \"ranking\""]),
        ("values", ["train x", "calls for 15 values but 14"]),
    ])
    func invalidCreateInput(what: String, words: [String]) throws {
        let path = try freshPath()
        var run = Fixture.run(), data = Fixture.data(), layout = Fixture.layout
        switch what {
        case "layout gap": layout[1].offset = 13
        case "layout count": layout[1].count = 5
        case "label": data.trainY.values[2] = 2
        case "rows": data.testY = DataArray(shape: [2], values: [0, 1])
        case "task": run.task = "ranking"
        default: data.trainX.values.removeLast()
        }
        let e = expectTraceError { _ = try TraceWriter.create(at: path, run: run, data: data, layout: layout) }
        expectOneLine(e, mentions: ["t.sqlite"] + words)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// Appends that break the format are refused with the step named; the trace stays usable.
    @Test func invalidAppendsAreRefused() throws {
        let path = try freshPath()
        let w = try TraceWriter.create(at: path, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout)
        try w.appendStep(Fixture.step(0))
        expectOneLine(expectTraceError { try w.appendStep(Fixture.step(0)) }, mentions: ["step 0", "already recorded"])
        expectOneLine(expectTraceError { try w.appendStep(Fixture.step(1, batch: [7])) }, mentions: ["step 1", "batch index 7"])
        expectOneLine(expectTraceError { try w.appendSteps([Fixture.step(1), Fixture.step(1)]) }, mentions: ["step 1", "already recorded"])
        expectOneLine(expectTraceError { try w.appendCheckpoint(step: 1, parameters: [1]) }, mentions: ["step 1", "1 parameters", "21"])
        try w.appendStep(Fixture.step(1))   // the failed batch left nothing behind
        w.close()
        expectOneLine(expectTraceError { try w.appendStep(Fixture.step(2)) }, mentions: ["closed"])
        #expect(try TraceReader.open(path).steps().map(\.step) == [0, 1])
    }
}
