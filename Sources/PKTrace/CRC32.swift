import CCRC32

/// CRC-32 as in IEEE 802.3, zlib, PNG and Python's `zlib.crc32` (reflected polynomial
/// 0xEDB88320, initial value and final XOR 0xFFFFFFFF).
///
/// On x86-64 with PCLMULQDQ, runs of 64 bytes and more are folded by carry-less multiplication
/// (`CCRC32`, about 10 GB/s); elsewhere, and for the last bytes, slicing-by-16: sixteen 256-entry
/// tables, sixteen bytes per iteration (about 2 GB/s in release builds). The writer checksums
/// every blob it stores and the reader every blob it reads.
/// `checksum(b, continuing: checksum(a))` equals `checksum(a + b)`, like
/// `zlib.crc32(b, zlib.crc32(a))`.
public enum CRC32 {
    /// `tables[k][b]`: CRC contribution of byte `b` followed by `k` zero bytes.
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 16)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1) }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<16 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()

    /// Whether `pk_crc32_fold` runs on this CPU.
    static let useFold = pk_crc32_fold_available() != 0

    /// The flat table, `flat[k * 256 + b] == tables[k][b]`, for the inner loop.
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// CRC-32 of the bytes; pass a previous result as `continuing` to extend it.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        guard useFold, let base = bytes.baseAddress, bytes.count >= 64 else { return tableChecksum(bytes, continuing: previous) }
        let bulk = bytes.count & ~15
        let register = pk_crc32_fold(~previous, base.assumingMemoryBound(to: UInt8.self), bulk)
        return tableChecksum(UnsafeRawBufferPointer(rebasing: bytes[bulk...]), continuing: ~register)
    }

    /// The table-driven loop alone (every platform; the fold's reference in the tests).
    static func tableChecksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        guard let base = bytes.baseAddress, bytes.count > 0 else { return previous }
        let n = bytes.count
        var i = 0
        flat.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            @inline(__always) func row(_ k: Int, _ b: UInt32) -> UInt32 { t[k &* 256 &+ Int(b)] }
            @inline(__always) func word(_ at: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
            while n &- i >= 16 {
                let a = word(i) ^ crc, b = word(i &+ 4), c = word(i &+ 8), d = word(i &+ 12)
                let ab = row(15, a & 0xFF) ^ row(14, (a >> 8) & 0xFF) ^ row(13, (a >> 16) & 0xFF) ^ row(12, a >> 24)
                    ^ row(11, b & 0xFF) ^ row(10, (b >> 8) & 0xFF) ^ row(9, (b >> 16) & 0xFF) ^ row(8, b >> 24)
                let cd = row(7, c & 0xFF) ^ row(6, (c >> 8) & 0xFF) ^ row(5, (c >> 16) & 0xFF) ^ row(4, c >> 24)
                    ^ row(3, d & 0xFF) ^ row(2, (d >> 8) & 0xFF) ^ row(1, (d >> 16) & 0xFF) ^ row(0, d >> 24)
                crc = ab ^ cd
                i &+= 16
            }
            while i < n {
                crc = t[Int((crc ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                i &+= 1
            }
        }
        return ~crc
    }

    /// CRC-32 of a byte array.
    public static func checksum(_ bytes: [UInt8], continuing previous: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: previous) }
    }

    /// CRC-32 of a string's UTF-8 bytes.
    public static func checksum(_ string: String) -> UInt32 {
        checksum(Array(string.utf8))
    }
}
