import Foundation
import Testing

/// `pathkernel predict-linear` end to end: on a trace (times at its checkpoints, compared with
/// the network), on a config with the infinite ensemble, and one clean error line for every bad
/// input. The numbers themselves are checked against the contract's oracles in
/// `LinearizedDynamicsTests`.
@Suite("pathkernel predict-linear", .serialized)
struct PredictLinearCommandTests {
    static func config(_ dir: URL, outputs: Int = 2) throws -> String {
        let path = dir.appendingPathComponent("run.json").path
        try """
        { "name": "p", "seed": 5, "data": { "kind": "teacher", "train": 6, "test": 3, "inputDim": 3, "teacherWidths": [4],
          "outputDim": \(outputs), "noise": 0.0 },
          "model": { "kind": "mlp", "layers": [3, 16, 16, \(outputs)], "activation": "relu", "parameterization": "ntk",
                     "sigmaW": 1.5, "sigmaB": 0.1 },
          "loss": { "kind": "mse" }, "optimizer": { "kind": "gd", "learningRate": 0.1 }, "training": { "steps": 4, "checkpointEvery": 2 } }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not JSON: \(json)")
    }

    @Test func onATrace() throws {
        let dir = try temporaryDirectory()
        let trace = dir.appendingPathComponent("t.sqlite").path
        let train = try CLI.run(["train", "--config", try Self.config(dir), "--out", trace, "--quiet"])
        #expect(train.status == 0, "\(train.stderr)")
        let r = try CLI.run(["predict-linear", "--trace", trace, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.object(r.stdout)
        #expect(o["kernelRows"] as? Int == 12 && o["outputs"] as? Int == 2 && (o["notes"] as? [String])?.isEmpty == true)
        let points = try #require(o["points"] as? [[String: Any]])
        #expect(points.map { $0["time"] as? Double } == [0, 2, 4])
        // t = 0 is the network at w₀ exactly; later checkpoints differ from the linearization, a little.
        #expect(points[0]["networkMaxDifference"] as? Double == 0)
        for p in points.dropFirst() {
            let gap = try #require(p["networkGap"] as? Double)
            #expect(gap > 0 && gap < 0.5, "gap \(gap)")
            let test = try #require(p["test"] as? [[Double]])
            #expect(test.count == 3 && test.allSatisfy { $0.count == 2 })
        }
        let text = try CLI.run(["predict-linear", "--trace", trace, "--dynamics", "flow", "--time", "3", "inf"])
        #expect(text.status == 0 && text.stdout.contains("gradient flow") && text.stdout.contains("\ninf "), "\(text.stdout)\(text.stderr)")
    }

    @Test func ensembleFromAConfig() throws {
        let dir = try temporaryDirectory()
        let r = try CLI.run(["predict-linear", "--config", try Self.config(dir, outputs: 1), "--kernel", "analytic",
                             "--ensemble", "ntk", "--time", "10", "inf", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let points = try #require(try Self.object(r.stdout)["points"] as? [[String: Any]])
        #expect(points.count == 2 && points[1]["time"] as? String == "inf")
        for p in points {
            let mean = try #require(p["ensembleMean"] as? [[Double]]), cov = try #require(p["ensembleCovariance"] as? [[Double]])
            #expect(mean.count == 3 && cov.count == 3)
            for i in 0..<3 {
                #expect(cov[i][i] > -1e-12)
                for j in 0..<3 { #expect(abs(cov[i][j] - cov[j][i]) <= 1e-12) }
            }
        }
        let text = try CLI.run(["predict-linear", "--config", try Self.config(dir, outputs: 1), "--kernel", "analytic", "--ensemble", "nngp", "--time", "10"])
        #expect(text.status == 0 && text.stdout.contains("infinite ensemble (nngp)") && text.stdout.contains(" ± "), "\(text.stdout)\(text.stderr)")
    }

    @Test func sameOutputOnOneAndTwoThreads() throws {
        let dir = try temporaryDirectory()
        let trace = dir.appendingPathComponent("t.sqlite").path
        #expect(try CLI.run(["train", "--config", try Self.config(dir), "--out", trace, "--quiet"]).status == 0)
        var outputs: [String] = []
        for threads in ["1", "2"] {
            for args in [["--trace", trace, "--json"], ["--trace", trace, "--kernel", "analytic", "--ensemble", "nngp", "--time", "3", "inf", "--json"]] {
                let r = try CLI.run(["predict-linear"] + args, environment: ["PATHKERNEL_THREADS": threads])
                #expect(r.status == 0, "\(r.stderr)")
                outputs.append(r.stdout)
            }
        }
        #expect(outputs[0] == outputs[2] && outputs[1] == outputs[3])
    }

    @Test func badInputsFailCleanly() throws {
        let dir = try temporaryDirectory()
        let config = try Self.config(dir)
        let moons = dir.appendingPathComponent("moons.sqlite").path
        #expect(try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", moons, "--quiet"]).status == 0)
        let cases: [([String], [String], Int32)] = [
            (["--config", config, "--trace", moons], ["exactly one of"], 64),
            ([], ["exactly one of"], 64),
            (["--config", config, "--ensemble", "ntk"], ["--ensemble", "--kernel analytic"], 64),
            (["--config", config, "--time", "-1"], ["--time"], 64),
            (["--config", config, "--time", "abc"], ["--time abc"], 64),
            (["--config", config, "--time", "1.5"], ["whole steps"], 64),
            (["--config", config, "--ridge", "-1"], ["--ridge"], 64),
            (["--config", config, "--dynamics", "euler"], ["--dynamics", "discrete", "flow"], 64),
            (["--trace", moons], ["mse", "logistic"], 1),
            (["--trace", dir.appendingPathComponent("none.sqlite").path], ["none.sqlite"], 1),
            (["--config", dir.appendingPathComponent("none.json").path], ["none.json"], 1),
        ]
        for (args, words, status) in cases {
            let r = try CLI.run(["predict-linear"] + args)
            CLIBadInputTests.assertCleanFailure(r, mentions: words)
            #expect(r.status == status, "\(args): status \(r.status), \(r.stderr)")
        }
        // A flow time need not be whole.
        #expect(try CLI.run(["predict-linear", "--config", config, "--dynamics", "flow", "--time", "1.5"]).status == 0)
    }
}
