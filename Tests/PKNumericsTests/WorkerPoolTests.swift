import Foundation
import Synchronization
import Testing
@testable import PKNumerics

/// `WorkerPool` (behind `Parallel.forEach`): every index exactly once, workers woken after they
/// slept, the caller woken after it slept, one region at a time, and `forEach` correct when
/// regions nest or come from several threads at once.
@Suite(.timeLimit(.minutes(1))) struct WorkerPoolTests {
    /// Counts of how often each index ran, written by whichever thread runs it.
    final class Tally: @unchecked Sendable {
        let counts: UnsafeMutableBufferPointer<Int>
        init(_ n: Int) { counts = .allocate(capacity: n); counts.initialize(repeating: 0) }
        deinit { counts.deallocate() }
    }

    @Test func everyIndexExactlyOnceOverManyRegions() {
        let pool = WorkerPool(workers: 2, spin: .milliseconds(1))
        for count in [1, 2, 3, 7, 64, 1000] {
            for _ in 0..<50 {
                let tally = Tally(count)
                #expect(pool.run(count) { tally.counts[$0] += 1 })
                #expect(tally.counts.allSatisfy { $0 == 1 }, "count \(count)")
            }
        }
    }

    /// Two indices that each wait (up to 2 s) for the other to start: they meet only if a worker
    /// runs one while the caller runs the other. Regions 5 ms apart with a 50 µs spin, so the
    /// worker is asleep at every start: a lost wake-up shows as a region whose indices did not meet.
    @Test func sleepingWorkersAreWoken() {
        let pool = WorkerPool(workers: 1, spin: .microseconds(50))
        for region in 0..<20 {
            Thread.sleep(forTimeInterval: 0.005)
            let arrived = Atomic<Int>(0), met = Atomic<Int>(0)
            #expect(pool.run(2) { _ in
                arrived.add(1, ordering: .sequentiallyConsistent)
                let deadline = Date().addingTimeInterval(2)
                while arrived.load(ordering: .sequentiallyConsistent) < 2 && Date() < deadline { }
                if arrived.load(ordering: .sequentiallyConsistent) == 2 { met.add(1, ordering: .sequentiallyConsistent) }
            })
            #expect(met.load(ordering: .sequentiallyConsistent) == 2, "region \(region): the worker did not start")
        }
    }

    /// The worker's index outlasts the caller's spin, so the caller sleeps and must be woken by
    /// the worker's last index; the result must include it.
    @Test func sleepingCallerIsWoken() {
        let pool = WorkerPool(workers: 1, spin: .microseconds(50))
        for _ in 0..<10 {
            let tally = Tally(2)
            let first = Atomic<Bool>(true)
            #expect(pool.run(2) { i in
                // Whoever comes second (the caller takes index 0 first) works for 5 ms.
                if !first.exchange(false, ordering: .sequentiallyConsistent) { Thread.sleep(forTimeInterval: 0.005) }
                tally.counts[i] += 1
            })
            #expect(tally.counts[0] == 1 && tally.counts[1] == 1)
        }
    }

    @Test func oneRegionAtATime() {
        let pool = WorkerPool(workers: 1, spin: .milliseconds(1))
        let innerRan = Atomic<Int>(0), innerRefused = Atomic<Int>(0)
        #expect(pool.run(4) { _ in
            if pool.run(3, { _ in innerRan.add(1, ordering: .relaxed) }) { } else { innerRefused.add(1, ordering: .relaxed) }
        })
        #expect(innerRefused.load(ordering: .relaxed) == 4 && innerRan.load(ordering: .relaxed) == 0)
        #expect(!pool.run(WorkerPool.maxCount) { _ in })
        #expect(!pool.run(0) { _ in })
    }

    /// `forEach` nested in `forEach`, and from several threads at once: every index once, on
    /// two threads (the pool for the outer region, Dispatch for the others).
    @Test func forEachNestedAndConcurrent() {
        let hold = Parallel.holdThreadCount()
        defer { hold.release() }
        Parallel.threads = 2
        let tally = Tally(8 * 16)
        Parallel.forEach(8) { i in
            Parallel.forEach(16) { j in tally.counts[i * 16 + j] += 1 }
        }
        #expect(tally.counts.allSatisfy { $0 == 1 })
        let tallies = (0..<4).map { _ in Tally(500) }
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for _ in 0..<20 { Parallel.forEach(500) { tallies[t].counts[$0] += 1 } }
        }
        #expect(tallies.allSatisfy { $0.counts.allSatisfy { $0 == 20 } })
    }
}
