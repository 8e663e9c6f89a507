import Foundation

/// Everything that can go wrong reading or writing a trace.
///
/// Every `description` is a single line that names the file, says what is wrong and, where there
/// is something to do about it, what to do. SQLite's own messages are folded into one line.
/// Errors are values: they carry no connection and can cross threads.
public enum TraceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `TraceWriter.create` refuses to overwrite an existing file.
    case fileExists(path: String)
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
    /// SQLITE_FULL (or an I/O error with ENOSPC/EDQUOT): the disk, the quota or the configured
    /// page limit is full.
    case diskFull(path: String)
    /// The trace cannot be created or written here: its directory or the file is not writable
    /// (permissions, a read-only file system), or the path is wrong (SQLITE_CANTOPEN,
    /// SQLITE_READONLY, SQLITE_PERM for a writer). `detail` says which.
    case notWritable(path: String, detail: String)
    /// The trace cannot be opened read-only (WAL needs a `-shm` file the directory forbids).
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
        case .fileNotFound(let p):
            text = "\(p): no such file"
        case .emptyFile(let p):
            text = "\(p): the file is empty (0 bytes), not a pathkernel trace"
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
            text = "\(p): disk full while writing the trace; the trace holds everything committed before this point (free space, then run the command again)"
        case .notWritable(let p, let d):
            text = "\(p): cannot write the trace: \(d)"
        case .cannotOpenReadOnly(let p, let d):
            text = "\(p): cannot open the trace read-only (\(d)); copy it (with its -wal file) to a writable directory, or open it once where its -shm file can be created"
        case .closed(let p):
            text = "\(p): the trace writer is already closed"
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
