import Foundation

/// Runs a `TraceWriter` on its own thread so the training thread never waits on the disk.
///
/// Created with `init(path:creating:)`, it also creates the trace on that thread (the run row,
/// the data, the layout: tens of milliseconds for a data set of a few MB); work enqueued
/// meanwhile waits in the queue, and a creation failure is the first error like any other.
///
/// Order is preserved: work is executed exactly in enqueue order. Step rows are buffered and
/// committed in batches (at least every 0.25 s, when 256 rows are pending, and always before a
/// checkpoint or status that follows them); each checkpoint commits in its own transaction after
/// the step rows enqueued before it. The enqueue methods copy their arguments and return at once.
///
/// When at least `foldThreshold` bytes of checkpoints were committed since the last complete
/// fold and nothing but a few buffered step rows waits, the writer folds the WAL into the main
/// file (`TraceWriter.foldWALPassively`), so that this copy and its `fsync`s happen while
/// training goes on rather than in `finish()`.
///
/// Failure: the first write error (a full disk, say) is kept in `firstError`; from then on
/// queued and newly enqueued work is dropped, and `finish()` rethrows it. The trace still holds
/// everything committed before the failure.
///
/// Does not hold: "never waits" has one exception. If more than `maxPendingBytes` of checkpoint
/// data is queued (the disk is far slower than training), `enqueueCheckpoint` blocks until the
/// writer catches up, rather than letting memory grow without bound.
/// Call `finish()` exactly once when done; without it the writer thread keeps running.
public final class BackgroundTraceWriter: @unchecked Sendable {
    private enum Work {
        case steps([StepRecord])
        case checkpoint(Int, [Double], StoredOptimizerState?)
        case status(RunStatus, String?)
    }

    /// Checkpoint bytes (as Double) that may be queued before `enqueueCheckpoint` blocks.
    public let maxPendingBytes: Int
    /// Pending step rows that trigger a flush.
    let stepBatch = 256
    /// Longest time step rows wait in memory.
    let flushInterval: TimeInterval = 0.25
    /// Checkpoint bytes committed since the last fold that make an idle writer fold the WAL.
    let foldThreshold = 1 << 20
    /// Checkpoint bytes committed since the last fold (worker thread only).
    private var unfolded = 0

    /// The trace's path.
    public let path: String
    /// Creates the writer on the worker thread (nil: given to `init(writer:)`).
    private let create: (@Sendable () throws -> TraceWriter)?
    /// Set before the worker starts or by the worker's first action; read by `finish()` after the
    /// worker is done.
    private var writer: TraceWriter?
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Work] = []
    private var pendingSteps = 0
    private var pendingBytes = 0
    private var failure: TraceError?
    private var finishing = false
    private var workerDone = false
    private var finished = false

    /// Takes ownership of `writer`: use it only through this object from now on.
    public init(writer: TraceWriter, maxPendingBytes: Int = 512 << 20) {
        self.writer = writer
        self.path = writer.path
        self.create = nil
        self.maxPendingBytes = maxPendingBytes
        start()
    }

    /// Creates the trace on the writer's thread with `creating` (for example
    /// `TraceWriter.create(at:run:data:layout:)`), then writes what is enqueued. If it throws,
    /// that is the first error: everything enqueued is dropped and `finish()` rethrows it.
    public init(path: String, maxPendingBytes: Int = 512 << 20, creating: @escaping @Sendable () throws -> TraceWriter) {
        self.writer = nil
        self.path = path
        self.create = creating
        self.maxPendingBytes = maxPendingBytes
        start()
    }

    private func start() {
        let thread = Thread { [self] in self.work() }
        thread.name = "pathkernel.trace-writer"
        thread.start()
    }

    /// CPU seconds the writing took, known after `finish()`: the writer thread's own (creating the
    /// trace, every commit, the folds) plus the final fold and close on the caller's thread.
    public var cpuSeconds: Double? {
        condition.lock()
        defer { condition.unlock() }
        return finished ? workerCPU + closeCPU : nil
    }
    private var workerCPU = 0.0
    private var closeCPU = 0.0

    /// CPU seconds of the calling thread so far.
    static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The first write failure, if any.
    public var firstError: TraceError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// Queues a step row (dropped after a failure or after `finish()`).
    public func enqueueStep(_ s: StepRecord) {
        condition.lock()
        defer { condition.unlock() }
        guard failure == nil, !finishing else { return }
        if case .steps(var rows)? = queue.last {
            queue.removeLast()
            rows.append(s)
            queue.append(.steps(rows))
        } else {
            queue.append(.steps([s]))
        }
        pendingSteps += 1
        if pendingSteps >= stepBatch { condition.broadcast() }
    }

    /// Queues a checkpoint; it commits after every step row enqueued before it.
    public func enqueueCheckpoint(step: Int, parameters: [Double], optimizerState: StoredOptimizerState? = nil) {
        condition.lock()
        defer { condition.unlock() }
        let bytes = (parameters.count + (optimizerState?.values.count ?? 0)) * 8
        while failure == nil && !finishing && pendingBytes > 0 && pendingBytes + bytes > maxPendingBytes {
            condition.wait()
        }
        guard failure == nil, !finishing else { return }
        queue.append(.checkpoint(step, parameters, optimizerState))
        pendingBytes += bytes
        condition.broadcast()
    }

    /// Queues a status change; it commits after everything enqueued before it.
    public func enqueueStatus(_ status: RunStatus, message: String?) {
        condition.lock()
        defer { condition.unlock() }
        guard failure == nil, !finishing else { return }
        queue.append(.status(status, message))
        condition.broadcast()
    }

    /// Writes everything queued, closes the trace and rethrows the first failure.
    /// Later calls only rethrow it.
    public func finish() throws {
        condition.lock()
        finishing = true
        condition.broadcast()
        while !workerDone { condition.wait() }
        let alreadyFinished = finished
        let error = failure
        condition.unlock()
        if !alreadyFinished {
            let cpu0 = Self.threadCPUSeconds()
            writer?.close()
            let cpu = Self.threadCPUSeconds() - cpu0
            condition.lock()
            closeCPU = cpu
            finished = true
            condition.unlock()
        }
        if let error { throw error }
    }

    // MARK: - Worker

    private func work() {
        if let create {
            do {
                let w = try create()
                condition.lock()
                writer = w
                condition.unlock()
            } catch {
                fail(error, operation: "creating the trace")
            }
        }
        while true {
            condition.lock()
            var deadline = Date().addingTimeInterval(flushInterval)
            while !finishing && !urgentWorkLocked() {
                if !condition.wait(until: deadline) {
                    if !queue.isEmpty { break }   // flush buffered steps on the timer
                    deadline = Date().addingTimeInterval(flushInterval)
                }
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            pendingSteps = 0
            let stop = finishing
            condition.unlock()

            for item in batch { execute(item) }

            if !stop && unfolded >= foldThreshold {
                condition.lock()
                let idle = !urgentWorkLocked() && failure == nil   // at most a few buffered step rows
                condition.unlock()
                // Incomplete (a reader's snapshot held frames back): try again when next idle.
                if idle, writer?.foldWALPassively() == true { unfolded = 0 }
            }

            if stop {
                let cpu = Self.threadCPUSeconds()
                condition.lock()
                // Anything enqueued between the take and `finishing` was refused; the queue is empty.
                workerCPU = cpu
                workerDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
        }
    }

    /// Keeps the first failure and drops the queue.
    private func fail(_ error: Error, operation: String) {
        let e = error as? TraceError ?? .sqlite(path: path, operation: operation, code: 0, message: "\(error)")
        condition.lock()
        if failure == nil { failure = e }
        queue.removeAll()
        pendingSteps = 0
        condition.broadcast()
        condition.unlock()
    }

    /// Something other than a small run of step rows is waiting.
    private func urgentWorkLocked() -> Bool {
        if pendingSteps >= stepBatch { return true }
        return queue.contains { if case .steps = $0 { return false } else { return true } }
    }

    private func execute(_ item: Work) {
        condition.lock()
        let failed = failure != nil
        condition.unlock()
        var released = 0
        if case .checkpoint(_, let p, let o) = item { released = (p.count + (o?.values.count ?? 0)) * 8 }
        if !failed, let writer {
            do {
                switch item {
                case .steps(let rows): try writer.appendSteps(rows)
                case .checkpoint(let step, let p, let o):
                    try writer.appendCheckpoint(step: step, parameters: p, optimizerState: o)
                    unfolded += released
                case .status(let s, let m): try writer.setStatus(s, message: m)
                }
            } catch {
                fail(error, operation: "writing in the background")
            }
        }
        if released > 0 {
            condition.lock()
            pendingBytes -= released
            condition.broadcast()
            condition.unlock()
        }
    }
}
