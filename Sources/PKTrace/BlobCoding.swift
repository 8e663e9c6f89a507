/// Little-endian encodings of the format's blobs.
///
/// Float64 and Float32 are IEEE-754 binary64/binary32, Int32 is two's complement, all
/// little-endian, elements packed with no header or padding. On little-endian hosts (every
/// platform Swift runs on today) encoding and decoding are plain copies.
enum BlobCoding {
    static func float64Bytes(_ xs: [Double]) -> [UInt8] {
        #if _endian(little)
        return xs.withUnsafeBytes { Array($0) }
        #else
        return xs.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Array($0) }
        #endif
    }

    /// Calls `body` with the Float64 encoding of `xs`: on little-endian hosts the array's own
    /// memory, not a copy (valid only inside `body`).
    static func withFloat64Bytes<R>(_ xs: [Double], _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        #if _endian(little)
        return try xs.withUnsafeBytes(body)
        #else
        return try float64Bytes(xs).withUnsafeBytes(body)
        #endif
    }

    /// Rounds each value to the nearest Float32.
    static func float32Bytes(_ xs: [Double]) -> [UInt8] {
        let f = xs.map { Float($0).bitPattern.littleEndian }
        return f.withUnsafeBytes { Array($0) }
    }

    static func int32Bytes(_ xs: [Int32]) -> [UInt8] {
        #if _endian(little)
        return xs.withUnsafeBytes { Array($0) }
        #else
        return xs.map { $0.littleEndian }.withUnsafeBytes { Array($0) }
        #endif
    }

    /// Decodes `bytes.count / 8` Float64 values (the caller checks the length).
    static func float64s(_ bytes: UnsafeRawBufferPointer) -> [Double] {
        let n = bytes.count / 8
        return [Double](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n {
                buf[i] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            }
            count = n
        }
    }

    /// Decodes `bytes.count / 4` Float32 values, widened exactly to Double.
    static func float32s(_ bytes: UnsafeRawBufferPointer) -> [Double] {
        let n = bytes.count / 4
        return [Double](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n {
                buf[i] = Double(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
            }
            count = n
        }
    }

    static func int32s(_ bytes: UnsafeRawBufferPointer) -> [Int32] {
        let n = bytes.count / 4
        return [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n {
                buf[i] = Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            }
            count = n
        }
    }

    /// `[1000,784]` → `"[1000,784]"`: the JSON text stored in `shape` columns.
    static func shapeJSON(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ",") + "]"
    }

    /// Parses a JSON array of non-negative integers (whitespace allowed); nil if malformed.
    /// The number of elements of `shape`, nil when the product overflows or exceeds `limit`
    /// (2^40 elements: 8 TiB of float64, far past any trace a machine can hold).
    static func elementCount(_ shape: [Int], limit: Int = 1 << 40) -> Int? {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow || p > limit { return nil }
            n = p
        }
        return n
    }

    static func parseShape(_ text: String) -> [Int]? {
        let t = text.filter { !$0.isWhitespace }
        guard t.hasPrefix("["), t.hasSuffix("]") else { return nil }
        let inner = t.dropFirst().dropLast()
        if inner.isEmpty { return [] }
        var dims: [Int] = []
        for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
            guard let d = Int(part), d >= 0 else { return nil }
            dims.append(d)
        }
        return dims
    }
}
