import Foundation
import PKAnalysis
import PKNumerics
import PKTrace
import PKTraining

/// `plan`: does the estimate `analyze` prints before it starts (`analyze --plan`) hold, and does
/// the progress bar's ETA? Trains each preset (recorded, at its own configuration; the realistic
/// ones cut short), then for each trace, as a new `analyze` process would (every rate the plan
/// measures forgotten first, `PathAnalyzer.forgetMeasurements`), plans and analyzes it with the
/// default settings and measures it (`RealisticBenchmark.measure`): the estimate against the real
/// time, each phase against its estimate, the ETA at 10 % and 50 % of the work against the time
/// then left, and the load average before each analysis. Issue 17's aim: within ±30 %.
public enum PlanBenchmark {
    /// The presets it runs by default, in order, and the steps they are cut to (nil: their own).
    /// `ntt-fmnist` (for `pathkernel ntt`) and `sweep-relu` (a width sweep of 6 points) are left
    /// out; W5 and W6 at 30 and 10 of their 300 steps (`bench --workload W5|W6` runs them whole).
    public static let defaultPresets: [(name: String, steps: Int?)] = [
        ("moons-mlp", nil), ("sine-tanh", nil), ("moons-momentum", nil), ("beyond-kernels", nil), ("teacher-relu", nil),
        ("teacher-adam", nil), ("fmnist-adamw", nil), ("fmnist-cnn", nil), ("fmnist-resnet", nil), ("fmnist-mlp", nil),
        ("w5-momentum", 30), ("w6-adamw", 10),
    ]

    /// The aim: the estimate and the ETAs within this fraction of the real time.
    public static let tolerance = 0.30

    public struct Row: Codable, Sendable {
        public var preset: String
        public var optimizer: String
        public var steps: Int
        public var parameters: Int
        public var loadBefore: String
        public var analysis: RealisticBenchmark.Analysis
        /// (estimate − real) / real.
        public var error: Double { analysis.seconds > 0 ? analysis.estimatedSeconds / analysis.seconds - 1 : 0 }
        public var withinTolerance: Bool {
            abs(error) <= PlanBenchmark.tolerance && analysis.etaChecks.allSatisfy { abs($0.error) <= PlanBenchmark.tolerance }
        }

        enum CodingKeys: String, CodingKey { case preset, optimizer, steps, parameters, loadBefore, analysis, error, withinTolerance }
        public init(preset: String, optimizer: String, steps: Int, parameters: Int, loadBefore: String, analysis: RealisticBenchmark.Analysis) {
            self.preset = preset; self.optimizer = optimizer; self.steps = steps; self.parameters = parameters
            self.loadBefore = loadBefore; self.analysis = analysis
        }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(preset: try c.decode(String.self, forKey: .preset), optimizer: try c.decode(String.self, forKey: .optimizer),
                      steps: try c.decode(Int.self, forKey: .steps), parameters: try c.decode(Int.self, forKey: .parameters),
                      loadBefore: try c.decode(String.self, forKey: .loadBefore),
                      analysis: try c.decode(RealisticBenchmark.Analysis.self, forKey: .analysis))
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(preset, forKey: .preset); try c.encode(optimizer, forKey: .optimizer); try c.encode(steps, forKey: .steps)
            try c.encode(parameters, forKey: .parameters); try c.encode(loadBefore, forKey: .loadBefore)
            try c.encode(analysis, forKey: .analysis); try c.encode(error, forKey: .error); try c.encode(withinTolerance, forKey: .withinTolerance)
        }
    }

    public struct Result: Codable, Sendable {
        public var precision: String
        public var threads: Int
        public var blas: String
        public var rows: [Row]
        public var loadAfter: String

        public func text() -> String {
            func f(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : x >= 10 ? String(format: "%.1f", x) : String(format: "%.2f", x) }
            func pct(_ x: Double) -> String { String(format: "%+.0f %%", 100 * x) }
            func pad(_ x: String, _ w: Int) -> String { x.count >= w ? x : String(repeating: " ", count: w - x.count) + x }
            let width = max(6, rows.map(\.preset.count).max() ?? 6)
            var s = "plan  the estimate `analyze` prints and its ETA against the real analysis (default settings, \(precision), \(threads) threads; aim: within ±\(Int(100 * PlanBenchmark.tolerance)) %)\n"
            s += "    \(blas)\n"
            s += "    " + "preset".padding(toLength: width, withPad: " ", startingAt: 0)
                + "  optimizer       steps   estimate       real   error   ETA at 10 %   ETA at 50 %   GEMM/core  load before  within\n"
            for r in rows {
                let a = r.analysis
                func eta(_ fraction: Double) -> String {
                    a.etaChecks.first { $0.fraction == fraction }.map { pct($0.error) } ?? "–"
                }
                s += "    " + r.preset.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + r.optimizer.padding(toLength: 14, withPad: " ", startingAt: 0)
                    + pad("\(r.steps)", 6) + pad(f(a.estimatedSeconds) + " s", 11) + pad(f(a.seconds) + " s", 11)
                    + pad(pct(r.error), 8) + pad(eta(0.1), 14) + pad(eta(0.5), 14) + pad(String(format: "%.1f", a.gemmRate), 12)
                    + "  " + r.loadBefore.split(separator: " ").first.map(String.init)!.padding(toLength: 11, withPad: " ", startingAt: 0)
                    + (r.withinTolerance ? "yes" : "no") + "\n"
            }
            let n = rows.count
            let estimates = rows.filter { abs($0.error) <= PlanBenchmark.tolerance }.count
            let etas = rows.filter { r in r.analysis.etaChecks.allSatisfy { abs($0.error) <= PlanBenchmark.tolerance } }.count
            s += "    estimates within ±\(Int(100 * PlanBenchmark.tolerance)) %: \(estimates) of \(n); ETAs (at 10 % and 50 %): \(etas) of \(n)\n"
            s += "    phases, real (estimated) s:\n"
            for r in rows {
                s += "      " + r.preset.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + r.analysis.phases.map { "\($0.name) \(f($0.seconds)) (\($0.estimatedSeconds.map(f) ?? "?"))" }.joined(separator: ", ") + "\n"
            }
            s += "    error: (estimate − real)/real; ETA: the bar's ETA when it first reached 10 % and 50 % of the work, against the time then left;\n"
            s += "    GEMM/core: the one-core GEMM rate (GFLOP/s) the plan measured for that trace; load: the 1-minute load average before each analysis (the runs before it fade in it)\n"
            s += "    load after: \(loadAfter) (1, 5, 15 min)\n\n"
            return s
        }
    }

    /// Trains and analyzes `presets` (each with its steps cut to `steps` when given, else to
    /// `defaultPresets`' figure) in `precision`, in `directory`.
    public static func run(presets: [String]? = nil, steps: Int? = nil, precision: AnalysisSettings.Precision = .f64,
                           directory: URL, log: (String) -> Void = { _ in }) throws -> Result {
        let chosen: [(name: String, steps: Int?)] = presets.map { names in
            names.map { name in (name, defaultPresets.first { $0.name == name }?.steps) }
        } ?? defaultPresets
        let configs = try chosen.map { name, presetSteps in
            var config = try Presets.load(name)
            if let cut = steps ?? presetSteps { config.training.steps = min(cut, config.training.steps) }
            return config
        }
        return try run(configs: configs, precision: precision, directory: directory, log: log)
    }

    /// Trains and analyzes each of `configs` (a row per config, named by its name), in
    /// `directory`; each trace is removed after its analysis. `fresh`: the process's measured
    /// rates forgotten before each trace, as in a new `analyze` process (tests pass false: other
    /// tests running beside them compare a plan with an analysis priced at the same rates).
    public static func run(configs: [RunConfig], precision: AnalysisSettings.Precision = .f64, fresh: Bool = true,
                           directory: URL, log: (String) -> Void = { _ in }) throws -> Result {
        var rows: [Row] = []
        for config in configs {
            let (training, _, path) = try PathBenchmark.train(config, in: directory, log: log)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let parameters = try TraceRun.load(TraceReader.open(path)).model.parameterCount
            if fresh { PathAnalyzer.forgetMeasurements() }
            var settings = AnalysisSettings()
            settings.precision = precision
            let loadBefore = RealisticBenchmark.load()
            let analysis = try RealisticBenchmark.measure(path: path, settings: settings, training: training, machineGemm: false,
                                                          label: config.name, log: log)
            let o = config.optimizer
            let optimizer = o.kind.rawValue + (o.momentum > 0 ? " μ \(o.momentum)" : "")
            rows.append(Row(preset: config.name, optimizer: optimizer, steps: config.training.steps, parameters: parameters,
                            loadBefore: loadBefore, analysis: analysis))
        }
        return Result(precision: precision.rawValue, threads: Parallel.threads, blas: BLASInfo.current.summary, rows: rows,
                      loadAfter: RealisticBenchmark.load())
    }
}
