import Foundation
import Testing
@testable import PKNumerics

/// `BLASThreads.with`: a lease holds OpenBLAS's (process-wide) thread count for its scope. The
/// oracle is OpenBLAS's own reading of the count (`openblas_get_num_threads`).
@Suite("BLAS thread leases")
struct BLASThreadsTests {
    /// While a lease of one thread is held, a request for two from another thread waits: the
    /// holder reads one throughout, the other runs after it, at two; then the count is one again.
    @Test func anotherCountWaitsForTheLease() throws {
        let started = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        let seen = LockedCounts()
        BLASThreads.with(1) {
            Thread.detachNewThread {
                started.signal()
                BLASThreads.with(2) { seen.record(inside: BLASThreads.current) }
                finished.signal()
            }
            started.wait()
            let waitWhileHeld = 0.05   // seconds the other thread has to (wrongly) set its count
            Thread.sleep(forTimeInterval: waitWhileHeld)
            #expect(BLASThreads.current == 1)
            #expect(seen.values.isEmpty, "a lease of 2 ran inside a lease of 1")
        }
        finished.wait()
        #expect(seen.values == [2])
        #expect(BLASThreads.current == 1)
    }

    /// A nested request on the holding thread runs at the count in force (the outermost decides).
    @Test func nestedRequestsKeepTheOuterCount() {
        BLASThreads.with(1) {
            BLASThreads.with(2) { #expect(BLASThreads.current == 1) }
            #expect(BLASThreads.current == 1)
        }
    }

    /// Worker threads inside a lease ask for the same count and share it (no deadlock).
    @Test func workersShareTheirParentsCount() {
        let seen = LockedCounts()
        BLASThreads.with(1) {
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                BLASThreads.with(1) { seen.record(inside: BLASThreads.current) }
            }
        }
        #expect(seen.values == [1, 1, 1, 1])
    }
}

final class LockedCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [Int] = []
    func record(inside n: Int) { lock.lock(); counts.append(n); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return counts }
}
