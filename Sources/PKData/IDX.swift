import Foundation

/// Reading whole files into bytes, with `DataError`s that name the file.
enum FileBytes {
    static func read(_ path: String, hint: String? = nil) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError(file: path, "file not found" + (hint.map { "; \($0)" } ?? ""))
        }
        guard !isDir.boolValue else { throw DataError(file: path, "is a directory, expected a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "cannot read the file (permissions?)")
        }
        return [UInt8](data)
    }

    /// The file's bytes, inflated when they start with the gzip magic `1f 8b`.
    static func readMaybeGzip(_ path: String, hint: String? = nil) throws -> [UInt8] {
        let raw = try read(path, hint: hint)
        return Gzip.isGzip(raw) ? try Gzip.decompress(raw, name: path) : raw
    }
}

/// The IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/).
///
/// Layout: magic `00 00 TT NN` (`TT` the element type, `NN` the number of dimensions), then `NN`
/// big-endian UInt32 sizes, then the elements in row-major order. Only type `0x08` (unsigned
/// byte) is read. Files may be gzip-compressed (detected by the magic `1f 8b`, not the name).
public enum IDX {
    /// Element type codes of the format.
    public static let typeNames: [UInt8: String] = [
        0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64",
    ]

    /// Reads an IDX file of unsigned bytes (plain or gzip).
    ///
    /// - Returns: the dimension sizes and the payload (`shape.reduce(1, *)` bytes).
    /// - Throws: `DataError` naming the file when it is missing, not valid gzip, has a bad magic,
    ///   an unsupported element type, or a payload whose length differs from the product of the sizes.
    public static func read(path: String) throws -> (shape: [Int], bytes: [UInt8]) {
        try parse(try FileBytes.readMaybeGzip(path), name: path)
    }

    /// Parses IDX bytes already in memory (uncompressed); `name` is used in errors.
    public static func parse(_ b: [UInt8], name: String) throws -> (shape: [Int], bytes: [UInt8]) {
        guard b.count >= 4 else {
            throw DataError(file: name, "not an IDX file: \(b.count) bytes, shorter than the 4-byte magic")
        }
        guard b[0] == 0, b[1] == 0 else {
            throw DataError(file: name, String(format: "bad IDX magic %02x %02x %02x %02x (expected 00 00 08 NN)", b[0], b[1], b[2], b[3]))
        }
        let type = b[2]
        guard type == 0x08 else {
            let what = typeNames[type].map { "type 0x\(String(type, radix: 16)) (\($0))" } ?? "unknown type 0x\(String(type, radix: 16))"
            throw DataError(file: name, "unsupported IDX element \(what); only 0x08 (unsigned byte) is supported")
        }
        let ndims = Int(b[3])
        guard ndims >= 1 else { throw DataError(file: name, "bad IDX header: zero dimensions") }
        let headerLength = 4 + 4 * ndims
        guard b.count >= headerLength else {
            throw DataError(file: name, "truncated IDX header: \(ndims) dimensions need \(headerLength) header bytes, the file has \(b.count)")
        }
        var shape: [Int] = []
        var total = 1
        for k in 0..<ndims {
            let o = 4 + 4 * k
            let size = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            shape.append(size)
            let (p, overflow) = total.multipliedReportingOverflow(by: size)
            guard !overflow, p <= Int(UInt32.max) * 16 else {
                throw DataError(file: name, "bad IDX header: dimensions \(shape) are implausibly large")
            }
            total = p
        }
        let payload = b.count - headerLength
        guard payload == total else {
            let dims = shape.map(String.init).joined(separator: "×")
            throw DataError(file: name, "IDX payload length mismatch: dimensions \(dims) need \(total) bytes, the file has \(payload)")
        }
        return (shape, Array(b[headerLength...]))
    }

    /// The bytes of an unsigned-byte IDX file with this shape (for writing fixtures).
    public static func encode(shape: [Int], bytes: [UInt8]) -> [UInt8] {
        precondition(shape.count >= 1 && shape.count <= 255, "IDX needs 1…255 dimensions")
        precondition(shape.reduce(1, *) == bytes.count, "IDX payload \(bytes.count) ≠ product of \(shape)")
        var out: [UInt8] = [0, 0, 0x08, UInt8(shape.count)]
        for s in shape {
            let v = UInt32(s)
            out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
        }
        return out + bytes
    }
}
