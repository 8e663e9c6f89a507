import Foundation
import Testing
import PKTrace

@Suite("pathkernel command line", .serialized)
struct CLITests {
    @Test func presetsListsTheRequiredOnes() throws {
        let r = try CLI.run(["presets"])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["moons-mlp", "sine-tanh", "teacher-relu", "fmnist-mlp", "moons-momentum", "teacher-adam", "fmnist-adamw"] {
            #expect(r.stdout.contains(name), "missing preset \(name)")
        }
    }

    /// The optimizer presets end to end (few steps), and plain full-batch GD: the report names each
    /// optimizer's kernel and rebuilds the network through it.
    @Test(arguments: [("moons-mlp", "path kernel Σ_t η_t/|B_t| K̄_t(x, x_i) of (S)GD"),
                      ("moons-momentum", "two-time path kernel (momentum 0.9), exact"),
                      ("teacher-adam", "preconditioned path kernel (Adam)")])
    func optimizerPresetsNameTheirKernel(preset: String, kernel: String) throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("p.sqlite").path
        let t = try CLI.run(["train", "--preset", preset, "--steps", "4", "--out", path, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let a = try CLI.run(["analyze", path, "--queries", "test", "--max-queries", "8", "--quiet"])
        #expect(a.status == 0, "\(a.stderr)")
        let r = try CLI.run(["report", path])
        #expect(r.stdout.contains("kernel     " + kernel), "\(r.stdout)")
        let j = try CLI.run(["report", path, "--format", "json"])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        let test = try #require(((obj["reconstruction"] as? [String: Any])?["test"]) as? [String: Any])
        #expect(try #require(test["kernel_form_max_abs"] as? Double) < 1e-10)
        #expect((obj["kernel_machines"] as? [[String: Any]])?.contains { $0["name"] as? String == "path-km" } == true)
    }

    /// `analyze --plan` prints the estimate and stores nothing; `analyze` prints it before starting.
    @Test func analyzePlanEstimatesAndStoresNothing() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("plan.sqlite").path
        let t = try CLI.run(["train", "--preset", "moons-momentum", "--steps", "6", "--out", path, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let p = try CLI.run(["analyze", path, "--plan"])
        #expect(p.status == 0, "\(p.stderr)")
        for part in ["plan for", "kernel (backwards)", "kernel machines", "peak memory", "GFLOP/s per core", "what would cut it:", "--queries test --scope exact"] {
            #expect(p.stdout.contains(part), "\(part): \(p.stdout)")
        }
        // The hidden --gemm-rate: the plan at that rate; refused without --plan or when not positive.
        let given = try CLI.run(["analyze", path, "--plan", "--gemm-rate", "38"])
        #expect(given.status == 0 && given.stdout.contains("38.0 GFLOP/s per core (f64, given by --gemm-rate)"), "\(given.stdout)\(given.stderr)")
        for bad in [["--plan", "--gemm-rate", "0"], ["--plan", "--gemm-rate", "nan"], ["--gemm-rate", "38"]] {
            let b = try CLI.run(["analyze", path] + bad)
            #expect(b.status != 0 && b.stderr.contains("--gemm-rate"), "\(bad): \(b.stderr)")
        }
        let r = try CLI.run(["report", path])
        #expect(r.status != 0 && r.stderr.contains("analyze"), "\(r.stdout)\(r.stderr)")
        let a = try CLI.run(["analyze", path, "--queries", "test", "--max-queries", "8"])
        #expect(a.status == 0 && a.stderr.contains("estimate: "), "\(a.stderr)")
    }

    @Test func trainThenInspectJSON() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        let t = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "25", "--checkpoint-every", "10", "--out", path])
        #expect(t.status == 0, "\(t.stderr)")
        let i = try CLI.run(["inspect", path, "--json"])
        #expect(i.status == 0, "\(i.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any])
        #expect(obj["status"] as? String == "finished")
        #expect(obj["steps"] as? Int == 25)
        #expect(obj["checkpoints"] as? Int == 4)   // 0, 10, 20, 25
        #expect(obj["parameterCount"] as? Int == 2 * 64 + 64 + 64 * 64 + 64 + 64 + 1)
        #expect((obj["problems"] as? [Any])?.isEmpty == true)
        let train = try #require(obj["train"] as? [String: Any])
        #expect(train["count"] as? Int == 200)
        // The text form names the same things.
        let text = try CLI.run(["inspect", path])
        #expect(text.status == 0)
        #expect(text.stdout.contains("finished") && text.stdout.contains("MLP 2-64-64-1"))
    }

    /// `train --no-record` trains the same run and writes nothing; it refuses `--out`/`--force`.
    @Test func trainNoRecordWritesNothing() throws {
        let dir = try temporaryDirectory()
        let r = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "30", "--no-record"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("finished after 30 steps") && r.stderr.contains("nothing recorded"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        for extra in [["--out", dir.appendingPathComponent("x.sqlite").path], ["--force"]] {
            let bad = try CLI.run(["train", "--preset", "moons-mlp", "--no-record"] + extra, cwd: dir)
            #expect(bad.status == 64 && bad.stderr.contains("--no-record"), "\(bad.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func trainRefusesToOverwrite() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", path, "--quiet"])
        let again = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", path, "--quiet"])
        #expect(again.status != 0)
        #expect(again.stderr.contains("--force"))
    }

    /// The schema a fresh trace has is the one Docs/trace-format.md documents, statement by statement.
    @Test(.enabled(if: CLI.hasSQLite3, "needs the sqlite3 tool (Tools/apt-packages.txt)"))
    func schemaMatchesTheDocs() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", path, "--quiet"])
        let actual = try CLI.sqlite(path, ".schema")
        let doc = try String(contentsOf: CLI.repoRoot.appendingPathComponent("Docs/trace-format.md"), encoding: .utf8)
        func statements(_ s: String) -> [String] {
            s.components(separatedBy: ";").map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
                .filter { $0.hasPrefix("CREATE") }
        }
        let got = statements(actual)
        #expect(!got.isEmpty)
        let documented = Set(statements(doc))
        for stmt in got { #expect(documented.contains(stmt), "undocumented schema statement: \(stmt)") }
    }

    /// A child killed with SIGKILL mid-run leaves a trace that `inspect` opens, and every
    /// committed checkpoint passes its checksum.
    @Test func crashSafetyUnderSIGKILL() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("killed.sqlite").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["train", "--preset", "teacher-relu", "--steps", "100000", "--out", path, "--quiet"]
        var env = ProcessInfo.processInfo.environment
        env["PATHKERNEL_PRESETS"] = CLI.repoRoot.appendingPathComponent("Traces/presets").path
        p.environment = env
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until a few checkpoints are committed, then kill without warning.
        let deadline = Date().addingTimeInterval(60)
        var seen = 0
        while Date() < deadline {
            usleep(100_000)
            if let r = try? TraceReader.open(path), let c = try? r.checkpointSteps() { seen = c.count }
            if seen >= 5 { break }
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(seen >= 5, "the child never committed 5 checkpoints")
        let inspect = try CLI.run(["inspect", path])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("running"))
        let reader = try TraceReader.open(path)
        let checkpoints = try reader.checkpointSteps()
        #expect(checkpoints.count >= 5)
        for s in checkpoints { _ = try reader.checkpoint(step: s) }   // throws on a checksum mismatch
        let validation = try reader.validate()
        #expect(validation.problems.isEmpty, "\(validation.problems)")
    }
}

/// Bad input: a one-line error naming the problem and a non-zero exit, never a crash or a hang.
@Suite("bad input to the command line", .serialized)
struct CLIBadInputTests {
    static func assertCleanFailure(_ r: CLI.Result, mentions words: [String]) {
        #expect(!r.terminatedBySignal, "crashed: \(r.stderr)")
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1, "expected one line, got: \(r.stderr)")
        for w in words { #expect(r.stderr.lowercased().contains(w.lowercased()), "'\(w)' not in: \(r.stderr)") }
    }

    static func goodTrace(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("good.sqlite").path
        let r = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "5", "--out", path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        return path
    }

    @Test func missingFile() throws {
        let r = try CLI.run(["inspect", "/nonexistent/x.sqlite"])
        Self.assertCleanFailure(r, mentions: ["x.sqlite"])
    }

    @Test func emptyFile() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("empty.sqlite").path
        FileManager.default.createFile(atPath: path, contents: Data())
        Self.assertCleanFailure(try CLI.run(["inspect", path]), mentions: ["empty.sqlite"])
    }

    @Test func randomBytes() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("random.sqlite").path
        var g = SystemRandomNumberGenerator()
        FileManager.default.createFile(atPath: path, contents: Data((0..<65536).map { _ in UInt8.random(in: 0...255, using: &g) }))
        Self.assertCleanFailure(try CLI.run(["inspect", path]), mentions: ["random.sqlite"])
    }

    @Test func truncatedTrace() throws {
        let dir = try temporaryDirectory()
        let path = try Self.goodTrace(in: dir)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        for s in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        Self.assertCleanFailure(try CLI.run(["inspect", path]), mentions: ["good.sqlite"])
    }

    @Test(.enabled(if: CLI.hasSQLite3, "needs the sqlite3 tool"))
    func blobLengthMismatch() throws {
        let dir = try temporaryDirectory()
        let path = try Self.goodTrace(in: dir)
        try CLI.sqlite(path, "UPDATE checkpoint SET params = substr(params, 1, 100) WHERE step = 5;")
        let r = try CLI.run(["inspect", path])
        // inspect lists the problem, or fails cleanly; either way the problem is named.
        #expect(!r.terminatedBySignal)
        #expect((r.stdout + r.stderr).contains("5"))
        #expect(r.status != 0 || r.stdout.contains("problem"))
    }

    @Test(.enabled(if: CLI.hasSQLite3, "needs the sqlite3 tool"))
    func schemaFromTheFuture() throws {
        let dir = try temporaryDirectory()
        let path = try Self.goodTrace(in: dir)
        try CLI.sqlite(path, "INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', '2100-01-01T00:00:00Z');")
        Self.assertCleanFailure(try CLI.run(["inspect", path]), mentions: ["999"])
    }

    @Test func nanInDataset() throws {
        let dir = try temporaryDirectory()
        let csv = dir.appendingPathComponent("bad.csv")
        try "x1,x2,y\n0.1,0.2,1.0\n0.3,nan,2.0\n0.5,0.6,3.0\n0.7,0.8,4.0\n".write(to: csv, atomically: true, encoding: .utf8)
        let config = """
        {"name":"nan","seed":1,
         "data":{"kind":"csv","path":"\(csv.path)","task":"regression","testFraction":0.25},
         "model":{"layers":[2,4,1],"activation":"tanh"},
         "loss":{"kind":"mse"},"optimizer":{"kind":"gd","learningRate":0.1},"training":{"steps":3}}
        """
        let cfg = dir.appendingPathComponent("nan.json")
        try config.write(to: cfg, atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--config", cfg.path, "--out", dir.appendingPathComponent("o.sqlite").path])
        Self.assertCleanFailure(r, mentions: ["bad.csv"])
    }

    /// A `-wal` left without its trace (a trace deleted without it, or a creation killed and then
    /// deleted): train names the leftover file, not "a trace", and `--force` clears it.
    @Test func leftoverWALWithoutItsTrace() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        try Data("stale write-ahead log".utf8).write(to: URL(fileURLWithPath: path + "-wal"))
        let r = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", path, "--quiet"])
        Self.assertCleanFailure(r, mentions: ["m.sqlite-wal", "without its trace", "--force"])
        let forced = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", path, "--quiet", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        let i = try CLI.run(["inspect", path])
        #expect(i.status == 0 && i.stdout.contains("finished"), "\(i.stderr)")
    }

    /// A typo in a config key, and numbers that do not fit their field: one line naming the key
    /// or field, where it is and the closest key or the allowed range.
    @Test(arguments: [
        (#""learningRate""#, #""lr""#, ["bad.json", "unknown key 'lr' in optimizer", "did you mean 'learningRate'?"]),
        (#""steps": 300"#, #""steps": 300, "checkpoint_every": 10"#, ["bad.json", "unknown key 'checkpoint_every' in training", "checkpointEvery"]),
        (#""seed": 1"#, #""seed": -1"#, ["bad.json", "seed must be an integer in 0…18446744073709551615, got -1"]),
        (#""seed": 1"#, #""seed": 99999999999999999999999"#, ["bad.json", "seed must be an integer in 0…18446744073709551615"]),
        (#""steps": 300"#, #""steps": 1e30"#, ["bad.json", "training.steps must be an integer in 1…100000000"]),
        (#""steps": 300"#, #""steps": 2.5"#, ["bad.json", "training.steps must be an integer in 1…100000000, got 2.5"]),
        (#""train": 200"#, #""train": 1e9"#, ["bad.json", "data.train must be an integer in 1…10000000"]),
        (#""steps": 300"#, #""steps": 300, "batchSize": 500"#, ["config moons-mlp", "batchSize", "does not apply"]),
    ])
    func badConfigsAreNamed(old: String, new: String, words: [String]) throws {
        let dir = try temporaryDirectory()
        let preset = try String(contentsOf: CLI.repoRoot.appendingPathComponent("Traces/presets/moons-mlp.json"), encoding: .utf8)
        #expect(preset.contains(old))
        let cfg = dir.appendingPathComponent("bad.json")
        try preset.replacingOccurrences(of: old, with: new).write(to: cfg, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("o.sqlite").path
        let r = try CLI.run(["train", "--config", cfg.path, "--out", out, "--quiet"])
        Self.assertCleanFailure(r, mentions: words)
        #expect(!FileManager.default.fileExists(atPath: out), "a refused config must not leave a trace")
    }

    /// Numeric options out of range, negative ones included (parsed as values, not as options:
    /// never "Missing value"): one line naming the option and its range, exit status 64, and
    /// nothing run (bench never starts a benchmark here).
    @Test(arguments: [
        (["bench", "--repeats", "0"], ["--repeats", "1…1000"]),
        (["bench", "--repeats", "-2"], ["--repeats", "1…1000"]),
        (["bench", "--workload", "W4", "--channels", "0"], ["--channels", "1…1024"]),
        (["bench", "--workload", "W7-cntk", "--queries", "-3"], ["--queries", "1…2000"]),
        (["bench", "--workload", "W7-cntk", "--images", "2"], ["--images", "3…2000"]),
        (["analyze", "t.sqlite", "--max-queries", "-1"], ["--max-queries", "1…10000000"]),
        (["analyze", "t.sqlite", "--max-queries", "2.5"], ["--max-queries", "1…10000000"]),
        (["analyze", "t.sqlite", "--nodes", "0"], ["--nodes", "1…64"]),
        (["analyze", "t.sqlite", "--nodes", "-4"], ["--nodes", "1…64"]),
        (["analyze", "t.sqlite", "--ridge", "-1e-3"], ["--ridge", "≥ 0"]),
        (["analyze", "t.sqlite", "--ridge", "nan"], ["--ridge", "≥ 0"]),
        (["analyze", "t.sqlite", "--adaptive", "-1"], ["--adaptive", "> 0"]),
        (["analyze", "t.sqlite", "--momentum-tolerance", "1.5"], ["--momentum-tolerance", "between 0 and 1"]),
        (["analyze", "t.sqlite", "--momentum-tolerance", "-0.1"], ["--momentum-tolerance", "between 0 and 1"]),
        (["train", "--preset", "moons-mlp", "--steps", "-5"], ["--steps", "1…100000000"]),
        (["train", "--preset", "moons-mlp", "--steps", "1e30"], ["--steps", "1…100000000"]),
        (["train", "--preset", "moons-mlp", "--checkpoint-every", "0"], ["--checkpoint-every", "1…100000000"]),
        (["train", "--preset", "moons-mlp", "--seed", "-1"], ["--seed", "0…18446744073709551615"]),
        (["analyze", "t.sqlite", "--scope", "exact"], ["--queries test"]),
        (["analyze"], ["<path>", "pathkernel analyze --help"]),
    ])
    func numericOptionsAreRangeChecked(args: [String], words: [String]) throws {
        let dir = try temporaryDirectory()
        let r = try CLI.run(args, cwd: dir)
        Self.assertCleanFailure(r, mentions: words)
        #expect(r.stderr.hasPrefix("error: "), "\(r.stderr)")
        #expect(!r.stderr.contains("Missing value"), "\(r.stderr)")
        #expect(r.status == 64)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "nothing may be written")
    }

    /// bench's options that set one workload are refused with another, and plan's unknown
    /// presets are named: one line saying what to run, nothing run or written.
    @Test(arguments: [
        (["bench", "--workload", "W1", "--preset", "moons-mlp"], ["--preset", "recording or plan"]),
        (["bench", "--workload", "W5", "--precision", "f32"], ["--precision", "--workload plan"]),
        (["bench", "--workload", "W1", "--steps", "5"], ["--steps", "W5, W6 or plan"]),
        (["bench", "--workload", "plan", "--preset", "moons-mlp,no-such-preset"], ["unknown preset 'no-such-preset'", "moons-mlp"]),
        (["bench", "--workload", "plan", "--preset", ","], ["--preset names no preset"]),
    ])
    func benchOptionsBelongToTheirWorkload(args: [String], words: [String]) throws {
        let dir = try temporaryDirectory()
        let r = try CLI.run(args, cwd: dir)
        Self.assertCleanFailure(r, mentions: words)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "nothing may be written")
    }

    /// A bad PATHKERNEL_THREADS is an error at the start of every command that uses threads,
    /// before any work (no trace written, no benchmark run).
    @Test(arguments: ["0", "abc", "-1", ""])
    func badThreadCountIsRefused(value: String) throws {
        let dir = try temporaryDirectory()
        for args in [["train", "--preset", "moons-mlp", "--steps", "1", "--out", "t.sqlite", "--quiet"],
                     ["analyze", "t.sqlite", "--quiet"], ["bench", "--workload", "W1"], ["demo", "--out", "d.sqlite"]] {
            let r = try CLI.run(args, cwd: dir, environment: ["PATHKERNEL_THREADS": value])
            Self.assertCleanFailure(r, mentions: ["PATHKERNEL_THREADS", "must be a positive integer", "got '\(value)'"])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "nothing may be written")
        // A valid value works.
        let ok = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "1", "--out", "t.sqlite", "--quiet"],
                             cwd: dir, environment: ["PATHKERNEL_THREADS": "1"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func unknownPreset() throws {
        Self.assertCleanFailure(try CLI.run(["train", "--preset", "nope", "--out", "/tmp/x.sqlite"]), mentions: ["nope"])
    }
}

@Suite("analyze and report on the command line", .serialized)
struct CLIAnalyzeTests {
    @Test func analyzeThenReportInEveryFormat() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        try CLI.run(["train", "--preset", "moons-mlp", "--steps", "8", "--out", path, "--quiet"])
        let none = try CLI.run(["report", path])
        #expect(none.status != 0 && none.stderr.contains("pathkernel analyze"))
        let a = try CLI.run(["analyze", path, "--max-queries", "20", "--quiet"])
        #expect(a.status == 0, "\(a.stderr)")
        // The same settings again reuse the stored analysis.
        let again = try CLI.run(["analyze", path, "--max-queries", "20"])
        #expect(again.stderr.contains("stored analysis"))
        let text = try CLI.run(["report", path])
        #expect(text.status == 0 && text.stdout.contains("Kernel machines") && text.stdout.contains("path-km"))
        let md = try CLI.run(["report", path, "--format", "markdown"])
        #expect(md.stdout.hasPrefix("# pathkernel report"))
        let out = dir.appendingPathComponent("r.json").path
        let j = try CLI.run(["report", path, "--format", "json", "--out", out])
        #expect(j.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let rec = try #require((obj["reconstruction"] as? [String: Any])?["test"] as? [String: Any])
        #expect(try #require(rec["relative_residual"] as? Double) < 1e-9)
        #expect((obj["settings"] as? [String: Any])?["max_queries"] as? Int == 20)
    }

    /// The analysis lives in the main file: a user who copies `FILE.sqlite` alone (not its -wal
    /// or -shm) still gets the report, and analyze, report and inspect leave no side files.
    @Test func analysisSurvivesCopyingTheMainFileAlone() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        try CLI.run(["train", "--preset", "moons-mlp", "--steps", "6", "--out", path, "--quiet"])
        let fm = FileManager.default
        func listing() throws -> [String] { try fm.contentsOfDirectory(atPath: dir.path).sorted() }
        #expect(try listing() == ["m.sqlite"])
        let a = try CLI.run(["analyze", path, "--max-queries", "8", "--quiet"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(try listing() == ["m.sqlite"], "analyze leaves no -wal/-shm")
        for args in [["inspect", path], ["inspect", path, "--json"], ["report", path]] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try listing() == ["m.sqlite"], "\(args[0]) leaves no -wal/-shm")
        }
        let other = try temporaryDirectory()
        let copy = other.appendingPathComponent("copy.sqlite").path
        try fm.copyItem(atPath: path, toPath: copy)
        let r = try CLI.run(["report", copy])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Kernel machines"))
        #expect(try fm.contentsOfDirectory(atPath: other.path) == ["copy.sqlite"])
    }

    /// An analysis stored while the run was still being written (6 of 12 steps committed) is
    /// reported as OUT OF DATE once the run has finished, with the command that refreshes it;
    /// `analyze` without --force recomputes it instead of reusing it. The partial trace is made
    /// from a finished one with sqlite3 (rows past step 6 removed, status back to running), and
    /// the writer's later commits are simulated by copying those rows back.
    @Test(.enabled(if: CLI.hasSQLite3, "needs the sqlite3 tool"))
    func analysisOfAnUnfinishedRunIsReportedAsOutOfDate() throws {
        let dir = try temporaryDirectory()
        let full = dir.appendingPathComponent("full.sqlite").path
        let path = dir.appendingPathComponent("m.sqlite").path
        let t = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "12", "--checkpoint-every", "4", "--out", full, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        try FileManager.default.copyItem(atPath: full, toPath: path)
        try CLI.sqlite(path, """
            DELETE FROM step WHERE step >= 6; DELETE FROM checkpoint WHERE step > 4; DELETE FROM optimizer_state WHERE step > 4;
            UPDATE run SET status = 'running', finished_at = NULL;
            """)
        let a = try CLI.run(["analyze", path, "--max-queries", "8", "--quiet"])
        #expect(a.status == 0, "\(a.stderr)")
        let fresh = try CLI.run(["report", path])
        #expect(fresh.status == 0 && fresh.stderr.isEmpty && !fresh.stdout.contains("OUT OF DATE"), "\(fresh.stderr)")
        // The writer commits the rest of the run.
        try CLI.sqlite(path, """
            ATTACH '\(full)' AS f;
            INSERT INTO step SELECT * FROM f.step WHERE step >= 6;
            INSERT INTO checkpoint SELECT * FROM f.checkpoint WHERE step > 4;
            INSERT INTO optimizer_state SELECT * FROM f.optimizer_state WHERE step > 4;
            UPDATE run SET status = 'finished', finished_at = (SELECT finished_at FROM f.run);
            """)
        let stale = try CLI.run(["report", path])
        #expect(stale.status == 0, "\(stale.stderr)")
        let what = "it was computed when the trace was running, with 6 steps and its last checkpoint at step 4; the trace is now finished, with 12 steps and its last checkpoint at step 12; run `pathkernel analyze \(path) --max-queries 8 --force` to refresh it"
        #expect(stale.stderr == "warning: the stored analysis is out of date: \(what)\n")
        #expect(stale.stdout.contains("note: OUT OF DATE: " + what))
        let json = try CLI.run(["report", path, "--format", "json"])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let notes = try #require((obj["run"] as? [String: Any])?["notes"] as? [String])
        #expect(notes.first == "OUT OF DATE: " + what)
        // An analysis stored before schema v3 has no basis: judged by the steps it covers.
        try CLI.sqlite(path, "UPDATE analysis SET basis_status = NULL, basis_last_step = NULL, basis_last_checkpoint = NULL, basis_checkpoint_checksum = NULL;")
        let legacy = try CLI.run(["report", path])
        #expect(legacy.stderr.contains("it covers 4 steps of a trace that was running"), "\(legacy.stderr)")
        // analyze with the same settings does not reuse it: it recomputes.
        let again = try CLI.run(["analyze", path, "--max-queries", "8"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("out of date") && again.stderr.contains("recomputing"), "\(again.stderr)")
        let refreshed = try CLI.run(["report", path, "--format", "json"])
        #expect(refreshed.stderr.isEmpty, "\(refreshed.stderr)")
        let run = try #require((try JSONSerialization.jsonObject(with: Data(refreshed.stdout.utf8)) as? [String: Any])?["run"] as? [String: Any])
        #expect(run["steps"] as? Int == 12 && run["status"] as? String == "finished")
        let reuse = try CLI.run(["analyze", path, "--max-queries", "8"])
        #expect(reuse.stderr.contains("using the stored analysis"), "\(reuse.stderr)")
    }

    /// True where `/sys` exists and refuses a new file even to root (checked by trying).
    static var sysRefusesFiles: Bool {
        let probe = "/sys/.pathkernel-test-\(getpid())"
        guard FileManager.default.fileExists(atPath: "/sys") else { return false }
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd >= 0 { close(fd); unlink(probe); return false }
        return true
    }

    /// `report --out` and `train --out` where nothing can be written: one line saying why (the
    /// directory does not exist, is a file, is not writable), never Foundation's error dump or
    /// "SQLite error 14". Tests run as root, so a path under a regular *file* simulates a
    /// directory that takes no files; `/sys` (where it refuses new files even to root) a
    /// read-only directory.
    @Test func unwritableOutputsAreNamed() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("m.sqlite").path
        try CLI.run(["train", "--preset", "moons-mlp", "--steps", "3", "--out", path, "--quiet"])
        #expect(try CLI.run(["analyze", path, "--max-queries", "5", "--quiet"]).status == 0)
        let file = dir.appendingPathComponent("plain-file").path
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))

        let missing = try CLI.run(["report", path, "--out", dir.appendingPathComponent("missing/dir/r.txt").path])
        CLIBadInputTests.assertCleanFailure(missing, mentions: ["missing/dir does not exist", "mkdir -p"])
        #expect(!missing.stderr.contains("NSCocoaErrorDomain"))
        let underFile = try CLI.run(["report", path, "--out", file + "/r.txt"])
        CLIBadInputTests.assertCleanFailure(underFile, mentions: ["plain-file is a file, not a directory"])
        let trainUnderFile = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", file + "/t.sqlite", "--quiet"])
        CLIBadInputTests.assertCleanFailure(trainUnderFile, mentions: ["plain-file is a file, not a directory"])
        let trainMissing = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", dir.appendingPathComponent("nope/t.sqlite").path, "--quiet"])
        CLIBadInputTests.assertCleanFailure(trainMissing, mentions: ["nope does not exist"])

        if Self.sysRefusesFiles {
            let report = try CLI.run(["report", path, "--out", "/sys/pathkernel-report.txt"])
            CLIBadInputTests.assertCleanFailure(report, mentions: ["/sys is not writable"])
            let train = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", "/sys/pathkernel.sqlite", "--quiet"])
            CLIBadInputTests.assertCleanFailure(train, mentions: ["/sys is not writable"])
            #expect(!train.stderr.contains("SQLite error"))
        }
    }

    /// `--scope exact`: the text and Markdown reports have no empty "Along training" section, no
    /// "accuracy – train" and no train columns of dashes.
    @Test func exactScopeReportHasNoEmptySections() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("e.sqlite").path
        try CLI.run(["train", "--preset", "moons-mlp", "--steps", "4", "--out", path, "--quiet"])
        let a = try CLI.run(["analyze", path, "--queries", "test", "--scope", "exact", "--max-queries", "8", "--quiet"])
        #expect(a.status == 0, "\(a.stderr)")
        for format in ["text", "markdown"] {
            let r = try CLI.run(["report", path, "--format", format])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!r.stdout.contains("Along training"), "\(r.stdout)")
            #expect(!r.stdout.contains("accuracy –"), "\(r.stdout)")
            #expect(r.stdout.contains("path-km") && !r.stdout.contains("train rel err"), "\(r.stdout)")
            for line in r.stdout.split(separator: "\n") where line.contains("path-km") { #expect(!line.contains("–"), "\(line)") }
        }
    }

    @Test func badAnalysisOptionsAreRefused() throws {
        let r = try CLI.run(["analyze", "/nonexistent.sqlite", "--nodes", "0"])
        #expect(r.status != 0 && r.stderr.contains("--nodes"))
    }
}
