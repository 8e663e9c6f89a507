import ArgumentParser
import Foundation
import PKAnalysis
import PKNetworks
import PKNumerics
import PKReport
import PKTrace
import PKTraining

struct AnalysisOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How each step's segment is integrated: exact (through each query's kinks; the default for relu/leaky-relu MLPs and for layer networks of dense, conv2d, relu, leaky-relu, pooling and flatten layers; with residual blocks not on momentum/Adam routes), gauss (--nodes per step, the default elsewhere) or adaptive (with --adaptive TOL, which implies it).", valueName: "exact|gauss|adaptive"))
    var quadrature: AnalysisSettings.Quadrature?

    @Option(parsing: .unconditional, help: "Gauss–Legendre nodes per step (1…64) of --quadrature gauss and per sub-interval of adaptive.",
            transform: OptionValue.integer(in: AnalysisSettings.nodesRange))
    var nodes: Int = 4

    @Option(name: .customLong("adaptive"), parsing: .unconditional,
            help: ArgumentHelp("Adaptive quadrature: split segments until the total reconstruction error is below TOL (output units, > 0). For ReLU-like networks.", valueName: "TOL"),
            transform: OptionValue.number(in: AnalysisSettings.adaptiveRange))
    var adaptive: Double?

    @Option(name: .customLong("max-nodes"), parsing: .unconditional,
            help: ArgumentHelp("With --adaptive: at most N nodes per step (default 256: at most 64 times the nodes of q = 4); where a step reaches it the analysis goes on with the nodes it has and the report says so.", valueName: "N"),
            transform: OptionValue.integer(in: AnalysisSettings.maxNodesRange))
    var maxNodes: Int?

    @Option(help: "Which splits to report: test, train or both.")
    var queries: AnalysisSettings.Queries = .both

    @Option(parsing: .unconditional, help: ArgumentHelp("At most N held-out queries (the first N; 1…10000000).", valueName: "N"),
            transform: OptionValue.integer(in: AnalysisSettings.maxQueriesRange))
    var maxQueries: Int?

    @Option(help: "Keep full C×C kernel blocks or only their trace (default: full when it fits in about 200 MB).")
    var kernel: KernelMode?

    @Option(parsing: .unconditional, help: "Relative ridge ρ ≥ 0 for the ridge machines: λ = ρ·tr(K)/n.",
            transform: OptionValue.number(in: AnalysisSettings.ridgeRange))
    var ridge: Double = 1e-6

    @Option(help: "Compute precision: f64, or f32 (features, kernels and JVPs in float32; every path sum accumulated in float64).")
    var precision: AnalysisSettings.Precision = .f64

    @Option(help: "full: every kernel machine, dynamics, training points as queries. exact: only the exact decomposition, K^p and path-km on held-out queries (needs --queries test).")
    var scope: AnalysisSettings.Scope = .full

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Momentum runs: sum the two-time kernel over a window of earlier steps, dropping a step once μ^(t−s) is below TOL (0 < TOL < 1; its cut shows in the kernel-form residual). Default: the exact sum, run backwards in time.", valueName: "TOL"),
            transform: OptionValue.number(in: AnalysisSettings.momentumToleranceRange))
    var momentumTolerance: Double? = nil

    @Flag(help: "Analyze even when the stored weights are not updates of the recorded loss and optimizer (the step check fails: an unrecorded clip, penalty or clamp); the report is marked INCONSISTENT.")
    var allowInconsistentSteps = false

    var settings: AnalysisSettings {
        var s = AnalysisSettings(nodes: nodes, adaptiveTolerance: adaptive, queries: queries, maxQueries: maxQueries,
                                 kernel: kernel, ridge: ridge, precision: precision, scope: scope)
        s.momentumTolerance = momentumTolerance
        s.quadrature = quadrature
        s.maxNodes = maxNodes
        s.allowInconsistentSteps = allowInconsistentSteps ? true : nil
        return s
    }
}

extension AnalysisSettings.Queries: ExpressibleByArgument {}
extension AnalysisSettings.Precision: ExpressibleByArgument {}
extension AnalysisSettings.Scope: ExpressibleByArgument {}
extension AnalysisSettings.Quadrature: ExpressibleByArgument {}
extension KernelMode: ExpressibleByArgument {}
extension ReportFormat: ExpressibleByArgument {}

/// Shared by `analyze` and `demo`: reuse a stored analysis with the same settings while the trace
/// has not changed since it was computed, or compute and store one.
enum AnalysisRunner {
    static func run(path: String, settings: AnalysisSettings, force: Bool, quiet: Bool) throws -> AnalysisResult {
        let key = AnalysisStore.key(settings)
        let reader = try TraceReader.open(path)
        if !force, let stored = try reader.analysis(key: key) {
            let result = try AnalysisStore.decode(stored.resultJSON)
            guard let stale = try AnalysisStore.staleness(of: stored, result: result, now: reader.basis())
                    ?? AnalysisStore.predatesExactQuadrature(result, settings: settings) else {
                if !quiet { note("using the stored analysis with these settings (pass --force to recompute)") }
                return result
            }
            if !quiet { note("the stored analysis with these settings is out of date (\(stale)): recomputing it") }
        }
        // Checked and opened first, so that a trace that cannot be written fails now, not after the analysis.
        try AnalysisStore.checkWritable(path)
        let writer = try AnalysisWriter.open(path)
        defer { writer.close() }
        let before = try reader.basis()
        // The estimate first (a long run says so before it starts).
        if !quiet, let plan = try? PathAnalyzer(settings: settings).plan(reader: reader, alternatives: false) {
            note("estimate: \(ProgressBar.duration(plan.seconds)) at \(String(format: "%.0f", plan.gemmRate)) GFLOP/s per core × \(plan.threads), peak memory \(bytes(plan.peakMemoryBytes))\(plan.seconds > 600 ? " (long: `pathkernel analyze --plan \(path)` lists what would cut it)" : "")\(loadWarning())")
        }
        if !quiet, let advice = BLASInfo.current.slowCoreAdvice { note("warning: \(advice)") }
        // The bar counts estimated cost (AnalysisProgress), not steps: its ETA holds across phases.
        let bar = quiet ? nil : ProgressBar(total: 10_000, counts: false)
        var result = try PathAnalyzer(settings: settings).analyze(reader: reader) { p in
            let what = p.steps > 0 ? "\(p.phase.label) \(p.step)/\(p.steps)" : p.phase.label
            bar?.update(Int((10_000 * p.fraction).rounded(.down)), what, phase: p.phase.rawValue)
        }
        bar?.finish("analyzed \(result.run.steps) steps in \(ProgressBar.duration(result.seconds))")
        if let changed = try reader.basis().changes(since: before) {
            note("warning: the trace changed while it was analyzed (\(changed)); the analysis is stored as of when it started and will read as out of date: analyze again once the run has finished")
        }
        result.toolVersion = ToolInfo.version
        if let warning = try AnalysisStore.save(result, key: key, basis: before, into: writer) { note("warning: \(warning)") }
        return result
    }

    static func bytes(_ b: Double) -> String {
        b >= 1e9 ? String(format: "%.1f GB", b / 1e9) : String(format: "%.0f MB", b / 1e6)
    }

    /// A warning when other work holds the cores (the 1-minute load average above half the
    /// cores): the estimate assumes they are free.
    static func loadWarning() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let load = Double(text.split(separator: " ").first ?? "") else { return "" }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return load > 0.5 * Double(cores) ? String(format: "; machine load %.1f on %d cores: other work will slow it", load, cores) : ""
    }

    /// `analyze --plan`'s text.
    static func describe(_ p: AnalysisPlan, rateGiven: Bool = false) -> String {
        var out = "plan for \(p.trace): \(p.steps) steps, \(p.parameters) parameters, \(p.outputs) output\(p.outputs == 1 ? "" : "s"), \(p.queries) queries × \(p.train) training points\n"
        out += "kernel   \(p.kernel); K^p \(p.mode), \(p.precision)\n"
        let measured = p.measurements > 1 ? "median of \(p.measurements) measurements" : "measured now"
        out += "GEMM     \(String(format: "%.1f", p.gemmRate)) GFLOP/s per core (\(p.precision), \(rateGiven ? "given by --gemm-rate" : measured)) × \(p.threads) threads\(loadWarning())\n"
        if let r = p.productRate {
            let compact = p.compactProductRate.map { String(format: "; %.1f in the compact first layer's", $0) } ?? ""
            out += "kernels  \(String(format: "%.1f", r)) GFLOP/s per core in R's products\(compact) (our own kernel, \(p.precision), \(measured))\n"
        }
        if let s = p.symvSeconds {
            out += "memory   \(String(format: "%.2f", s * 1e9)) ns per element of a symmetric matrix-vector product (f64, one core, measured now)\n"
        }
        if let s = p.eigenSeconds {
            out += "eigen    \(String(format: "%.2f", s)) s per eigendecomposition of \(PathAnalyzer.eigenProbeRows) rows (f64, one core while another runs one, measured now), scaled by (m/\(PathAnalyzer.eigenProbeRows))³ to the ridge machines' m rows\n"
        }
        if let s = p.layerProbeSeconds, let f = p.layerSpeedFactor {
            out += "layers   \(String(format: "%.2f", s * 1e3)) ms for the layer probe's Jacobians (\(p.precision), one thread while \(p.threads) run it, measured now): the layers' non-GEMM work at \(String(format: "%.2f", f))× the reference time\n"
        }
        for (name, s) in p.activationSeconds.sorted(by: { $0.key < $1.key }) {
            out += "activ.   \(String(format: "%.1f", s * 1e9)) ns per \(name) evaluation with its derivative (\(p.precision), each of \(p.threads) threads at once, measured now)\n"
        }
        if !rateGiven, let advice = BLASInfo.current.slowCoreAdvice { out += "warning: \(advice)\n" }
        out += "\n"
        out += "phase                     work (GFLOP-eq)        time\n"
        for phase in p.phases {
            out += phase.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                + String(format: "%17.1f", phase.work / 1e9) + ProgressBar.duration(phase.seconds).leftPadded(12) + "\n"
        }
        out += "total".padding(toLength: 24, withPad: " ", startingAt: 0) + String(repeating: " ", count: 17)
            + ProgressBar.duration(p.seconds).leftPadded(12) + "   peak memory \(bytes(p.peakMemoryBytes))\n"
        if let k = p.kernelFlops { out += "(of which the backward pass's products with the batches: \(String(format: "%.1f", k / 1e12)) TFLOP)\n" }
        if !p.cheaper.isEmpty {
            out += "\nwhat would cut it:\n"
            for a in p.cheaper {
                out += "  " + a.option.rightPadded(50) + ProgressBar.duration(a.seconds).leftPadded(10)
                    + "   peak memory \(bytes(a.peakMemoryBytes))\n"
            }
        }
        return out
    }

    static func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Integrate the path kernel along a trace and build its kernel machines.",
        discussion: """
        Computes the exact path decomposition of the network's outputs (reconstruction residual), \
        the path kernel K^p, Domingos' coefficients, the kernel machines exact, path-km, \
        path-km-self, path-krr, ntk0-lin, ntk0-km and ntkT-krr, their fidelity to the network, the \
        kernel dynamics and the top training examples behind a few predictions (Docs/path-kernel.md). \
        The result is stored in the trace, keyed by its settings; `pathkernel report` prints it.
        """)

    @Argument(help: "The trace file.")
    var path: String

    @OptionGroup var options: AnalysisOptions

    @Flag(help: "Recompute even if an analysis with these settings is stored.")
    var force = false

    @Flag(help: "Print no progress.")
    var quiet = false

    @Flag(help: "Print the estimate only (work per phase, time at this machine's GEMM rate, peak memory, and the options that would cut it); analyze nothing.")
    var plan = false

    /// Hidden: `--plan` at a given GEMM rate instead of the one measured now (how Docs/benchmarks.md
    /// recomputes estimates against runs timed on a quiet machine; the activation times are still
    /// measured now).
    @Option(help: ArgumentHelp("With --plan: one core's GEMM rate in GFLOP/s to reckon at, instead of measuring it now.", visibility: .hidden))
    var gemmRate: Double?

    @Option(help: ArgumentHelp("Compute only shard I of N (0 ≤ I < N: the I-th of N equal parts of the queries, every step) into the part file --out; `pathkernel merge` combines the N parts into the analysis (Docs/scale-out.md).", valueName: "I/N"))
    var shard: String?

    @Option(help: ArgumentHelp("With --shard: where the part goes (written complete or not at all).", valueName: "PART"))
    var out: String?

    func validate() throws {
        try checkThreadsEnvironment()
        do { try options.settings.validate() } catch { throw ValidationError("\(error)") }
        if let shard {
            do { _ = try AnalysisShard(parsing: shard) } catch { throw ValidationError("\(error)") }
            guard out != nil else { throw ValidationError("--shard needs --out PART: a shard's part is written to a file, not stored in the trace") }
            guard !plan else { throw ValidationError("--plan estimates the whole analysis: drop --shard (a shard of N takes about 1/N of it)") }
        } else if out != nil {
            throw ValidationError("--out writes a shard's part: pass --shard I/N too (a whole analysis is stored in the trace)")
        }
        if let gemmRate {
            guard plan else { throw ValidationError("--gemm-rate sets the rate of --plan's estimate: pass --plan too") }
            guard gemmRate.isFinite && gemmRate > 0 else { throw ValidationError("--gemm-rate must be a positive number of GFLOP/s (got \(gemmRate))") }
        }
    }

    func run() throws {
        do {
            if let shard, let out {
                try runShard(try AnalysisShard(parsing: shard), out: out)
                return
            }
            if plan {
                let p = try PathAnalyzer(settings: options.settings).plan(reader: try TraceReader.open(path), gemmRate: gemmRate)
                print(AnalysisRunner.describe(p, rateGiven: gemmRate != nil), terminator: "")
                return
            }
            let result = try AnalysisRunner.run(path: path, settings: options.settings, force: force, quiet: quiet)
            let rec = result.reconstruction.test ?? result.reconstruction.train
            let steps = result.replay.checkedSteps.map { $0 > 0 ? "step check \(String(format: "%.1e", result.replay.largestMismatch))\(result.replay.inconsistent == true ? " (INCONSISTENT)" : ""), " : "" } ?? ""
            print("analysis stored in \(path): \(steps)reconstruction residual \(String(format: "%.1e", rec?.relativeResidual ?? .nan)); see `pathkernel report \(path)`")
        } catch {
            throw fail("\(error)")
        }
    }
}

extension Analyze {
    /// `--shard I/N --out PART`: the shard's part, written complete or not at all; the trace is only read.
    func runShard(_ shard: AnalysisShard, out: String) throws {
        let reader = try TraceReader.open(path)
        try OutputPath.check(out)
        let bar = quiet ? nil : ProgressBar(total: 10_000, counts: false)
        let part = try PathAnalyzer(settings: options.settings).analyzeShard(reader: reader, shard: shard, toolVersion: ToolInfo.version) { p in
            let what = p.steps > 0 ? "\(p.phase.label) \(p.step)/\(p.steps)" : p.phase.label
            bar?.update(Int((10_000 * p.fraction).rounded(.down)), what, phase: p.phase.rawValue)
        }
        try part.write(to: out)
        let rows = part.arrays["n_sum"]?.rows ?? 0
        bar?.finish("shard \(shard.description) done")
        print("shard \(shard.description) of \(path) (\(rows) query rows) written to \(out); when all \(shard.count) are done: `pathkernel merge \(path) PART...`")
    }
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Combine the parts of a sharded analysis and store the analysis in the trace.",
        discussion: """
        The parts come from `pathkernel analyze TRACE --shard I/N --out PART`, one per I = 0 … \
        N − 1, with the same options. merge checks that they are of this trace as it is now, of \
        one set of options and complete (each shard once), combines them, builds the kernel \
        machines, fidelity and attribution, and stores the analysis in the trace as `analyze` \
        would; `pathkernel report TRACE` prints it (Docs/scale-out.md).
        """)

    @Argument(help: "The trace file.")
    var path: String

    @Argument(help: "The parts, one per shard (any order).")
    var parts: [String] = []

    @Flag(help: "Print no progress.")
    var quiet = false

    func validate() throws {
        try checkThreadsEnvironment()
        guard !parts.isEmpty else { throw ValidationError("merge needs the parts: pathkernel merge TRACE PART... (written by `analyze TRACE --shard I/N --out PART`)") }
    }

    func run() throws {
        do {
            var files: [PartFile] = []
            for name in parts {
                do { files.append(try PartFile.read(name)) } catch { throw AnalysisError("\(name): \(error)") }
            }
            let reader = try TraceReader.open(path)
            try AnalysisStore.checkWritable(path)
            let writer = try AnalysisWriter.open(path)
            defer { writer.close() }
            let before = try reader.basis()
            var (result, settings) = try PathAnalyzer.merge(reader: reader, parts: files, names: parts, toolVersion: ToolInfo.version) { finished in
                if !quiet && !finished { AnalysisRunner.note("merged \(files.count) parts; fitting the kernel machines") }
            }
            result.toolVersion = ToolInfo.version
            if let warning = try AnalysisStore.save(result, key: AnalysisStore.key(settings), basis: before, into: writer) {
                AnalysisRunner.note("warning: \(warning)")
            }
            let rec = result.reconstruction.test ?? result.reconstruction.train
            print("analysis of \(files.count) shards stored in \(path): reconstruction residual \(String(format: "%.1e", rec?.relativeResidual ?? .nan)); see `pathkernel report \(path)`")
        } catch {
            throw fail("\(error)")
        }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print the stored analysis of a trace as text, Markdown, JSON or HTML.",
        discussion: """
        With several stored analyses, the newest is shown. An analysis computed before the trace \
        last changed (more steps, a new checkpoint, a new status) is printed marked OUT OF DATE, \
        with the `pathkernel analyze … --force` command that refreshes it.

        --format html writes one self-contained page (inline SVG and CSS, nothing fetched) with \
        figures: kernel machines' errors, the kernel along training with the recorded loss and \
        learning rate, and for image data the training images behind predictions.

        Example:  pathkernel report run.sqlite --format html --out report.html
        """)

    @Argument(help: "The trace file.")
    var path: String

    @Option(help: "text (80 columns), markdown, json or html (a page; see Docs/cli.md).")
    var format: ReportFormat = .text

    @Option(help: "Write the report to FILE instead of standard output.")
    var out: String?

    @Flag(help: "With --format html: add the empirical NTK's eigenvalues on the training points at the first and the last step (computes two n × n kernels, trace over outputs).")
    var spectrum = false

    func validate() throws {
        if spectrum && format != .html { throw ValidationError("--spectrum needs --format html") }
    }

    func run() throws {
        do {
            let reader = try TraceReader.open(path)
            guard let stored = try reader.analyses().last else {
                throw AnalysisError("\(path) holds no analysis yet; run `pathkernel analyze \(path)` first")
            }
            var result = try AnalysisStore.decode(stored.resultJSON)
            if let stale = AnalysisStore.staleness(of: stored, result: result, now: try reader.basis()) {
                // Printed as it is, marked as out of date in the report itself and on standard error.
                let line = "\(stale); run `\(AnalysisStore.refreshCommand(path: path, stored: stored))` to refresh it"
                result.run.notes.insert("OUT OF DATE: " + line, at: 0)
                AnalysisRunner.note("warning: the stored analysis is out of date: " + line)
            }
            // HTML adds what the trace holds beside the result: per-step loss and learning rate, input
            // images, spectra. What cannot be read is left out, with a note on the page and on standard error.
            let text: String
            if format == .html {
                let (data, problems) = ReportData.read(reader, for: result, spectrum: spectrum)
                for p in problems {
                    result.run.notes.append("HTML report: " + p)
                    AnalysisRunner.note("warning: " + p)
                }
                text = Report.html(result, data: data)
            } else {
                text = Report.render(result, format: format)
            }
            if let out {
                try OutputPath.write(text, to: out)
            } else {
                print(text, terminator: "")
            }
        } catch {
            throw fail("\(error)")
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the default preset, analyze it and print the report (under a minute).")

    @Option(help: "The preset to train.")
    var preset: String = Presets.defaultPreset

    @Option(help: "Where to keep the trace.")
    var out: String = "out/demo.sqlite"

    func validate() throws {
        try checkThreadsEnvironment()
    }

    func run() throws {
        do {
            let cfg = try Presets.load(preset)
            let fm = FileManager.default
            let dir = URL(fileURLWithPath: out).deletingLastPathComponent()
            try? fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try OutputPath.check(out)   // says why when the directory could not be made or is not writable
            for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: out + suffix) }
            let trainer = try Trainer(config: cfg)
            let recorder = TraceRecorder(path: out)
            let outcome = trainer.run(observers: [recorder, ProgressPrinter(label: cfg.name)])
            try recorder.finish()
            guard outcome.status == .finished else { throw fail("training \(outcome.status.rawValue): \(outcome.message ?? "")") }
            let result = try AnalysisRunner.run(path: out, settings: AnalysisSettings(), force: true, quiet: false)
            print(Report.render(result, format: .text), terminator: "")
            FileHandle.standardError.write(Data("trace and analysis kept in \(out) (pathkernel report \(out) --format html --out report.html: the report with figures)\n".utf8))
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
    func rightPadded(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
