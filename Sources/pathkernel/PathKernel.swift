import ArgumentParser
import Foundation
import PKNumerics
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
        subcommands: [Demo.self, Train.self, Inspect.self, Analyze.self, Merge.self, ReportCommand.self, ListPresets.self, Bench.self, KernelCommand.self, NTKCommand.self, PredictLinear.self, NTRFCommand.self, CNTKCommand.self, BanditCommand.self, SweepCommand.self, NTTCommand.self]
    )

    /// ArgumentParser's `main`, except that a bad command line is one line on standard error,
    /// `error: …`, like every other error (exit status 64). Help and `--version` print as usual.
    static func main() {
        AllocatorPolicy.apply()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            // `fail` has printed its line already (ExitCode); help and version requests exit 0.
            if error is ExitCode || code == .success { exit(withError: error) }
            var line = message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
            // About the command line (an option, an argument): point to the command's help.
            if (line.contains("--") || line.contains("<") || line.contains("argument")) && !line.contains("--help") {
                line += " (see `pathkernel\(subcommandName().map { " " + $0 } ?? "") --help`)"
            }
            FileHandle.standardError.write(Data("error: \(line)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }

    /// The subcommand named on the command line, if any.
    static func subcommandName() -> String? {
        let names = configuration.subcommands.map { $0._commandName }
        return CommandLine.arguments.dropFirst().first { names.contains($0) }
    }
}

/// Prints a one-line error and exits non-zero (no stack trace, no usage dump).
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// Refuses a bad `PATHKERNEL_THREADS` (0, -1, abc) at the start of a command that uses threads.
func checkThreadsEnvironment() throws {
    do { _ = try Parallel.threadsFromEnvironment() } catch { throw ValidationError("\(error)") }
}

/// Parsers for numeric options: the value is checked against the setting's range (the library's),
/// and a bad one is reported as `The value '-1' is invalid for '--max-queries <N>': must be an
/// integer in 1…10000000`. Options that take numbers use `parsing: .unconditional`, so that a
/// negative value reaches this check instead of being read as an option name.
enum OptionValue {
    struct Invalid: Error, CustomStringConvertible { let description: String }

    static func integer<T: FixedWidthInteger & Sendable>(in range: ClosedRange<T>) -> @Sendable (String) throws -> T {
        { text in
            guard let v = T(text.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
                throw Invalid(description: "must be \(ConfigLimits.describe(range))")
            }
            return v
        }
    }

    static func number(in range: NumberRange) -> @Sendable (String) throws -> Double {
        { text in
            guard let v = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
                throw Invalid(description: "must be \(range)")
            }
            return v
        }
    }
}
