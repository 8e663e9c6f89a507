import Foundation
import Testing
@testable import PKTrace

@Suite("CRC-32")
struct CRC32Tests {
    /// Reference values from Python's `zlib.crc32`.
    @Test(arguments: [
        ("", UInt32(0)),
        ("a", 0xE8B7_BE43),
        ("123456789", 0xCBF4_3926),
        ("The quick brown fox jumps over the lazy dog", 0x414F_A339),
    ])
    func knownStrings(text: String, expected: UInt32) {
        #expect(CRC32.checksum(text) == expected)
    }

    /// `zlib.crc32(bytes((i*7+3) % 256 for i in range(1_000_003)))` = 0x095D6E8A: long input,
    /// length not a multiple of 8 (exercises the 16-byte loop and the tail).
    @Test func pythonReferenceOnALongBuffer() {
        let bytes = (0..<1_000_003).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        #expect(CRC32.checksum(bytes) == 0x095D_6E8A)
    }

    /// `zlib.crc32(struct.pack('<3d', 1.0, -2.5, 0.1))` = 0x191A0F28: the checksum of a stored
    /// Float64 blob, as a Python reader computes it.
    @Test func pythonReferenceOnAFloat64Blob() {
        #expect(CRC32.checksum(BlobCoding.float64Bytes([1.0, -2.5, 0.1])) == 0x191A_0F28)
    }

    @Test(arguments: [0, 1, 7, 8, 9, 100, 4097])
    func continuingEqualsWhole(split: Int) {
        let bytes = (0..<4100).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        let whole = CRC32.checksum(bytes)
        let a = CRC32.checksum(Array(bytes[..<split]))
        #expect(CRC32.checksum(Array(bytes[split...]), continuing: a) == whole)
    }

    /// A bytewise reference (the textbook bit loop) agrees with the sliced loop on odd lengths.
    @Test func agreesWithBitwiseReference() {
        func bitwise(_ d: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in d {
                c ^= UInt32(b)
                for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            }
            return ~c
        }
        var g = SystemRandomNumberGenerator()
        for n in [1, 3, 8, 15, 16, 17, 31, 32, 33, 1000, 1023] {
            let d = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(CRC32.checksum(d) == bitwise(d), "length \(n)")
        }
    }

    /// The carry-less-multiplication fold (x86-64 with PCLMULQDQ) equals the table loop on every
    /// length from 0 to 600, at every alignment mod 16, continuing from a previous value, and on a
    /// few megabytes; on other CPUs both are the table loop.
    @Test func foldAgreesWithTheTableLoop() {
        var g = SystemRandomNumberGenerator()
        let data = (0..<(600 + 16)).map { _ in UInt8.random(in: 0...255, using: &g) }
        data.withUnsafeBytes { all in
            for offset in 0..<16 {
                for n in 0...600 {
                    let b = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                    #expect(CRC32.checksum(b) == CRC32.tableChecksum(b), "length \(n) at offset \(offset)")
                    #expect(CRC32.checksum(b, continuing: 0x1234_5678) == CRC32.tableChecksum(b, continuing: 0x1234_5678))
                }
            }
        }
        let big = (0..<(3 << 20) + 7).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 11) }
        big.withUnsafeBytes { #expect(CRC32.checksum($0) == CRC32.tableChecksum($0)) }
    }

    /// 5 MB (a large checkpoint) checksums well under a second even in a debug build.
    @Test func fastOnMegabyteBlobs() {
        let bytes = [UInt8](repeating: 0xA5, count: 5 << 20)
        let start = Date()
        _ = CRC32.checksum(bytes)
        #expect(Date().timeIntervalSince(start) < 2.0)
    }
}
