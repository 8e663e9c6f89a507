import Foundation
import Testing

/// `pathkernel ntk` end to end: a replayed step, the kernel files (read back here and by NumPy),
/// the same bytes on 1 and 2 threads, and one clean error line for every bad input.
@Suite("pathkernel ntk", .serialized)
struct NTKCommandTests {
    /// Foundation's JSON parser against the exact decimals: a few ulps.
    static let jsonParsingTolerance = 1e-15

    static func config(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("run.json").path
        try """
        { "name": "n", "seed": 3, "data": { "kind": "teacher", "train": 5, "test": 3, "inputDim": 3, "teacherWidths": [4],
          "outputDim": 2, "noise": 0.0 },
          "model": { "kind": "mlp", "layers": [3, 6, 6, 2], "activation": "tanh", "parameterization": "ntk",
                     "sigmaW": 1.5, "sigmaB": 0.1 },
          "loss": { "kind": "mse" }, "optimizer": { "kind": "gd", "learningRate": 0.2 }, "training": { "steps": 4, "checkpointEvery": 2 } }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func trace(in dir: URL) throws -> String {
        let trace = dir.appendingPathComponent("t.sqlite").path
        let r = try CLI.run(["train", "--config", try config(dir), "--out", trace, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        return trace
    }

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not JSON: \(json)")
    }

    /// The values of a `.npy` file of float64 after its header (the header itself is checked in
    /// `EmpiricalNTKTests.npyFileLayout`).
    static func npyValues(_ path: String) throws -> [Double] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let start = 10 + (Int(bytes[8]) | Int(bytes[9]) << 8)
        return stride(from: start, to: bytes.count, by: 8).map { i in
            Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * $1) })
        }
    }

    @Test func replayedStepToFiles() throws {
        let dir = try temporaryDirectory()
        let trace = try Self.trace(in: dir)
        let r = try CLI.run(["ntk", trace, "--step", "3", "--queries", "both", "--spectrum", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try Self.object(r.stdout)
        #expect(o["replayed"] as? Bool == true && o["step"] as? Int == 3 && o["examples"] as? Int == 8)
        let kernel = try #require(o["kernel"] as? [[Double]])
        #expect(kernel.count == 16 && kernel.allSatisfy { $0.count == 16 })
        let spectrum = try #require(o["spectrum"] as? [String: Any])
        let eigenvalues = try #require(spectrum["eigenvalues"] as? [Double])
        #expect(eigenvalues.count == 16 && eigenvalues == eigenvalues.sorted(by: >))
        // The trace of the kernel is the sum of the eigenvalues.
        let trace16 = (0..<16).reduce(0.0) { $0 + kernel[$1][$1] }
        #expect(abs(eigenvalues.reduce(0, +) - trace16) <= 1e-12 * trace16)

        let npy = dir.appendingPathComponent("K.npy").path, csv = dir.appendingPathComponent("K.csv").path
        for file in [npy, csv] {
            let w = try CLI.run(["ntk", trace, "--step", "3", "--queries", "both", "--out", file])
            #expect(w.status == 0 && w.stdout.contains("written    \(file)") && !w.stdout.contains("e+"), "\(w.stdout)\(w.stderr)")
        }
        // Both files hold the same bits (the CSV's decimals read back exactly by `Double(_:)`), and
        // the JSON's numbers within JSONSerialization's parsing (it is not correctly rounded on
        // Linux: an ulp off now and then).
        let values = try Self.npyValues(npy)
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map { Double($0)! } }
        #expect(values == rows.flatMap { $0 } && rows.count == 16)
        for (v, k) in zip(values, kernel.flatMap { $0 }) { #expect(abs(v - k) <= Self.jsonParsingTolerance * abs(k)) }

        // --kernel trace: n × n, each entry the trace of its 2×2 block.
        let t = try Self.object(try CLI.run(["ntk", trace, "--step", "3", "--queries", "both", "--kernel", "trace", "--json"]).stdout)
        let traced = try #require(t["kernel"] as? [[Double]])
        #expect(traced.count == 8)
        #expect(abs(traced[2][5] - (kernel[4][10] + kernel[5][11])) <= 1e-13 * trace16)
    }

    /// NumPy's reader (Tools/checks/npy_load.py) takes both files; skipped where python3 has no numpy.
    @Test(.enabled(if: NTKCommandTests.hasNumpy)) func numpyReadsTheFiles() throws {
        let dir = try temporaryDirectory()
        let trace = try Self.trace(in: dir)
        let json = try Self.object(try CLI.run(["ntk", trace, "--json"]).stdout)
        let kernel = try #require(json["kernel"] as? [[Double]]).flatMap { $0 }
        for name in ["K.npy", "K.csv"] {
            let file = dir.appendingPathComponent(name).path
            #expect(try CLI.run(["ntk", trace, "--out", file]).status == 0)
            let script = CLI.repoRoot.appendingPathComponent("Tools/checks/npy_load.py").path
            let r = try CLI.execute("/usr/bin/env", ["python3", script, file], environment: [:], what: "npy_load.py")
            #expect(r.status == 0, "\(r.stderr)")
            let o = try Self.object(r.stdout)
            #expect(o["shape"] as? [Int] == [10, 10] && o["dtype"] as? String == "float64" && o["fortran_order"] as? Bool == false)
            let data = try #require(o["data"] as? [Double])
            #expect(data.count == kernel.count)
            for (v, k) in zip(data, kernel) { #expect(abs(v - k) <= Self.jsonParsingTolerance * abs(k)) }
        }
    }

    static let hasNumpy: Bool = {
        (try? CLI.execute("/usr/bin/env", ["python3", "-c", "import numpy"], environment: [:], what: "python3"))?.status == 0
    }()

    @Test func sameBytesOnOneAndTwoThreads() throws {
        let dir = try temporaryDirectory()
        let trace = try Self.trace(in: dir)
        var files: [Data] = []
        for threads in ["1", "2"] {
            let file = dir.appendingPathComponent("K\(threads).npy").path
            let r = try CLI.run(["ntk", trace, "--step", "1", "--queries", "both", "--out", file], environment: ["PATHKERNEL_THREADS": threads])
            #expect(r.status == 0, "\(r.stderr)")
            files.append(try Data(contentsOf: URL(fileURLWithPath: file)))
        }
        #expect(files[0] == files[1])
    }

    @Test func badInputsFailCleanly() throws {
        let dir = try temporaryDirectory()
        let trace = try Self.trace(in: dir)
        let folder = dir.appendingPathComponent("folder.npy").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        var cases: [([String], [String], Int32)] = [
            ([trace, "--step", "9"], ["step 9 is out of range", "0…4", "0, 2, 4"], 1),
            ([trace, "--step", "-1"], ["--step"], 64),
            ([trace, "--queries", "valid"], ["--queries", "train", "test", "both"], 64),
            ([trace, "--kernel", "diagonal"], ["--kernel", "full", "trace"], 64),
            ([trace, "--out", dir.appendingPathComponent("K.txt").path], [".npy or .csv"], 64),
            ([trace, "--out", dir.appendingPathComponent("absent/K.npy").path], ["does not exist"], 1),
            ([trace, "--out", folder], ["is a directory"], 1),
            ([dir.appendingPathComponent("none.sqlite").path], ["none.sqlite"], 1),
        ]
        if CLI.hasSQLite3 {
            let broken = dir.appendingPathComponent("broken.sqlite").path
            try FileManager.default.copyItem(atPath: trace, toPath: broken)
            try CLI.sqlite(broken, "DELETE FROM checkpoint WHERE step = 0;")
            cases.append(([broken], ["checkpoint"], 1))
        }
        for (args, words, status) in cases {
            let r = try CLI.run(["ntk"] + args)
            CLIBadInputTests.assertCleanFailure(r, mentions: words)
            #expect(r.status == status, "\(args): status \(r.status), \(r.stderr)")
        }
        // Nothing is left behind by a failed write.
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("K.txt").path))
    }
}
