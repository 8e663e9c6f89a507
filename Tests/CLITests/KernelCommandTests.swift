import Foundation
import Testing

/// `pathkernel kernel` end to end: oracle 1a's relu numbers through the command, cross kernels,
/// --compare on a trace, and one clean line for every bad input.
@Suite("pathkernel kernel", .serialized)
struct KernelCommandTests {
    /// The printed JSON numbers are shortest round-trip: they equal the library's to the bit; the
    /// contract's 12 significant digits against them.
    static let oracleTolerance = 1e-12

    static let csv = "a,b,c\n0.9,-0.3,0.4\n0.1,1.2,-0.5\n-0.7,0.2,0.6\n-0.45,0.15,-0.2\n"

    static func config(_ dir: URL, activation: String = "relu", layers: String = "[3, 512, 512, 1]") throws -> String {
        let path = dir.appendingPathComponent("run.json").path
        try """
        { "name": "k", "seed": 1, "data": { "kind": "teacher", "train": 16, "test": 8, "inputDim": 3, "teacherWidths": [8],
          "teacherActivation": "tanh", "noise": 0.0 },
          "model": { "kind": "mlp", "layers": \(layers), "activation": "\(activation)", "parameterization": "ntk",
                     "sigmaW": 1.5, "sigmaB": 0.1 },
          "loss": { "kind": "mse" }, "optimizer": { "kind": "gd", "learningRate": 0.1 }, "training": { "steps": 2, "checkpointEvery": 1 } }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func matrix(_ json: String, _ key: String) throws -> [[Double]] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return try #require(object?[key] as? [[Double]], "no \(key) in \(json)")
    }

    @Test func reluOracleThroughTheCommand() throws {
        let dir = try temporaryDirectory()
        let x = try Self.write(Self.csv, "x.csv", in: dir)
        let r = try CLI.run(["kernel", "--config", try Self.config(dir), "--inputs", x, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let nngp = try Self.matrix(r.stdout, "nngp"), ntk = try Self.matrix(r.stdout, "ntk")
        let expectedNTK = [3.088984375, 0.5760940301407, 0.371303044643, 0.1666073580602, 4.911484375,
                           0.737356124531, 0.7649970507293, 2.6048828125, 0.6528679239796, 0.82509765625]
        let upper = (0..<4).flatMap { i in (i..<4).map { ntk[i][$0] } }
        for (g, e) in zip(upper, expectedNTK) { #expect(abs(g - e) <= Self.oracleTolerance * 4.911484375, "\(g) vs \(e)") }
        #expect(abs(nngp[1][1] - 1.647578125) <= Self.oracleTolerance * 1.647578125)
        // The text form prints the same numbers (13 significant digits).
        let text = try CLI.run(["kernel", "--config", try Self.config(dir), "--inputs", x, "--kind", "ntk"])
        #expect(text.status == 0 && text.stdout.contains("4.911484375000e+00") && !text.stdout.contains("NNGP"), "\(text.stdout)")
    }

    @Test func crossKernelShape() throws {
        let dir = try temporaryDirectory()
        let x = try Self.write(Self.csv, "x.csv", in: dir)
        let y = try Self.write("0.9,-0.3,0.4\n", "y.csv", in: dir)
        let r = try CLI.run(["kernel", "--config", try Self.config(dir, activation: "tanh"), "--inputs", x, "--inputs2", y, "--kind", "nngp", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let k = try Self.matrix(r.stdout, "nngp")
        #expect(k.count == 4 && k.allSatisfy { $0.count == 1 })
        // Row 1 of X against itself: the Gram's diagonal entry (tanh, contract table: Σ₁₁ unlisted; Σ₁₂ listed).
        let gram = try Self.matrix(try CLI.run(["kernel", "--config", try Self.config(dir, activation: "tanh"), "--inputs", x, "--json"]).stdout, "nngp")
        #expect(abs(k[1][0] - gram[0][1]) <= 1e-13 && abs(k[1][0] - (-0.2282616920459)) <= 1e-10)
    }

    @Test func compareOnATrace() throws {
        let dir = try temporaryDirectory()
        let x = try Self.write(Self.csv, "x.csv", in: dir)
        let trace = dir.appendingPathComponent("t.sqlite").path
        let train = try CLI.run(["train", "--config", try Self.config(dir, layers: "[3, 1024, 1024, 1]"), "--out", trace, "--quiet"])
        #expect(train.status == 0, "\(train.stderr)")
        let r = try CLI.run(["kernel", "--trace", trace, "--inputs", x, "--compare", "--step", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let empirical = try #require(object?["empirical"] as? [String: Any])
        let gap = try #require(empirical["gap"] as? Double)
        #expect(gap > 0 && gap < 0.3, "gap \(gap)")   // §1b: 0.076 mean, 0.129 max at 1024
        #expect(empirical["step"] as? Int == 1)
        let missing = try CLI.run(["kernel", "--trace", trace, "--inputs", x, "--compare", "--step", "7"])
        CLIBadInputTests.assertCleanFailure(missing, mentions: ["no checkpoint at step 7", "0, 1, 2"])
    }

    @Test func badInputsFailCleanly() throws {
        let dir = try temporaryDirectory()
        let config = try Self.config(dir)
        let x = try Self.write(Self.csv, "x.csv", in: dir)
        let cases: [([String], [String], Int32)] = [
            (["--config", config, "--inputs", try Self.write("1,2\n3,4\n", "two.csv", in: dir)], ["two.csv", "2 columns", "takes 3"], 1),
            (["--config", config, "--inputs", try Self.write("1,2,3\n4,nan,6\n", "nan.csv", in: dir)], ["nan.csv", "line 2, column 2", "not a finite number"], 1),
            (["--config", config, "--inputs", try Self.write("1,2,3\n4,1e999,6\n", "inf.csv", in: dir)], ["inf.csv", "not a finite number"], 1),
            (["--config", config, "--inputs", try Self.write("1,2,3\n4,x,6\n", "text.csv", in: dir)], ["text.csv", "'x'"], 1),
            (["--config", config, "--inputs", try Self.write("", "empty.csv", in: dir)], ["empty.csv"], 1),
            (["--config", config, "--inputs", dir.appendingPathComponent("absent.csv").path], ["absent.csv"], 1),
            (["--config", config, "--inputs", x, "--inputs2", try Self.write("1,2\n", "narrow.csv", in: dir)], ["narrow.csv", "takes 3"], 1),
            (["--preset", "fmnist-cnn", "--inputs", x], ["mlp", "sequential"], 1),
            (["--preset", "moons-mlp", "--config", config, "--inputs", x], ["exactly one of"], 64),
            (["--inputs", x], ["exactly one of"], 64),
            (["--config", config, "--inputs", x, "--compare"], ["--compare needs --trace"], 64),
            (["--config", config, "--inputs", x, "--step", "2"], ["--step", "--compare"], 64),
            (["--config", config, "--inputs", x, "--kind", "gram"], ["--kind", "nngp"], 64),
            (["--config", config], ["--inputs"], 64),
            (["--trace", dir.appendingPathComponent("none.sqlite").path, "--inputs", x], ["none.sqlite"], 1),
        ]
        for (args, words, status) in cases {
            let r = try CLI.run(["kernel"] + args)
            CLIBadInputTests.assertCleanFailure(r, mentions: words)
            #expect(r.status == status, "\(args): status \(r.status), \(r.stderr)")
        }
    }

    /// Beyond the measured range of the quadrature (variances above 32) a note on standard error;
    /// none for a closed form or within the range.
    @Test func largeVarianceNote() throws {
        let dir = try temporaryDirectory()
        let big = try Self.write("30,-20,40\n", "big.csv", in: dir)
        let x = try Self.write(Self.csv, "x.csv", in: dir)
        let tanh = try CLI.run(["kernel", "--config", try Self.config(dir, activation: "tanh", layers: "[3, 8, 1]"), "--inputs", big, "--json"])
        #expect(tanh.status == 0 && tanh.stderr.hasPrefix("note: ") && tanh.stderr.contains("scale the inputs"), "\(tanh.stderr)")
        let small = try CLI.run(["kernel", "--config", try Self.config(dir, activation: "tanh", layers: "[3, 8, 1]"), "--inputs", x])
        #expect(small.status == 0 && small.stderr.isEmpty, "\(small.stderr)")
        let relu = try CLI.run(["kernel", "--config", try Self.config(dir, layers: "[3, 8, 1]"), "--inputs", big])
        #expect(relu.status == 0 && relu.stderr.isEmpty, "\(relu.stderr)")
    }

    @Test func helpNamesTheOptions() throws {
        let r = try CLI.run(["kernel", "--help"])
        #expect(r.status == 0)
        for word in ["--preset", "--config", "--trace", "--inputs", "--inputs2", "--kind", "--compare", "--step", "--json", "Docs/ntk-family.md"] {
            #expect(r.stdout.contains(word), "\(word) not in help")
        }
    }
}
