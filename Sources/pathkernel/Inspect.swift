import ArgumentParser
import Foundation
import PKTraining

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a trace: model, data, optimizer, steps, checkpoints, status and fit.",
        discussion: "Every checkpoint's checksum and every step row are checked; problems are listed.")

    @Argument(help: "The trace file.")
    var path: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        do {
            let summary = try TraceSummary.make(path: path)
            print(json ? summary.json() : summary.text(), terminator: json ? "\n" : "")
        } catch {
            throw fail("\(error)")
        }
    }
}

struct ListPresets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presets",
        abstract: "List the built-in run presets, one line each.")

    func run() throws {
        do {
            let names = try Presets.names()
            let width = names.map(\.count).max() ?? 0
            for n in names {
                let c = try Presets.load(n)
                print(n.padding(toLength: width + 2, withPad: " ", startingAt: 0) + (c.description ?? ""))
            }
        } catch {
            throw fail("\(error)")
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark and print its table (never part of the tests).",
        discussion: "recording: the cost of recording a run with a checkpoint every step, against the same run with recording off.")

    @Option(help: "The workload: recording.")
    var workload: String = "recording"

    @Option(help: "The preset to train.")
    var preset: String = "fmnist-mlp"

    @Option(help: "Timed repeats (after one warm-up).")
    var repeats: Int = 3

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard workload == "recording" else { throw fail("unknown workload '\(workload)'; known: recording") }
        do {
            let cfg = try Presets.load(preset)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pathkernel-bench-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let result = try RecordingBenchmark.run(config: cfg, repeats: repeats, directory: dir) {
                FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
            }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(["recording": result]), as: UTF8.self))
            } else {
                print(result.text(), terminator: "")
            }
        } catch {
            throw fail("\(error)")
        }
    }
}
