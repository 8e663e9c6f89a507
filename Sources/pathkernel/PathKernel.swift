import ArgumentParser
import Foundation
import PKTrace
import PKTraining

@main
struct PathKernel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pathkernel",
        abstract: "Turn a gradient-descent training run into an explicit kernel machine.",
        discussion: """
        Record a run into a SQLite trace with `train`, look at it with `inspect`.
        Start with:  pathkernel train --preset moons-mlp --out moons.sqlite && pathkernel inspect moons.sqlite
        """,
        version: ToolInfo.version,
        subcommands: [Demo.self, Train.self, Inspect.self, Analyze.self, ReportCommand.self, ListPresets.self, Bench.self]
    )
}

/// Prints a one-line error and exits non-zero (no stack trace, no usage dump).
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}
