import Foundation

/// The built-in run configs: JSON files in `Traces/presets/` of the source tree. A preset's
/// `csv` data path is relative to that folder (its files live in `Traces/presets/data/`).
///
/// The folder is found, in order, from `$PATHKERNEL_PRESETS`, by walking up from the running
/// executable (so `.build/release/pathkernel` finds the checkout it was built from), and from
/// this source file's location at build time.
public enum Presets {
    public static let defaultPreset = "moons-mlp"

    public static func directory() throws -> URL {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["PATHKERNEL_PRESETS"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        var candidates: [URL] = []
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("Traces/presets"))
            dir = dir.deletingLastPathComponent()
        }
        let source = URL(fileURLWithPath: #filePath)   // …/Sources/PKTraining/Presets.swift
        candidates.append(source.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Traces/presets"))
        for c in candidates where fm.fileExists(atPath: c.path) { return c }
        throw ConfigError("cannot find the presets folder Traces/presets; set PATHKERNEL_PRESETS to it or use --config FILE.json")
    }

    /// Preset names, sorted.
    public static func names() throws -> [String] {
        let dir = try directory()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    public static func load(_ name: String) throws -> RunConfig {
        let dir = try directory()
        let path = dir.appendingPathComponent("\(name).json").path
        guard FileManager.default.fileExists(atPath: path) else {
            let known = (try? names().joined(separator: ", ")) ?? ""
            throw ConfigError("unknown preset '\(name)'; known presets: \(known)")
        }
        var config = try RunConfig.load(path: path)
        // A preset's data file is named relative to the presets folder (`data/sweep-relu.csv`).
        if config.data.kind == "csv", let file = config.data.path, !file.hasPrefix("/") {
            config.data.path = dir.appendingPathComponent(file).path
        }
        return config
    }
}
