import Foundation
import Synchronization

/// Work split over the machine's cores by Swift threads, each calling single-threaded BLAS.
///
/// One policy for the whole analysis: OpenBLAS runs with one thread (`BLASThreads.set(1)`) and
/// independent row blocks run side by side here, so the two never oversubscribe the cores.
/// Measured on 2 cores: OpenBLAS's own threads lose 4× on the many small GEMMs of a path
/// analysis (spin-waiting), while row blocks keep every GEMM single-threaded and busy.
public enum Parallel {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var configured: Int? = nil
    private static let defaultThreads: Int = (try? threadsFromEnvironment()) ?? max(ProcessInfo.processInfo.activeProcessorCount, 1)

    /// The environment variable that caps the threads.
    public static let environmentVariable = "PATHKERNEL_THREADS"
    /// The values `PATHKERNEL_THREADS` may take.
    public static let threadsRange = 1...1024

    /// The thread count `PATHKERNEL_THREADS` asks for, or nil when it is not set. Anything but
    /// an integer in `threadsRange` (`0`, `-1`, `abc`, an empty value) throws a one-line
    /// `ParallelError` that names the variable; programs call this at startup so that a bad
    /// value is an error rather than silently ignored. Nothing is printed here.
    public static func threadsFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int? {
        guard let raw = environment[environmentVariable] else { return nil }
        guard let n = Int(raw.trimmingCharacters(in: .whitespaces)), threadsRange.contains(n) else {
            throw ParallelError("\(environmentVariable) must be a positive integer (\(threadsRange.lowerBound)…\(threadsRange.upperBound), the number of threads), got '\(raw)'; set it to a thread count such as 2, or unset it to use every core")
        }
        return n
    }

    /// Threads used by `forEach`: `PATHKERNEL_THREADS` when set to a valid value (see
    /// `threadsFromEnvironment`, which reports a bad one), else the active processor count,
    /// unless `threads` was assigned. The environment is read once, at the first use (building
    /// the environment's dictionary cost 3 % of a small analysis when it was read per region).
    public static var threads: Int {
        get {
            lock.lock(); defer { lock.unlock() }
            return configured ?? defaultThreads
        }
        set {
            lock.lock(); defer { lock.unlock() }
            configured = max(newValue, 1)
        }
    }

    private static let switching = DispatchSemaphore(value: 1)

    /// Exclusive use of `threads` for code that switches it (tests that compare 1 and 2
    /// threads): waits until no other holder is active and records the count; the holder's
    /// `release()` restores it and lets the next one in. Two such tests running side by side
    /// (the test runner's parallel mode) would otherwise interleave their assignments, so that a
    /// "1 against 2 threads" comparison could run twice on the same count, and a restore could
    /// leave another test's value behind. Code that only reads `threads` needs no hold.
    public static func holdThreadCount() -> ThreadCountHold {
        switching.wait()
        return ThreadCountHold(saved: threads)
    }

    /// A hold on `Parallel.threads` (`Parallel.holdThreadCount`); `release()` exactly once.
    public final class ThreadCountHold: @unchecked Sendable {
        private let saved: Int
        private var released = false
        fileprivate init(saved: Int) { self.saved = saved }

        /// Restores the thread count recorded by the hold and ends it (a second call does nothing).
        public func release() {
            guard !released else { return }
            released = true
            Parallel.threads = saved
            Parallel.switching.signal()
        }
    }

    /// Runs `body(i)` for `i in 0..<count`, on up to `threads` threads at once; returns when all are done.
    /// Iterations must touch disjoint memory.
    ///
    /// The calling thread takes part, with `threads − 1` persistent workers that keep polling
    /// for `spin` after each region (`WorkerPool`): a region that follows within that time starts
    /// on every thread at once, where a sleeping thread would take 0.05–0.4 ms to wake on the
    /// virtual machines measured (Docs/benchmarks.md, "Session 25"). A region started while
    /// another is in flight (from another thread, or nested in a body) runs on
    /// `DispatchQueue.concurrentPerform` instead. Which thread runs an index never changes a result.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let n = threads
        if count == 1 || n == 1 {
            for i in 0..<count { body(i) }
            return
        }
        // The iterations write disjoint memory (the caller's contract), so the body may cross threads.
        withoutActuallyEscaping(body) { escaping in
            let box = UncheckedBody(run: escaping)
            if pool(threads: n).run(count, { box.run($0) }) { return }
            // Another region is in flight (another thread's, or this one nested in a body).
            DispatchQueue.concurrentPerform(iterations: count) { box.run($0) }
        }
    }

    /// How long `forEach`'s workers keep polling for the next region before they sleep (and the
    /// caller polls for the last index before it sleeps): 1 ms, longer than the serial work
    /// between most regions of an analysis, short enough that an idle process soon uses no CPU.
    public static let spin: Duration = .milliseconds(1)

    private static let pools = Mutex<[Int: WorkerPool]>([:])

    /// The pool with `threads − 1` workers, started on first use (one per thread count asked for).
    private static func pool(threads: Int) -> WorkerPool {
        pools.withLock { pools in
            if let pool = pools[threads] { return pool }
            let pool = WorkerPool(workers: threads - 1, spin: spin)
            pools[threads] = pool
            return pool
        }
    }

    private struct UncheckedBody: @unchecked Sendable { let run: (Int) -> Void }

    /// Most parts `ranges` cuts work into (whatever the thread count).
    public static let maxParts = 8

    /// `0..<n` cut into at most `maxParts` contiguous ranges of at least `minimum` elements each
    /// (one range when `n` is small). The cut depends on `n` and `minimum` only, never on the
    /// thread count: each part is computed the same way whichever thread runs it, so results are
    /// bit-identical on one thread or many (a GEMM's rounding can depend on its row count).
    public static func ranges(_ n: Int, minimum: Int = 1) -> [Range<Int>] {
        let parts = max(1, min(maxParts, n / max(minimum, 1)))
        return (0..<parts).map { p in (p * n / parts)..<((p + 1) * n / parts) }
    }

    /// `0..<n` cut into 1, 2, 4 or 8 (at most `maxParts`) contiguous ranges of nearly equal
    /// length, as many as keep each at least `minimum` long, and at least two once `n` reaches
    /// `pairFrom` (so that two cores share even a small `n`). Like `ranges`, the cut depends on
    /// the arguments only, never on the thread count; a power-of-two count splits evenly over 1,
    /// 2, 4 or 8 threads, so fewer, larger parts (larger GEMMs, less packing per row) do not
    /// leave a core idle.
    public static func powerOfTwoRanges(_ n: Int, minimum: Int = 1, pairFrom: Int = .max) -> [Range<Int>] {
        var parts = 1
        while parts * 2 <= maxParts && n / (parts * 2) >= max(minimum, 1) { parts *= 2 }
        if parts == 1 && n >= max(pairFrom, 2) && maxParts >= 2 { parts = 2 }
        return (0..<parts).map { p in (p * n / parts)..<((p + 1) * n / parts) }
    }
}

/// A bad parallelism setting, in one line.
public struct ParallelError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
