import Foundation
import Testing

/// `pathkernel sweep` end to end on tiny networks: the table and the JSON, the traces and
/// DIR/sweep.json kept, progress per run on standard error, the note under `standard`, and one
/// clean error line for every bad input. The numbers are checked in PKSweepTests; the contract's
/// statistical oracle on the release binary by Tools/checks/sweep_oracle.py.
@Suite("pathkernel sweep", .serialized)
struct SweepCommandTests {
    static func config(_ dir: URL, layers: String = "[3, 8, 8, 1]", parameterization: String = "ntk",
                       kind: String = "mlp") throws -> String {
        let path = dir.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).json").path
        try """
        { "name": "tiny", "seed": 4, "data": { "kind": "teacher", "train": 8, "test": 4, "inputDim": 3, "teacherWidths": [4], "noise": 0.0 },
          "model": { "kind": "mlp", "layers": \(layers), "activation": "relu", "parameterization": "\(parameterization)",
                     "sigmaW": 1.5, "sigmaB": 0.1 },
          "loss": { "kind": "mse" }, "optimizer": { "kind": "gd", "learningRate": 0.1 }, "training": { "steps": 5 } }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func tableJSONAndTraces() throws {
        let dir = try temporaryDirectory()
        let out = dir.appendingPathComponent("sweep").path
        let r = try CLI.run(["sweep", "--config", try Self.config(dir, parameterization: "standard"), "--widths", "16,4",
                             "--seeds", "2", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        // Within 80 columns but for the line that names the (long, temporary) folder.
        for line in r.stdout.split(separator: "\n") where !line.contains(out) { #expect(line.count <= 80, "wider than 80 columns: \(line)") }
        for words in ["m = 4", "16", "slope", "τ_0", "τ_1", "τ_2", "total travel", "flips layer 2", "kernel change",
                      "λ_min Θ", "train loss", "held-out loss", "gap ntk0-lin", "gap closed f.", "standard"] {
            #expect(r.stdout.contains(words), "\(words) missing:\n\(r.stdout)")
        }
        #expect(r.stderr.contains("[1/4] m = 4, seed 4") && r.stderr.contains("[4/4] m = 16, seed 5") && r.stderr.contains("ETA"),
                "\(r.stderr)")
        #expect(r.stderr.contains("not comparable across widths"))
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(files == ["m16-seed4.sqlite", "m16-seed5.sqlite", "m4-seed4.sqlite", "m4-seed5.sqlite", "sweep.json"], "\(files)")
        // --json prints what sweep.json holds; a second sweep into the folder needs --force.
        let again = try CLI.run(["sweep", "--config", try Self.config(dir), "--widths", "4,16", "--seeds", "2", "--out", out, "--json"])
        #expect(again.status == 1 && again.stderr.contains("exists") && again.stderr.contains("--force"), "\(again.stderr)")
        let forced = try CLI.run(["sweep", "--config", try Self.config(dir), "--widths", "4,16", "--seeds", "2", "--out", out,
                                  "--json", "--force", "--quiet"])
        #expect(forced.status == 0 && forced.stderr.isEmpty, "\(forced.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(forced.stdout.utf8)) as? [String: Any])
        #expect(o["widths"] as? [Int] == [4, 16] && o["seeds"] as? [Int] == [4, 5] && (o["runs"] as? [Any])?.count == 4)
        let stored = try String(contentsOfFile: (out as NSString).appendingPathComponent("sweep.json"), encoding: .utf8)
        #expect(stored == forced.stdout)
        // A kept trace is an ordinary one: `inspect` reads it.
        let inspect = try CLI.run(["inspect", (out as NSString).appendingPathComponent("m16-seed5.sqlite")])
        #expect(inspect.status == 0 && inspect.stdout.contains("3-16-16-1"), "\(inspect.stdout)\(inspect.stderr)")
    }

    /// The same numbers on 1 and 2 threads (times and paths aside).
    @Test func sameNumbersOnOneAndTwoThreads() throws {
        let dir = try temporaryDirectory()
        let config = try Self.config(dir)
        func numbers(_ threads: String) throws -> String {
            let r = try CLI.run(["sweep", "--config", config, "--widths", "4,16", "--seeds", "2", "--json", "--quiet",
                                 "--out", dir.appendingPathComponent("t\(threads)").path], environment: ["PATHKERNEL_THREADS": threads])
            #expect(r.status == 0, "\(r.stderr)")
            func strip(_ o: Any) -> Any {
                if let d = o as? [String: Any] {
                    return d.filter { !["seconds", "trainSeconds", "diagnosticSeconds", "trace", "directory"].contains($0.key) }
                        .mapValues(strip)
                }
                if let a = o as? [Any] { return a.map(strip) }
                return o
            }
            let object = strip(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)))
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        let one = try numbers("1"), two = try numbers("2")
        #expect(one == two)
        #expect(one.contains("kernelChange"))
    }

    @Test func badInputsGiveOneLine() throws {
        let dir = try temporaryDirectory()
        let good = try Self.config(dir)
        let cases: [([String], [String], Int32)] = [
            (["sweep", "--config", good, "--widths", "64"], ["at least two widths"], 64),
            (["sweep", "--config", good, "--widths", "64,abc"], ["'abc' is not a whole number"], 64),
            (["sweep", "--config", good, "--widths", "0,64"], ["every width must be"], 64),
            (["sweep", "--config", good, "--widths", "16,64,16"], ["16 appears twice"], 64),
            (["sweep", "--config", good, "--widths", "16,64", "--seeds", "0"], ["--seeds"], 64),
            (["sweep", "--widths", "16,64"], ["exactly one of --preset"], 64),
            (["sweep", "--config", good, "--preset", "sweep-relu"], ["exactly one of --preset"], 64),
            (["sweep", "--config", try Self.config(dir, layers: "[3, 1]"), "--widths", "16,64"], ["no hidden layer"], 1),
            (["sweep", "--config", good, "--widths", "16,20000"], ["width 20000", "parameters"], 1),
            (["sweep", "--preset", "fmnist-cnn", "--widths", "16,64"], ["layer list", "no width to vary"], 1),
            (["sweep", "--config", dir.appendingPathComponent("missing.json").path], ["cannot read the config"], 1),
            (["sweep", "--config", good, "--widths", "16,64", "--out", good], ["is a file"], 1),
        ]
        for (args, words, status) in cases {
            let r = try CLI.run(args, cwd: dir)
            #expect(r.status == status, "\(args): status \(r.status), \(r.stderr)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            for w in words { #expect(r.stderr.contains(w), "\(args): \(r.stderr)") }
        }
        // Nothing was written by a refused sweep (the config files and nothing else).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { $0.hasSuffix(".json") })
    }
}
