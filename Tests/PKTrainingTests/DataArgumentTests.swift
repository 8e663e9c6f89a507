import Foundation
import Testing
import PKData
@testable import PKTraining

/// `--data TEXT` of `cntk`, `ntrf` and `bandit`: every form it takes, and one clear line for
/// every form it does not.
@Suite("The --data argument")
struct DataArgumentTests {
    private func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-data-arg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func everyFormIsRead() throws {
        let inline = try DataArgument.resolve(#" {"kind": "moons", "train": 30, "test": 5} "#)
        #expect(inline.spec.kind == "moons" && inline.spec.train == 30 && inline.seed == nil && inline.name == "inline data spec")

        let fmnist = try DataArgument.resolve("fashion-mnist")
        #expect(fmnist.spec == DataSpec(kind: "idx") && fmnist.seed == nil)

        let preset = try DataArgument.resolve("fmnist-cnn")
        let config = try Presets.load("fmnist-cnn")
        #expect(preset.spec == config.data && preset.seed == config.seed && preset.input == config.model.input && preset.input != nil)

        let dir = try directory()
        let section = dir + "/section.json"
        try Data(#"{"kind": "circles", "train": 12, "test": 0}"#.utf8).write(to: URL(fileURLWithPath: section))
        let fromSection = try DataArgument.resolve(section)
        #expect(fromSection.spec.kind == "circles" && fromSection.spec.train == 12 && fromSection.seed == nil && fromSection.name == section)

        let configFile = dir + "/config.json"
        try JSONEncoder().encode(Presets.load("moons-mlp")).write(to: URL(fileURLWithPath: configFile))
        let fromConfig = try DataArgument.resolve(configFile)
        let moons = try Presets.load("moons-mlp")
        #expect(fromConfig.spec == moons.data && fromConfig.seed == moons.seed)
    }

    @Test(arguments: [
        ("no-such-preset", ["not a preset", "unknown preset", "fashion-mnist", "inline JSON"]),
        ("moons-mpl", ["did you mean 'moons-mlp'"]),
        ("missing/file.json", ["no such file", "--data takes"]),
        ("missing.json", ["no such file"]),
        (#"{"kind": "moons""#, ["--data", "not a data spec"]),
        (#"{"kind": "moons", "colour": 3}"#, ["not a data spec", "colour"]),
        (#"{"kind": "moons", "train": -1, "test": 0}"#, ["not a data spec", "train"]),
        (#"{"kind": "moons", "train": 10, "test": 0, "noise": "high"}"#, ["not a data spec", "noise"]),
        (#"{"seed": 1, "data": {"kind": "moons", "train": 10, "test": 0}}"#, ["run config", "data section alone", "in a file"]),
        ("", ["--data is empty", "--data takes"]),
        ("  \n", ["--data is empty"]),
    ])
    func badTextSaysWhatDataTakes(text: String, words: [String]) {
        do {
            _ = try DataArgument.resolve(text)
            Issue.record("\(text) was accepted")
        } catch {
            let message = "\(error)"
            for w in words { #expect(message.contains(w), "\(text): \(message)") }
            #expect(!message.contains("\n"), "one line: \(message)")
        }
    }

    @Test func badFilesAreNamed() throws {
        let dir = try directory()
        let csv = dir + "/x.csv"
        try Data("1,2\n3,4\n".utf8).write(to: URL(fileURLWithPath: csv))
        let array = dir + "/array.json"
        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: array))
        let badConfig = dir + "/bad-config.json"
        var config = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(Presets.load("moons-mlp"))) as? [String: Any])
        var data = try #require(config["data"] as? [String: Any])
        data["train"] = 0   // a generator needs at least one training example
        config["data"] = data
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: badConfig))
        let badSection = dir + "/bad-section.json"
        try Data(#"{"kind": "spirals", "train": 10, "test": 0, "classes": 1}"#.utf8).write(to: URL(fileURLWithPath: badSection))
        for (text, word) in [(csv, "a CSV file goes in a data section"), (dir, "a directory"), (array, "not a JSON object"),
                             (badConfig, "train"), (badSection, "classes")] {
            #expect(throws: ConfigError.self) { try DataArgument.resolve(text) }
            do { _ = try DataArgument.resolve(text) } catch { #expect("\(error)".contains(word), "\(error)") }
        }
    }
}
