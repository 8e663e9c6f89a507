import CSQLite
import Foundation

/// One SQLite connection with the error mapping of the trace format.
///
/// Not thread-safe by itself: every owner (`TraceWriter`, `TraceReader`, `AnalysisWriter`)
/// serializes its use with a lock. Prepared statements must not outlive the connection's owner.
final class SQLiteConnection {
    let path: String
    let readOnly: Bool
    private(set) var handle: OpaquePointer?
    /// A read-only connection that found neither `FILE-wal` nor `FILE-shm`: reading a WAL-mode
    /// file makes SQLite create both, and `close` removes them again (see `close`).
    private let createdSideFiles: Bool
    private let immutable: Bool

    /// Opens `path`. `create` allows creating a missing file (writers only). `immutable` opens
    /// read-only through SQLite's `immutable=1` URI: no locks, no `-wal`/`-shm`, and any `-wal`
    /// ignored, so only for a file nobody can be writing (see `TraceReader.open`).
    init(path: String, readOnly: Bool, create: Bool = false, immutable: Bool = false,
         busyTimeoutMilliseconds: Int32 = 10_000) throws {
        self.path = path
        self.readOnly = readOnly || immutable
        self.immutable = immutable
        let fm = FileManager.default
        createdSideFiles = readOnly && !immutable
            && !fm.fileExists(atPath: path + "-wal") && !fm.fileExists(atPath: path + "-shm")
        var flags = self.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create && !self.readOnly { flags |= SQLITE_OPEN_CREATE }
        if immutable { flags |= SQLITE_OPEN_URI }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(immutable ? SQLiteConnection.immutableURI(path) : path, &db, flags, nil)
        handle = db
        if rc != SQLITE_OK {
            let error = makeError(rc, "opening the file")
            sqlite3_close_v2(db)
            handle = nil
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit { close() }

    /// Closes the connection. A read-only connection then removes `-wal` and `-shm` when no
    /// other connection uses them (`removeSideFiles`), if it created them or the `-wal` holds no
    /// commits (so it never folds a WAL it found, such as a killed writer's, into the main
    /// file). Idempotent.
    func close() {
        guard let h = handle else { return }
        sqlite3_close_v2(h)
        handle = nil
        if readOnly && !immutable && (createdSideFiles || !SQLiteConnection.walHoldsCommits(path)) {
            SQLiteConnection.removeSideFiles(path)
        }
    }

    /// True when `PATH-wal` is long enough to hold a frame (a WAL header is 32 bytes, each frame
    /// 24 bytes and a page of at least 512). A missing or empty `-wal` holds nothing.
    static func walHoldsCommits(_ path: String) -> Bool {
        let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber
        return (size?.intValue ?? 0) >= 32 + 24 + 512
    }

    /// Removes a WAL-mode file's `-wal` and `-shm` when no connection (in any process) uses them.
    ///
    /// SQLite deletes both when the last connection to a file closes, but only if that
    /// connection can write (it checkpoints first); a read-only one leaves them behind. So this
    /// opens a read-write connection (never creating anything), reads the schema so that SQLite
    /// attaches to the WAL, and closes it: if it is the last connection, SQLite checkpoints
    /// (with nothing pending it writes nothing) and deletes both under its exclusive lock; if
    /// another connection is open, SQLite leaves them, as it must. Best effort, errors ignored.
    static func removeSideFiles(_ path: String) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: path + "-wal") || fm.fileExists(atPath: path + "-shm") else { return }
        var db: OpaquePointer?
        if sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK {
            sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nil, nil, nil)
        }
        sqlite3_close_v2(db)
    }

    /// `file:PATH?immutable=1` with the characters URIs reserve escaped.
    static func immutableURI(_ path: String) -> String {
        var escaped = ""
        for ch in path.unicodeScalars {
            switch ch {
            case "%", "?", "#": escaped += String(format: "%%%02X", ch.value)
            default: escaped.unicodeScalars.append(ch)
            }
        }
        return "file:\(escaped)?immutable=1"
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: copies every commit in `FILE-wal` into the main file
    /// and empties `FILE-wal`, so that the main file alone holds everything committed. Throws
    /// `.busy` when other connections kept it from finishing within the busy timeout (a reader
    /// in the middle of a read, another writer), `.diskFull` when the main file cannot grow.
    func foldWAL() throws {
        let s = try prepare("PRAGMA wal_checkpoint(TRUNCATE)", "folding the WAL into the main file")
        defer { s.reset() }
        if try s.step(), s.int(0) != 0 {
            throw TraceError.busy(path: path, operation: "folding the WAL into the main file")
        }
    }

    var isOpen: Bool { handle != nil }

    /// True inside an explicit transaction.
    var inTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// SQLite's last message for this connection, on one line.
    var lastMessage: String {
        guard let h = handle, let m = sqlite3_errmsg(h) else { return "unknown error" }
        return TraceError.oneLine(String(cString: m))
    }

    /// Maps a result code to the format's errors. `operation` reads as "while <operation>".
    ///
    /// A full disk reads as disk full however SQLite reports it: SQLITE_FULL when a write
    /// comes up short, but an I/O error (e.g. SQLITE_IOERR_SHMSIZE, growing the `-shm` index)
    /// with errno ENOSPC or EDQUOT when the file system refuses to grow a file.
    func makeError(_ rc: Int32, _ operation: String) -> TraceError {
        let primary = rc & 0xFF
        let message = lastMessage
        let systemErrno = handle.map { sqlite3_system_errno($0) } ?? 0
        let full = primary == SQLITE_FULL || (primary == SQLITE_IOERR && (systemErrno == ENOSPC || systemErrno == EDQUOT))
        switch primary {
        case _ where full:
            return readOnly ? .diskFullReading(path: path) : .diskFull(path: path)
        case SQLITE_BUSY:
            return .busy(path: path, operation: operation)
        case SQLITE_NOTADB:
            return .notSQLite(path: path, detail: "the file is not an SQLite database (random bytes, or a damaged header)")
        case SQLITE_CORRUPT:
            return .corrupt(path: path, detail: "SQLite reports \"\(message)\" while \(operation) (truncated or overwritten?)")
        case SQLITE_CANTOPEN where readOnly, SQLITE_READONLY where readOnly:
            return .cannotOpenReadOnly(path: path, detail: "SQLite reports \"\(message)\" while \(operation); it needs to create \(PathNames.lastComponent(path))-shm next to the trace, so make the directory writable or copy the trace (with its -wal file, if any) to a writable one")
        case SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_PERM:
            // A writer: say why the file or its directory cannot be written.
            let dir = OutputPath.directory(of: path)
            let why: String
            if systemErrno != 0 {
                why = OutputPath.explain(errno: systemErrno)
            } else if primary == SQLITE_READONLY {
                why = "the file or its directory is read-only"
            } else {
                why = message
            }
            return .notWritable(path: path, detail: "\(why) while \(operation): the file or its directory is read-only or not writable (the trace and its -wal and -shm files go in \(dir)); choose a writable location, change its permissions, or copy the trace (with its -wal file, if any) to a writable directory")
        default:
            return .sqlite(path: path, operation: operation, code: rc, message: message)
        }
    }

    func exec(_ sql: String, _ operation: String) throws {
        guard let h = handle else { throw TraceError.closed(path: path) }
        let rc = sqlite3_exec(h, sql, nil, nil, nil)
        if rc != SQLITE_OK { throw makeError(rc, operation) }
    }

    func prepare(_ sql: String, _ operation: String) throws -> SQLiteStatement {
        guard let h = handle else { throw TraceError.closed(path: path) }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(h, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let s = stmt else {
            sqlite3_finalize(stmt)
            throw makeError(rc, operation)
        }
        return SQLiteStatement(stmt: s, connection: self, operation: operation)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; rolls back if anything throws.
    func transaction<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        try exec("BEGIN IMMEDIATE", operation)
        do {
            let result = try body()
            try exec("COMMIT", operation)
            return result
        } catch {
            rollbackIfNeeded()
            throw error
        }
    }

    /// After a failure SQLite may already have rolled back (SQLITE_FULL does); this finishes the job.
    func rollbackIfNeeded() {
        if inTransaction, let h = handle { sqlite3_exec(h, "ROLLBACK", nil, nil, nil) }
    }

    /// The single integer a `SELECT`/`PRAGMA` returns (nil for no row or NULL).
    func scalarInt(_ sql: String, _ operation: String) throws -> Int? {
        let s = try prepare(sql, operation)
        defer { s.reset() }
        guard try s.step() else { return nil }
        return s.isNull(0) ? nil : s.int(0)
    }
}

/// A prepared statement. Column and parameter indices are 0-based for columns and 1-based for
/// parameters, as in SQLite.
final class SQLiteStatement {
    private let stmt: OpaquePointer
    private let connection: SQLiteConnection
    let operation: String

    init(stmt: OpaquePointer, connection: SQLiteConnection, operation: String) {
        self.stmt = stmt
        self.connection = connection
        self.operation = operation
    }

    deinit { sqlite3_finalize(stmt) }

    func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    /// Advances; true when a row is available, false when done.
    @discardableResult
    func step() throws -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.makeError(rc, operation)
            sqlite3_reset(stmt)
            throw error
        }
    }

    private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw connection.makeError(rc, operation) }
    }

    func bind(_ i: Int32, _ v: Int) throws { try check(sqlite3_bind_int64(stmt, i, Int64(v))) }
    func bind(_ i: Int32, _ v: Int64) throws { try check(sqlite3_bind_int64(stmt, i, v)) }
    func bind(_ i: Int32, _ v: Int64?) throws {
        if let v { try bind(i, v) } else { try check(sqlite3_bind_null(stmt, i)) }
    }
    /// NaN binds as NULL (SQLite has no NaN).
    func bind(_ i: Int32, _ v: Double) throws {
        try check(v.isNaN ? sqlite3_bind_null(stmt, i) : sqlite3_bind_double(stmt, i, v))
    }
    func bind(_ i: Int32, _ v: Double?) throws {
        if let v { try bind(i, v) } else { try check(sqlite3_bind_null(stmt, i)) }
    }
    func bind(_ i: Int32, _ v: String?) throws {
        guard let v else { try check(sqlite3_bind_null(stmt, i)); return }
        try check(sqlite3_bind_text(stmt, i, v, -1, pk_sqlite_transient()))
    }
    /// An empty array binds a zero-length blob, not NULL.
    func bind(_ i: Int32, blob: [UInt8]) throws {
        if blob.isEmpty { try check(sqlite3_bind_zeroblob(stmt, i, 0)); return }
        try blob.withUnsafeBytes { b in
            try check(sqlite3_bind_blob(stmt, i, b.baseAddress, Int32(b.count), pk_sqlite_transient()))
        }
    }

    /// Binds `bytes` without SQLite copying them (`SQLITE_STATIC`): they must stay valid until the
    /// statement is stepped and then `reset()` (which clears the binding); `withBorrowedBlob` does both.
    private func bind(_ i: Int32, borrowedBlob bytes: UnsafeRawBufferPointer) throws {
        if bytes.isEmpty { try check(sqlite3_bind_zeroblob(stmt, i, 0)); return }
        guard bytes.count <= Int(Int32.max) else {
            throw connection.makeError(SQLITE_TOOBIG, operation)
        }
        try check(sqlite3_bind_blob(stmt, i, bytes.baseAddress, Int32(bytes.count), nil))
    }

    /// Binds `bytes` at parameter `i` without a copy, runs `body` (which binds the rest and steps),
    /// and resets the statement before returning, so SQLite keeps no pointer into `bytes`.
    func withBorrowedBlob<T>(_ i: Int32, _ bytes: UnsafeRawBufferPointer, _ body: () throws -> T) throws -> T {
        defer { reset() }
        try bind(i, borrowedBlob: bytes)
        return try body()
    }

    func isNull(_ c: Int32) -> Bool { sqlite3_column_type(stmt, c) == SQLITE_NULL }
    /// True when the column holds a number (INTEGER or REAL), not text, a blob or NULL.
    func isNumber(_ c: Int32) -> Bool {
        let t = sqlite3_column_type(stmt, c)
        return t == SQLITE_INTEGER || t == SQLITE_FLOAT
    }
    func int(_ c: Int32) -> Int { Int(sqlite3_column_int64(stmt, c)) }
    func int64(_ c: Int32) -> Int64 { sqlite3_column_int64(stmt, c) }
    /// NULL reads as NaN.
    func double(_ c: Int32) -> Double { isNull(c) ? .nan : sqlite3_column_double(stmt, c) }
    func text(_ c: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, c) else { return nil }
        return String(cString: p)
    }
    /// The column's bytes, valid only inside `body`. NULL and empty blobs give an empty buffer.
    func blob<T>(_ c: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let p = sqlite3_column_blob(stmt, c)
        let n = Int(sqlite3_column_bytes(stmt, c))
        return try body(UnsafeRawBufferPointer(start: p, count: p == nil ? 0 : n))
    }
}
