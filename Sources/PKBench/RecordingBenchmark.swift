import Foundation
import PKNumerics
import PKTraining

/// Measures what recording costs: the same run trained with no recorder at all (what
/// `pathkernel train --no-record` does), recorded at the config's checkpoint policy, and recorded
/// with a checkpoint every step; interleaved repeats after one warm-up of each, in one process.
///
/// Each recorded time includes creating the trace (run row, data, layout) and `finish()`: waiting
/// for the background writer and folding the WAL into the file, as `train` does before it returns.
/// Between runs the trace is deleted and the page cache flushed (`sync`, not timed), so a run does
/// not pay for the previous one's write-back. Every recorded run must end at the very weights of
/// the run without recording (else the benchmark fails: recording would have changed training).
public struct RecordingBenchmark: Sendable, Codable {
    /// One way of running the config.
    public struct Variant: Sendable, Codable {
        public var name: String
        /// nil: recording off; else a checkpoint every k steps (0 and T always).
        public var checkpointEvery: Int?
        /// Wall seconds of each repeat, in the order run.
        public var seconds: [Double]
        public var median: Double
        public var stepsPerSecond: Double
        /// The median over the repeats of this run's time over the same repeat's run without
        /// recording, minus 1 (0 for recording off). Paired within a repeat, so that a change of
        /// the machine's load between repeats cancels.
        public var overhead: Double
        /// CPU seconds (user + system, every thread of the process) of each repeat.
        public var cpuSeconds: [Double]
        public var cpuMedian: Double
        /// The same paired median for CPU seconds: the work recording adds, whichever core does
        /// it (on a busy machine the wall-time overhead tends to this).
        public var cpuOverhead: Double
        /// CPU seconds of the trace writer itself (its thread, plus the final fold) in each
        /// repeat: what recording adds, measured apart from the noise of the training's own time.
        public var writerCPUSeconds: [Double]
        /// The median of `writerCPUSeconds` over recording off's median CPU seconds.
        public var writerCPUFraction: Double
        /// Size of the finished trace (0 without recording).
        public var traceBytes: Int
        /// Checkpoints stored (0 without recording).
        public var checkpoints: Int
    }

    public var preset: String
    public var steps: Int
    public var parameterCount: Int
    public var precision: String
    public var repeats: Int
    /// Recording off, recording at the policy, and (unless the policy is every step) every step.
    public var variants: [Variant]
    /// `/proc/loadavg`'s 1, 5 and 15 minute load averages before the warm-up and after the last
    /// repeat (nil where there is no `/proc`).
    public var loadBefore: [Double]?
    public var loadAfter: [Double]?
    public var cores: Int
    public var dgemmGFLOPS: Double

    /// Timed repeats a benchmark accepts.
    public static let repeatsRange = 1...1000

    /// The overhead of recording at the config's policy (or `checkpointEvery`).
    public var overhead: Double { variants.count > 1 ? variants[1].overhead : 0 }

    /// `checkpointEvery` overrides the config's checkpoint policy for the second variant.
    public static func run(config base: RunConfig, repeats: Int = 3, checkpointEvery: Int? = nil,
                           directory: URL, log: (String) -> Void = { _ in }) throws -> RecordingBenchmark {
        guard repeatsRange.contains(repeats) else {
            throw ConfigError("--repeats must be \(ConfigLimits.describe(repeatsRange)), got \(repeats)")
        }
        if let k = checkpointEvery, !TrainingSpec.stepsRange.contains(k) {
            throw ConfigError("--checkpoint-every must be \(ConfigLimits.describe(TrainingSpec.stepsRange)), got \(k)")
        }
        let policy = checkpointEvery ?? base.training.checkpointEvery
        let data = try base.data.load(seed: base.seed)
        func trainer(every k: Int) throws -> Trainer {
            var c = base
            c.training.checkpointEvery = k
            return try Trainer(config: c, data: data)
        }
        let policyName = checkpointEvery == nil ? "recording, the config's policy (every \(policy))" : "recording, every \(policy) (--checkpoint-every)"
        var setups: [(name: String, every: Int?, trainer: Trainer)] = [("recording off (train --no-record)", nil, try trainer(every: policy)),
                                                                       (policyName, policy, try trainer(every: policy))]
        if policy != 1 { setups.append(("recording, a checkpoint every step", 1, try trainer(every: 1))) }
        let T = base.training.steps

        let loadBefore = loadAverage()
        var reference: [Double]? = nil
        /// Trains setup `i` once; returns its seconds and trace size.
        func once(_ i: Int, tag: String) throws -> (seconds: Double, cpu: Double, writerCPU: Double, bytes: Int) {
            let s = setups[i]
            let path = directory.appendingPathComponent("bench-\(tag).sqlite").path
            removeTrace(path)
            sync()
            var outcome: TrainingOutcome? = nil
            let cpu0 = cpuSeconds()
            let seconds: Double
            var writerCPU = 0.0
            if s.every == nil {
                seconds = Measure.seconds { outcome = s.trainer.run(observers: []) }
            } else {
                let recorder = TraceRecorder(path: path)
                seconds = try Measure.seconds {
                    outcome = s.trainer.run(observers: [recorder])
                    try recorder.finish()
                }
                writerCPU = recorder.writerCPUSeconds ?? 0
            }
            let cpu = cpuSeconds() - cpu0
            guard let outcome, outcome.status == .finished else {
                throw ConfigError("\(s.name): the run did not finish (\(outcome?.status.rawValue ?? "no outcome"): \(outcome?.message ?? ""))")
            }
            if let reference, reference != outcome.finalParameters {
                throw ConfigError("\(s.name): the final weights differ from those of the run without recording")
            }
            reference = outcome.finalParameters
            let bytes = s.every == nil ? 0 : fileSize(path) + fileSize(path + "-wal")
            removeTrace(path)
            return (seconds, cpu, writerCPU, bytes)
        }

        log("warm-up: \(setups.map(\.name).joined(separator: "; "))")
        var bytes = [Int](repeating: 0, count: setups.count)
        for i in setups.indices { bytes[i] = try once(i, tag: "warmup-\(i)").bytes }
        var seconds = [[Double]](repeating: [], count: setups.count)
        var cpu = [[Double]](repeating: [], count: setups.count)
        var writerCPU = [[Double]](repeating: [], count: setups.count)
        for r in 0..<repeats {
            // Rotate the order so that no variant always runs right after the same other one.
            let order = setups.indices.map { (r + $0) % setups.count }
            var line: [String] = []
            for i in order {
                let (t, c, w, b) = try once(i, tag: "\(r)-\(i)")
                seconds[i].append(t)
                cpu[i].append(c)
                writerCPU[i].append(w)
                bytes[i] = b
                line.append("\(setups[i].every.map { "every \($0)" } ?? "off") \(String(format: "%.3f", t)) s")
            }
            log("repeat \(r + 1)/\(repeats): \(line.joined(separator: ", "))")
        }
        let loadAfter = loadAverage()

        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        /// The median of the per-repeat ratios to recording off, minus 1.
        func paired(_ xs: [[Double]], _ i: Int) -> Double { median(zip(xs[i], xs[0]).map { $0 / $1 }) - 1 }
        let variants = setups.indices.map { i -> Variant in
            let m = median(seconds[i]), c = median(cpu[i])
            let k = setups[i].every
            return Variant(name: setups[i].name, checkpointEvery: k, seconds: seconds[i], median: m,
                           stepsPerSecond: Double(T) / m, overhead: i == 0 ? 0 : paired(seconds, i),
                           cpuSeconds: cpu[i], cpuMedian: c, cpuOverhead: i == 0 ? 0 : paired(cpu, i),
                           writerCPUSeconds: writerCPU[i], writerCPUFraction: median(writerCPU[i]) / median(cpu[0]), traceBytes: bytes[i],
                           checkpoints: k.map { (T + $0 - 1) / $0 + 1 } ?? 0)
        }
        return RecordingBenchmark(preset: base.name, steps: T, parameterCount: setups[0].trainer.model.parameterCount,
                                  precision: base.training.precision.rawValue, repeats: repeats, variants: variants,
                                  loadBefore: loadBefore, loadAfter: loadAfter, cores: ProcessInfo.processInfo.activeProcessorCount,
                                  dgemmGFLOPS: GemmRate.measure(Double.self, n: 1024, threads: 1))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func removeTrace(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// User plus system CPU seconds of this process so far (every thread).
    static func cpuSeconds() -> Double {
        var u = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &u)
        #else
        getrusage(RUSAGE_SELF, &u)
        #endif
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(u.ru_utime) + s(u.ru_stime)
    }

    /// The 1, 5 and 15 minute load averages (`/proc/loadavg`), nil where unavailable.
    public static func loadAverage() -> [Double]? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ").prefix(3).compactMap { Double($0) }
        return fields.count == 3 ? fields : nil
    }

    public func text() -> String {
        func load(_ l: [Double]?) -> String { l.map { $0.map { String(format: "%.2f", $0) }.joined(separator: " ") } ?? "n/a" }
        let width = max(40, (variants.map(\.name.count).max() ?? 0) + 2)
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var s = "recording overhead, preset \(preset) (\(parameterCount) parameters, \(steps) steps, \(precision) checkpoints), \(repeats) interleaved repeats (seconds: medians; overheads: medians of each repeat's ratio to recording off)\n"
        s += "  " + pad("") + "  wall s   steps/s  overhead     CPU s  CPU overhead  writer CPU        trace  checkpoints\n"
        for v in variants {
            let on = v.checkpointEvery != nil
            let trace = on ? TraceSummary.bytes(v.traceBytes) : ""
            s += "  " + pad(v.name) + String(format: "%8.3f  %8.1f", v.median, v.stepsPerSecond)
                + (on ? String(format: "  %+6.1f %%", 100 * v.overhead) : "          ")
                + String(format: "  %8.3f", v.cpuMedian)
                + (on ? String(format: "      %+6.1f %%", 100 * v.cpuOverhead) : "              ")
                + (on ? String(format: "    %6.1f %%", 100 * v.writerCPUFraction) : "            ")
                + "  " + String(repeating: " ", count: max(0, 11 - trace.count)) + trace
                + (on ? String(format: "  %11d", v.checkpoints) : "") + "\n"
        }
        s += "  every run, wall s: " + variants.map { v in
            "\(v.checkpointEvery.map { "every \($0)" } ?? "off") " + v.seconds.map { String(format: "%.3f", $0) }.joined(separator: " ")
        }.joined(separator: "; ") + "\n"
        s += "  writer CPU: the trace writer's own CPU seconds (its thread and the final fold), median, as a share of recording off's CPU seconds\n"
        s += "  load average (1, 5, 15 min): \(load(loadBefore)) before, \(load(loadAfter)) after, on \(cores) cores\n"
        s += "  machine DGEMM \(String(format: "%.1f", dgemmGFLOPS)) GFLOP/s (1024³, one thread, same run); aim: at most +10 % at the default policy\n\n"
        return s
    }
}
