import Foundation
import PKAnalysis
import PKNumerics
import PKTrace
import PKTraining

/// W5 and W6: an ordinary Fashion-MNIST run (2,000 training and 500 held-out images, MLP
/// 784-128-128-10 tanh, cross-entropy, batch 64, 300 steps, a checkpoint every 10) with SGD +
/// momentum 0.9 (W5, preset `w5-momentum`) or AdamW (W6, preset `w6-adamw`), analyzed with the
/// default settings (every query, both splits) in float64 and float32.
///
/// Per precision: the wall time of the analysis and of each phase, against the training run's
/// own time; the estimate `analyze` printed before it (`PathAnalyzer.plan`) against the real time;
/// the backward pass's products with the batches (`AnalysisPlan.kernelFlops`) over the kernel
/// phase's time, against the machine's GEMM rate measured in the same process on all threads just
/// before and just after the analysis (as W1 measures it: `GemmRate.measure` with
/// `Parallel.threads`, n = 2048), and against the plan's one-core rate × threads (on the AVX-512
/// Xeon of session 15 two busy cores ran GEMM at 0.77–1.0× twice one core's rate: the per-core
/// product overstates what two threads can reach); the peak memory; and the analysis's own
/// checks (reconstruction residual, kernel form).
public enum RealisticBenchmark {
    public struct Phase: Codable, Sendable {
        public var name: String
        public var seconds: Double
        public var estimatedSeconds: Double?
    }

    public struct Analysis: Codable, Sendable {
        public var precision: String
        public var seconds: Double
        public var estimatedSeconds: Double
        public var ratioToTraining: Double
        public var phases: [Phase]
        /// The backward pass's product flops over its phase time (GFLOP/s); that over the
        /// machine's GEMM rate on all threads (`machineGemmRate`), and over threads × the plan's
        /// one-core rate (`gemmRate`).
        public var kernelGflops: Double?
        public var gemmFraction: Double?
        public var gemmFractionPerCore: Double?
        /// GFLOP/s of a GEMM on `threads` threads, before and after the analysis; their mean.
        public var machineGemmRates: [Double]
        public var machineGemmRate: Double
        /// The plan's GEMM rate of one core (GFLOP/s).
        public var gemmRate: Double
        public var threads: Int
        public var peakMemoryBytes: Int?
        public var estimatedPeakMemoryBytes: Double
        public var residual: Double?
        public var kernelFormMaxAbs: Double?
        /// The progress bar's ETA (`ProgressBar.eta`, fed the analysis's own progress) when 10% and
        /// 50% of the work were done, against the time that was then left; none at a fraction the
        /// progress jumped past straight to the end.
        public var etaChecks: [ETACheck]
    }

    /// The progress bar's ETA at the first report at or past each of `fractions` of the work, as
    /// the reports come. A report that jumps past a fraction straight to the end (the machines
    /// phase of a run whose earlier phases are under half its cost reports only when it ends)
    /// leaves no ETA at that fraction: the bar never showed one there.
    public struct ETASampler: Sendable {
        public var fractions: [Double]
        public private(set) var samples: [(fraction: Double, eta: Double, at: Double)] = []
        public init(fractions: [Double] = [0.1, 0.5]) { self.fractions = fractions }

        /// A report at `fraction` of the work, `at` seconds into the run; `eta` is read only when sampled.
        public mutating func report(fraction: Double, at: Double, eta: () -> Double) {
            guard fraction < 1 else { return }
            for f in fractions where fraction >= f && !samples.contains(where: { $0.fraction == f }) {
                samples.append((f, eta(), at))
            }
        }

        /// The samples against the time each left, for a run that ended `end` seconds in.
        public func checks(end: Double) -> [ETACheck] {
            samples.map { ETACheck(fraction: $0.fraction, eta: $0.eta, remaining: end - $0.at) }
        }
    }

    public struct ETACheck: Codable, Sendable {
        public var fraction: Double
        public var eta: Double
        public var remaining: Double
        public var error: Double { remaining > 0 ? eta / remaining - 1 : 0 }
    }

    public struct Result: Codable, Sendable {
        public var workload: String
        public var preset: String
        public var steps: Int
        public var parameters: Int
        public var trainingSeconds: Double
        public var recordingSeconds: Double
        public var loadBefore: String
        public var loadAfter: String
        public var analyses: [Analysis]

        public func text() -> String {
            func f(_ x: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", x) }
            func sci(_ x: Double?) -> String { x.map { String(format: "%.1e", $0) } ?? "n/a" }
            func mem(_ b: Double?) -> String { b.map { $0 >= 1e9 ? String(format: "%.2f GB", $0 / 1e9) : String(format: "%.0f MB", $0 / 1e6) } ?? "n/a" }
            func pad(_ x: String, _ w: Int) -> String { x.count >= w ? x : String(repeating: " ", count: w - x.count) + x }
            var s = "\(workload)  \(preset): \(steps) steps, \(parameters) parameters; training \(f(trainingSeconds, 2)) s (recorded \(f(recordingSeconds, 2)) s)\n"
            s += "    load before \(loadBefore), after \(loadAfter) (1, 5, 15 min)\n"
            s += "    precision   seconds   estimate   × training   kernel phase   GFLOP/s   of GEMM   peak (est.)          residual  kernel form\n"
            for a in analyses {
                let kernel = a.phases.first { $0.name.hasPrefix("kernel (") }
                s += "    \(a.precision.padding(toLength: 9, withPad: " ", startingAt: 0))"
                    + String(format: "%9.1f  %9.1f  %11.1f", a.seconds, a.estimatedSeconds, a.ratioToTraining)
                    + "  " + pad(kernel.map { f($0.seconds) + " s" } ?? "–", 13)
                    + "  " + pad(a.kernelGflops.map { f($0) } ?? "–", 8) + "  " + pad(a.gemmFraction.map { f(100 * $0, 0) + " %" } ?? "–", 8)
                    + "   \(mem(a.peakMemoryBytes.map(Double.init))) (\(mem(a.estimatedPeakMemoryBytes)))   \(sci(a.residual))   \(sci(a.kernelFormMaxAbs))\n"
                s += "              phases: " + a.phases.map { "\($0.name) \(f($0.seconds)) s (est. \($0.estimatedSeconds.map { f($0) } ?? "?") s)" }.joined(separator: ", ") + "\n"
                s += "              GEMM on \(a.threads) threads \(f(a.machineGemmRate)) GFLOP/s (\(a.precision), this process; "
                    + a.machineGemmRates.map { f($0) }.joined(separator: " before, ") + " after); the plan's \(f(a.gemmRate)) per core"
                    + (a.gemmFractionPerCore.map { " × \(a.threads): \(f(100 * $0, 0)) %" } ?? "") + "\n"
                s += "              ETA " + a.etaChecks.map { "at \(Int(100 * $0.fraction))%: \(f($0.eta)) s for \(f($0.remaining)) s left (\(String(format: "%+.0f", 100 * $0.error))%)" }.joined(separator: ", ") + "\n"
            }
            return s + "\n"
        }
    }

    /// GFLOP/s of an n = 2048 GEMM on every analysis thread in `precision` (W1's measure).
    static func machineGemm(_ precision: AnalysisSettings.Precision) -> Double {
        precision == .f32 ? GemmRate.measure(Float.self, threads: Parallel.threads) : GemmRate.measure(Double.self, threads: Parallel.threads)
    }

    /// The preset of each workload.
    public static let presets = ["W5": "w5-momentum", "W6": "w6-adamw"]

    static func load() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "n/a").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// Trains the workload's preset (`steps` overrides its 300), records it, and analyzes it in
    /// each of `precisions` with the default settings.
    public static func run(workload: String, steps: Int? = nil, precisions: [AnalysisSettings.Precision] = [.f64, .f32],
                           directory: URL, log: (String) -> Void = { _ in }) throws -> Result {
        guard let preset = presets[workload] else { throw BenchError("unknown realistic workload \(workload)") }
        var config = try Presets.load(preset)
        if let steps { config.training.steps = steps }
        let loadBefore = load()
        let (training, recording, path) = try PathBenchmark.train(config, in: directory, log: log)
        let parameters = try TraceRun.load(TraceReader.open(path)).model.parameterCount
        var analyses: [Analysis] = []
        for precision in precisions {
            var settings = AnalysisSettings()
            settings.precision = precision
            analyses.append(try measure(path: path, settings: settings, training: training, label: workload, log: log))
        }
        return Result(workload: workload, preset: preset, steps: config.training.steps, parameters: parameters,
                      trainingSeconds: training, recordingSeconds: recording, loadBefore: loadBefore, loadAfter: load(), analyses: analyses)
    }

    /// Analyzes the trace at `path` with `settings` as `analyze` would (its plan first, then the
    /// analysis with a silent progress bar) and measures it: the wall time of the analysis and of
    /// each phase against the plan's estimates, the bar's ETA at 10 % and 50 % of the work, peak
    /// memory, the analysis's own checks; with `machineGemm`, the two-thread GEMM rate just before
    /// and just after and the kernel phase's fraction of it (otherwise those are empty and nil).
    public static func measure(path: String, settings: AnalysisSettings, training: Double, machineGemm measureGemm: Bool = true,
                               label: String, log: (String) -> Void = { _ in }) throws -> Analysis {
        let precision = settings.precision
        let reader = try TraceReader.open(path)
        let plan = try PathAnalyzer(settings: settings).plan(reader: reader)
        log("\(label) \(precision.rawValue): estimate \(String(format: "%.0f", plan.seconds)) s; analyzing")
        let gemmBefore = measureGemm ? machineGemm(precision) : nil
        Measure.resetPeakMemory()
        var marks: [(phase: AnalysisProgress.Phase, at: Double)] = []
        let t0 = DispatchTime.now().uptimeNanoseconds
        var result: AnalysisResult? = nil
        // The bar `analyze` shows, silent: its ETA at 10% and 50% of the work.
        let bar = ProgressBar(total: 10_000, interactive: false, counts: false, output: { _ in })
        var etaAt = ETASampler()
        let seconds = try Measure.seconds {
            result = try PathAnalyzer(settings: settings).analyze(reader: reader) { p in
                let now = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if marks.last?.phase != p.phase { marks.append((p.phase, now)) }
                let done = Int((10_000 * p.fraction).rounded(.down))
                bar.update(done, "", phase: p.phase.rawValue)
                etaAt.report(fraction: p.fraction, at: now) { bar.eta(done: done, now: Date()) }
            }
        }
        let peak = Measure.peakMemory()
        let gemmAfter = measureGemm ? machineGemm(precision) : nil
        let machineRates = [gemmBefore, gemmAfter].compactMap { $0 }
        let machine = machineRates.isEmpty ? 0 : machineRates.reduce(0, +) / Double(machineRates.count)
        let etaChecks = etaAt.checks(end: seconds)
        // Each phase runs from the end of the previous one (the forward phase from the start;
        // its first report comes after its first step).
        var phases: [Phase] = []
        for (k, mark) in marks.enumerated() {
            let start = k == 0 ? 0 : marks[k].at
            let end = k + 1 < marks.count ? marks[k + 1].at : seconds
            let name = mark.phase.label
            phases.append(Phase(name: name, seconds: end - start, estimatedSeconds: plan.phases.first { $0.name == name }?.seconds))
        }
        let kernelPhase = phases.first { $0.name == AnalysisProgress.Phase.backward.label }
        var kernelGflops: Double? = nil
        if let flops = plan.kernelFlops, let phase = kernelPhase, phase.seconds > 0 { kernelGflops = flops / phase.seconds / 1e9 }
        let test = result?.reconstruction.test
        log("\(label) \(precision.rawValue): \(String(format: "%.1f", seconds)) s")
        return Analysis(precision: precision.rawValue, seconds: seconds, estimatedSeconds: plan.seconds,
                        ratioToTraining: seconds / training, phases: phases, kernelGflops: kernelGflops,
                        gemmFraction: machine > 0 ? kernelGflops.map { $0 / machine } : nil,
                        gemmFractionPerCore: kernelGflops.map { $0 / (plan.gemmRate * Double(plan.threads)) },
                        machineGemmRates: machineRates, machineGemmRate: machine, gemmRate: plan.gemmRate, threads: plan.threads,
                        peakMemoryBytes: peak, estimatedPeakMemoryBytes: plan.peakMemoryBytes, residual: test?.relativeResidual,
                        kernelFormMaxAbs: test?.kernelFormMaxAbs, etaChecks: etaChecks)
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
