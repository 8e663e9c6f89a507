import Foundation

/// Opens an existing trace for writing analyses (the only writer of an already-created trace).
///
/// `open` runs the reader's checks, then applies any schema migration the trace lacks (a trace
/// written by an older pathkernel is upgraded in place; one written by a newer one is refused).
/// It never touches the run, data, layout, step or checkpoint tables, and may run while a
/// `TraceWriter` still appends (SQLite serializes the two writers; the busy timeout waits).
public final class AnalysisWriter: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var db: SQLiteConnection?

    private init(path: String, db: SQLiteConnection) {
        self.path = path
        self.db = db
    }

    deinit { close() }

    public static func open(_ path: String) throws -> AnalysisWriter {
        try open(path, migrations: TraceSchema.migrations)
    }

    /// `open` with an explicit schema history and busy timeout (tests exercise migrations and
    /// contention with them).
    static func open(_ path: String, migrations: [Migration], busyTimeoutMilliseconds: Int32 = 10_000) throws -> AnalysisWriter {
        _ = try TraceReader.open(path)   // every read-side check, including "schema too new"
        let db = try SQLiteConnection(path: path, readOnly: false, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try TraceSchema.migrate(db, migrations: migrations)
        return AnalysisWriter(path: path, db: db)
    }

    /// Testing hook: runs inside `save`'s transaction, after the old row is deleted and the new
    /// one inserted, before the commit (tests copy the files there to simulate a kill).
    var beforeCommitForTesting: (() -> Void)?

    /// Stores `analysis` with its basis, replacing any stored under the same key (one
    /// transaction: a process killed meanwhile leaves the old row, never a partial one).
    public func save(_ analysis: StoredAnalysis) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let db else { throw TraceError.closed(path: path) }
        do {
            try db.transaction("saving an analysis") {
                // Delete then insert, so that rowid order is save order (`analyses()` relies on it).
                let del = try db.prepare("DELETE FROM analysis WHERE key = ?", "replacing a stored analysis")
                try del.bind(1, analysis.key)
                try del.step()
                let ins = try db.prepare("""
                    INSERT INTO analysis (key, settings_json, result_json, created_at, tool_version,
                                          basis_status, basis_last_step, basis_last_checkpoint, basis_checkpoint_checksum)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, "saving an analysis")
                try ins.bind(1, analysis.key)
                try ins.bind(2, analysis.settingsJSON)
                try ins.bind(3, analysis.resultJSON)
                try ins.bind(4, analysis.createdAt)
                try ins.bind(5, analysis.toolVersion)
                try ins.bind(6, analysis.basis?.status.rawValue)
                try ins.bind(7, analysis.basis?.lastStep.map(Int64.init))
                try ins.bind(8, analysis.basis?.lastCheckpoint.map(Int64.init))
                try ins.bind(9, analysis.basis?.checkpointChecksum)
                try ins.step()
                beforeCommitForTesting?()
            }
        } catch {
            db.rollbackIfNeeded()
            throw error
        }
    }

    /// Copies every commit in `PATH-wal` into the main file and empties `PATH-wal`
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), so that the main file alone holds the saved
    /// analyses. `close` does it too, silently; call this first to learn whether it worked.
    /// Throws `.busy` when another connection (a reader in the middle of a read, a writer)
    /// kept it from finishing within the busy timeout, `.diskFull` when the main file cannot
    /// grow. Either way the saved analyses are committed (in `PATH-wal`).
    public func foldWAL() throws {
        lock.lock()
        defer { lock.unlock() }
        guard let db else { throw TraceError.closed(path: path) }
        try db.foldWAL()
    }

    /// Folds the WAL as `foldWAL` does (best effort) and closes. Idempotent.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        try? db?.foldWAL()
        db?.close()
        db = nil
    }
}
