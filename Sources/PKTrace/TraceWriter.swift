import CSQLite
import Foundation

/// Writes one trace: created with its run row, data and parameter layout, then appended to.
///
/// Synchronous, one SQLite connection, every method serialized by a lock (so it may be handed to
/// another thread, as `BackgroundTraceWriter` does). Every call that returns has committed: a
/// process killed at any moment leaves a trace holding exactly the calls that returned.
///
/// Failures are `TraceError`s; a full disk is `.diskFull`, after which the trace still holds
/// everything committed before. A failed call leaves no partial rows (it is one transaction).
///
/// Does not hold: the writer does not check that checkpoints and steps arrive in order or that
/// a checkpoint's step has its step rows; `TraceReader.validate()` reports such gaps.
public final class TraceWriter: @unchecked Sendable {
    public let path: String
    /// The checkpoint element type (from the run).
    public let precision: Precision
    /// P: the length of the flat parameter vector (sum of the layout's counts).
    public let parameterCount: Int
    /// Rows of the training set; step batch indices must lie in `0..<trainCount`.
    public let trainCount: Int

    private let lock = NSLock()
    private var db: SQLiteConnection?
    private var insertStepStatement: SQLiteStatement?
    private var insertCheckpointStatement: SQLiteStatement?
    private var insertStateStatement: SQLiteStatement?

    private init(path: String, precision: Precision, parameterCount: Int, trainCount: Int, db: SQLiteConnection) {
        self.path = path
        self.precision = precision
        self.parameterCount = parameterCount
        self.trainCount = trainCount
        self.db = db
    }

    deinit { close() }

    /// Creates a new trace at `path` holding the run row, the data and the parameter layout.
    ///
    /// Fails with `.fileExists` if anything is at `path` (a trace is never overwritten), with
    /// `.leftoverWAL` if a `-wal` file is there without it (SQLite would replay a stale
    /// WAL into the new file), `.notWritable` when its directory is missing, a file, or not
    /// writable, and with `.invalidInput` — before creating any file — for inconsistent shapes
    /// or counts, a non-contiguous layout, or a non-finite data value (the message names split
    /// and role). If creation fails part-way the partial file is removed (a full disk is then
    /// `.diskFullCreating`).
    ///
    /// `maxPageCount` caps the database at that many 64 KiB pages (`PRAGMA max_page_count`);
    /// it exists to simulate a full disk in tests. Leave it nil.
    ///
    /// `mask` (P entries, `true` = trained, `false` = pruned) is the run's fixed parameter mask
    /// (`parameter_mask`, schema v4); nil writes none.
    public static func create(at path: String, run: RunInfo, data: TraceData, layout: [TensorLayout],
                              maxPageCount: Int? = nil, mask: [Bool]? = nil) throws -> TraceWriter {
        try create(at: path, run: run, data: data, layout: layout, maxPageCount: maxPageCount,
                   migrations: TraceSchema.migrations, mask: mask)
    }

    /// `create` with an explicit schema history (tests exercise migrations with it).
    static func create(at path: String, run: RunInfo, data: TraceData, layout: [TensorLayout],
                       maxPageCount: Int?, migrations: [Migration], mask: [Bool]? = nil) throws -> TraceWriter {
        let parameterCount = try TraceWriter.checkLayout(layout, path: path)
        try TraceWriter.checkRun(run, path: path)
        try TraceWriter.checkData(data, run: run, path: path)
        if let mask, mask.count != parameterCount {
            throw TraceError.invalidInput(path: path, detail: "the parameter mask has \(mask.count) entries, the layout \(parameterCount) parameters")
        }

        let fm = FileManager.default
        if fm.fileExists(atPath: path) { throw TraceError.fileExists(path: path) }
        if fm.fileExists(atPath: path + "-wal") { throw TraceError.leftoverWAL(path: path) }
        do {
            try OutputPath.check(path)
        } catch let e as OutputError {
            throw TraceError.notWritable(path: path, detail: e.detail)
        }

        let db = try SQLiteConnection(path: path, readOnly: false, create: true)
        do {
            // page_size only takes effect before the first table and before WAL mode.
            try db.exec("PRAGMA page_size = \(TraceSchema.pageSize)", "setting the page size")
            if let maxPageCount { try db.exec("PRAGMA max_page_count = \(maxPageCount)", "limiting the file size") }
            let mode = try db.prepare("PRAGMA journal_mode = WAL", "enabling WAL")
            let journal = try mode.step() ? mode.text(0)?.lowercased() : nil
            mode.reset()
            guard journal == "wal" else {
                throw TraceError.sqlite(path: path, operation: "enabling WAL", code: 0,
                                        message: "the file system does not support write-ahead logging")
            }
            try db.exec("PRAGMA synchronous = NORMAL", "setting synchronous")
            try db.exec("PRAGMA application_id = \(TraceSchema.applicationID)", "setting the application id")
            try TraceSchema.migrate(db, migrations: migrations)
            try db.transaction("writing the run, data and parameter layout") {
                try insertRun(run, db)
                try insertData(data, db)
                try insertLayout(layout, db)
                if let mask { try insertMask(mask, db) }
            }
        } catch {
            db.close()
            for suffix in ["", "-wal", "-shm", "-journal"] { try? fm.removeItem(atPath: path + suffix) }
            if case .diskFull = error as? TraceError { throw TraceError.diskFullCreating(path: path) }
            throw error
        }
        return TraceWriter(path: path, precision: run.precision, parameterCount: parameterCount,
                           trainCount: data.trainX.rows, db: db)
    }

    // MARK: - Appending

    /// Appends one step row (its own transaction).
    public func appendStep(_ s: StepRecord) throws {
        try appendSteps([s])
    }

    /// Appends step rows in one transaction: all or none. A duplicate step number is an error.
    public func appendSteps(_ steps: [StepRecord]) throws {
        guard !steps.isEmpty else { return }
        for s in steps { try checkStep(s) }
        try locked { db in
            try db.transaction("writing step rows \(steps.first!.step)…\(steps.last!.step)") {
                let ins = try stepStatement(db)
                for s in steps {
                    ins.reset()
                    try ins.bind(1, s.step)
                    try ins.bind(2, s.epoch)
                    try ins.bind(3, s.learningRate)
                    try ins.bind(4, s.batch.count)
                    try ins.bind(5, blob: BlobCoding.int32Bytes(s.batch))
                    try ins.bind(6, s.loss)
                    try ins.bind(7, s.clipScale)
                    do { try ins.step() } catch let e as TraceError {
                        if case .sqlite(_, _, let code, _) = e, code & 0xFF == SQLITE_CONSTRAINT {
                            throw TraceError.invalidInput(path: path, detail: "step \(s.step) is already recorded")
                        }
                        throw e
                    }
                }
                ins.reset()
            }
        }
    }

    /// Stores the parameters before update `step` (its own transaction), rounded to Float32 if
    /// the run's precision is `.float32`, with their CRC-32. Also sets `run.updated_at`.
    /// `parameters.count` must equal `parameterCount`; non-finite values are stored as given.
    /// `optimizerState`, when given, is stored in the same transaction (always float64).
    public func appendCheckpoint(step: Int, parameters: [Double], optimizerState: StoredOptimizerState? = nil) throws {
        guard step >= 0 else {
            throw TraceError.invalidInput(path: path, detail: "checkpoint step \(step) is negative")
        }
        guard parameters.count == parameterCount else {
            throw TraceError.invalidInput(path: path, detail: "checkpoint at step \(step) has \(parameters.count) parameters but the layout has \(parameterCount)")
        }
        if let o = optimizerState, o.values.count != o.names.count * parameterCount || o.count < 0 {
            throw TraceError.invalidInput(path: path, detail: "optimizer state at step \(step) has \(o.values.count) values for \(o.names.count) buffers of \(parameterCount) parameters")
        }
        // The blobs are bound straight from the arrays (float64 on a little-endian host: no copy
        // before SQLite's own); float32 is rounded into one buffer first.
        let rounded = precision == .float32 ? BlobCoding.float32Bytes(parameters) : nil
        let stateNames = try optimizerState.map { String(decoding: try JSONEncoder().encode($0.names), as: UTF8.self) }
        let now = TraceSchema.timestamp()
        func withParameterBytes(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
            if let rounded { try rounded.withUnsafeBytes(body) } else { try BlobCoding.withFloat64Bytes(parameters, body) }
        }
        try locked { db in
            try db.transaction("writing the checkpoint at step \(step)") {
                let ins = try checkpointStatement(db)
                ins.reset()
                try withParameterBytes { bytes in
                    try ins.withBorrowedBlob(4, bytes) {
                        try ins.bind(1, step)
                        try ins.bind(2, precision.rawValue)
                        try ins.bind(3, parameters.count)
                        try ins.bind(5, Int(CRC32.checksum(bytes)))
                        try ins.bind(6, now)
                        do { try ins.step() } catch let e as TraceError {
                            if case .sqlite(_, _, let code, _) = e, code & 0xFF == SQLITE_CONSTRAINT {
                                throw TraceError.invalidInput(path: path, detail: "a checkpoint at step \(step) is already recorded")
                            }
                            throw e
                        }
                    }
                }
                if let o = optimizerState, let stateNames {
                    let st = try stateStatement(db)
                    st.reset()
                    try BlobCoding.withFloat64Bytes(o.values) { bytes in
                        try st.withBorrowedBlob(4, bytes) {
                            try st.bind(1, step)
                            try st.bind(2, stateNames)
                            try st.bind(3, o.count)
                            try st.bind(5, Int(CRC32.checksum(bytes)))
                            try st.step()
                        }
                    }
                }
                let upd = try db.prepare("UPDATE run SET updated_at = ? WHERE id = 1", "updating the run's timestamp")
                try upd.bind(1, now)
                try upd.step()
            }
        }
    }

    /// Sets the run's status and message and `updated_at`; `finished_at` becomes now for a
    /// terminal status and NULL for `.running`.
    public func setStatus(_ status: RunStatus, message: String?) throws {
        let now = TraceSchema.timestamp()
        try locked { db in
            let upd = try db.prepare("UPDATE run SET status = ?, status_message = ?, updated_at = ?, finished_at = ? WHERE id = 1",
                                     "setting the run status to \(status.rawValue)")
            try upd.bind(1, status.rawValue)
            try upd.bind(2, message)
            try upd.bind(3, now)
            try upd.bind(4, status == .running ? nil : now)
            try upd.step()
        }
    }

    /// Copies the commits in the WAL into the main file as far as no reader needs them
    /// (`PRAGMA wal_checkpoint(PASSIVE)`: never waits, never blocks a reader), so that `close`
    /// has little left to fold; the next commit then reuses the WAL from its start. Best effort:
    /// errors are ignored (the commits stay in the WAL, as valid as before). Returns true when
    /// every commit reached the main file, false when a reader's snapshot (or an error) held some
    /// back.
    @discardableResult
    public func foldWALPassively() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let db, let s = try? db.prepare("PRAGMA wal_checkpoint(PASSIVE)", "folding the WAL into the main file") else { return false }
        defer { s.reset() }
        // One row: busy (0/1), frames in the WAL, frames now in the main file.
        guard (try? s.step()) == true else { return false }
        return s.int(0) == 0 && s.int(1) == s.int(2)
    }

    /// Folds the WAL into the main file (`PRAGMA wal_checkpoint(TRUNCATE)`), so that the main
    /// file alone holds the trace even while readers are still open, and closes the connection
    /// (the last connection to close deletes the then empty `-wal` and `-shm`). The fold is best
    /// effort: after a full disk, or when another connection keeps it busy for the busy timeout,
    /// the commits stay in `PATH-wal` (valid, but the two files must be copied together) until a
    /// later writer folds them. Idempotent; later calls to the append methods throw `.closed`.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        insertStepStatement = nil
        insertCheckpointStatement = nil
        insertStateStatement = nil
        try? db?.foldWAL()
        db?.close()
        db = nil
    }

    // MARK: - Testing hooks

    /// Caps the database at `pages` pages from now on (simulates a full disk).
    func setMaxPageCountForTesting(_ pages: Int) throws {
        try locked { db in try db.exec("PRAGMA max_page_count = \(pages)", "limiting the file size") }
    }

    /// `PRAGMA page_count` (tests size their page limits with it).
    func pageCountForTesting() throws -> Int {
        try locked { db in try db.scalarInt("PRAGMA page_count", "reading the page count") ?? 0 }
    }

    // MARK: - Internals

    private func locked<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard let db else { throw TraceError.closed(path: path) }
        do {
            return try body(db)
        } catch {
            db.rollbackIfNeeded()
            throw error
        }
    }

    private func stepStatement(_ db: SQLiteConnection) throws -> SQLiteStatement {
        if let s = insertStepStatement { return s }
        let s = try db.prepare("INSERT INTO step (step, epoch, learning_rate, batch_size, batch, loss, clip_scale) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               "writing a step row")
        insertStepStatement = s
        return s
    }

    private func checkpointStatement(_ db: SQLiteConnection) throws -> SQLiteStatement {
        if let s = insertCheckpointStatement { return s }
        let s = try db.prepare("INSERT INTO checkpoint (step, dtype, count, params, checksum, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                               "writing a checkpoint")
        insertCheckpointStatement = s
        return s
    }

    private func stateStatement(_ db: SQLiteConnection) throws -> SQLiteStatement {
        if let s = insertStateStatement { return s }
        let s = try db.prepare("INSERT INTO optimizer_state (step, names, count, dtype, data, checksum) VALUES (?, ?, ?, 'float64', ?, ?)",
                               "writing the optimizer state")
        insertStateStatement = s
        return s
    }

    private func checkStep(_ s: StepRecord) throws {
        func bad(_ d: String) -> TraceError { .invalidInput(path: path, detail: "step \(s.step): \(d)") }
        if s.step < 0 { throw bad("the step number is negative") }
        if s.epoch < 0 { throw bad("the epoch \(s.epoch) is negative") }
        if !(s.learningRate.isFinite && s.learningRate >= 0) { throw bad("the learning rate \(s.learningRate) must be finite and ≥ 0") }
        if s.batch.isEmpty { throw bad("the batch is empty") }
        if let c = s.clipScale, !(c > 0 && c <= 1) { throw bad("the clip scale \(c) must be in (0, 1]") }
        if let i = s.batch.first(where: { $0 < 0 || Int($0) >= trainCount }) {
            throw bad("batch index \(i) is outside the training set (0..<\(trainCount))")
        }
    }

    // MARK: - Validation and initial rows

    /// Checks the layout is contiguous from 0 with consistent counts; returns P.
    static func checkLayout(_ layout: [TensorLayout], path: String) throws -> Int {
        var offset = 0
        var names = Set<String>()
        for (i, t) in layout.enumerated() {
            func bad(_ d: String) -> TraceError { .invalidInput(path: path, detail: "parameter layout entry \(i) (\(t.name)): \(d)") }
            if t.name.isEmpty { throw bad("the name is empty") }
            if !names.insert(t.name).inserted { throw bad("the name is used twice") }
            if t.shape.contains(where: { $0 < 0 }) { throw bad("shape \(t.shape) has a negative dimension") }
            guard let product = BlobCoding.elementCount(t.shape) else { throw bad("shape \(t.shape) has too many elements") }
            if t.count != product { throw bad("count \(t.count) is not the product of shape \(t.shape)") }
            if t.offset != offset { throw bad("offset \(t.offset) should be \(offset) (entries must be contiguous from 0)") }
            let (next, overflow) = offset.addingReportingOverflow(t.count)
            if overflow || next > 1 << 40 { throw bad("the layout has too many parameters") }
            offset = next
        }
        return offset
    }

    static func checkRun(_ run: RunInfo, path: String) throws {
        func bad(_ d: String) -> TraceError { .invalidInput(path: path, detail: d) }
        if !RunInfo.tasks.contains(run.task) { throw bad("task \"\(run.task)\" is not one of regression, binary, multiclass") }
        if run.numOutputs < 1 { throw bad("num_outputs \(run.numOutputs) must be at least 1") }
        if run.checkpointEvery < 1 { throw bad("checkpoint_every \(run.checkpointEvery) must be at least 1") }
        if run.plannedSteps < 0 { throw bad("planned_steps \(run.plannedSteps) is negative") }
    }

    /// Shapes and counts agree, splits agree on widths, values are finite, class indices valid.
    static func checkData(_ data: TraceData, run: RunInfo, path: String) throws {
        for (split, role, a) in data.entries {
            func bad(_ d: String) -> TraceError { .invalidInput(path: path, detail: "data \(split) \(role): \(d)") }
            if a.shape.contains(where: { $0 < 0 }) { throw bad("shape \(a.shape) has a negative dimension") }
            if a.values.count != a.elementCount {
                throw bad("shape \(a.shape) calls for \(a.elementCount) values but \(a.values.count) were given")
            }
            if let i = a.values.firstIndex(where: { !$0.isFinite }) {
                throw bad("value \(i) is \(a.values[i]) (NaN/Inf are not allowed in data); clean the dataset")
            }
            if role == "x" && a.shape.count != 2 && a.shape.count != 4 { throw bad("inputs must have shape [n, d] or [n, C, H, W], got \(a.shape)") }
            if role == "y" {
                if run.task == "regression" {
                    if a.shape.count != 2 || a.shape[1] != run.numOutputs {
                        throw bad("regression targets must have shape [n, \(run.numOutputs)], got \(a.shape)")
                    }
                } else {
                    if a.shape.count != 1 { throw bad("class indices must have shape [n], got \(a.shape)") }
                    let classes = run.task == "binary" ? 2 : run.numOutputs
                    if let i = a.values.firstIndex(where: { $0 < 0 || $0 >= Double(classes) || $0 != $0.rounded() }) {
                        throw bad("value \(i) is \(a.values[i]), not a class index in 0..<\(classes)")
                    }
                }
            }
        }
        for (split, x, y) in [("train", data.trainX, data.trainY), ("test", data.testX, data.testY)] where x.rows != y.rows {
            throw TraceError.invalidInput(path: path, detail: "data \(split): x has \(x.rows) rows but y has \(y.rows)")
        }
        if data.trainX.shape.dropFirst() != data.testX.shape.dropFirst() {
            throw TraceError.invalidInput(path: path, detail: "data: train examples have shape \(Array(data.trainX.shape.dropFirst())) but test examples \(Array(data.testX.shape.dropFirst()))")
        }
    }

    private static func insertRun(_ r: RunInfo, _ db: SQLiteConnection) throws {
        let ins = try db.prepare("""
            INSERT INTO run (id, tool_version, name, seed, status, status_message, created_at, updated_at, finished_at,
                             task, num_outputs, model_json, loss_json, optimizer_json, config_json, precision,
                             checkpoint_every, planned_steps)
            VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, "writing the run row")
        try ins.bind(1, r.toolVersion)
        try ins.bind(2, r.name)
        try ins.bind(3, Int64(bitPattern: r.seed))
        try ins.bind(4, r.status.rawValue)
        try ins.bind(5, r.statusMessage)
        try ins.bind(6, r.createdAt)
        try ins.bind(7, r.updatedAt)
        try ins.bind(8, r.finishedAt)
        try ins.bind(9, r.task)
        try ins.bind(10, r.numOutputs)
        try ins.bind(11, r.modelJSON)
        try ins.bind(12, r.lossJSON)
        try ins.bind(13, r.optimizerJSON)
        try ins.bind(14, r.configJSON)
        try ins.bind(15, r.precision.rawValue)
        try ins.bind(16, r.checkpointEvery)
        try ins.bind(17, r.plannedSteps)
        try ins.step()
    }

    private static func insertData(_ data: TraceData, _ db: SQLiteConnection) throws {
        let ins = try db.prepare("INSERT INTO data (split, role, dtype, shape, data, checksum) VALUES (?, ?, 'float64', ?, ?, ?)",
                                 "writing the data")
        for (split, role, a) in data.entries {
            ins.reset()
            try BlobCoding.withFloat64Bytes(a.values) { bytes in
                try ins.withBorrowedBlob(4, bytes) {
                    try ins.bind(1, split)
                    try ins.bind(2, role)
                    try ins.bind(3, BlobCoding.shapeJSON(a.shape))
                    try ins.bind(5, Int(CRC32.checksum(bytes)))
                    try ins.step()
                }
            }
        }
    }

    private static func insertMask(_ mask: [Bool], _ db: SQLiteConnection) throws {
        let ins = try db.prepare("INSERT INTO parameter_mask (id, count, data, checksum) VALUES (1, ?, ?, ?)",
                                 "writing the parameter mask")
        let bytes = mask.map { UInt8($0 ? 1 : 0) }
        try ins.bind(1, mask.count)
        try ins.bind(2, blob: bytes)
        try ins.bind(3, Int64(CRC32.checksum(bytes)))
        try ins.step()
    }

    private static func insertLayout(_ layout: [TensorLayout], _ db: SQLiteConnection) throws {
        let ins = try db.prepare("INSERT INTO parameter_layout (position, name, shape, offset, count) VALUES (?, ?, ?, ?, ?)",
                                 "writing the parameter layout")
        for (i, t) in layout.enumerated() {
            ins.reset()
            try ins.bind(1, i)
            try ins.bind(2, t.name)
            try ins.bind(3, BlobCoding.shapeJSON(t.shape))
            try ins.bind(4, t.offset)
            try ins.bind(5, t.count)
            try ins.step()
        }
    }
}
