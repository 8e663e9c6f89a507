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

    /// Opens `path`. `create` allows creating a missing file (writers only).
    init(path: String, readOnly: Bool, create: Bool = false, busyTimeoutMilliseconds: Int32 = 10_000) throws {
        self.path = path
        self.readOnly = readOnly
        var flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create && !readOnly { flags |= SQLITE_OPEN_CREATE }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
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

    func close() {
        if let h = handle { sqlite3_close_v2(h) }
        handle = nil
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
    func makeError(_ rc: Int32, _ operation: String) -> TraceError {
        let primary = rc & 0xFF
        let message = lastMessage
        let systemErrno = handle.map { sqlite3_system_errno($0) } ?? 0
        switch primary {
        case SQLITE_FULL:
            return .diskFull(path: path)
        case SQLITE_IOERR where systemErrno == ENOSPC || systemErrno == EDQUOT:
            return .diskFull(path: path)
        case SQLITE_NOTADB:
            return .notSQLite(path: path, detail: "the file is not an SQLite database (random bytes, or a damaged header)")
        case SQLITE_CORRUPT:
            return .corrupt(path: path, detail: "SQLite reports \"\(message)\" while \(operation) (truncated or overwritten?)")
        case SQLITE_CANTOPEN where readOnly, SQLITE_READONLY where readOnly:
            return .cannotOpenReadOnly(path: path, detail: "\(message) while \(operation)")
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
            return .notWritable(path: path, detail: "\(why) while \(operation) (the trace and its -wal and -shm files go in \(dir)); choose a writable location or change its permissions")
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

    func isNull(_ c: Int32) -> Bool { sqlite3_column_type(stmt, c) == SQLITE_NULL }
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
