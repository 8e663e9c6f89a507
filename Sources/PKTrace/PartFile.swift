import CSQLite
import Foundation

/// A partial result of a sharded analysis (`pathkernel analyze --shard I/N --out PART`): a small
/// SQLite file with a JSON header and named float64 arrays (Docs/scale-out.md, "The part file").
///
///     CREATE TABLE part_header (format TEXT NOT NULL, version INTEGER NOT NULL, header_json TEXT NOT NULL);
///     CREATE TABLE part_array (name TEXT PRIMARY KEY, rows INTEGER NOT NULL, cols INTEGER NOT NULL,
///                              data BLOB NOT NULL, checksum INTEGER NOT NULL);
///
/// The store does not parse the header (the analysis module owns it). Arrays are row-major
/// little-endian Float64, `checksum = zlib.crc32(data)`. A part is written to a temporary file
/// next to its path and renamed into place when complete, so a process killed while writing
/// leaves no part (at most a `PART.tmp-PID` file), never half of one.
public struct PartFile: Sendable {
    public static let format = "pathkernel-analysis-part"
    public static let version = 1

    public struct Array2D: Sendable, Equatable {
        public var rows: Int, cols: Int
        public var data: [Double]
        public init(rows: Int, cols: Int, data: [Double]) {
            self.rows = rows
            self.cols = cols
            self.data = data
        }
    }

    public var headerJSON: String
    public var arrays: [String: Array2D]

    public init(headerJSON: String, arrays: [String: Array2D]) {
        self.headerJSON = headerJSON
        self.arrays = arrays
    }

    /// Writes the part to `path` (replacing a file there) through a temporary file and a rename.
    public func write(to path: String) throws {
        try OutputPath.check(path)
        let tmp = path + ".tmp-\(getpid())"
        SQLiteConnection.removeSideFiles(tmp)
        try? FileManager.default.removeItem(atPath: tmp)
        do {
            let db = try SQLiteConnection(path: tmp, readOnly: false, create: true)
            defer { db.close() }
            try db.exec("PRAGMA journal_mode=DELETE", "creating the part")
            try db.transaction("writing the part") {
                try db.exec("""
                    CREATE TABLE part_header (format TEXT NOT NULL, version INTEGER NOT NULL, header_json TEXT NOT NULL);
                    CREATE TABLE part_array (name TEXT PRIMARY KEY, rows INTEGER NOT NULL, cols INTEGER NOT NULL,
                                             data BLOB NOT NULL, checksum INTEGER NOT NULL);
                    """, "creating the part")
                let h = try db.prepare("INSERT INTO part_header VALUES (?, ?, ?)", "writing the part's header")
                try h.bind(1, Self.format)
                try h.bind(2, Self.version)
                try h.bind(3, headerJSON)
                _ = try h.step()
                h.reset()
                let s = try db.prepare("INSERT INTO part_array VALUES (?, ?, ?, ?, ?)", "writing the part's arrays")
                for name in arrays.keys.sorted() {
                    let a = arrays[name]!
                    guard a.rows >= 0, a.cols >= 0, a.rows * a.cols == a.data.count else {
                        throw TraceError.invalidInput(path: path, detail: "array \(name) has \(a.data.count) values for \(a.rows) × \(a.cols)")
                    }
                    try s.bind(1, name)
                    try s.bind(2, a.rows)
                    try s.bind(3, a.cols)
                    let bytes = BlobCoding.float64Bytes(a.data)
                    try s.bind(4, blob: bytes)
                    try s.bind(5, Int64(CRC32.checksum(bytes)))
                    _ = try s.step()
                    s.reset()
                }
            }
            db.close()
            guard rename(tmp, path) == 0 else {
                throw TraceError.notWritable(path: path, detail: "renaming \(tmp) to \(path) failed: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
    }

    /// Reads and checks a part: the format and version, every array's shape, length and checksum.
    public static func read(_ path: String) throws -> PartFile {
        guard FileManager.default.fileExists(atPath: path) else { throw TraceError.fileNotFound(path: path) }
        let db = try SQLiteConnection(path: path, readOnly: true, immutable: true)
        defer { db.close() }
        func notAPart(_ detail: String) -> TraceError {
            .invalidInput(path: path, detail: "not a pathkernel analysis part (\(detail)); parts are written by `pathkernel analyze TRACE --shard I/N --out PART`")
        }
        let tables = try db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'", "reading the part")
        var names = Set<String>()
        do {
            while try tables.step() { if let n = tables.text(0) { names.insert(n) } }
        } catch { throw notAPart("\(error)") }
        guard names.contains("part_header"), names.contains("part_array") else { throw notAPart("no part_header and part_array tables") }
        let h = try db.prepare("SELECT format, version, header_json FROM part_header", "reading the part's header")
        guard try h.step(), h.text(0) == format else { throw notAPart("no header of format \(format)") }
        let version = h.int(1)
        guard version <= Self.version else {
            throw TraceError.invalidInput(path: path, detail: "part format version \(version) is newer than this pathkernel reads (\(Self.version)): merge with the pathkernel that wrote it")
        }
        guard let header = h.text(2) else { throw notAPart("empty header") }
        if try h.step() { throw notAPart("more than one header row") }
        var arrays: [String: Array2D] = [:]
        let s = try db.prepare("SELECT name, rows, cols, data, checksum FROM part_array", "reading the part's arrays")
        while try s.step() {
            guard let name = s.text(0), s.isNumber(1), s.isNumber(2), s.isNumber(4) else { throw notAPart("an array row with a missing field") }
            let rows = s.int(1), cols = s.int(2)
            guard rows >= 0, cols >= 0, rows < 1 << 31, cols < 1 << 31, rows * cols < 1 << 34 else {
                throw TraceError.corrupt(path: path, detail: "array \(name) has an impossible shape \(rows) × \(cols)")
            }
            let values: [Double] = try s.blob(3) { bytes in
                guard bytes.count == 8 * rows * cols else {
                    throw TraceError.corrupt(path: path, detail: "array \(name) holds \(bytes.count) bytes for \(rows) × \(cols) float64 values")
                }
                guard Int64(CRC32.checksum(bytes)) == s.int64(4) else {
                    throw TraceError.corrupt(path: path, detail: "array \(name) fails its checksum")
                }
                return BlobCoding.float64s(bytes)
            }
            arrays[name] = Array2D(rows: rows, cols: cols, data: values)
        }
        return PartFile(headerJSON: header, arrays: arrays)
    }
}
