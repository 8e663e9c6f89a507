import Foundation
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// BLAS threading, by lease. OpenBLAS's thread count is one setting for the whole process, and its
/// results depend on it: a `dsyevd` on 40 rows, or a 300² GEMM, gives other bits on two threads
/// than on one. Code that flips it for its own use (the trainer's large GEMMs, the benchmarks'
/// GEMM-rate measurement) must not change it under an analysis running beside it in the same
/// process (the test runner runs suites side by side: an analysis whose ridge machines ran while
/// another test trained on two BLAS threads gave other bits, a flaky determinism test).
///
/// So the count is taken for a scope: `with(n) { … }` runs its body with `n` BLAS threads and no
/// other count in force anywhere in the process until it returns. Leases of the same count
/// share; a lease of another count waits until none is left. Inside a lease, the same thread's
/// nested requests run at the count already in force (the outermost lease decides); other
/// threads started inside it (`Parallel.forEach`) must ask for the same count or none (asking
/// for another would wait for their own parent: a deadlock). When the last lease ends the count
/// returns to one, the project's policy (OpenBLAS's own threads cost far more than they give on
/// the many small GEMMs of a path analysis: measured on 2 cores, 90 s with 2 threads against
/// 24 s with 1 on `moons-mlp`, the difference being spin-waiting in the kernel).
public enum BLASThreads {
    private static let condition = NSCondition()
    /// The count the leases in force run at (0 before the first lease: OpenBLAS's own default).
    nonisolated(unsafe) private static var active = 0
    /// The threads holding a lease (one each: a nested request holds none of its own).
    nonisolated(unsafe) private static var holders: Set<pthread_t> = []

    /// Runs `body` with `n` BLAS threads (at least one), exclusive of every other count (see the
    /// type's doc). A no-op on Accelerate, which has no thread setting.
    public static func with<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let n = max(n, 1), me = pthread_self()
        condition.lock()
        if holders.contains(me) {
            // Nested on a holding thread: the count in force.
            condition.unlock()
            return try body()
        }
        while !holders.isEmpty && active != n { condition.wait() }
        if holders.isEmpty && active != n {
            set(n)
            active = n
        }
        holders.insert(me)
        condition.unlock()
        defer {
            condition.lock()
            holders.remove(me)
            if holders.isEmpty {
                if active != 1 {
                    set(1)
                    active = 1
                }
                condition.broadcast()
            }
            condition.unlock()
        }
        return try body()
    }

    /// The BLAS library's thread count now (1 on Accelerate): for tests of the leases.
    public static var current: Int {
        #if canImport(Accelerate)
        return 1
        #else
        return Int(openblas_get_num_threads())
        #endif
    }

    private static func set(_ n: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(clamping: n))
        #endif
    }
}
