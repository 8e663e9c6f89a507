import Foundation
import PKNumerics

/// Measures what recording costs: the same run trained with the recorder off and on (a
/// checkpoint every step), median wall time over `repeats` runs after one warm-up, and the
/// machine's own DGEMM rate measured in the same process for scale.
public struct RecordingBenchmark: Sendable, Codable {
    public var preset: String
    public var steps: Int
    public var parameterCount: Int
    public var repeats: Int
    public var secondsWithout: Double
    public var secondsWith: Double
    public var overhead: Double { secondsWith / secondsWithout - 1 }
    public var traceBytes: Int
    public var dgemmGFLOPS: Double

    /// Timed repeats a benchmark accepts.
    public static let repeatsRange = 1...1000

    public static func run(config base: RunConfig, repeats: Int = 3, directory: URL,
                           log: (String) -> Void = { _ in }) throws -> RecordingBenchmark {
        guard repeatsRange.contains(repeats) else {
            throw ConfigError("--repeats must be \(ConfigLimits.describe(repeatsRange)), got \(repeats)")
        }
        var config = base
        config.training.checkpointEvery = 1
        let trainer = try Trainer(config: config)
        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
        func time(_ body: () throws -> Void) rethrows -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        log("warm-up")
        trainer.run(observers: [])
        var without: [Double] = []
        var with: [Double] = []
        var bytes = 0
        for r in 0..<repeats {
            without.append(time { trainer.run(observers: []) })
            let path = directory.appendingPathComponent("bench-\(r).sqlite").path
            try? FileManager.default.removeItem(atPath: path)
            let recorder = TraceRecorder(path: path)
            with.append(try time {
                trainer.run(observers: [recorder])
                try recorder.finish()
            })
            bytes = fileSize(path) + fileSize(path + "-wal")
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            log("repeat \(r + 1)/\(repeats): \(String(format: "%.3f", without.last!)) s without, \(String(format: "%.3f", with.last!)) s with recording")
        }
        return RecordingBenchmark(preset: config.name, steps: config.training.steps,
                                  parameterCount: trainer.model.parameterCount, repeats: repeats,
                                  secondsWithout: median(without), secondsWith: median(with),
                                  traceBytes: bytes, dgemmGFLOPS: GemmRate.measure(Double.self, n: 1024, threads: 1))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    public func text() -> String {
        """
        recording overhead, preset \(preset) (\(parameterCount) parameters, \(steps) steps, a checkpoint every step)
          recording off   \(String(format: "%8.3f", secondsWithout)) s   (median of \(repeats))
          recording on    \(String(format: "%8.3f", secondsWith)) s   (median of \(repeats))
          overhead        \(String(format: "%+7.1f", 100 * overhead)) %    (aim: at most +10 %)
          trace size      \(TraceSummary.bytes(traceBytes))
          machine DGEMM   \(String(format: "%8.1f", dgemmGFLOPS)) GFLOP/s (1024³, same run)

        """
    }
}
