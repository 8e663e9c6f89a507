import Foundation
import Testing

/// `pathkernel cntk` end to end: oracle 3 through the command (CSV images), kernel regression,
/// --out files, help width, and one clean line for every bad input.
@Suite("pathkernel cntk", .serialized)
struct CNTKCommandTests {
    /// The printed JSON numbers are shortest round-trip (the library's bits); the contract's 12
    /// significant digits against them, relative to the largest entry.
    static let oracleTolerance = 1e-12
    /// A kernel interpolates its training targets at t = ∞ without a ridge: what is left is the
    /// solve's round-off on a well-conditioned 8 × 8 kernel.
    static let interpolationTolerance = 1e-16
    /// Foundation's JSONSerialization does not parse every double correctly rounded (1–2 ulp off
    /// seen); the .csv file read with `Double(_:)` against the JSON, relative.
    static let jsonParseTolerance = 1e-15

    /// Oracle 3's images, 4×4×2 channel last, one per row, with a dummy target column.
    static var oracleCSV: String {
        (0..<3).map { i in
            var row: [String] = []
            for h in 0..<4 { for w in 0..<4 { for c in 0..<2 {
                row.append("\(sin(1 + 0.9 * Double(i) + 0.7 * Double(h) + 1.3 * Double(w) + 2.1 * Double(c)))")
            } } }
            return (row + ["0"]).joined(separator: ",")
        }.joined(separator: "\n") + "\n"
    }

    static func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func spec(_ path: String, test: Int = 0) -> String {
        "{\"kind\": \"csv\", \"path\": \"\(path)\", \"header\": false, \"test\": \(test), \"shuffle\": false}"
    }

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not JSON: \(json)")
    }

    static func matrix(_ json: String, _ key: String) throws -> [[Double]] {
        try #require(try object(json)[key] as? [[Double]], "no \(key) in \(json)")
    }

    static func upper(_ m: [[Double]]) -> [Double] { (0..<m.count).flatMap { i in (i..<m.count).map { m[i][$0] } } }

    static func expectClose(_ got: [Double], _ want: [Double], _ what: String) {
        let scale = want.map(abs).max() ?? 0
        #expect(got.count == want.count, "\(what): \(got.count) entries")
        for (g, e) in zip(got, want) { #expect(abs(g - e) <= oracleTolerance * scale, "\(what): \(g) vs \(e)") }
    }

    @Test func oracle3ThroughTheCommand() throws {
        let dir = try temporaryDirectory()
        let x = try Self.write(Self.oracleCSV, "x.csv", in: dir)
        // L_c = 2, same, gap (the defaults) and L_c = 1, valid, flatten.
        let gap = try CLI.run(["cntk", "--data", Self.spec(x), "--image", "4,4,2", "--json"])
        #expect(gap.status == 0, "\(gap.stderr)")
        Self.expectClose(Self.upper(try Self.matrix(gap.stdout, "nngp")),
                         [0.26308304307, 0.2519269373353, 0.2376879725693, 0.256068602475, 0.2492145347199, 0.2576843592483], "gap NNGP")
        Self.expectClose(Self.upper(try Self.matrix(gap.stdout, "ntk")),
                         [0.4516360146252, 0.4073584892277, 0.3555229350695, 0.4375852998243, 0.4017581621102, 0.4408146907098], "gap NTK")
        let flat = try CLI.run(["cntk", "--data", Self.spec(x), "--image", "4,4,2", "--conv-layers", "1", "--padding", "valid",
                                "--readout", "flatten", "--kind", "ntk", "--json"])
        #expect(flat.status == 0, "\(flat.stderr)")
        #expect(try Self.object(flat.stdout)["nngp"] == nil)
        Self.expectClose(Self.upper(try Self.matrix(flat.stdout, "ntk")),
                         [2.017135525053, 1.136743120677, 0.1102000864187, 1.982743689026, 1.118160685437, 1.990705814946], "flatten NTK")
        // The text form prints the same numbers (13 significant digits), and how much work it was.
        let text = try CLI.run(["cntk", "--data", Self.spec(x), "--image", "4,4,2", "--kind", "nngp"])
        #expect(text.status == 0 && text.stdout.contains("2.630830430700e-01") && !text.stdout.contains("NTK ("), "\(text.stdout)")
        #expect(text.stdout.contains("6 image pairs × 512 pixel-pair expectations"), "\(text.stdout)")
    }

    /// Without a ridge the kernel interpolates the training targets; the held-out predictions and
    /// the table are there; a ridge changes them.
    @Test func predictOnHeldOutImages() throws {
        let dir = try temporaryDirectory()
        var rows: [String] = []
        for i in 0..<12 {
            let pixels = (0..<16).map { k in sin(0.7 * Double(i) + 0.45 * Double(k * (i % 3 + 1))) }
            rows.append((pixels.map { "\($0)" } + ["\(pixels[5] - pixels[10])"]).joined(separator: ","))
        }
        let x = try Self.write(rows.joined(separator: "\n") + "\n", "r.csv", in: dir)
        let r = try CLI.run(["cntk", "--data", Self.spec(x, test: 4), "--image", "4,4,1", "--predict", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try Self.object(r.stdout)
        let predictions = try #require(object["predictions"] as? [[String: Any]])
        #expect(predictions.map { $0["kernel"] as? String } == ["nngp", "ntk"])
        for p in predictions {
            let train = try #require(p["trainMSE"] as? Double), test = try #require(p["testMSE"] as? Double)
            #expect(train <= Self.interpolationTolerance && test.isFinite && test > 0, "\(p)")
            #expect(p["trainAccuracy"] is NSNull, "regression has no accuracy: \(p)")
        }
        #expect(object["train"] as? Int == 8 && object["test"] as? Int == 4)
        let text = try CLI.run(["cntk", "--data", Self.spec(x, test: 4), "--image", "4,4,1", "--predict", "--ridge", "0.1"])
        #expect(text.status == 0 && text.stdout.contains("kernel regression at t = ∞") && text.stdout.contains("ridge"), "\(text.stdout)")
    }

    @Test func outFiles() throws {
        let dir = try temporaryDirectory()
        let x = try Self.write(Self.oracleCSV, "x.csv", in: dir)
        let out = dir.appendingPathComponent("K.csv").path
        let r = try CLI.run(["cntk", "--data", Self.spec(x), "--image", "4,4,2", "--out", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["nngp", "ntk"] {
            let file = dir.appendingPathComponent("K.\(name).csv").path
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let rows = text.split(separator: "\n").map { $0.split(separator: ",").map { Double($0)! } }
            let json = try Self.matrix(r.stdout, name)
            #expect(rows.count == 3)
            for (a, b) in zip(rows.joined(), json.joined()) { #expect(abs(a - b) <= Self.jsonParseTolerance * abs(b)) }
        }
        // One kernel as .npy: its float64 payload equals the .csv file's numbers bit for bit.
        let single = dir.appendingPathComponent("N.npy").path
        let n = try CLI.run(["cntk", "--data", Self.spec(x), "--image", "4,4,2", "--kind", "nngp", "--out", single])
        #expect(n.status == 0 && n.stdout.contains("written"), "\(n.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: single))
        let payload = bytes.suffix(9 * 8)
        let values = stride(from: payload.startIndex, to: payload.endIndex, by: 8).map { i in
            Double(bitPattern: payload[i..<(i + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        let csv = try String(contentsOfFile: dir.appendingPathComponent("K.nngp.csv").path, encoding: .utf8)
        let expected = csv.split(whereSeparator: { $0 == "\n" || $0 == "," }).map { Double($0)! }
        #expect(values.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    /// Real Fashion-MNIST images (skipped when the dataset is not installed): the image shape is
    /// read from a preset's model input, and the flatten readout classifies above chance.
    @Test func fashionMNISTFlatten() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") else { return }
        let r = try CLI.run(["cntk", "--data", "fmnist-cnn", "--train", "40", "--test", "20", "--readout", "flatten",
                             "--predict", "--kind", "ntk", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try Self.object(r.stdout)
        let net = try #require(object["net"] as? [String: Any])
        #expect(net["height"] as? Int == 28 && net["channels"] as? Int == 1)
        let p = try #require((object["predictions"] as? [[String: Any]])?.first)
        // 10 classes: chance is 0.1; 40 training images give far more (about 0.5).
        #expect((p["testAccuracy"] as? Double ?? 0) > 0.2, "\(p)")
    }

    /// A recorded conv net of the CNTK's form: its empirical NTK at initialization against the
    /// CNTK, closer with more channels (the gap shrinks like 1/√channels: 4× from 8 to 128).
    @Test func traceComparison() throws {
        let dir = try temporaryDirectory()
        func gap(channels: Int) throws -> Double {
            let config = dir.appendingPathComponent("c\(channels).json").path
            try """
            { "name": "cntk", "seed": 3, "data": { "kind": "teacher", "train": 5, "test": 2, "inputDim": 25 },
              "model": { "kind": "sequential", "input": [1, 5, 5], "parameterization": "ntk", "sigmaW": 1.4142135623730951,
                         "layers": [ {"kind": "conv2d", "out": \(channels), "kernel": 3, "padding": "same", "bias": false}, {"kind": "relu"},
                                     {"kind": "conv2d", "out": \(channels), "kernel": 3, "padding": "same", "bias": false}, {"kind": "relu"},
                                     {"kind": "globalavgpool"}, {"kind": "dense", "out": 1, "bias": false} ] },
              "loss": { "kind": "mse" }, "optimizer": { "kind": "gd", "learningRate": 0.1 },
              "training": { "steps": 1, "checkpointEvery": 1 } }
            """.write(toFile: config, atomically: true, encoding: .utf8)
            let trace = dir.appendingPathComponent("t\(channels).sqlite").path
            let train = try CLI.run(["train", "--config", config, "--out", trace, "--quiet"])
            #expect(train.status == 0, "\(train.stderr)")
            let r = try CLI.run(["cntk", "--trace", trace, "--step", "0", "--json"], timeout: 300)
            #expect(r.status == 0, "\(r.stderr)")
            let object = try Self.object(r.stdout)
            #expect((object["net"] as? String ?? "").contains("5×5×1 images, 2 × [conv 3×3 same, relu], gap readout"), "\(object)")
            let empirical = try #require(object["empirical"] as? [String: Any])
            return try #require(empirical["gap"] as? Double)
        }
        let narrow = try gap(channels: 8), wide = try gap(channels: 128)
        #expect(wide < 0.3 && wide < narrow, "gaps: 8 channels \(narrow), 128 channels \(wide)")
        let text = try CLI.run(["cntk", "--trace", dir.appendingPathComponent("t8.sqlite").path])
        #expect(text.status == 0 && text.stdout.contains("gap        ‖Θ̂ − Θ⊗I‖_F/‖Θ⊗I‖_F") && text.stdout.contains("at step 0"), "\(text.stdout)")
        let bad = try CLI.run(["cntk", "--trace", dir.appendingPathComponent("t8.sqlite").path, "--filter", "5"])
        CLIBadInputTests.assertCleanFailure(bad, mentions: ["--filter", "from the trace"])
        let mlp = dir.appendingPathComponent("m.sqlite").path
        #expect(try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", mlp, "--quiet"]).status == 0)
        CLIBadInputTests.assertCleanFailure(try CLI.run(["cntk", "--trace", mlp]), mentions: ["MLP", "pathkernel kernel"])
    }

    @Test func helpFitsEightyColumns() throws {
        let r = try CLI.run(["cntk", "--help"])
        #expect(r.status == 0)
        for line in r.stdout.split(separator: "\n") { #expect(line.count <= 80, "wider than 80 columns: \(line)") }
        for word in ["--data", "--conv-layers", "--filter", "--padding", "--readout", "--sigma-w", "--sigma-b", "--kind",
                     "--activation", "--predict", "--out", "--image", "--trace", "--step", "Docs/ntk-family.md"] {
            #expect(r.stdout.contains(word), "\(word) not in help")
        }
    }

    @Test func badInputsFailCleanly() throws {
        let dir = try temporaryDirectory()
        let x = try Self.write(Self.oracleCSV, "x.csv", in: dir)
        let spec = Self.spec(x)
        let cases: [([String], [String], Int32)] = [
            (["--data", spec, "--image", "4,4,2", "--filter", "4"], ["odd", "3 or 5"], 1),
            (["--data", spec, "--image", "4,4,2", "--padding", "valid"], ["at least 5×5", "--padding same"], 1),
            (["--data", spec, "--image", "3,3,2"], ["--image", "18 values", "32"], 1),
            (["--data", spec], ["--image H,W,C", "32 values"], 1),
            (["--data", spec, "--image", "4,4"], ["--image", "H,W,C"], 64),
            (["--data", spec, "--image", "4,4,2", "--filter", "0"], ["--filter"], 64),
            (["--data", spec, "--image", "4,4,2", "--sigma-w", "-1"], ["--sigma-w"], 64),
            (["--data", spec, "--image", "4,4,2", "--out", dir.appendingPathComponent("K.txt").path], [".npy or .csv"], 64),
            (["--data", spec, "--image", "4,4,2", "--ridge", "0.1"], ["--predict"], 64),
            (["--data", spec, "--image", "4,4,2", "--predict"], ["held-out"], 1),
            (["--data", spec, "--image", "4,4,2", "--readout", "pool"], ["--readout"], 64),
            (["--data", "no-such-thing"], ["not a preset", "inline JSON"], 1),
            (["--data", "{\"kind\": \"csv\", \"pathh\": \"x\"}"], ["data spec", "pathh"], 1),
            (["--data", "{\"kind\": \"csv\", \"path\": \"\(dir.appendingPathComponent("absent.csv").path)\"}"], ["absent.csv"], 1),
            (["--data", spec, "--image", "300,300,1"], ["--image", "90000 values"], 1),
            (["--image", "4,4,2"], ["--data"], 64),
        ]
        for (args, words, status) in cases {
            let r = try CLI.run(["cntk"] + args)
            CLIBadInputTests.assertCleanFailure(r, mentions: words)
            #expect(r.status == status, "\(args): status \(r.status), \(r.stderr)")
        }
        // Too many images for one kernel matrix (5,001² entries > 25,000,000): refused before any work.
        if FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") {
            let r = try CLI.run(["cntk", "--data", "fashion-mnist", "--train", "5001", "--test", "0"])
            CLIBadInputTests.assertCleanFailure(r, mentions: ["5001", "--train N"])
            // gap on large images: the per-thread buffers are refused.
        }
    }
}
