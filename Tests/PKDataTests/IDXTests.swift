import Foundation
import Testing
import PKNumerics
@testable import PKData

/// Tolerance for the mean and std of standardized data (sums of a few hundred doubles).
let standardizeTolerance = 1e-12

/// A tiny IDX dataset: `n` images of 2×3 pixels. Pixel 0 is `20·label`, pixel 1 the example
/// index, the rest a fixed pattern that reaches 255; labels are `i mod 10`.
struct IDXFixture {
    static func images(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        for i in 0..<n {
            out += [UInt8(20 * (i % 10)), UInt8(i)]
            for j in 2..<6 { out.append(i == 3 && j == 5 ? 255 : UInt8((i * 37 + j * 11) % 251)) }
        }
        return out
    }

    static func labels(_ n: Int) -> [UInt8] { (0..<n).map { UInt8($0 % 10) } }

    /// Writes train (50) and t10k (20) files with the standard names; `gzip` adds `.gz`.
    static func write(in dir: String, gzip: Bool, nTrain: Int = 50, nTest: Int = 20) throws {
        func put(_ name: String, _ shape: [Int], _ bytes: [UInt8]) throws {
            let raw = IDX.encode(shape: shape, bytes: bytes)
            let path = (dir as NSString).appendingPathComponent(name + (gzip ? ".gz" : ""))
            try PKDataTests.write(gzip ? Gzip.compress(raw) : raw, to: path)
        }
        try put("train-images-idx3-ubyte", [nTrain, 2, 3], images(nTrain))
        try put("train-labels-idx1-ubyte", [nTrain], labels(nTrain))
        try put("t10k-images-idx3-ubyte", [nTest, 2, 3], images(nTest))
        try put("t10k-labels-idx1-ubyte", [nTest], labels(nTest))
    }
}

@Suite("IDX reader")
struct IDXReaderTests {
    @Test(arguments: [false, true])
    func readsPlainAndGzip(gzip: Bool) throws {
        let dir = try temporaryDirectory()
        let bytes: [UInt8] = (0..<24).map { UInt8($0 * 10) }
        let raw = IDX.encode(shape: [2, 3, 4], bytes: bytes)
        #expect(raw.prefix(4) == [0, 0, 8, 3])
        let path = dir + "/a.idx"
        try write(gzip ? Gzip.compress(raw) : raw, to: path)
        let r = try IDX.read(path: path)
        #expect(r.shape == [2, 3, 4] && r.bytes == bytes)
    }

    @Test func gzipIsDetectedByMagicNotName() throws {
        let dir = try temporaryDirectory()
        let raw = IDX.encode(shape: [3], bytes: [1, 2, 3])
        try write(Gzip.compress(raw), to: dir + "/labels.idx")
        try write(raw, to: dir + "/labels.gz")
        #expect(try IDX.read(path: dir + "/labels.idx").bytes == [1, 2, 3])
        #expect(try IDX.read(path: dir + "/labels.gz").bytes == [1, 2, 3])
    }

    /// Malformed files: bytes (before optional gzip) and a phrase the error must contain.
    static let malformed: [(String, [UInt8], Bool, String)] = [
        ("magic.idx", [0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 7], false, "bad IDX magic"),
        ("float.idx", [0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], false, "unsupported IDX element type 0xd"),
        ("weird.idx", [0, 0, 0x42, 1, 0, 0, 0, 1, 0], false, "unknown type 0x42"),
        ("short.idx", [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5], false, "payload length mismatch"),
        ("long.idx", [0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3], false, "payload length mismatch"),
        ("long.idx.gz", [0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3], true, "need 2 bytes, the file has 3"),
        ("header.idx", [0, 0, 8, 3, 0, 0, 0, 2], false, "truncated IDX header"),
        ("tiny.idx", [0, 0], false, "shorter than the 4-byte magic"),
        ("zero.idx", [0, 0, 8, 0], false, "zero dimensions"),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(name: String, bytes: [UInt8], gzip: Bool, phrase: String) throws {
        let dir = try temporaryDirectory()
        let path = dir + "/" + name
        try write(gzip ? Gzip.compress(bytes) : bytes, to: path)
        expectDataError({ try IDX.read(path: path) }, mentions: [name, phrase])
    }

    @Test func truncatedGzipFile() throws {
        let dir = try temporaryDirectory()
        let gz = Gzip.compress(IDX.encode(shape: [100, 10], bytes: (0..<1000).map { UInt8($0 % 256) }))
        try write(Array(gz.prefix(gz.count / 2)), to: dir + "/cut-images.gz")
        expectDataError({ try IDX.read(path: dir + "/cut-images.gz") }, mentions: ["cut-images.gz", "truncated gzip"])
    }

    @Test func corruptGzipFile() throws {
        let dir = try temporaryDirectory()
        var gz = Gzip.compress(IDX.encode(shape: [100, 10], bytes: (0..<1000).map { UInt8($0 % 256) }))
        for i in 12..<(gz.count - 10) { gz[i] = 0xFF }
        try write(gz, to: dir + "/corrupt-images.gz")
        expectDataError({ try IDX.read(path: dir + "/corrupt-images.gz") }, mentions: ["corrupt-images.gz", "corrupt gzip"])
    }

    @Test func missingFile() {
        expectDataError({ try IDX.read(path: "/nonexistent/pk-missing-idx") }, mentions: ["/nonexistent/pk-missing-idx", "not found"])
    }
}

@Suite("IDX loader")
struct IDXLoaderTests {
    func spec(_ dir: String, _ extra: (inout DataSpec) -> Void = { _ in }) -> DataSpec {
        var s = DataSpec(kind: "idx", directory: dir)
        extra(&s)
        return s
    }

    @Test(arguments: [false, true])
    func loadsEverything(gzip: Bool) throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: gzip)
        let d = try spec(dir) { $0.normalize = "none"; $0.shuffle = false }.load(seed: 1)
        #expect(d.train.count == 50 && d.test.count == 20 && d.train.x.cols == 6 && d.test.x.cols == 6)
        #expect(d.train.task == .multiclass && d.train.numClasses == 10 && d.train.outputDim == 10)
        #expect(d.train.x.data.map { UInt8($0) } == IDXFixture.images(50))
        #expect(d.test.y.data.map { UInt8($0) } == IDXFixture.labels(20))
    }

    @Test func classFilterReindexesInGivenOrder() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: true)
        let d = try spec(dir) { $0.classFilter = [7, 2]; $0.normalize = "none" }.load(seed: 3)
        #expect(d.train.task == .binary && d.train.numClasses == 2 && d.train.outputDim == 1)
        #expect(d.train.count == 10 && d.test.count == 4)
        for set in [d.train, d.test] {
            for r in 0..<set.count {
                let original = Int(set.x[r, 0]) / 20
                #expect(set.y[r, 0] == (original == 7 ? 0 : 1))
                #expect(original == 7 || original == 2)
            }
        }
        let three = try spec(dir) { $0.classFilter = [1, 0, 9] }.load(seed: 3)
        #expect(three.train.task == .multiclass && three.train.numClasses == 3 && Set(three.train.y.data) == [0, 1, 2])
        let forced = try spec(dir) { $0.classFilter = [7, 2]; $0.task = .multiclass }.load(seed: 3)
        #expect(forced.train.task == .multiclass && forced.train.outputDim == 2)
    }

    @Test func subsetsAreSeededChoices() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: false)
        let s = spec(dir) { $0.train = 12; $0.test = 5; $0.normalize = "none" }
        let a = try s.load(seed: 1), b = try s.load(seed: 1), c = try s.load(seed: 2)
        #expect(a.train.count == 12 && a.test.count == 5)
        #expect(bits(a.train.x) == bits(b.train.x) && bits(a.test.x) == bits(b.test.x))
        #expect(bits(a.train.x) != bits(c.train.x))
        let ids = (0..<12).map { Int(a.train.x[$0, 1]) }
        #expect(Set(ids).count == 12 && ids != Array(0..<12))
        // Changing the test size leaves the training choice alone.
        var s2 = s
        s2.test = 9
        #expect(bits(try s2.load(seed: 1).train.x) == bits(a.train.x))
        // shuffle: false takes the first examples in file order.
        var s3 = s
        s3.shuffle = false
        let first = try s3.load(seed: 1)
        #expect((0..<12).map { Int(first.train.x[$0, 1]) } == Array(0..<12))
    }

    @Test func unitNormalization() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: false)
        let d = try spec(dir) { $0.shuffle = false }.load(seed: 1)   // default normalize: unit
        #expect(d.train.x.data.max()! <= 1 && d.train.x.data.min()! >= 0)
        #expect(d.train.x.data.max()! == 1)   // the fixture has a 255
        let raw = IDXFixture.images(50)
        #expect(zip(d.train.x.data, raw).allSatisfy { $0.bitPattern == (Double($1) / 255).bitPattern })
    }

    @Test func standardizeUsesTheTrainingSubset() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: false)
        let d = try spec(dir) { $0.normalize = "standardize"; $0.train = 30 }.load(seed: 4)
        let v = d.train.x.data
        let mean = v.reduce(0, +) / Double(v.count)
        let std = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot()
        #expect(abs(mean) <= standardizeTolerance)
        #expect(abs(std - 1) <= standardizeTolerance)
        // The test set uses the training statistics, so its mean is not forced to 0.
        let tm = d.test.x.data.reduce(0, +) / Double(d.test.x.data.count)
        #expect(abs(tm) > standardizeTolerance)
    }

    @Test func tooManyRequested() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: false)
        expectDataError({ try spec(dir) { $0.train = 51 }.load(seed: 1) }, mentions: ["train-labels-idx1-ubyte", "51"])
        expectDataError({ try spec(dir) { $0.classFilter = [0, 1]; $0.test = 5 }.load(seed: 1) },
                        mentions: ["t10k-labels-idx1-ubyte", "has 4"])
    }

    @Test func countMismatch() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: false)
        try write(IDX.encode(shape: [49], bytes: IDXFixture.labels(49)), to: dir + "/train-labels-idx1-ubyte")
        expectDataError({ try spec(dir).load(seed: 1) }, mentions: ["train-images-idx3-ubyte", "count mismatch", "49"])
    }

    @Test func labelOutOfRange() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: true)
        var labels = IDXFixture.labels(20)
        labels[13] = 12
        try write(Gzip.compress(IDX.encode(shape: [20], bytes: labels)), to: dir + "/t10k-labels-idx1-ubyte.gz")
        expectDataError({ try spec(dir).load(seed: 1) }, mentions: ["t10k-labels-idx1-ubyte.gz", "label 12", "example 13", "out of range"])
        // A larger label range accepts it.
        #expect(throws: Never.self) { try spec(dir) { $0.labelCount = 13 }.load(seed: 1) }
    }

    @Test func wrongShapes() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: false)
        try write(IDX.encode(shape: [50, 1], bytes: IDXFixture.labels(50)), to: dir + "/train-labels-idx1-ubyte")
        expectDataError({ try spec(dir).load(seed: 1) }, mentions: ["train-labels-idx1-ubyte", "1 dimension"])
        try IDXFixture.write(in: dir, gzip: false)
        try write(IDX.encode(shape: [20, 7], bytes: [UInt8](repeating: 0, count: 140)), to: dir + "/t10k-images-idx3-ubyte")
        expectDataError({ try spec(dir).load(seed: 1) }, mentions: ["t10k-images-idx3-ubyte", "7 features"])
    }

    @Test func bitFlippedPayloadInsideGzip() throws {
        let dir = try temporaryDirectory()
        try IDXFixture.write(in: dir, gzip: true)
        let path = dir + "/train-images-idx3-ubyte.gz"
        var gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        gz[gz.count - 8] ^= 0x01   // CRC-32
        try write(gz, to: path)
        expectDataError({ try spec(dir).load(seed: 1) }, mentions: ["train-images-idx3-ubyte.gz", "corrupt gzip"])
    }

    @Test func missingFiles() throws {
        let dir = try temporaryDirectory()
        expectDataError({ try spec(dir).load(seed: 1) }, mentions: [dir + "/train-images-idx3-ubyte", "not found", ".gz"])
        try IDXFixture.write(in: dir, gzip: false)
        try FileManager.default.removeItem(atPath: dir + "/t10k-labels-idx1-ubyte")
        let e = expectDataError({ try spec(dir).load(seed: 1) }, mentions: ["t10k-labels-idx1-ubyte", "not found"])
        #expect(e?.description.contains("apt-get") == false)   // the hint is for the default folder only
        // Custom names are used as given.
        try FileManager.default.moveItem(atPath: dir + "/t10k-images-idx3-ubyte", toPath: dir + "/ti")
        try write(IDX.encode(shape: [20], bytes: IDXFixture.labels(20)), to: dir + "/tl")
        let d = try spec(dir) { $0.testImages = "ti"; $0.testLabels = "tl" }.load(seed: 1)
        #expect(d.test.count == 20)
    }

    @Test func missingFashionMNISTNamesThePackage() {
        let s = DataSpec(kind: "idx", trainImages: "no-such-file-pk")
        expectDataError({ try s.load(seed: 1) }, mentions: [
            "/usr/share/datasets/fashion-mnist/no-such-file-pk",
            "install it with `apt-get install dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist)",
        ])
    }
}

@Suite("Fashion-MNIST (real data)")
struct FashionMNISTTests {
    static let available = FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

    @Test(.enabled(if: available, "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"))
    func loadsASubset() throws {
        let spec = try decodeSpec(#"{"kind":"idx","train":1000,"test":200}"#)
        let d = try spec.load(seed: 4)
        #expect(d.train.count == 1000 && d.test.count == 200)
        #expect(d.train.x.cols == 784 && d.test.x.cols == 784)
        #expect(d.train.task == .multiclass && d.train.numClasses == 10 && d.train.outputDim == 10)
        for set in [d.train, d.test] {
            #expect(set.y.data.allSatisfy { $0 >= 0 && $0 < 10 && $0 == $0.rounded() })
            #expect(set.x.data.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        // A random choice covers every class; pixels use the full range.
        #expect(Set(d.train.y.data).count == 10)
        #expect(d.train.x.data.max()! == 1)
        #expect(bits(try spec.load(seed: 4).train.x) == bits(d.train.x))
    }

    @Test(.enabled(if: available, "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"))
    func rawFileShapes() throws {
        let labels = try IDX.read(path: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
        #expect(labels.shape == [10000] && labels.bytes.allSatisfy { $0 < 10 })
        let images = try IDX.read(path: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
        #expect(images.shape == [10000, 28, 28] && images.bytes.count == 7_840_000)
    }
}
