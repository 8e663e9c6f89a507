import Foundation
import Testing

/// `pathkernel bandit` end to end: the text and JSON forms, reproducibility from the seed on one
/// and two threads, uniform play's regret through the command, and one clean line for every bad
/// input. (The §6 oracle is checked on the library: NeuralUCBTests.)
@Suite("pathkernel bandit", .serialized)
struct BanditCommandTests {
    /// A tiny synthetic bandit (debug builds): d = 3, K = 3, width 4 (P = 16), 24 rounds, 2 runs.
    static let small = ["bandit", "--data", "synthetic:cos", "--dim", "3", "--arms", "3", "--width", "4",
                        "--rounds", "24", "--runs", "2", "--steps", "3", "--lambda", "0.1", "--eta", "0.5",
                        "--objective", "mean"]

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not JSON: \(json)")
    }

    @Test func textSaysWhatItDid() throws {
        let r = try CLI.run(Self.small + ["--algo", "neuralucb,neuralucb-diag,neuralucb0,linucb,neural-egreedy,uniform"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        for phrase in ["cos(3xᵀa)", "K = 3 arms, T = 24 rounds, 2 runs (seeds 0…1)", "MLP 3-4-1 relu", "P = 16",
                       "cumulative regret R_t, mean ± std", "t = 24", "play counts", "neuralucb-diag", "neural-egreedy",
                       "log det(Z_T/λ)"] {
            #expect(r.stdout.contains(phrase), "'\(phrase)' not in:\n\(r.stdout)")
        }
        for line in r.stdout.split(separator: "\n") {
            #expect(line.count <= 80, "line wider than 80 columns: \(line)")
        }
    }

    /// The same seed gives the same bits, on 1 and on 2 threads; the curves are the runs' mean.
    @Test func reproducibleFromTheSeed() throws {
        let args = Self.small + ["--algo", "neuralucb,neural-egreedy,uniform", "--epsilon", "0.3", "--json", "--seed", "7"]
        let one = try CLI.run(args, environment: ["PATHKERNEL_THREADS": "1"])
        let two = try CLI.run(args, environment: ["PATHKERNEL_THREADS": "2"])
        #expect(one.status == 0 && two.status == 0, "\(one.stderr) \(two.stderr)")
        #expect(one.stdout == two.stdout)
        let other = try CLI.run(Self.small + ["--algo", "neuralucb,neural-egreedy,uniform", "--epsilon", "0.3", "--json", "--seed", "8"])
        #expect(other.stdout != one.stdout)
        let o = try Self.object(one.stdout)
        #expect(o["seed"] as? Int == 7 && o["arms"] as? Int == 3)
        let algorithms = try #require(o["algorithms"] as? [[String: Any]])
        #expect(algorithms.count == 3)
        for a in algorithms {
            let runs = try #require(a["runs"] as? [[String: Any]])
            #expect(runs.map { $0["seed"] as? Int } == [7, 8])
            let curves = try runs.map { try #require($0["cumulativeRegret"] as? [Double]) }
            let mean = try #require(a["meanCumulativeRegret"] as? [Double])
            // Foundation's JSON parser may miss the last bit of a printed double: 1e-12 relative.
            for t in [0, 11, 23] {
                #expect(abs(mean[t] - (curves[0][t] + curves[1][t]) / 2) <= 1e-12 * max(1, mean[t]))
            }
            let counts = try runs.map { try #require($0["playCounts"] as? [Int]) }
            #expect(counts.allSatisfy { $0.reduce(0, +) == 24 })
        }
    }

    /// Uniform play on a classification bandit built from a data set: about (K − 1)/K per round.
    @Test func uniformOnClassification() throws {
        let data = "{\"kind\": \"moons\", \"train\": 40, \"test\": 0}"
        let r = try CLI.run(["bandit", "--data", data, "--algo", "uniform", "--rounds", "2000", "--runs", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.object(r.stdout)
        #expect(o["arms"] as? Int == 2)
        let a = try #require((o["algorithms"] as? [[String: Any]])?.first)
        let final = try #require(a["finalRegretMean"] as? Double)
        // Bernoulli(1/2) regret per round: std 0.5/√2000 = 0.011; 5 standard deviations.
        #expect(abs(final / 2000 - 0.5) <= 5 * 0.5 / 2000.0.squareRoot(), "\(final)")
    }

    /// A preset sets every option; each option given overrides it (here: a tiny bandit-quadratic).
    @Test func presetAndOverrides() throws {
        let args = ["bandit", "--preset", "bandit-quadratic", "--rounds", "12", "--runs", "1", "--width", "4",
                    "--algo", "neuralucb,uniform", "--json"]
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.object(r.stdout)
        #expect(o["preset"] as? String == "bandit-quadratic" && o["rounds"] as? Int == 12 && o["arms"] as? Int == 4)
        let network = try #require(o["network"] as? [String: Any])
        #expect(network["layers"] as? [Int] == [20, 4, 1])
        let a = try #require((o["algorithms"] as? [[String: Any]])?.first)
        #expect(a["lambda"] as? Double == 0.01 && a["gamma"] as? Double == 0.1 && a["eta"] as? Double == 5)
        #expect(a["steps"] as? Int == 20 && a["objective"] as? String == "mean" && a["warmStart"] as? Bool == true)
        #expect(a["trainEvery"] as? Int == 25 && a["trainEveryRoundUntil"] as? Int == 500)
        let cold = try Self.object(try CLI.run(args + ["--no-warm-start", "--lambda", "0.3"]).stdout)
        let c = try #require((cold["algorithms"] as? [[String: Any]])?.first)
        #expect(c["warmStart"] as? Bool == false && c["lambda"] as? Double == 0.3 && c["eta"] as? Double == 5)
        // The text names the preset.
        let text = try CLI.run(Array(args.dropLast()))
        #expect(text.stdout.hasPrefix("preset     bandit-quadratic\n"), "\(text.stdout)")
        #expect(text.stdout.contains("mean R_T of neuralucb over each other algorithm's mean R_T"))
    }

    /// bandit-fmnist (when the Fashion-MNIST files are installed), shrunk to a few rounds and a
    /// width-2 network: the 10 disjoint arms of 784 features on the arm-block path.
    @Test func fmnistPresetRuns() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else { return }
        let r = try CLI.run(["bandit", "--preset", "bandit-fmnist", "--rounds", "4", "--runs", "1", "--width", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.object(r.stdout)
        #expect(o["preset"] as? String == "bandit-fmnist" && o["arms"] as? Int == 10)
        #expect((o["network"] as? [String: Any])?["layers"] as? [Int] == [7840, 2, 1])
        #expect((o["algorithms"] as? [[String: Any]])?.map { $0["algorithm"] as? String } == ["neuralucb-diag", "uniform"])
    }

    /// `--html FILE`: the page with both regret figures, one band per algorithm in each.
    @Test func htmlPage() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pk-bandit-\(getpid()).html").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(Self.small + ["--algo", "neuralucb,linucb,uniform", "--html", path])
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOfFile: path, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<figure id=\"fig-regret\"") && html.contains("<figure id=\"fig-regret-rate\""))
        #expect(html.components(separatedBy: "<polygon class=\"band\"").count - 1 == 6)
        #expect(html.contains("synthetic cos(3xᵀa)"))
        let bad = try CLI.run(Self.small + ["--algo", "uniform", "--html", "/nonexistent-dir/x.html"])
        #expect(bad.status != 0 && bad.stderr.hasPrefix("error: ") && bad.stderr.contains("--html"), "\(bad.stderr)")
    }

    /// `--traces DIR --trace-rounds`: one trace per training algorithm, run and round, named in
    /// the JSON and the text; `pathkernel analyze` reads it and reconstructs at round-off (relu, GD:
    /// exact quadrature); the text lists them; existing files and impossible rounds are refused.
    @Test func tracesOfChosenRounds() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-bandit-traces-\(UUID().uuidString)").path
        let args = Self.small + ["--algo", "neuralucb,uniform,neural-egreedy", "--traces", dir, "--trace-rounds", "24,5"]
        let r = try CLI.run(args + ["--json"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let algorithms = try #require(Self.object(r.stdout)["algorithms"] as? [[String: Any]])
        let traces = algorithms.map { a in (a["runs"] as? [[String: Any]] ?? []).map { $0["traces"] as? [String] ?? [] } }
        let name = { (a: String, s: Int, t: Int) in (dir as NSString).appendingPathComponent("\(a)-seed\(s)-round\(t).sqlite") }
        #expect(traces[0] == [[name("neuralucb", 0, 5), name("neuralucb", 0, 24)], [name("neuralucb", 1, 5), name("neuralucb", 1, 24)]])
        #expect(traces[1] == [[], []])   // uniform trains nothing
        #expect(traces[2].count == 2 && traces[2][0].count == 2)
        for path in traces.flatMap({ $0.flatMap { $0 } }) { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
        // The last round has no next round: no held-out points; the analysis takes the training queries.
        for path in [name("neuralucb", 1, 5), name("neuralucb", 0, 24)] {
            let a = try CLI.run(["analyze", path])
            #expect(a.status == 0, "\(a.stderr)")
            let report = try CLI.run(["report", path])
            #expect(report.stdout.contains("weight decay (coupled L2 towards w₀"), "\(report.stdout)")
            let inspect = try CLI.run(["inspect", path])
            #expect(inspect.stdout.contains("gd lr") && inspect.stdout.contains("towards w₀"), "\(inspect.stdout)")
            let json = try CLI.run(["report", path, "--format", "json"])
            let rec = try #require(Self.object(json.stdout)["reconstruction"] as? [String: Any], "\(json.stdout.prefix(400))")
            let split = try #require((rec["test"] ?? rec["train"]) as? [String: Any], "\(rec)")
            let residual = try #require(split["relative_residual"] as? Double)
            #expect(residual < 1e-9, "\(path): relative residual \(residual)")
        }
        // The same bits on 1 and 2 threads: every checkpoint and data blob of a trace.
        var blobs: [String] = []
        for threads in ["1", "2"] {
            let d = dir + "-threads" + threads
            let t = try CLI.run(Self.small + ["--algo", "neuralucb", "--runs", "1", "--traces", d, "--trace-rounds", "9"],
                                environment: ["PATHKERNEL_THREADS": threads])
            #expect(t.status == 0, "\(t.stderr)")
            let file = (d as NSString).appendingPathComponent("neuralucb-seed0-round9.sqlite")
            blobs.append(try CLI.sqlite(file, "SELECT hex(params) FROM checkpoint ORDER BY step")
                         + CLI.sqlite(file, "SELECT hex(data) FROM data ORDER BY split, role"))
        }
        #expect(blobs[0] == blobs[1] && blobs[0].count > 1000)
        // The text names them; a second run into the same folder is refused before it plays.
        let again = try CLI.run(args)
        #expect(again.status != 0 && again.stderr.contains("already there"), "\(again.stderr)")
        let dir2 = dir + "-text"
        let text = try CLI.run(Self.small + ["--algo", "neuralucb", "--runs", "1", "--traces", dir2, "--trace-rounds", "7"])
        #expect(text.status == 0 && text.stdout.contains("traces     TrainNN of the chosen rounds"), "\(text.stdout)")
        #expect(text.stdout.contains(name("neuralucb", 0, 7).replacingOccurrences(of: dir, with: dir2)))
    }

    @Test func badInputsSayWhatToDo() throws {
        let cases: [([String], String)] = [
            (["bandit", "--data", "synthetic:cos", "--algo", "thompson"], "not an algorithm"),
            (["bandit", "--data", "synthetic:cos", "--algo", "linucb,linucb"], "named twice"),
            (["bandit", "--data", "synthetic:sin", "--algo", "linucb"], "synthetic:quadratic"),
            (["bandit", "--data", "synthetic:cos", "--algo", "linucb", "--objective", "max"], "sum or mean"),
            (["bandit", "--data", "synthetic:cos", "--algo", "linucb", "--lambda", "0"], "--lambda"),
            (["bandit", "--data", "synthetic:cos", "--algo", "linucb", "--epsilon", "2"], "--epsilon"),
            (["bandit", "--data", "synthetic:cos", "--algo", "linucb", "--rounds", "-3"], "--rounds"),
            (["bandit", "--data", "synthetic:cos", "--algo", "neuralucb", "--width", "300"], "neuralucb-diag"),
            (["bandit", "--data", "{\"kind\": \"sine\", \"train\": 10, \"test\": 0}", "--algo", "uniform"], "regression"),
            (["bandit", "--data", "no-such-preset", "--algo", "uniform"], "--data"),
            (["bandit", "--preset", "bandit-mnist"], "bandit-quadratic or bandit-fmnist"),
            (["bandit", "--algo", "uniform"], "--data"),
            (["bandit", "--data", "synthetic:cos"], "--algo"),
            (["bandit", "--data", "synthetic:quadratic", "--algo", "neuralucb", "--width", "4", "--rounds", "30",
              "--runs", "1", "--eta", "1000"], "diverged"),
            (Self.small + ["--algo", "neuralucb", "--trace-rounds", "5"], "--traces"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/tmp/x"], "--trace-rounds"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/tmp/x", "--trace-rounds", "25"], "1…24"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/tmp/x", "--trace-rounds", "5,x"], "'x'"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/tmp/x", "--trace-rounds", "5,5"], "named twice"),
            (Self.small + ["--algo", "linucb", "--traces", "/tmp/x", "--trace-rounds", "5"], "trains a network"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/tmp/x", "--trace-rounds", "5", "--warm-start"], "--no-warm-start"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/tmp/x", "--trace-rounds", "6", "--train-every", "4"], "e.g. 4 or 8"),
            (Self.small + ["--algo", "neuralucb", "--traces", "/dev/null", "--trace-rounds", "6"], "give a folder"),
        ]
        for (args, words) in cases {
            let r = try CLI.run(args)
            #expect(r.status != 0 && !r.terminatedBySignal, "\(args)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains(words), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
    }
}
