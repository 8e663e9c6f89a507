import Foundation
import Testing
@testable import PKData

@Suite("Gzip")
struct GzipTests {
    static func payload(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 7) } }

    @Test(arguments: [0, 1, 100, 3_000_000])
    func roundTrip(n: Int) throws {
        let data = Self.payload(n)
        let gz = Gzip.compress(data)
        #expect(Gzip.isGzip(gz))
        #expect(try Gzip.decompress(gz, name: "mem") == data)
    }

    @Test func concatenatedMembers() throws {
        let a = Self.payload(1000), b = [UInt8](repeating: 9, count: 500)
        #expect(try Gzip.decompress(Gzip.compress(a) + Gzip.compress(b), name: "two.gz") == a + b)
    }

    @Test(arguments: [1, 10, 100])
    func truncated(cut: Int) {
        let gz = Gzip.compress(Self.payload(20_000))
        expectDataError({ try Gzip.decompress(Array(gz.dropLast(cut)), name: "cut.gz") }, mentions: ["cut.gz", "truncated"])
    }

    @Test func truncatedHeader() {
        expectDataError({ try Gzip.decompress([0x1F, 0x8B, 0x08], name: "hdr.gz") }, mentions: ["hdr.gz"])
    }

    @Test func corruptBody() {
        var gz = Gzip.compress(Self.payload(20_000))
        for i in stride(from: 20, to: gz.count - 20, by: 17) { gz[i] ^= 0x5A }
        expectDataError({ try Gzip.decompress(gz, name: "bad.gz") }, mentions: ["bad.gz", "corrupt"])
    }

    @Test func corruptChecksum() {
        var gz = Gzip.compress(Self.payload(1000))
        gz[gz.count - 6] ^= 0xFF   // inside the CRC-32 trailer
        expectDataError({ try Gzip.decompress(gz, name: "crc.gz") }, mentions: ["crc.gz", "corrupt"])
    }

    @Test func trailingGarbage() {
        let gz = Gzip.compress(Self.payload(1000)) + [1, 2, 3]
        expectDataError({ try Gzip.decompress(gz, name: "tail.gz") }, mentions: ["tail.gz", "garbage"])
    }

    @Test func empty() {
        expectDataError({ try Gzip.decompress([], name: "empty.gz") }, mentions: ["empty.gz"])
    }
}
