import Foundation
import PKData
import PKNumerics

/// What a command's `--data TEXT` names (`cntk`, `ntrf`, `bandit`; Docs/cli.md): one reading
/// shared by every command that takes a data set without a run.
///
/// `TEXT` is, in this order:
/// - inline JSON (starts with `{`): a data section (Docs/datasets.md); a whole run config inline
///   is refused with a line that says to give its data section or put it in a file;
/// - `fashion-mnist`: the IDX files in `DataSpec.defaultFashionMNISTDirectory`;
/// - an existing file: a run config (a JSON object with a `data` key: its data section, seed and
///   a sequential model's `input`) or a bare data section;
/// - a preset name (`pathkernel presets`): its data section, seed and model input.
///
/// Errors are one-line `ConfigError`s that say what `--data` takes.
public struct DataArgument: Sendable {
    /// The data section.
    public let spec: DataSpec
    /// The run config's seed, when `TEXT` named a run config or a preset.
    public let seed: UInt64?
    /// The run config's sequential model's `input` `[C, H, W]`, when it has one.
    public let input: [Int]?
    /// What `TEXT` was, for a report's header (`preset moons-mlp`, a file name, `inline data spec`).
    public let name: String

    public init(spec: DataSpec, seed: UInt64? = nil, input: [Int]? = nil, name: String) {
        self.spec = spec
        self.seed = seed
        self.input = input
        self.name = name
    }

    /// What every error says `--data` takes.
    public static let accepted = "--data takes a preset name (`pathkernel presets`), a JSON file (a run config or a data section), inline JSON such as {\"kind\": \"idx\", \"train\": 100, \"test\": 50}, or fashion-mnist"

    /// The forms `--data` takes, in the words of every command's `--help` (`cntk`, `ntrf`,
    /// `bandit` interpolate it into their discussion, so the three say the same).
    public static let forms = "a preset name (`pathkernel presets`: its data section and seed), a run config file (likewise), a file holding a data section, a data section as inline JSON such as '{\"kind\": \"moons\", \"train\": 100, \"test\": 0}' (Docs/datasets.md), or fashion-mnist (the IDX files in \(DataSpec.defaultFashionMNISTDirectory))"

    /// The `--data` option's one-line help.
    public static let optionHelp = "A preset, a run config or data-section .json file, inline JSON, or fashion-mnist."

    /// `TEXT` read as above.
    public static func resolve(_ text: String) throws -> DataArgument {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ConfigError("--data is empty; \(accepted)") }
        if trimmed.hasPrefix("{") {
            let bytes = Data(trimmed.utf8)
            if let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any], object["data"] != nil, object["kind"] == nil {
                throw ConfigError("--data: inline JSON is a data section, and this is a run config (it has a 'data' key); give its data section alone, or save the config in a file and give the file's path")
            }
            return DataArgument(spec: try section(bytes, source: "--data"), name: "inline data spec")
        }
        if trimmed == "fashion-mnist" {
            return DataArgument(spec: DataSpec(kind: "idx"), name: "fashion-mnist (\(DataSpec.defaultFashionMNISTDirectory))")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: trimmed, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else {
                throw ConfigError("--data \(trimmed): a directory; an IDX directory goes in a data section, e.g. --data '{\"kind\": \"idx\", \"path\": \"\(trimmed)\"}'")
            }
            guard let bytes = FileManager.default.contents(atPath: trimmed) else {
                throw ConfigError("\(trimmed): cannot read the file")
            }
            guard let object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
                throw ConfigError("\(trimmed): not a JSON object (a run config or a data section); a CSV file goes in a data section, e.g. --data '{\"kind\": \"csv\", \"path\": \"\(trimmed)\", \"task\": \"binary\"}'")
            }
            if object["data"] != nil {
                let config = try RunConfig.decode(bytes, source: trimmed)
                return DataArgument(spec: config.data, seed: config.seed, input: config.model.input, name: trimmed)
            }
            return DataArgument(spec: try section(bytes, source: trimmed), name: trimmed)
        }
        guard !trimmed.contains("/") && !trimmed.hasSuffix(".json") else {
            throw ConfigError("\(trimmed): no such file; \(accepted)")
        }
        if let names = try? Presets.names(), names.contains(trimmed) {
            let config = try Presets.load(trimmed)
            return DataArgument(spec: config.data, seed: config.seed, input: config.model.input, name: "preset \(trimmed)")
        }
        var unknown = "unknown preset '\(trimmed)'"
        if let names = try? Presets.names(), let guess = ConfigProblem.closest(to: trimmed, among: names) { unknown += "; did you mean '\(guess)'?" }
        throw ConfigError("--data \(trimmed): not a preset, a file, inline JSON or fashion-mnist (\(unknown)); \(accepted)")
    }

    /// A data section from JSON bytes, its decoding error in one line.
    static func section(_ json: Data, source: String) throws -> DataSpec {
        do {
            return try JSONDecoder().decode(DataSpec.self, from: json)
        } catch let error as DecodingError {
            throw ConfigError("\(source): not a data spec (Docs/datasets.md): \(ConfigError.describe(error, json: json))")
        }
    }
}
