import Foundation

/// Everything that can go wrong reading or writing a trace.
///
/// Every `description` is a single line that names the file, says what is wrong and, where there
/// is something to do about it, what to do. SQLite's own messages are folded into one line.
/// Errors are values: they carry no connection and can cross threads.
public enum TraceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `TraceWriter.create` refuses to overwrite an existing file.
    case fileExists(path: String)
    /// `TraceWriter.create` found `PATH-wal` without its main file: left by an
    /// interrupted creation or by a trace deleted or moved without it. SQLite would replay it
    /// into the new file.
    case leftoverWAL(path: String)
    /// Nothing at this path.
    case fileNotFound(path: String)
    /// The file has zero bytes (an interrupted copy, or `touch`).
    case emptyFile(path: String)
    /// The bytes are not an SQLite database at all (random bytes, or damaged beyond the header).
    case notSQLite(path: String, detail: String)
    /// A valid SQLite database that is not a pathkernel trace.
    case notATrace(path: String, detail: String)
    /// Written by a newer pathkernel: the trace's schema version exceeds what this build knows.
    case schemaTooNew(path: String, found: Int, supported: Int)
    /// The database is damaged or truncated, or a stored value breaks the format's invariants.
    case corrupt(path: String, detail: String)
    /// A checkpoint's blob does not match its declared size or checksum.
    case corruptCheckpoint(path: String, step: Int, detail: String)
    /// No checkpoint is stored for this step.
    case noSuchCheckpoint(path: String, step: Int, available: [Int])
    /// The caller handed the store something that breaks the format (a shape, a count, a NaN).
    case invalidInput(path: String, detail: String)
    /// SQLITE_FULL (or an I/O error with ENOSPC/EDQUOT) while writing an existing trace: the
    /// disk, a quota or the configured page limit is full. The failed transaction was rolled back.
    case diskFull(path: String)
    /// The same while `TraceWriter.create` wrote the initial rows: the partial file was removed.
    case diskFullCreating(path: String)
    /// The same while reading: SQLite could not create or grow the `-shm` index it reads through.
    case diskFullReading(path: String)
    /// Another connection held the trace longer than the busy timeout (SQLITE_BUSY).
    case busy(path: String, operation: String)
    /// The trace cannot be created or written here: its directory or the file is not writable
    /// (permissions, a read-only file system), or the path is wrong (SQLITE_CANTOPEN,
    /// SQLITE_READONLY, SQLITE_PERM for a writer). `detail` says which and what to do.
    case notWritable(path: String, detail: String)
    /// The trace cannot be read: `detail` says why and what to do (permissions, a pending `-wal`
    /// in a directory where SQLite cannot create the `-shm` index it needs).
    case cannotOpenReadOnly(path: String, detail: String)
    /// The writer was already closed.
    case closed(path: String)
    /// Any other SQLite failure, with the operation that failed and SQLite's message.
    case sqlite(path: String, operation: String, code: Int32, message: String)

    public var description: String {
        let text: String
        switch self {
        case .fileExists(let p):
            text = "\(p): already exists; a trace is never overwritten (delete it or choose another path)"
        case .leftoverWAL(let p):
            text = "\(p)-wal is left without its trace (deleted or moved without it, or its creation was interrupted) and SQLite would replay it into a new trace here; delete it and its -shm (or move it back next to its trace), or choose another path"
        case .fileNotFound(let p):
            text = "\(p): no such file"
        case .emptyFile(let p):
            text = "\(p): the file is empty (0 bytes), not a pathkernel trace (an interrupted copy, or a creation killed at its start: delete it and record again)"
        case .notSQLite(let p, let d):
            text = "\(p): not a pathkernel trace: \(d)"
        case .notATrace(let p, let d):
            text = "\(p): an SQLite database but not a pathkernel trace: \(d)"
        case .schemaTooNew(let p, let found, let supported):
            text = "\(p): schema version \(found) is newer than this pathkernel understands (\(supported)); upgrade pathkernel"
        case .corrupt(let p, let d):
            text = "\(p): the trace is damaged: \(d)"
        case .corruptCheckpoint(let p, let step, let d):
            text = "\(p): checkpoint at step \(step) is damaged: \(d)"
        case .noSuchCheckpoint(let p, let step, let available):
            text = "\(p): no checkpoint at step \(step) (stored: \(TraceError.summarize(available)))"
        case .invalidInput(let p, let d):
            text = "\(p): \(d)"
        case .diskFull(let p):
            text = "\(p): disk full while writing the trace; the write was rolled back and the trace keeps everything committed before it (free space, then run the command again)"
        case .diskFullCreating(let p):
            text = "\(p): disk full while creating the trace; the partial file was removed and nothing was recorded (free space, then record again)"
        case .diskFullReading(let p):
            text = "\(p): disk full: SQLite cannot create or grow the -shm index it reads the trace through (free space on that disk, or copy the trace, with its -wal file if any, to a disk with room)"
        case .busy(let p, let op):
            text = "\(p): the trace is busy: another process (pathkernel train or analyze, or an sqlite3 session) kept it locked while \(op); wait for that process to finish, then run the command again"
        case .notWritable(let p, let d):
            text = "\(p): cannot write the trace: \(d)"
        case .cannotOpenReadOnly(let p, let d):
            text = "\(p): cannot read the trace: \(d)"
        case .closed(let p):
            text = "\(p): the trace is already closed"
        case .sqlite(let p, let op, let code, let message):
            text = "\(p): SQLite error \(code) while \(op): \(message)"
        }
        return TraceError.oneLine(text)
    }

    /// Collapses line breaks so the description stays on one line.
    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    /// "0, 10, 20" or, for long lists, "0, 10, 20, … 990, 1000 (101 in all)"; "none" when empty.
    static func summarize(_ xs: [Int], limit: Int = 8) -> String {
        if xs.isEmpty { return "none" }
        if xs.count <= limit { return xs.map(String.init).joined(separator: ", ") }
        let head = xs.prefix(limit / 2).map(String.init).joined(separator: ", ")
        let tail = xs.suffix(2).map(String.init).joined(separator: ", ")
        return "\(head), … \(tail) (\(xs.count) in all)"
    }
}
