import Foundation
import Testing

/// `pathkernel ntrf` end to end: oracle 4 through the command (a CSV data section in file order),
/// the text form, every way to give --data, and one clean line for every bad input.
@Suite("pathkernel ntrf", .serialized)
struct NTRFCommandTests {
    /// Contract §4; the printed JSON numbers round-trip, so they are the library's to the bit.
    static let oracleTolerance = 1e-10

    /// Oracle 4's points (unnormalized: the command scales them) and labels as 0/1.
    static var csv: String {
        let labels = [1, 1, 0, 0, 0, 1, 1, 0]
        return "a,b,c,label\n" + (0..<8).map { i in
            (0..<3).map { j -> String in
                let k = Double(3 * i + j)
                return "\(sin(1.3 * k + 0.2) + 0.3 * cos(0.5 * k))"
            }.joined(separator: ",") + ",\(labels[i])"
        }.joined(separator: "\n") + "\n"
    }

    /// A data section reading `csv` in file order, every row for training.
    static func dataSection(_ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("x.csv").path
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        return "{\"kind\": \"csv\", \"path\": \"\(path)\", \"task\": \"binary\", \"testFraction\": 0, \"shuffle\": false}"
    }

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "not JSON: \(json)")
    }

    static func expectRelative(_ got: Any?, _ expected: Double, _ what: String) {
        guard let v = got as? Double else { Issue.record("\(what): \(String(describing: got))"); return }
        #expect(abs(v - expected) <= oracleTolerance * abs(expected), "\(what): \(v) vs \(expected)")
    }

    @Test(arguments: [(2, -0.05680861228545, 0.04960203018362, 13.95318317583, 9.819747557716),
                      (3, 0.2949483224347, 0.172441831338, 6.344241051603, 6.109861157109)])
    func oracleThroughTheCommand(_ c: (Int, Double, Double, Double, Double)) throws {
        let (depth, h12, lambdaMin, labelComplexity, margin) = c
        let dir = try temporaryDirectory()
        let r = try CLI.run(["ntrf", "--data", try Self.dataSection(dir), "--depth", "\(depth)", "--width", "16",
                             "--radius", "0.5,2", "--json"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let o = try Self.object(r.stdout)
        let kernel = try #require(o["kernel"] as? [[Double]])
        Self.expectRelative(kernel[0][1], h12, "H₁₂")
        Self.expectRelative(o["lambdaMin"], lambdaMin, "λ_min")
        Self.expectRelative(o["labelComplexity"], labelComplexity, "yᵀH⁻¹y")
        Self.expectRelative(o["labelTerm"], (labelComplexity / 8).squareRoot(), "√(yᵀH⁻¹y/n)")
        let m = try #require(o["margin"] as? [String: Any])
        Self.expectRelative(m["value"], margin, "margin")
        Self.expectRelative(o["confidenceTerm"], (log(1 / 0.05) / 8).squareRoot(), "√(log(1/δ)/n)")
        #expect(o["inputsNormalized"] as? Bool == true && o["labels"] as? String == "2y-1")
        let risks = try #require(o["risks"] as? [[String: Any]])
        #expect(risks.count == 2)
        for (p, radius) in zip(risks, [0.5, 2.0]) {
            #expect(p["radius"] as? Double == radius && p["converged"] as? Bool == true)
            let risk = try #require(p["risk"] as? Double)
            // Below the loss of the zero-shift function is not checkable here; within (0, 4·log 2] it is.
            #expect(risk > 0 && risk < 4 * log(2.0))
            // Foundation's JSON parser may miss the last bit of a printed double: 1e-15.
            let fourRisk = try #require(p["fourRisk"] as? Double), radiusTerm = try #require(p["radiusTerm"] as? Double)
            #expect(abs(fourRisk - 4 * risk) <= 1e-15 * fourRisk)
            #expect(abs(radiusTerm - Double(depth) * radius / 8.0.squareRoot()) <= 1e-15 * radiusTerm)
        }
        #expect(try #require(risks[1]["risk"] as? Double) <= (try #require(risks[0]["risk"] as? Double)))
    }

    @Test func textSaysWhatItDid() throws {
        let dir = try temporaryDirectory()
        let r = try CLI.run(["ntrf", "--data", try Self.dataSection(dir), "--depth", "2", "--width", "16", "--radius", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        for phrase in ["unit norm", "2y − 1: 4 +1, 4 −1", "H = (d/4)(Θ + Σ)", "λ_min(H)           0.04960203018",
                       "yᵀH⁻¹y             13.95318318", "margin complexity  9.819747558", "5 of 8 at |ỹ_i| = 1",
                       "4R̂(R)", "LR/√n", "no bound value"] {
            #expect(r.stdout.contains(phrase), "'\(phrase)' not in:\n\(r.stdout)")
        }
        for line in r.stdout.split(separator: "\n") where !line.hasPrefix("data ") {
            #expect(line.count <= 80, "line wider than 80 columns: \(line)")
        }
    }

    /// A preset's data, a run config file and a bare data-section file give the same numbers as
    /// the same data inline.
    @Test func everyFormOfData() throws {
        let dir = try temporaryDirectory()
        let section = "{\"kind\": \"moons\", \"train\": 24, \"test\": 0, \"noise\": 0.1}"
        let config = dir.appendingPathComponent("run.json").path
        try """
        { "name": "n", "seed": 5, "data": \(section),
          "model": { "kind": "mlp", "layers": [2, 8, 1], "activation": "relu" },
          "loss": { "kind": "logistic" }, "optimizer": { "kind": "gd", "learningRate": 0.1 }, "training": { "steps": 1 } }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let bare = dir.appendingPathComponent("data.json").path
        try section.write(toFile: bare, atomically: true, encoding: .utf8)
        func margin(_ data: String, _ extra: [String] = []) throws -> Double {
            let r = try CLI.run(["ntrf", "--data", data, "--depth", "2", "--width", "8", "--radius", "1", "--json"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let o = try Self.object(r.stdout)
            return try #require((o["margin"] as? [String: Any])?["value"] as? Double)
        }
        let fromConfig = try margin(config)          // the config's seed, 5
        #expect(try margin(section, ["--seed", "5"]) == fromConfig)
        #expect(try margin(bare, ["--seed", "5"]) == fromConfig)
        #expect(try margin(bare) != fromConfig)      // seed 0 draws other moons
        let preset = try CLI.run(["ntrf", "--data", "moons-mlp", "--depth", "2", "--width", "8", "--radius", "1"])
        #expect(preset.status == 0 && preset.stdout.contains("n = 200 examples"), "\(preset.stderr)")
    }

    @Test func singularKernelIsSaid() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("dup.csv").path
        try "a,b,label\n1,0,1\n0,1,0\n2,0,1\n0.5,0.5,0\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try CLI.run(["ntrf", "--data", "{\"kind\": \"csv\", \"path\": \"\(path)\", \"task\": \"binary\", \"testFraction\": 0}",
                             "--depth", "2", "--width", "4", "--radius", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("H is singular") && !r.stdout.contains("margin complexity  ")
                && !r.stdout.contains("yᵀH⁻¹y             "), "\(r.stdout)")
        let json = try Self.object(try CLI.run(["ntrf", "--data", "{\"kind\": \"csv\", \"path\": \"\(path)\", \"task\": \"binary\", \"testFraction\": 0}",
                                                "--depth", "2", "--width", "4", "--radius", "1", "--json"]).stdout)
        #expect(json["margin"] is NSNull && json["labelComplexity"] is NSNull && (json["notes"] as? [String])?.count == 1)
    }

    /// A bad option value: one line naming the option, exit status 64.
    @Test(arguments: [
        ("--radius", "-1", ["--radius", "R > 0"]),
        ("--radius", "1,,2", ["--radius"]),
        ("--radius", "abc", ["'abc'"]),
        ("--depth", "1", ["--depth", "2…64"]),
        ("--width", "0", ["--width"]),
        ("--delta", "0.5", ["--delta", "1/e"]),
    ])
    func badOptions(_ c: (String, String, [String])) throws {
        var args = ["ntrf", "--data", "{\"kind\": \"moons\", \"train\": 8, \"test\": 0}", "--depth", "2", "--width", "4", "--radius", "1"]
        if let i = args.firstIndex(of: c.0) { args[i + 1] = c.1 } else { args += [c.0, c.1] }
        let r = try CLI.run(args)
        CLIBadInputTests.assertCleanFailure(r, mentions: c.2)
        #expect(r.status == 64)
    }

    @Test(arguments: [
        ("{\"kind\": \"spirals\", \"train\": 12, \"test\": 0, \"classes\": 3}", ["3 classes", "binary"]),
        ("{\"kind\": \"sine\", \"train\": 12, \"test\": 0}", ["regression", "binary"]),
        ("{\"kind\": \"moons\", \"train\": 4001, \"test\": 0}", ["4001 examples", "at most 4000"]),
        ("{\"kind\": \"moons\"", ["not a data spec"]),
        ("no-such-preset", ["unknown preset", "inline JSON"]),
        ("/nonexistent/d.json", ["no such file"]),
    ])
    func badData(_ c: (String, [String])) throws {
        let r = try CLI.run(["ntrf", "--data", c.0, "--depth", "2", "--width", "4", "--radius", "1"])
        CLIBadInputTests.assertCleanFailure(r, mentions: c.1)
        #expect(r.status == 1)
    }

    @Test func tooWideIsAnError() throws {
        let r = try CLI.run(["ntrf", "--data", "{\"kind\": \"moons\", \"train\": 8, \"test\": 0}", "--depth", "3", "--width", "20000", "--radius", "1"])
        CLIBadInputTests.assertCleanFailure(r, mentions: ["parameters", "smaller widths"])
    }

    /// Same input, same bytes, on 1 and 2 threads; a bad PATHKERNEL_THREADS stops it at startup.
    @Test func threads() throws {
        let args = ["ntrf", "--data", "{\"kind\": \"xor\", \"train\": 40, \"test\": 0}", "--depth", "3", "--width", "32",
                    "--radius", "0.5,3", "--json"]
        let one = try CLI.run(args, environment: ["PATHKERNEL_THREADS": "1"])
        let two = try CLI.run(args, environment: ["PATHKERNEL_THREADS": "2"])
        #expect(one.status == 0 && !one.stdout.isEmpty, "\(one.stderr)")
        #expect(one.stdout == two.stdout)
        let bad = try CLI.run(args, environment: ["PATHKERNEL_THREADS": "0"])
        CLIBadInputTests.assertCleanFailure(bad, mentions: ["PATHKERNEL_THREADS"])
        #expect(bad.status == 64)
    }

    @Test func helpFitsAndNamesTheOptions() throws {
        let r = try CLI.run(["ntrf", "--help"])
        #expect(r.status == 0)
        for word in ["--data", "--depth", "--width", "--radius", "--seed", "--delta", "--json", "unit norm", "2y − 1", "no bound value"] {
            #expect(r.stdout.replacingOccurrences(of: "\n", with: " ").contains(word), "\(word) not in help")
        }
        for line in r.stdout.split(separator: "\n") { #expect(line.count <= 80, "help line wider than 80 columns: \(line)") }
    }
}
