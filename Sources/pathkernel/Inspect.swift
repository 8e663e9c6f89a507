import ArgumentParser
import Foundation
import PKTraining

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a trace: model, data, optimizer, steps, checkpoints, status and fit.",
        discussion: """
        Every checkpoint's checksum and every step row are checked, and every value against the \
        trace format's rules (the same check `analyze` runs first); problems are listed. Exit status: \
        0 when the trace is sound, 1 when a problem was found or the file cannot be read (as fsck).
        """)

    @Argument(help: "The trace file.")
    var path: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let summary: TraceSummary
        do { summary = try TraceSummary.make(path: path) } catch { throw fail("\(error)") }
        print(json ? summary.json() : summary.text(), terminator: json ? "\n" : "")
        if !summary.problems.isEmpty { throw ExitCode(1) }
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

