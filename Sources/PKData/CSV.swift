import Foundation
import PKNumerics

/// A column of a table: by 0-based index (negative counts from the end, `-1` is the last
/// column) or by header name. In JSON a bare integer or a string.
public enum ColumnRef: Codable, Sendable, Equatable, Hashable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, CustomStringConvertible {
    case index(Int)
    case name(String)

    public init(integerLiteral value: Int) { self = .index(value) }
    public init(stringLiteral value: String) { self = .name(value) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .index(i); return }
        if let s = try? c.decode(String.self) { self = .name(s); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "a column is an integer index (negative counts from the end) or a header name")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .index(let i): try c.encode(i)
        case .name(let s): try c.encode(s)
        }
    }

    public var description: String {
        switch self {
        case .index(let i): return String(i)
        case .name(let s): return "'\(s)'"
        }
    }
}

/// Comma-separated values: numeric features, one target column.
///
/// Format accepted: one record per line (`\n` or `\r\n`); blank lines are skipped; fields are
/// separated by `delimiter` and trimmed of spaces and tabs; a field may be wrapped in double
/// quotes (then it may contain the delimiter, and `""` stands for one quote), but not span lines.
/// Every record must have as many fields as the first one.
public enum CSV {
    /// The cells of a CSV file as strings, with the file line of each record.
    public struct Table: Sendable, Equatable {
        /// The file (named in errors).
        public var path: String
        /// Column names, when the first record is a header.
        public var header: [String]?
        /// Data records, each `columnCount` fields.
        public var rows: [[String]]
        /// 1-based file line of each record in `rows`.
        public var lineNumbers: [Int]
        public var columnCount: Int
        /// 1-based file line of the header (when there is one).
        public var headerLine: Int?

        /// "column 3 (name)" for error messages; `c` is 0-based.
        func columnLabel(_ c: Int) -> String {
            if let h = header, c < h.count, !h[c].isEmpty { return "column \(c + 1) (\(h[c]))" }
            return "column \(c + 1)"
        }
    }

    /// Reads and splits a CSV file.
    ///
    /// - Parameter header: `true`/`false` force it; `nil` detects it: the first record is a
    ///   header when some field of it is not a number while the same field of the second record
    ///   is (with a single record: when any field is not a number).
    /// - Throws: `DataError` naming the file for a missing or unreadable file, a non-UTF-8 file,
    ///   an empty file, an unterminated quote, or a ragged record (with its line number).
    public static func read(path: String, delimiter: Character = ",", header: Bool? = nil) throws -> Table {
        let bytes = try FileBytes.read(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DataError(file: path, "not UTF-8 text")
        }
        return try parse(text: text, name: path, delimiter: delimiter, header: header)
    }

    /// Splits CSV text already in memory; `name` is used in errors.
    public static func parse(text: String, name: String, delimiter: Character = ",", header: Bool? = nil) throws -> Table {
        var records: [[String]] = []
        var lines: [Int] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift, so split on both spellings of a line break.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.last == "\r" { line = line.dropLast() }
            if lineNumber == 1, line.first == "\u{FEFF}" { line = line.dropFirst() }   // byte-order mark
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            records.append(try fields(of: line, delimiter: delimiter, name: name, line: lineNumber))
            lines.append(lineNumber)
        }
        guard let first = records.first else { throw DataError(file: name, "empty CSV: no records") }
        let width = first.count
        for (r, line) in zip(records, lines) where r.count != width {
            throw DataError(file: name, "ragged row at line \(line): \(r.count) fields, expected \(width) as on line \(lines[0])")
        }
        let hasHeader: Bool
        if let header {
            hasHeader = header
        } else if records.count >= 2 {
            hasHeader = (0..<width).contains { number(records[0][$0]) == nil && number(records[1][$0]) != nil }
        } else {
            hasHeader = first.contains { number($0) == nil }
        }
        var table = Table(path: name, header: nil, rows: records, lineNumbers: lines, columnCount: width, headerLine: nil)
        if hasHeader {
            table.header = records[0]
            table.headerLine = lines[0]
            table.rows.removeFirst()
            table.lineNumbers.removeFirst()
        }
        guard !table.rows.isEmpty else { throw DataError(file: name, "empty CSV: a header line but no data rows") }
        return table
    }

    /// A cell as a number (any `Double` spelling, including `nan` and `inf`), or nil.
    static func number(_ s: String) -> Double? { s.isEmpty ? nil : Double(s) }

    static func fields(of line: Substring, delimiter: Character, name: String, line lineNumber: Int) throws -> [String] {
        var out: [String] = []
        var current = ""
        var inQuotes = false
        var wasQuoted = false
        var chars = line.makeIterator()
        var pending: Character? = nil
        func finish() {
            out.append(wasQuoted ? current : current.trimmingCharacters(in: CharacterSet(charactersIn: " \t")))
            current = ""
            wasQuoted = false
        }
        while let ch = pending ?? chars.next() {
            pending = nil
            if inQuotes {
                if ch == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { current.append("\"") } else { inQuotes = false; pending = next }
                    } else {
                        inQuotes = false
                    }
                } else {
                    current.append(ch)
                }
            } else if ch == delimiter {
                finish()
            } else if ch == "\"" && current.allSatisfy({ $0 == " " || $0 == "\t" }) && !wasQuoted {
                inQuotes = true
                wasQuoted = true
                current = ""
            } else if wasQuoted {
                if ch != " " && ch != "\t" {
                    throw DataError(file: name, "line \(lineNumber): text after a closing quote in field \(out.count + 1)")
                }
            } else {
                current.append(ch)
            }
        }
        if inQuotes { throw DataError(file: name, "line \(lineNumber): unterminated quote in field \(out.count + 1)") }
        finish()
        return out
    }

    /// Resolves a column reference against the table; `DataError` when it is not there.
    public static func resolve(_ column: ColumnRef, in table: Table) throws -> Int {
        switch column {
        case .index(let i):
            let c = i < 0 ? table.columnCount + i : i
            guard c >= 0 && c < table.columnCount else {
                throw DataError(file: table.path, "target column \(i) is missing: the file has \(table.columnCount) columns (indices 0..<\(table.columnCount), or negative from the end)")
            }
            return c
        case .name(let s):
            guard let header = table.header else {
                throw DataError(file: table.path, "target column '\(s)' is missing: the file has no header line (name the column by index, or set header: true)")
            }
            guard let c = header.firstIndex(of: s) else {
                throw DataError(file: table.path, "target column '\(s)' is missing: the header has \(header.joined(separator: ", "))")
            }
            return c
        }
    }

    /// Turns a table into a dataset: every column but `target` is a numeric feature.
    ///
    /// Classification targets (`binary`, `multiclass`) may be any strings; their distinct values
    /// are mapped to `0..<K` in sorted order (numeric order when all are numbers, else string
    /// order). `binary` needs exactly 2 distinct values, `multiclass` at least 2.
    /// - Throws: `DataError` naming the file and line/column of a non-numeric or NaN/Inf cell, or
    ///   a missing target column.
    public static func dataset(_ table: Table, target: ColumnRef = -1, task: TaskKind) throws -> Dataset {
        let name = table.path
        let t = try resolve(target, in: table)
        guard table.columnCount >= 2 else {
            throw DataError(file: name, "needs at least one feature column besides the target, the file has \(table.columnCount) column")
        }
        let n = table.rows.count
        let d = table.columnCount - 1
        var x = [Double]()
        x.reserveCapacity(n * d)
        func numeric(_ s: String, row r: Int, col c: Int) throws -> Double {
            guard let v = number(s) else {
                let what = s.isEmpty ? "an empty cell" : "'\(s)'"
                throw DataError(file: name, "line \(table.lineNumbers[r]), \(table.columnLabel(c)): \(what) is not a number")
            }
            guard v.isFinite else {
                throw DataError(file: name, "line \(table.lineNumbers[r]), \(table.columnLabel(c)): value '\(s)' is NaN/Inf, not allowed")
            }
            return v
        }
        for (r, row) in table.rows.enumerated() {
            for c in 0..<table.columnCount where c != t { x.append(try numeric(row[c], row: r, col: c)) }
        }
        var y = [Double]()
        y.reserveCapacity(n)
        var numClasses = 0
        switch task {
        case .regression:
            for (r, row) in table.rows.enumerated() { y.append(try numeric(row[t], row: r, col: t)) }
        case .binary, .multiclass:
            let raw = table.rows.map { $0[t] }
            if let empty = raw.firstIndex(where: { $0.isEmpty }) {
                throw DataError(file: name, "line \(table.lineNumbers[empty]), \(table.columnLabel(t)): empty target cell")
            }
            let numbers = raw.map { number($0) }
            let classIndex: [Int]
            let classNames: [String]
            if numbers.allSatisfy({ $0 != nil && $0!.isFinite }) {
                let values = numbers.map { $0! }
                let distinct = Array(Set(values)).sorted()
                let index = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
                classIndex = values.map { index[$0]! }
                classNames = distinct.map { String($0) }
            } else {
                let distinct = Array(Set(raw)).sorted()
                let index = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, $0) })
                classIndex = raw.map { index[$0]! }
                classNames = distinct
            }
            let k = classNames.count
            let shown = classNames.prefix(10).joined(separator: ", ") + (k > 10 ? ", …" : "")
            if task == .binary {
                guard k == 2 else {
                    throw DataError(file: name, "binary task needs exactly 2 distinct target values in \(table.columnLabel(t)), found \(k) (\(shown))")
                }
            } else {
                guard k >= 2 else {
                    throw DataError(file: name, "multiclass task needs at least 2 distinct target values in \(table.columnLabel(t)), found \(k) (\(shown))")
                }
            }
            y = classIndex.map(Double.init)
            numClasses = k
        }
        let base = lastPathComponent(name)
        let ds = Dataset(x: Matrix(rows: n, cols: d, data: x), y: Matrix(rows: n, cols: 1, data: y),
                         task: task, numClasses: numClasses, name: base)
        try ds.validate(file: name)
        return ds
    }

    /// Reads a CSV file into a dataset (`read` then `dataset`).
    public static func load(path: String, target: ColumnRef = -1, task: TaskKind = .regression,
                            header: Bool? = nil, delimiter: Character = ",") throws -> Dataset {
        try dataset(try read(path: path, delimiter: delimiter, header: header), target: target, task: task)
    }
}

/// The last component of a path (trailing slashes ignored), without Foundation's `NSString`
/// path methods, which crash on some one-character paths on Linux (PKTrace's `PathNames`).
func lastPathComponent(_ path: String) -> String {
    var s = Substring(path)
    while s.count > 1 && s.hasSuffix("/") { s = s.dropLast() }
    if s == "/" { return "/" }
    return String(s.split(separator: "/", omittingEmptySubsequences: true).last ?? "")
}
