import Foundation
import Testing

/// `pathkernel ntt` and `train --init` end to end: the printed tables, the init file, the masked
/// trace, and one clean line for every bad input. (Oracle 7 and the gradient are checked on the
/// library: NeuralTangentTransferTests; the masked path kernel: MaskedRunTests.)
@Suite("pathkernel ntt and train --init", .serialized)
struct NTTCommandTests {
    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-ntt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A tiny config: spirals, MLP 2-8-6-3 tanh, SGD, 20 steps.
    static func writeConfig(_ dir: URL, layers: String = "[2,8,6,3]") throws -> String {
        let path = dir.appendingPathComponent("c.json").path
        let json = """
        {"name":"tiny","seed":3,"data":{"kind":"spirals","train":24,"test":12,"classes":3},
         "model":{"kind":"mlp","layers":\(layers),"activation":"tanh"},
         "loss":{"kind":"cross-entropy"},"optimizer":{"kind":"sgd","learningRate":0.5},
         "training":{"steps":20,"batchSize":8,"checkpointEvery":5}}
        """
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func nttThenTrainInit() throws {
        let dir = try Self.tempDir()
        let cfg = try Self.writeConfig(dir)
        let out = dir.appendingPathComponent("s.json").path
        let html = dir.appendingPathComponent("ntt.html").path
        let r = try CLI.run(["ntt", "--config", cfg, "--density", "0.5", "0.25", "--ntt-epochs", "3", "--ntt-batch", "8",
                             "--mask-every", "2", "--ntt-lr", "0.01", "--out", out, "--quiet", "--html", html])
        #expect(r.status == 0, "\(r.stderr)")
        // --html: the accuracy figure, one point per variant and density, the numbers printed.
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("id=\"fig-ntt-accuracy\"") && page.contains("Test accuracy against density"))
        let printed = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("  0.5 ") }).split(separator: " ")
        #expect(printed.count == 5, "\(printed)")
        for (name, value) in zip(["ntt", "magnitude", "random", "dense"], printed.dropFirst()) {
            #expect(page.contains("\(name) at density ρ 0.5: \(value)"), "\(name) \(value) not drawn")
        }
        for phrase in ["density 0.5: kept 8 of 16, 24 of 48, 9 of 18 weights per layer", "kernel term", "mask changes",
                       "relative kernel distance (held out): before", "written: ", "test accuracy after supervised training",
                       "density  ntt       magnitude  random    dense", "s-rho0.25.json"] {
            #expect(r.stdout.contains(phrase), "'\(phrase)' not in:\n\(r.stdout)")
        }
        let student = dir.appendingPathComponent("s-rho0.5.json").path
        #expect(FileManager.default.fileExists(atPath: student))
        // Same seed, same bits (here on 1 thread against the default).
        let again = try CLI.run(["ntt", "--config", cfg, "--density", "0.5", "0.25", "--ntt-epochs", "3", "--ntt-batch", "8",
                                 "--mask-every", "2", "--ntt-lr", "0.01", "--out", dir.appendingPathComponent("t.json").path, "--quiet"],
                                environment: ["PATHKERNEL_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"])
        #expect(again.stdout == r.stdout.replacingOccurrences(of: "/s-rho", with: "/t-rho"))
        #expect(try String(contentsOfFile: student, encoding: .utf8) == String(contentsOfFile: dir.appendingPathComponent("t-rho0.5.json").path, encoding: .utf8))
        #expect(again.status == 0)
        // An existing file is kept.
        let exists = try CLI.run(["ntt", "--config", cfg, "--density", "0.5", "0.25", "--out", out, "--no-train", "--quiet"])
        #expect(exists.status == 1 && exists.stderr.contains("exists"), "\(exists.stderr)")

        // train --init: the trace holds the mask; inspect accepts it; analyze runs.
        let trace = dir.appendingPathComponent("m.sqlite").path
        let t = try CLI.run(["train", "--config", cfg, "--init", student, "--out", trace, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let kept = try CLI.sqlite(trace, "SELECT count FROM parameter_mask")
        #expect(kept.trimmingCharacters(in: .whitespacesAndNewlines) == "99", "\(kept)")   // P of 2-8-6-3
        let inspect = try CLI.run(["inspect", trace])
        #expect(inspect.status == 0, "\(inspect.stdout) \(inspect.stderr)")
        let a = try CLI.run(["analyze", trace, "--quiet"])
        #expect(a.status == 0, "\(a.stderr)")
    }

    static func editedJSON(_ text: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        var o = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        edit(&o)
        return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
    }

    @Test func badInitFilesAndMismatchedConfigs() throws {
        let dir = try Self.tempDir()
        let cfg = try Self.writeConfig(dir)
        let student = dir.appendingPathComponent("s.json").path
        let r = try CLI.run(["ntt", "--config", cfg, "--density", "0.5", "--ntt-epochs", "1", "--ntt-batch", "8",
                             "--out", student, "--no-train", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let trace = dir.appendingPathComponent("x.sqlite").path
        // Another network.
        let other = try Self.writeConfig(try Self.tempDir(), layers: "[2,8,3]")
        let m = try CLI.run(["train", "--config", other, "--init", student, "--out", trace, "--quiet"])
        #expect(m.status == 1 && m.stderr.contains("is not the init file's"), "\(m.stderr)")
        // Damaged files.
        var text = try String(contentsOfFile: student, encoding: .utf8)
        let cases: [(String, String)] = [
            ("not json", "is not a pathkernel sparse-init file"),
            (text.replacingOccurrences(of: "\"version\" : 1", with: "\"version\" : 9"), "upgrade pathkernel"),
            (try Self.editedJSON(text) { $0["maskCRC32"] = (($0["maskCRC32"] as! Int) + 1) % (1 << 32) }, "the mask fails its CRC-32"),
            (try Self.editedJSON(text) { $0["mask"] = Data(repeating: 2, count: 99).base64EncodedString() }, "CRC-32"),
            (try Self.editedJSON(text) { $0["parameterCount"] = 7 }, "parameterCount 7"),
        ]
        for (body, phrase) in cases {
            try body.write(toFile: student, atomically: true, encoding: .utf8)
            let b = try CLI.run(["train", "--config", cfg, "--init", student, "--out", trace, "--quiet"])
            #expect(b.status == 1 && b.stderr.contains(phrase) && b.stderr.split(separator: "\n").count == 1, "\(phrase): \(b.stderr)")
        }
        let missing = try CLI.run(["train", "--config", cfg, "--init", dir.appendingPathComponent("none.json").path, "--out", trace])
        #expect(missing.status == 1 && missing.stderr.contains("cannot be read"), "\(missing.stderr)")
        text = ""
        // Bad options.
        for args in [["--density", "0"], ["--density", "1.5"], ["--mask-every", "0"], ["--lambda-kernel", "-1"], ["--ntt-batch", "1"],
                     ["--no-train", "--html", "x.html"]] {
            let b = try CLI.run(["ntt", "--config", cfg] + args)
            #expect(b.status == 64, "\(args): \(b.status) \(b.stderr)")
        }
        let noModel = try CLI.run(["ntt", "--preset", "fmnist-cnn", "--no-train"])
        #expect(noModel.status == 1 && noModel.stderr.contains("MLPs only"), "\(noModel.stderr)")
    }
}
