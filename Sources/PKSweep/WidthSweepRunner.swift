import Foundation
import PKAnalysis
import PKNumerics
import PKReport
import PKTrace
import PKTraining

/// `pathkernel sweep` (ntk-family contract §5, "Width sweep"; Docs/ntk-family.md "The width
/// sweep"): trains a config at every hidden width `m` of a list and several seeds with the
/// project's trainer (`Trainer`, `TraceRecorder`: every run is an ordinary trace, kept), computes
/// each run's over-parameterization diagnostics (`RunDiagnostics`: the analyzer's code, without
/// the path-kernel analysis) and tabulates them (`WidthSweep`).
///
/// Everything but the hidden widths and the seed is the config's: parameterization, σ_w, σ_b,
/// activation, optimizer and η, steps, loss. The data are drawn once, with the config's seed,
/// and every run trains on them; seed `s` draws the initialization (and the minibatch order).
/// Runs go widths ascending, seeds in order within a width, one after the other.
public struct WidthSweepRunner {
    public let base: RunConfig
    /// Ascending, distinct.
    public let widths: [Int]
    public let seeds: [UInt64]
    /// Where the traces go (created when missing).
    public let directory: String

    /// The widths and seed count of a sweep that gives neither: the `sweep-relu` preset's sweep,
    /// which finishes in minutes on 2 cores (Docs/ntk-family.md).
    public static let defaultWidths = [64, 256, 1024]
    public static let defaultSeeds = 4
    public static let seedsRange = 1...1000
    /// Most runs (widths × seeds).
    public static let maxRuns = 10_000

    /// Checks everything before any work and throws a `ConfigError` in one line: a network with
    /// no hidden width (a layer network, a linear model), fewer than two distinct widths, a width
    /// out of range or above the parameter limit, seeds past `UInt64.max`, traces already in
    /// `directory` (unless `force`, which deletes them), a directory that cannot be written.
    public init(config: RunConfig, widths: [Int], seeds count: Int, directory: String, force: Bool) throws {
        let spec = config.model
        guard spec.kind == "mlp" else {
            throw ConfigError("sweep varies the hidden widths of an MLP (model.kind \"mlp\"); this config's network is a layer list (model.kind \"\(spec.kind)\"): no width to vary")
        }
        guard spec.layers.count >= 3 else {
            throw ConfigError("sweep varies the hidden widths, and model.layers \(spec.layers) has no hidden layer (a linear model): add one, e.g. [\(spec.layers.first ?? 1), 64, \(spec.layers.last ?? 1)]")
        }
        guard Self.seedsRange.contains(count) else {
            throw ConfigError("--seeds must be \(ConfigLimits.describe(Self.seedsRange)), got \(count)")
        }
        let sorted = try Self.checkWidths(widths)
        guard sorted.count * count <= Self.maxRuns else {
            throw ConfigError("\(sorted.count) widths × \(count) seeds are \(sorted.count * count) runs, more than \(Self.maxRuns)")
        }
        let (last, overflow) = config.seed.addingReportingOverflow(UInt64(count - 1))
        guard !overflow else {
            throw ConfigError("the seeds would run past \(UInt64.max) (the config's seed \(config.seed) + \(count - 1)): use a smaller seed")
        }
        // Every width's config is valid (the parameter limit, above all) before anything is trained.
        for m in sorted {
            do { try Self.widened(config, width: m).validate() } catch {
                throw ConfigError("width \(m): \(error)")
            }
        }
        base = config
        self.widths = sorted
        seeds = Array(config.seed...last)
        self.directory = directory
        try prepareDirectory(force: force)
    }

    /// The widths ascending; throws a `ConfigError` for a width out of range, a width given
    /// twice, or fewer than two widths.
    public static func checkWidths(_ widths: [Int]) throws -> [Int] {
        let sorted = widths.sorted()
        if let out = sorted.first(where: { !(1...ConfigLimits.maxWidth).contains($0) }) {
            throw ConfigError("--widths: every width must be \(ConfigLimits.describe(1...ConfigLimits.maxWidth)), got \(out)")
        }
        if let dup = zip(sorted, sorted.dropFirst()).first(where: { $0 == $1 }) {
            throw ConfigError("--widths: \(dup.0) appears twice; give each width once")
        }
        guard sorted.count >= 2 else {
            throw ConfigError("--widths: a slope needs at least two widths, got \(sorted.count) (e.g. --widths 64,256,1024)")
        }
        return sorted
    }

    /// The config with every hidden width set to `m`.
    public static func widened(_ config: RunConfig, width m: Int) -> RunConfig {
        var c = config
        let layers = config.model.layers
        c.model.layers = [layers[0]] + Array(repeating: m, count: layers.count - 2) + [layers[layers.count - 1]]
        return c
    }

    /// The trace of width `m` and seed `s`: `DIR/m<m>-seed<s>.sqlite`.
    public func tracePath(width m: Int, seed s: UInt64) -> String {
        (directory as NSString).appendingPathComponent("m\(m)-seed\(s).sqlite")
    }

    /// The summary written next to the traces: `DIR/sweep.json` (`Report.sweepJSON`).
    public var summaryPath: String { (directory as NSString).appendingPathComponent("sweep.json") }

    /// Parameters of the network at width `m`.
    public func parameters(width m: Int) -> Int {
        let l = Self.widened(base, width: m).model.layers
        return zip(l, l.dropFirst()).reduce(0) { $0 + $1.1 * ($1.0 + (base.model.bias ? 1 : 0)) }
    }

    /// Bytes of float64 weights the traces' checkpoints hold (at 0, every `checkpointEvery` steps
    /// and at `T`), over every run: most of the traces' size.
    public var checkpointBytes: Double {
        let T = base.training.steps, k = base.training.checkpointEvery
        let checkpoints = T / k + 1 + (T % k == 0 ? 0 : 1)
        let bytesPerWeight = base.training.precision == .float32 ? 4.0 : 8.0
        return widths.reduce(0.0) { $0 + Double(parameters(width: $1)) * bytesPerWeight * Double(checkpoints) } * Double(seeds.count)
    }

    /// Creates the directory; refuses (or with `force` deletes) traces of this sweep already there.
    private func prepareDirectory(force: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConfigError("--out \(directory) is a file; give a directory for the traces") }
        } else {
            do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw ConfigError("cannot create the directory \(directory) for the traces (\(error.localizedDescription))")
            }
        }
        let existing = widths.flatMap { m in seeds.map { tracePath(width: m, seed: $0) } }
            .filter { p in ["", "-wal"].contains { fm.fileExists(atPath: p + $0) } }
        if let first = existing.first {
            guard force else {
                throw ConfigError("\(first) exists\(existing.count > 1 ? " (and \(existing.count - 1) more of this sweep's traces)" : ""); choose another --out or pass --force to replace them")
            }
            for p in existing { for suffix in ["", "-wal", "-shm"] { try? fm.removeItem(atPath: p + suffix) } }
        }
        do { try OutputPath.check(tracePath(width: widths[0], seed: seeds[0])) } catch {
            throw ConfigError("\(error)")
        }
    }

    // MARK: Running

    /// What `run` reports after each run, for the progress lines.
    public struct Progress: Sendable {
        /// Runs done (1-based count) and in all.
        public let done: Int, total: Int
        public let width: Int, seed: UInt64
        public let parameters: Int
        public let trainSeconds: Double, diagnosticSeconds: Double
        public let trainingLoss: Double?
        /// Wall seconds since the sweep started.
        public let elapsed: Double
        /// Estimated seconds left: the remaining runs' parameters times the seconds per parameter
        /// of the widest width done so far (its mean over the seeds done); nil when done.
        public let eta: Double?
    }

    /// Trains and diagnoses every run, calling `progress` after each; `shouldStop` is polled by
    /// the training loop (a stop ends the sweep with an error, the traces so far kept). Throws a
    /// one-line error naming the run when a run does not finish (diverged: under `standard` a
    /// fixed η diverges at large widths) or its trace cannot be written or read.
    public func run(progress: (Progress) -> Void = { _ in }, shouldStop: @escaping () -> Bool = { false }) throws -> WidthSweep {
        let started = Date()
        let data = try base.data.load(seed: base.seed)
        var runs: [WidthSweep.Run] = []
        let total = widths.count * seeds.count
        for m in widths {
            for s in seeds {
                var config = Self.widened(base, width: m)
                config.seed = s
                config.name = "\(base.name)-m\(m)-seed\(s)"
                let path = tracePath(width: m, seed: s)
                let trainStart = Date()
                let trainer = try Trainer(config: config, data: data)
                let recorder = TraceRecorder(path: path)
                let outcome = trainer.run(observers: [recorder], shouldStop: shouldStop)
                try recorder.finish()
                let trainSeconds = Date().timeIntervalSince(trainStart)
                guard outcome.status == .finished else {
                    let hint = base.model.parameterization == .standard && outcome.status == .diverged
                        ? " (under standard a fixed η diverges at large widths: it must shrink like 1/m)" : ""
                    throw ConfigError("width \(m), seed \(s): the run \(outcome.status.rawValue) after \(outcome.stepsDone) steps\(outcome.message.map { " (\($0))" } ?? "")\(hint); its trace is kept in \(path)")
                }
                let diagnosticStart = Date()
                let d = try RunDiagnostics.compute(trace: path)
                let diagnosticSeconds = Date().timeIntervalSince(diagnosticStart)
                runs.append(.init(width: m, seed: s, trace: path, parameters: d.parameters, trainSeconds: trainSeconds,
                                  diagnosticSeconds: diagnosticSeconds, trainingLoss: d.trainingLoss, diagnostics: d.diagnostics))
                progress(Progress(done: runs.count, total: total, width: m, seed: s, parameters: d.parameters, trainSeconds: trainSeconds,
                                  diagnosticSeconds: diagnosticSeconds, trainingLoss: d.trainingLoss,
                                  elapsed: Date().timeIntervalSince(started), eta: eta(runs)))
            }
        }
        return summary(runs, data: data.train.name, train: data.train.count, heldOut: data.test.count,
                       seconds: Date().timeIntervalSince(started))
    }

    /// Seconds left after `runs` (see `Progress.eta`).
    func eta(_ runs: [WidthSweep.Run]) -> Double? {
        guard let widest = runs.last?.width else { return nil }
        let done = runs.filter { $0.width == widest }
        let perParameter = done.reduce(0.0) { $0 + $1.trainSeconds + $1.diagnosticSeconds } / Double(done.count * max(parameters(width: widest), 1))
        let remaining = widths.flatMap { m in seeds.map { (m, $0) } }.dropFirst(runs.count)
        guard !remaining.isEmpty else { return nil }
        return remaining.reduce(0.0) { $0 + perParameter * Double(parameters(width: $1.0)) }
    }

    /// The `WidthSweep` of `runs`: the header, the table's quantities and the notes.
    public func summary(_ runs: [WidthSweep.Run], data: String, train: Int, heldOut: Int, seconds: Double) -> WidthSweep {
        let spec = base.model
        var layers = spec.layers.map(String.init)
        for i in 1..<(layers.count - 1) { layers[i] = "m" }
        var model = "MLP \(layers.joined(separator: "-")) \(spec.activation.rawValue)"
        model += spec.bias ? ", σ_w \(spec.sigmaW), σ_b \(spec.sigmaB)" : ", σ_w \(spec.sigmaW), no bias"
        var notes: [String] = []
        if spec.parameterization == .standard {
            notes.append("parameterization standard: a fixed η is not comparable across widths (the NTK grows like m, so stable gradient descent needs η ∝ 1/m; contract §5 and §1): the slopes mix the width with the effective step size")
        }
        // Each run's diagnostic notes, once, with how many runs gave them.
        var counts: [String: Int] = [:], order: [String] = []
        for r in runs {
            var seen = Set<String>()
            // In the run's order (never a Set's: the same sweep prints the same notes).
            for n in Report.diagnosticNotes(r.diagnostics) where seen.insert(n).inserted {
                if counts[n] == nil { order.append(n) }
                counts[n, default: 0] += 1
            }
        }
        for n in order { notes.append("\(n) (\(counts[n]! == runs.count ? "every run" : "\(counts[n]!) of \(runs.count) runs"))") }
        var optimizer = base.optimizer.summary
        if let b = base.training.batchSize, base.optimizer.kind != .gd { optimizer += ", batch \(b)" }
        return WidthSweep(config: base.name, model: model, parameterization: spec.parameterization.rawValue,
                          learningRate: base.optimizer.learningRate, steps: base.training.steps, optimizer: optimizer,
                          loss: base.loss.kind.rawValue, data: data, train: train, heldOut: heldOut, directory: directory,
                          widths: widths, seeds: seeds, runs: runs, quantities: WidthSweep.quantities(runs, widths: widths),
                          notes: notes, seconds: seconds)
    }
}
