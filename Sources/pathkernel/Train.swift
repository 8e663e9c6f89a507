import ArgumentParser
import Foundation
import PKTrace
import PKTraining

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network and record the run into a trace file.",
        usage: "pathkernel train (--preset <preset> | --config <config>) [--out <out>]\n                 [<options>]",
        discussion: """
        The trace (SQLite) holds the model, the data, every step's learning rate, batch and loss, \
        and parameter checkpoints; its format is in Docs/trace-format.md. A run stopped at any \
        moment (Ctrl-C, kill -9, a full disk) leaves a valid trace of what was committed.
        --no-record trains exactly the same run and writes nothing (a baseline for timing). \
        --init FILE starts from a sparse network made by `pathkernel ntt` and trains it with its \
        mask fixed; the trace stores the mask (Docs/bandits-and-pruning.md).
        """)

    @Option(help: "A built-in preset (see `pathkernel presets`).")
    var preset: String?

    @Option(help: "A run config JSON file (see Docs/config.md).")
    var config: String?

    @Option(help: "Where to write the trace. Default: NAME.sqlite in the current folder.")
    var out: String?

    @Option(parsing: .unconditional, help: "Override the config's seed (0…18446744073709551615).",
            transform: OptionValue.integer(in: 0...UInt64.max))
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Override the number of steps (1…100000000).",
            transform: OptionValue.integer(in: TrainingSpec.stepsRange))
    var steps: Int?

    @Option(parsing: .unconditional, help: "Override the checkpoint interval k, a checkpoint every k steps (1…100000000; default: the config's training.checkpointEvery, 50 when it gives none).",
            transform: OptionValue.integer(in: TrainingSpec.stepsRange))
    var checkpointEvery: Int?

    @Option(name: .customLong("init"), help: "Start from a sparse init file (`pathkernel ntt --out`): its parameters, with its mask fixed (pruned weights stay 0).")
    var initFile: String?

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    @Flag(help: "Print no progress.")
    var quiet = false

    @Flag(help: "Train exactly as with recording, but write no trace (the recording-off baseline of a timing).")
    var noRecord = false

    func validate() throws {
        try checkThreadsEnvironment()
        if (preset == nil) == (config == nil) {
            throw ValidationError("give exactly one of --preset NAME or --config FILE.json")
        }
        if noRecord && (out != nil || force) {
            throw ValidationError("--no-record writes no trace: drop \(out != nil ? "--out" : "--force")")
        }
    }

    func run() throws {
        do {
            var cfg = try preset.map(Presets.load) ?? RunConfig.load(path: config!)
            if let seed { cfg.seed = seed }
            if let steps { cfg.training.steps = steps }
            if let checkpointEvery { cfg.training.checkpointEvery = checkpointEvery }
            var initial: [Double]? = nil
            if let initFile {
                let sparse = try SparseInit.load(path: initFile)
                try sparse.check(against: cfg, path: initFile)
                cfg.optimizer.parameterMask = sparse.mask
                initial = sparse.parameters
            }
            if noRecord {
                let trainer = try Trainer(config: cfg, initialParameters: initial)
                let stop = StopFlag.installSIGINT()
                let outcome = trainer.run(observers: quiet ? [] : [ProgressPrinter(label: cfg.name)], shouldStop: { stop.isSet })
                if !quiet { FileHandle.standardError.write(Data("nothing recorded (--no-record)\n".utf8)) }
                return try checkOutcome(outcome)
            }
            let path = out ?? "\(cfg.name).sqlite"
            let fm = FileManager.default
            if fm.fileExists(atPath: path) || fm.fileExists(atPath: path + "-wal") {
                guard force else {
                    if fm.fileExists(atPath: path) { throw ConfigError("\(path) exists; choose another --out or pass --force to replace it") }
                    throw ConfigError("\(path)-wal is left without its trace (deleted or moved without it, or its creation was interrupted); delete it, pass --force to replace it, or choose another --out")
                }
            }
            try OutputPath.check(path)   // before any work: a missing or read-only directory
            if force {
                for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: path + suffix) }
            }
            let trainer = try Trainer(config: cfg, initialParameters: initial)
            let recorder = TraceRecorder(path: path)
            var observers: [TrainingObserver] = [recorder]
            if !quiet { observers.append(ProgressPrinter(label: cfg.name)) }
            let stop = StopFlag.installSIGINT()
            let outcome = trainer.run(observers: observers, shouldStop: { stop.isSet })
            try recorder.finish()
            if !quiet { FileHandle.standardError.write(Data("trace written to \(path)\n".utf8)) }
            try checkOutcome(outcome)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    /// Exit status 0 for a finished run, 1 (with the reason) for a diverged or aborted one.
    private func checkOutcome(_ outcome: TrainingOutcome) throws {
        switch outcome.status {
        case .finished: return
        case .diverged: throw fail("run diverged: \(outcome.message ?? "")")
        case .aborted, .running: throw fail("run aborted: \(outcome.message ?? "")")
        }
    }
}

/// Set by SIGINT so the loop can stop cleanly and mark the trace `aborted`.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var source: DispatchSourceSignal?

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }

    static func installSIGINT() -> StopFlag {
        let flag = StopFlag()
        signal(SIGINT, SIG_IGN)
        let src = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        src.setEventHandler { flag.lock.lock(); flag.value = true; flag.lock.unlock() }
        src.resume()
        flag.source = src
        return flag
    }
}
