import CSQLite
import Foundation

/// Reads a trace, never modifying it.
///
/// The connection is `SQLITE_OPEN_READONLY` with a busy timeout, so a trace can be read while
/// its writer is still appending: every call sees what was committed when it ran (each call is
/// its own read transaction; two calls may see different prefixes). `run`, `layout` and
/// `schemaVersion` are read once, at `open`.
///
/// `open` checks, in order: the file exists and is non-empty, starts with the SQLite header and
/// is not shorter than its header says (when no WAL is pending), carries the pathkernel
/// `application_id`, has a schema version this build understands, and has its run row and a
/// contiguous parameter layout. Blobs are checked (length and CRC-32) when read.
///
/// Side files: reading a WAL-mode file makes SQLite create `PATH-wal` and `PATH-shm`. A reader
/// removes both when it closes, unless another connection uses them or it found a `-wal`
/// holding commits (a live or killed writer's), so reading leaves the directory as it was. In a directory where they cannot be created
/// (read-only, or a full disk) a trace without pending commits is opened `immutable`.
///
/// Does not hold: `open` does not read every page, so damage in the middle of a file shows up
/// only when the damaged rows are read (`validate()` reads them all). In a read-only directory,
/// a trace whose writer left a `-wal` file holding commits but no `-shm` file cannot be read:
/// `.cannotOpenReadOnly` says to copy both files elsewhere (SQLite needs the `-shm` index to
/// read the WAL). An `immutable` reader assumes nobody writes the file while it is open; a
/// writer that can write where this reader cannot (another user) breaks that assumption.
public final class TraceReader: @unchecked Sendable {
    public let path: String
    /// `MAX(version)` of `schema_migrations`.
    public let schemaVersion: Int
    /// The run row as of `open`.
    public let run: RunInfo
    /// The parameter layout in position order; contiguous over `0..<parameterCount`.
    public let layout: [TensorLayout]
    /// P: the length of the flat parameter vector.
    public let parameterCount: Int

    private let db: SQLiteConnection
    private let lock = NSLock()

    private init(path: String, db: SQLiteConnection, schemaVersion: Int, run: RunInfo, layout: [TensorLayout]) {
        self.path = path
        self.db = db
        self.schemaVersion = schemaVersion
        self.run = run
        self.layout = layout
        self.parameterCount = layout.reduce(0) { $0 + $1.count }
    }

    /// Bytes on disk: the main file plus its `-wal` file (the `-shm` index is not counted).
    public var fileSizeBytes: Int {
        TraceReader.fileSize(path) + TraceReader.fileSize(path + "-wal")
    }

    /// Opens and checks a trace; see the type's documentation for the checks.
    public static func open(_ path: String) throws -> TraceReader {
        try checkFile(path)
        let (db, appID) = try connect(path)
        guard appID == Int(TraceSchema.applicationID) else {
            if appID == 0, try db.scalarInt("SELECT count(*) FROM sqlite_master", "reading the schema") == 0 {
                throw TraceError.notATrace(path: path, detail: "it holds no tables (an empty database, or a trace whose creation was interrupted: then delete it, with its -wal and -shm files, and record again)")
            }
            let found = String(UInt32(truncatingIfNeeded: appID), radix: 16, uppercase: true)
            let want = String(UInt32(bitPattern: TraceSchema.applicationID), radix: 16, uppercase: true)
            throw TraceError.notATrace(path: path, detail: "its application_id is 0x\(found), a trace's is 0x\(want)")
        }
        guard let version = try TraceSchema.currentVersion(db), version >= 1 else {
            throw TraceError.notATrace(path: path, detail: "it has no schema_migrations rows (created by something else, or a trace whose creation was interrupted: then delete it, with its -wal and -shm files, and record again)")
        }
        guard version <= TraceSchema.latestVersion else {
            throw TraceError.schemaTooNew(path: path, found: version, supported: TraceSchema.latestVersion)
        }
        let run = try readRun(db)
        do { try TraceWriter.checkRun(run, path: path) } catch let TraceError.invalidInput(_, detail) {
            throw TraceError.corrupt(path: path, detail: "the run row: \(detail)")
        }
        let layout = try readLayout(db)
        return TraceReader(path: path, db: db, schemaVersion: version, run: run, layout: layout)
    }

    /// Closes the connection (a reader that created `PATH-wal`/`PATH-shm` removes them again
    /// when nobody else uses them). Idempotent; later calls throw `.closed`.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        db.close()
    }

    /// A read-only connection and the file's application id.
    ///
    /// Reading a WAL-mode file makes SQLite create `PATH-wal` and `PATH-shm` next to it when they
    /// are missing. Where it cannot (a read-only directory or medium, a full disk) and no `-wal`
    /// holds commits, nobody can be writing the file, and it is opened `immutable` instead (no
    /// locks, no side files). A `-wal` holding commits without a `-shm` cannot be read there.
    static func connect(_ path: String) throws -> (SQLiteConnection, Int) {
        func probe(_ db: SQLiteConnection) throws -> Int {
            try db.exec("PRAGMA query_only = 1", "opening the trace read-only")
            return try db.scalarInt("PRAGMA application_id", "reading the application id") ?? 0
        }
        do {
            let db = try SQLiteConnection(path: path, readOnly: true)
            return (db, try probe(db))
        } catch let error as TraceError {
            switch error {
            case .cannotOpenReadOnly, .diskFullReading: break
            default: throw error
            }
            let name = PathNames.lastComponent(path)
            guard !SQLiteConnection.walHoldsCommits(path) else {
                if FileManager.default.fileExists(atPath: path + "-shm") { throw error }
                throw TraceError.cannotOpenReadOnly(path: path, detail: "its \(name)-wal holds commits, which SQLite reads only through a \(name)-shm index, and it cannot create one in this directory (read-only, or the disk is full); copy \(name) and \(name)-wal together to a writable directory and read the copy")
            }
            let db = try SQLiteConnection(path: path, readOnly: true, immutable: true)
            return (db, try probe(db))
        }
    }

    // MARK: - Data

    /// The four data arrays, each checked against its shape and checksum.
    public func data() throws -> TraceData {
        try locked {
            let q = try db.prepare("SELECT split, role, dtype, shape, data, checksum FROM data", "reading the data")
            var arrays: [String: DataArray] = [:]
            while try q.step() {
                let key = "\(q.text(0) ?? "?") \(q.text(1) ?? "?")"
                arrays[key] = try q.blob(4) { bytes in
                    if let problem = TraceReader.dataProblem(dtype: q.text(2), shape: q.text(3), bytes: bytes, checksum: q.int64(5)) {
                        throw TraceError.corrupt(path: path, detail: "data \(key): \(problem)")
                    }
                    return DataArray(shape: BlobCoding.parseShape(q.text(3) ?? "")!, values: BlobCoding.float64s(bytes))
                }
            }
            func get(_ key: String) throws -> DataArray {
                guard let a = arrays[key] else { throw TraceError.corrupt(path: path, detail: "the data row \"\(key)\" is missing") }
                return a
            }
            return TraceData(trainX: try get("train x"), trainY: try get("train y"), testX: try get("test x"), testY: try get("test y"))
        }
    }

    // MARK: - Checkpoints

    /// Stored checkpoint steps, ascending.
    public func checkpointSteps() throws -> [Int] {
        try locked {
            let q = try db.prepare("SELECT step FROM checkpoint ORDER BY step", "listing checkpoints")
            var steps: [Int] = []
            while try q.step() { steps.append(q.int(0)) }
            return steps
        }
    }

    /// The parameters before update `step`, as Double (Float32 checkpoints widen exactly).
    /// Throws `.noSuchCheckpoint` if absent and `.corruptCheckpoint` if the count disagrees with
    /// the layout, the blob length with dtype × count, or the CRC-32 with the stored checksum.
    public func checkpoint(step: Int) throws -> [Double] {
        let found: [Double]? = try locked {
            let q = try db.prepare("SELECT dtype, count, params, checksum FROM checkpoint WHERE step = ?", "reading checkpoint \(step)")
            try q.bind(1, step)
            guard try q.step() else { return nil }
            let dtype = q.text(0), count = q.int(1), checksum = q.int64(3)
            return try q.blob(2) { bytes in
                if let problem = checkpointProblem(dtype: dtype, count: count, bytes: bytes, checksum: checksum) {
                    throw TraceError.corruptCheckpoint(path: path, step: step, detail: problem)
                }
                return dtype == Precision.float32.rawValue ? BlobCoding.float32s(bytes) : BlobCoding.float64s(bytes)
            }
        }
        if let found { return found }
        throw TraceError.noSuchCheckpoint(path: path, step: step, available: try checkpointSteps())
    }

    /// The optimizer state stored with the checkpoint at `step`, or nil when none was stored.
    public func optimizerState(step: Int) throws -> StoredOptimizerState? {
        guard schemaVersion >= 2 else { return nil }   // version 1 stores no optimizer state
        return try locked {
            let q = try db.prepare("SELECT names, count, data, checksum FROM optimizer_state WHERE step = ?", "reading the optimizer state at step \(step)")
            try q.bind(1, step)
            guard try q.step() else { return nil }
            guard let names = try? JSONDecoder().decode([String].self, from: Data((q.text(0) ?? "").utf8)) else {
                throw TraceError.corrupt(path: path, detail: "optimizer state at step \(step): its buffer names are not a JSON list of strings")
            }
            let count = q.int(1), checksum = q.int64(3)
            let values = try q.blob(2) { bytes -> [Double] in
                guard bytes.count == 8 * names.count * parameterCount else {
                    throw TraceError.corrupt(path: path, detail: "optimizer state at step \(step) has \(bytes.count) bytes, \(names.count) buffers of \(parameterCount) float64 need \(8 * names.count * parameterCount)")
                }
                guard Int64(CRC32.checksum(bytes)) == checksum else {
                    throw TraceError.corrupt(path: path, detail: "optimizer state at step \(step) fails its checksum")
                }
                if let i = TraceReader.firstNonFinite(bytes, float32: false) {
                    throw TraceError.corrupt(path: path, detail: "optimizer state at step \(step): value \(i) is not finite")
                }
                return BlobCoding.float64s(bytes)
            }
            guard count >= 0 else {
                throw TraceError.corrupt(path: path, detail: "optimizer state at step \(step): its update count \(count) is negative")
            }
            return StoredOptimizerState(names: names, count: count, values: values)
        }
    }

    /// The run's fixed parameter mask (`true` = trained, `false` = pruned), or nil when the trace
    /// stores none (every trace before schema v4, and runs without `train --init`). Throws
    /// `.corrupt` when its count is not P, a byte is not 0 or 1, or the checksum fails.
    public func parameterMask() throws -> [Bool]? {
        guard schemaVersion >= 4 else { return nil }
        return try locked {
            let q = try db.prepare("SELECT count, data, checksum FROM parameter_mask WHERE id = 1", "reading the parameter mask")
            guard try q.step() else { return nil }
            let count = q.int(0), checksum = q.int64(2)
            return try q.blob(1) { bytes -> [Bool] in
                guard count == parameterCount, bytes.count == count else {
                    throw TraceError.corrupt(path: path, detail: "parameter mask: count \(count) and \(bytes.count) bytes, the layout has \(parameterCount) parameters")
                }
                guard Int64(CRC32.checksum(bytes)) == checksum else {
                    throw TraceError.corrupt(path: path, detail: "parameter mask fails its checksum")
                }
                if let i = bytes.firstIndex(where: { $0 > 1 }) {
                    throw TraceError.corrupt(path: path, detail: "parameter mask: byte \(i) is \(bytes[i]), must be 0 (pruned) or 1 (kept)")
                }
                return bytes.map { $0 == 1 }
            }
        }
    }

    // MARK: - Steps

    /// All step rows, ordered by step (gaps are not filled; `validate()` reports them).
    public func steps() throws -> [StepRecord] {
        try locked {
            // Version-1 traces have no clip_scale column: no clipping.
            let clip = schemaVersion >= 2 ? "clip_scale" : "NULL"
            let q = try db.prepare("SELECT step, epoch, learning_rate, batch_size, batch, loss, \(clip) FROM step ORDER BY step",
                                   "reading step rows")
            var out: [StepRecord] = []
            while try q.step() {
                let step = q.int(0), size = q.int(3)
                guard (0..<TraceReader.maxStep).contains(step) else {
                    throw TraceError.corrupt(path: path, detail: "step \(step): a step number must be in 0..<2^40")
                }
                // Numbers must be stored as numbers: SQLite keeps 'NaN' or '1e999x' text as text.
                for (column, what) in [(Int32(2), "learning_rate"), (5, "loss"), (6, "clip_scale")]
                    where !(q.isNumber(column) || (column != 2 && q.isNull(column))) {
                    throw TraceError.corrupt(path: path, detail: "step \(step): \(what) is stored as \(q.isNull(column) ? "NULL" : "text or a blob"), not a number")
                }
                let batch = try q.blob(4) { bytes -> [Int32] in
                    guard size >= 0, size <= bytes.count, bytes.count == 4 * size else {
                        throw TraceError.corrupt(path: path, detail: "step \(step): the batch blob has \(bytes.count) bytes but batch_size \(size) needs \(size >= 0 && size < 1 << 60 ? String(4 * size) : "an impossible number of")")
                    }
                    return BlobCoding.int32s(bytes)
                }
                out.append(StepRecord(step: step, epoch: q.int(1), learningRate: q.double(2), batch: batch, loss: q.double(5),
                                      clipScale: q.isNull(6) ? nil : q.double(6)))
            }
            return out
        }
    }

    // MARK: - Validation

    /// Reads everything and reports problems instead of throwing for them: data and checkpoint
    /// lengths and checksums, step rows contiguous over `0...lastStep`, batch blob lengths, and
    /// checkpoints within `0...lastStep + 1`. Throws only when the file cannot be read at all
    /// (SQLite reports corruption, I/O errors).
    public func validate() throws -> TraceValidation {
        var v: TraceValidation = try locked {
            var v = TraceValidation()
            // Data.
            let d = try db.prepare("SELECT split, role, dtype, shape, data, checksum FROM data", "validating the data")
            var seen = Set<String>()
            while try d.step() {
                let key = "\(d.text(0) ?? "?") \(d.text(1) ?? "?")"
                seen.insert(key)
                if let p = d.blob(4, { TraceReader.dataProblem(dtype: d.text(2), shape: d.text(3), bytes: $0, checksum: d.int64(5)) }) {
                    v.problems.append("data \(key): \(p)")
                }
            }
            for key in ["train x", "train y", "test x", "test y"] where !seen.contains(key) {
                v.problems.append("data \(key): the row is missing")
            }
            // Steps.
            let clipType = schemaVersion >= 2 ? "typeof(clip_scale)" : "'null'"   // version 1 has no clip_scale
            let s = try db.prepare("SELECT step, batch_size, length(batch), typeof(learning_rate), typeof(loss), \(clipType) FROM step ORDER BY step",
                                   "validating step rows")
            var expected = 0, missing = 0
            while try s.step() {
                let step = s.int(0)
                guard step < TraceReader.maxStep else {
                    v.problems.append("step \(step): a step number must be below 2^40")
                    continue
                }
                if step > expected {
                    // Listed up to 10,000 (a hand-edited step number can be 2^62).
                    missing += step - expected
                    if v.missingSteps.count < 10_000 {
                        v.missingSteps.append(contentsOf: expected..<min(step, expected + 10_000 - v.missingSteps.count))
                    }
                }
                expected = step + 1
                v.stepCount += 1
                v.lastStep = step
                let size = s.int(1), bytes = s.int(2)
                if !(size >= 0 && size <= bytes && bytes == 4 * size) {
                    v.problems.append("step \(step): the batch blob has \(bytes) bytes but batch_size \(size) needs \(size >= 0 && size < 1 << 60 ? String(4 * size) : "an impossible number of")")
                }
                for (i, what) in [(Int32(3), "learning_rate"), (4, "loss"), (5, "clip_scale")] {
                    let type = s.text(i) ?? ""
                    if !(type == "real" || type == "integer" || (i != 3 && type == "null")) {
                        v.problems.append("step \(step): \(what) is stored as \(type), not a number")
                    }
                }
            }
            if missing > 0 {
                v.problems.append("step rows missing: \(TraceValidation.ranges(v.missingSteps))\(missing > v.missingSteps.count ? ", …" : "") (\(missing) of 0...\(v.lastStep ?? 0))")
            }
            // Checkpoints, one blob at a time.
            let c = try db.prepare("SELECT step, dtype, count, params, checksum FROM checkpoint ORDER BY step", "validating checkpoints")
            let limit = (v.lastStep ?? -1) + 1
            while try c.step() {
                let step = c.int(0)
                guard step < TraceReader.maxStep else {
                    v.problems.append("checkpoint at step \(step): a step number must be below 2^40")
                    continue
                }
                v.checkpointCount += 1
                v.lastCheckpoint = step
                if let p = c.blob(3, { checkpointProblem(dtype: c.text(1), count: c.int(2), bytes: $0, checksum: c.int64(4)) }) {
                    v.corruptCheckpoints.append(step)
                    v.problems.append("checkpoint at step \(step): \(p)")
                }
                if step > limit {
                    v.problems.append("checkpoint at step \(step) lies beyond the step rows (the last is \(v.lastStep.map(String.init) ?? "none"), so checkpoints may go up to \(limit))")
                }
            }
            return v
        }
        if let first = try checkpointSteps().first, first != 0 {
            v.problems.append("no checkpoint at step 0 (the initial weights); the first is at step \(first)")
        } else if v.checkpointCount == 0 && v.stepCount > 0 {
            v.problems.append("no checkpoint at all, yet \(v.stepCount) step rows")
        }
        // Optimizer state rows (outside the lock: `optimizerState` takes it).
        if schemaVersion >= 2 {
            let stateSteps: [Int] = try locked {
                let q = try db.prepare("SELECT step FROM optimizer_state ORDER BY step", "listing optimizer states")
                var out: [Int] = []
                while try q.step() { out.append(q.int(0)) }
                return out
            }
            let checkpoints = Set(try checkpointSteps())
            for step in stateSteps {
                if !checkpoints.contains(step) { v.problems.append("optimizer state at step \(step): no checkpoint is stored at that step") }
                do { _ = try optimizerState(step: step) } catch TraceError.corrupt(_, let detail) { v.problems.append(detail) }
            }
        }
        return v
    }

    /// Step numbers (of step rows and checkpoints) are below this: 2^40.
    static let maxStep = 1 << 40

    // MARK: - Internals

    func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Runs a read-only query on the trace's connection (the analysis store uses it).
    func withConnection<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try locked { try body(db) }
    }

    /// nil if a checkpoint blob agrees with its dtype, count (the layout's P) and checksum.
    func checkpointProblem(dtype: String?, count: Int, bytes: UnsafeRawBufferPointer, checksum: Int64) -> String? {
        guard let dtype, let precision = Precision(rawValue: dtype) else {
            return "unknown dtype \(dtype ?? "NULL")"
        }
        if count != parameterCount {
            return "count \(count) differs from the parameter layout's \(parameterCount)"
        }
        if precision != run.precision {
            return "dtype \(dtype) in a \(run.precision.rawValue) trace (checkpoints are stored in the run's precision)"
        }
        if bytes.count != precision.byteWidth * count {
            return "the blob has \(bytes.count) bytes but \(count) \(dtype) values need \(precision.byteWidth * count)"
        }
        let crc = CRC32.checksum(bytes)
        if Int64(crc) != checksum {
            return "checksum mismatch (stored \(checksum), computed \(crc))"
        }
        if let i = TraceReader.firstNonFinite(bytes, float32: precision == .float32) {
            return "parameter \(i) is not finite (a diverged run stores only its finite checkpoints)"
        }
        return nil
    }

    static func dataProblem(dtype: String?, shape: String?, bytes: UnsafeRawBufferPointer, checksum: Int64) -> String? {
        guard dtype == "float64" else { return "unknown dtype \(dtype ?? "NULL")" }
        guard let shape = BlobCoding.parseShape(shape ?? "") else { return "unreadable shape \(shape ?? "NULL")" }
        guard (1...4).contains(shape.count) else { return "shape \(shape) has \(shape.count) dimensions; data arrays have 1 to 4 ([n], [n, d], [n, C, H, W])" }
        guard let n = BlobCoding.elementCount(shape) else { return "shape \(shape) has too many elements (the product overflows or exceeds 2^40)" }
        if bytes.count != 8 * n { return "the blob has \(bytes.count) bytes but shape \(shape) needs \(8 * n)" }
        let crc = CRC32.checksum(bytes)
        if Int64(crc) != checksum { return "checksum mismatch (stored \(checksum), computed \(crc))" }
        if let i = firstNonFinite(bytes, float32: false) { return "value \(i) is not finite (every stored value must be)" }
        return nil
    }

    /// Index of the first NaN or ±Inf among the blob's float64 (or float32) values.
    static func firstNonFinite(_ bytes: UnsafeRawBufferPointer, float32: Bool) -> Int? {
        if float32 {
            for i in 0..<(bytes.count / 4) where !Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian).isFinite { return i }
        } else {
            for i in 0..<(bytes.count / 8) where !Double(bitPattern: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian).isFinite { return i }
        }
        return nil
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// File-level checks before SQLite sees the file: presence, emptiness, the SQLite magic and,
    /// when no WAL is pending, a length at least what the header promises.
    static func checkFile(_ path: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw TraceError.fileNotFound(path: path) }
        if isDir.boolValue { throw TraceError.notSQLite(path: path, detail: "it is a directory") }
        let size = fileSize(path)
        if size == 0 { throw TraceError.emptyFile(path: path) }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TraceError.cannotOpenReadOnly(path: path, detail: "the file is not readable (check its permissions)")
        }
        let header = [UInt8](handle.readData(ofLength: 100))
        try? handle.close()
        let magic = Array("SQLite format 3\0".utf8)
        guard header.count >= magic.count, Array(header.prefix(magic.count)) == magic else {
            throw TraceError.notSQLite(path: path, detail: "the file does not start with the SQLite header (random bytes, or another format)")
        }
        guard header.count == 100 else {
            throw TraceError.corrupt(path: path, detail: "the file is truncated (\(size) bytes, shorter than the 100-byte SQLite header)")
        }
        func be32(_ o: Int) -> Int { header[o..<o + 4].reduce(0) { $0 << 8 | Int($1) } }
        let rawPageSize = Int(header[16]) << 8 | Int(header[17])
        let pageSize = rawPageSize == 1 ? 65_536 : rawPageSize
        let pages = be32(28)
        let headerCountValid = be32(24) == be32(92) && pages > 0
        if headerCountValid && fileSize(path + "-wal") == 0 && size < pages * pageSize {
            throw TraceError.corrupt(path: path, detail: "the file is truncated: its header promises \(pages) pages of \(pageSize) bytes (\(pages * pageSize) bytes) but it holds \(size)")
        }
    }

    private static func readRun(_ db: SQLiteConnection) throws -> RunInfo {
        let q = try db.prepare("""
            SELECT tool_version, name, seed, status, status_message, created_at, updated_at, finished_at, task,
                   num_outputs, model_json, loss_json, optimizer_json, config_json, precision, checkpoint_every,
                   planned_steps
            FROM run WHERE id = 1
            """, "reading the run row")
        guard try q.step() else {
            throw TraceError.notATrace(path: db.path, detail: "the run row is missing (its creation was interrupted? then delete it, with its -wal and -shm files, and record again)")
        }
        guard let status = RunStatus(rawValue: q.text(3) ?? "") else {
            throw TraceError.corrupt(path: db.path, detail: "run status \"\(q.text(3) ?? "NULL")\" is not one of running, finished, diverged, aborted")
        }
        guard let precision = Precision(rawValue: q.text(14) ?? "") else {
            throw TraceError.corrupt(path: db.path, detail: "run precision \"\(q.text(14) ?? "NULL")\" is not float64 or float32")
        }
        return RunInfo(toolVersion: q.text(0) ?? "", name: q.text(1) ?? "", seed: UInt64(bitPattern: q.int64(2)),
                       status: status, statusMessage: q.text(4), createdAt: q.text(5) ?? "", updatedAt: q.text(6) ?? "",
                       finishedAt: q.text(7), task: q.text(8) ?? "", numOutputs: q.int(9), modelJSON: q.text(10) ?? "",
                       lossJSON: q.text(11) ?? "", optimizerJSON: q.text(12) ?? "", configJSON: q.text(13) ?? "",
                       precision: precision, checkpointEvery: q.int(15), plannedSteps: q.int(16))
    }

    private static func readLayout(_ db: SQLiteConnection) throws -> [TensorLayout] {
        let q = try db.prepare("SELECT name, shape, offset, count FROM parameter_layout ORDER BY position", "reading the parameter layout")
        var layout: [TensorLayout] = []
        while try q.step() {
            let name = q.text(0) ?? ""
            guard let shape = BlobCoding.parseShape(q.text(1) ?? "") else {
                throw TraceError.corrupt(path: db.path, detail: "parameter layout entry \(name): unreadable shape \(q.text(1) ?? "NULL")")
            }
            layout.append(TensorLayout(name: name, shape: shape, offset: q.int(2), count: q.int(3)))
        }
        do {
            _ = try TraceWriter.checkLayout(layout, path: db.path)
        } catch let TraceError.invalidInput(_, detail) {
            throw TraceError.corrupt(path: db.path, detail: detail)
        }
        return layout
    }
}

extension TraceValidation {
    /// `[3, 4, 5, 9]` → "3–5, 9", at most 10 ranges then "…".
    static func ranges(_ xs: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        while i < xs.count {
            var j = i
            while j + 1 < xs.count && xs[j + 1] == xs[j] + 1 { j += 1 }
            parts.append(i == j ? "\(xs[i])" : "\(xs[i])–\(xs[j])")
            i = j + 1
        }
        return parts.count > 10 ? parts.prefix(10).joined(separator: ", ") + ", …" : parts.joined(separator: ", ")
    }
}
