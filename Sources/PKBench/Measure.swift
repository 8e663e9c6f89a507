import Foundation

/// Wall time and peak memory, for benchmarks only.
public enum Measure {
    /// Seconds `body` takes (monotonic clock).
    public static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// CPU seconds the whole process (every thread) spends in `body`, and its wall seconds. On a
    /// machine shared with other work the CPU time is the steadier measure of the work itself
    /// (time the process is not scheduled is not counted; time its threads wait busily is).
    public static func cpuAndWallSeconds(_ body: () throws -> Void) rethrows -> (cpu: Double, wall: Double) {
        func cpuNow() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        let c0 = cpuNow()
        let wall = try seconds(body)
        return (cpuNow() - c0, wall)
    }

    /// The median of `repeats` timed runs of `body` after `warmup` untimed ones.
    public static func median(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        let times = (0..<max(repeats, 1)).map { _ in seconds(body) }.sorted()
        return times[times.count / 2]
    }

    /// Resets the process's peak resident set (Linux: `/proc/self/clear_refs`); false where unsupported.
    @discardableResult
    public static func resetPeakMemory() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        return (try? h.write(contentsOf: Data("5".utf8))) != nil
    }

    /// Peak resident set size in bytes since the last reset (`VmHWM`), or nil where unknown.
    public static func peakMemory() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
