import ArgumentParser
import Foundation
import PKAnalysis
import PKReport
import PKSweep
import PKTrace
import PKTraining

/// `pathkernel sweep`: a config trained at several hidden widths and seeds, each run's
/// over-parameterization diagnostics, the per-width table and the log–log slopes
/// (Docs/ntk-family.md, "The width sweep"; contract §5).
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Train a config at several hidden widths; how the diagnostics scale.",
        usage: "pathkernel sweep (--preset <preset> | --config <config>)\n                 [--widths <m,m,…>] [--seeds <k>] [<options>]",
        discussion: """
        Every hidden width of the config's MLP is set to m, everything else kept (the \
        parameterization, η, steps, data; the data are drawn once, with the config's seed). \
        Each (m, seed) is trained and recorded as DIR/m<m>-seed<s>.sqlite, then its \
        over-parameterization diagnostics are computed as `analyze` computes them, without \
        the path-kernel analysis (`pathkernel analyze` on a kept trace gives it). The table: \
        per width the seed means (± their spread) of the relative travel τ_l of each layer, \
        the total travel, the pattern flips of each hidden layer, the kernel change, λ_min \
        of Θ̂ at w_0 against the analytic λ_min, the training loss and, with held-out data, \
        the beyond-kernel gap; then the slopes of ln(mean) against ln(m). DIR/sweep.json \
        holds the same as --json. Docs/ntk-family.md.

        Example:  pathkernel sweep --preset sweep-relu
                  pathkernel sweep --config run.json --widths 64,256,1024,4096 --seeds 4
        """)

    @Option(help: "A built-in preset (see `pathkernel presets`), e.g. sweep-relu.")
    var preset: String?

    @Option(help: "A run config JSON file (see Docs/config.md) with an MLP.")
    var config: String?

    @Option(help: ArgumentHelp("The hidden widths, comma-separated (default 64,256,1024).", valueName: "m,m,…"))
    var widths: String?

    @Option(parsing: .unconditional, help: "Seeds per width: the config's seed and the next ones (1…1000; default 4).",
            transform: OptionValue.integer(in: WidthSweepRunner.seedsRange))
    var seeds: Int = WidthSweepRunner.defaultSeeds

    @Option(help: ArgumentHelp("Where to keep the traces (default NAME-sweep).", valueName: "dir"))
    var out: String?

    @Option(parsing: .unconditional, help: "Override the checkpoint interval of every run (1…100000000).",
            transform: OptionValue.integer(in: TrainingSpec.stepsRange))
    var checkpointEvery: Int?

    @Flag(help: "Replace this sweep's traces if DIR has them.")
    var force = false

    @Flag(help: "Print JSON instead of the table.")
    var json = false

    @Flag(help: "Print no progress.")
    var quiet = false

    /// `64,256,1024` as integers; a one-line error for anything else.
    static func parseWidths(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try parts.map { p in
            guard let m = Int(p) else {
                throw ValidationError("--widths \(text): '\(p)' is not a whole number; give widths like 64,256,1024")
            }
            return m
        }
    }

    func validate() throws {
        try checkThreadsEnvironment()
        if (preset == nil) == (config == nil) {
            throw ValidationError("give exactly one of --preset NAME or --config FILE.json")
        }
        if let widths {
            do { _ = try WidthSweepRunner.checkWidths(try Self.parseWidths(widths)) } catch let e as ConfigError {
                throw ValidationError(e.description)
            }
        }
    }

    func run() throws {
        do {
            var cfg = try preset.map(Presets.load) ?? RunConfig.load(path: config!)
            if let checkpointEvery { cfg.training.checkpointEvery = checkpointEvery }
            let widthList = try widths.map(Self.parseWidths) ?? WidthSweepRunner.defaultWidths
            let runner = try WidthSweepRunner(config: cfg, widths: widthList, seeds: seeds, directory: out ?? "\(cfg.name)-sweep",
                                              force: force)
            if !quiet {
                let total = runner.widths.count * runner.seeds.count
                AnalysisRunner.note("sweep \(cfg.name): widths \(runner.widths.map(String.init).joined(separator: ", ")) × \(runner.seeds.count) seed\(runner.seeds.count == 1 ? "" : "s") = \(total) runs, \(cfg.training.steps) steps each; traces in \(runner.directory) (checkpoints about \(AnalysisRunner.bytes(runner.checkpointBytes)))\(AnalysisRunner.loadWarning())")
                if cfg.model.parameterization == .standard {
                    AnalysisRunner.note("note: parameterization standard: a fixed η is not comparable across widths (the NTK grows like m; stable GD needs η ∝ 1/m)")
                }
            }
            let stop = StopFlag.installSIGINT()
            let result = try runner.run(progress: { p in
                guard !quiet else { return }
                let loss = p.trainingLoss.map { String(format: "%.3g", $0) } ?? "–"
                let eta = p.eta.map { ", ETA \(ProgressBar.duration($0)) (by parameter count from m = \(p.width))" } ?? ""
                AnalysisRunner.note("[\(p.done)/\(p.total)] m = \(p.width), seed \(p.seed) (\(p.parameters) parameters): trained in \(ProgressBar.duration(p.trainSeconds)), diagnostics \(ProgressBar.duration(p.diagnosticSeconds)), training loss \(loss); elapsed \(ProgressBar.duration(p.elapsed))\(eta)")
            }, shouldStop: { stop.isSet })
            let jsonText = Report.sweepJSON(result)
            do {
                try Data(jsonText.utf8).write(to: URL(fileURLWithPath: runner.summaryPath), options: .atomic)
            } catch {
                AnalysisRunner.note("warning: \(runner.summaryPath) could not be written (\(error.localizedDescription))")
            }
            print(json ? jsonText : Report.sweepText(result), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }
}
