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
            (["bandit", "--data", "synthetic:quadratic", "--algo", "neuralucb", "--width", "4", "--rounds", "30",
              "--runs", "1", "--eta", "1000"], "diverged"),
        ]
        for (args, words) in cases {
            let r = try CLI.run(args)
            #expect(r.status != 0 && !r.terminatedBySignal, "\(args)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains(words), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
    }
}
