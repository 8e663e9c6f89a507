import CKernels
import Dispatch
import Foundation
import Synchronization

/// The threads behind `Parallel.forEach`: `workers` persistent threads that, after each region,
/// keep polling for the next one for `spin` before they sleep.
///
/// Why: a path analysis runs thousands of parallel regions of about a millisecond each, with a
/// little serial work between them. `DispatchQueue.concurrentPerform` hands a region to a worker
/// that went to sleep after the previous one, and on the virtual machines this project is measured
/// on, waking a sleeping vCPU costs 0.05–0.4 ms (it varies with the host): on the small presets two
/// threads then ran slower than one (Docs/benchmarks.md, "Session 24"). A worker that is still
/// polling starts within a microsecond. After `spin` without a region it sleeps on a semaphore, so
/// an idle process uses no CPU.
///
/// Which index runs on which thread does not matter to the results: `forEach`'s bodies write
/// disjoint memory and each index's work does not depend on its thread (`Parallel.ranges`).
///
/// One region at a time: `run` returns false (and does nothing) while another region is in
/// flight, from another thread or nested inside a body; `Parallel.forEach` then falls back to
/// `DispatchQueue.concurrentPerform`.
final class WorkerPool: @unchecked Sendable {
    /// The threads besides the caller.
    let workers: Int

    /// Most indices a region can have (the state word holds them in 20 bits).
    static let maxCount = 1 << 20

    // The region in flight and its next index, in one word, so that a claim is one
    // compare-exchange and can never take an index of a later region:
    // generation (24 bits) << 40 | count (20 bits) << 20 | next index (20 bits).
    private let state = Atomic<UInt64>(0)
    // Indices of the current region finished so far.
    private let done = Atomic<Int>(0)
    // Set while a region is in flight (taken by the caller of `run`).
    private let busy = Atomic<Bool>(false)
    // The caller of `run` sleeps on `callerSemaphore` once it has polled for `spin`.
    private let callerSleeping = Atomic<Bool>(false)
    private let callerSemaphore = DispatchSemaphore(value: 0)
    // Written by the caller of `run` before the region is published, read by the workers only
    // after they claimed an index of it (acquire), cleared after the last index finished.
    private var body: ((Int) -> Void)? = nil

    private final class Slot: Sendable {
        let sleeping = Atomic<Bool>(false)
        let semaphore = DispatchSemaphore(value: 0)
    }
    private let slots: [Slot]
    // How long a worker (and the caller, waiting for the last index) polls before it sleeps.
    private let spinNanoseconds: UInt64

    init(workers: Int, spin: Duration) {
        self.workers = max(workers, 0)
        let (seconds, attoseconds) = spin.components
        spinNanoseconds = UInt64(max(seconds, 0)) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
        slots = (0..<max(workers, 0)).map { _ in Slot() }
        for w in 0..<self.workers {
            let thread = Thread { [self] in self.serve(slot: slots[w]) }
            thread.name = "pathkernel-worker-\(w + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    @inline(__always) private static func generation(_ s: UInt64) -> UInt64 { s >> 40 }
    @inline(__always) private static func count(_ s: UInt64) -> UInt64 { (s >> 20) & 0xFFFFF }
    @inline(__always) private static func index(_ s: UInt64) -> UInt64 { s & 0xFFFFF }

    @inline(__always) private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Returns once `ready()` holds: polls it for `spinNanoseconds`, then sleeps on `semaphore`
    /// with `sleeping` raised, for whoever makes `ready()` true to take the flag and signal. If
    /// `ready()` turned true while the flag went up, takes the flag back, or, when the other side
    /// took it first, consumes its signal. (The workers' wait for a region and the caller's for
    /// the last index.)
    @inline(__always)
    private func waitUntil(sleeping: borrowing Atomic<Bool>, on semaphore: DispatchSemaphore, _ ready: () -> Bool) {
        let start = Self.now()
        var polls = 0
        while !ready() {
            pk_cpu_relax()
            polls &+= 1
            if polls & 255 == 0 && Self.now() &- start > spinNanoseconds {
                sleeping.store(true, ordering: .sequentiallyConsistent)
                if !ready() || !sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    semaphore.wait()
                }
            }
        }
    }

    /// A worker's life: wait for a region newer than the last one seen, take part in it, repeat.
    private func serve(slot: Slot) {
        var seen: UInt64 = 0
        while true {
            // The caller of `run` takes the flag and signals once it has published a region.
            waitUntil(sleeping: slot.sleeping, on: slot.semaphore) {
                Self.generation(state.load(ordering: .sequentiallyConsistent)) != seen
            }
            seen = Self.generation(state.load(ordering: .acquiring))
            take(generation: seen)
        }
    }

    /// Claims and runs indices of region `generation` until none are left, then reports them.
    private func take(generation g: UInt64) {
        var s = state.load(ordering: .acquiring)
        var finished = 0
        var count: UInt64 = 0
        while Self.generation(s) == g {
            count = Self.count(s)
            let i = Self.index(s)
            if i >= count { break }
            let (exchanged, original) = state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing)
            if !exchanged { s = original; continue }
            body.unsafelyUnwrapped(Int(i))
            finished += 1
            s = state.load(ordering: .acquiring)
        }
        // The region cannot end (and its generation cannot change) before these indices are
        // reported, so `count` is this region's.
        if finished > 0 {
            let total = done.add(finished, ordering: .acquiringAndReleasing).newValue
            if total == Int(count), callerSleeping.exchange(false, ordering: .sequentiallyConsistent) {
                callerSemaphore.signal()
            }
        }
    }

    /// Runs `body(i)` for `i in 0..<count` on the caller and the workers; returns true when all
    /// are done, or false at once (nothing run) when a region is already in flight or `count`
    /// exceeds `maxCount`.
    func run(_ count: Int, _ body: @escaping (Int) -> Void) -> Bool {
        guard count > 0, count < Self.maxCount else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        self.body = body
        done.store(0, ordering: .relaxed)
        let g = (Self.generation(state.load(ordering: .relaxed)) + 1) & 0xFFFFFF
        state.store(g << 40 | UInt64(count) << 20, ordering: .sequentiallyConsistent)
        for slot in slots where slot.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            slot.semaphore.signal()
        }
        take(generation: g)
        // The worker that finishes the last index takes the flag and signals.
        waitUntil(sleeping: callerSleeping, on: callerSemaphore) { done.load(ordering: .sequentiallyConsistent) >= count }
        self.body = nil
        busy.store(false, ordering: .releasing)
        return true
    }
}
