/// CRC-32 as in IEEE 802.3, zlib, PNG and Python's `zlib.crc32` (reflected polynomial
/// 0xEDB88320, initial value and final XOR 0xFFFFFFFF).
///
/// Slicing-by-8: eight 256-entry tables, eight bytes per iteration (about 1–2 GB/s in release
/// builds). `checksum(b, continuing: checksum(a))` equals `checksum(a + b)`, like
/// `zlib.crc32(b, zlib.crc32(a))`.
public enum CRC32 {
    /// `tables[k][b]`: CRC contribution of byte `b` followed by `k` zero bytes.
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1) }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()

    /// The flat table, `flat[k * 256 + b] == tables[k][b]`, for the inner loop.
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// CRC-32 of the bytes; pass a previous result as `continuing` to extend it.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        guard let base = bytes.baseAddress, bytes.count > 0 else { return previous }
        let n = bytes.count
        var i = 0
        flat.withUnsafeBufferPointer { t in
            while n - i >= 8 {
                let lo = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ crc
                let hi = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                crc = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                crc = t[Int((crc ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                i += 1
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
