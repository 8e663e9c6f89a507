import Foundation
import CBLAS

/// The machine's GEMM rate, measured now: the physical limit for kernel work, printed next to
/// every benchmark figure.
public enum GemmRate {
    /// Median GFLOP/s of an `n×n · n×n` GEMM in `Scalar` over `runs` runs (after one warm-up),
    /// with `threads` BLAS threads (a lease: `BLASThreads.with`).
    /// (Specialized: the generic fill of the two matrices took about a third of a small
    /// analysis's plan.)
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public static func measure<Scalar: BLASScalar>(_: Scalar.Type, n: Int = 2048, runs: Int = 3, threads: Int = 1) -> Double {
        return BLASThreads.with(threads) {
            var rng = PortableRandom(seed: 1)
            var values = [Scalar](repeating: 0, count: n * n)
            for i in values.indices { values[i] = Scalar(rng.uniform()) }
            let a = DenseMatrix<Scalar>(rows: n, cols: n, data: values)
            for i in values.indices { values[i] = Scalar(rng.uniform()) }
            let b = DenseMatrix<Scalar>(rows: n, cols: n, data: values)
            var c = DenseMatrix<Scalar>(rows: n, cols: n)
            DenseMatrix.gemm(a, b, into: &c)
            var rates: [Double] = []
            for _ in 0..<runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                DenseMatrix.gemm(a, b, into: &c)
                let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                rates.append(2 * Double(n) * Double(n) * Double(n) / s / 1e9)
            }
            return rates.sorted()[runs / 2]
        }
    }
}

/// The speed of a symmetric matrix-vector product (`dsymv`), measured now: the memory-bound half
/// of a symmetric eigendecomposition's reduction to tridiagonal form (LAPACK `dsytrd`, inside
/// `dsyevd`), whose speed does not follow the GEMM rate.
public enum SymvSpeed {
    /// Median seconds per stored element (`n²/2` of the lower triangle) of a float64 `dsymv` on
    /// an `n × n` matrix (72 MB at the default n = 3000, more than the caches hold) on one BLAS
    /// thread, with `threads` threads each running its own at the same time (as the ridge
    /// machines' eigendecompositions run side by side), over `runs` runs after one warm-up: the mean over the threads of each one's median.
    public static func measure(n: Int = 3000, runs: Int = 5, threads: Int = 1) -> Double {
        return BLASThreads.with(1) {
            let threads = max(1, threads)
            let count = n * n
            let matrices = (0..<threads).map { t in
                let a = UnsafeMutablePointer<Double>.allocate(capacity: count)
                for i in 0..<count { a[i] = Double((i &+ t) % 997) / 997 - 0.5 }
                return a
            }
            let vectors = (0..<threads).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: 2 * n) }
            defer { matrices.forEach { $0.deallocate() }; vectors.forEach { $0.deallocate() } }
            for v in vectors { v.initialize(repeating: 0.5, count: 2 * n) }
            let medians = UnsafeMutablePointer<Double>.allocate(capacity: threads)
            defer { medians.deallocate() }
            Parallel.forEach(threads) { t in
                let a = matrices[t], x = vectors[t], y = vectors[t] + n
                var seconds: [Double] = []
                for run in 0...runs {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    cblas_dsymv(CblasRowMajor, CblasLower, Int32(n), 1, a, Int32(n), x, 1, 0, y, 1)
                    let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    if run > 0 { seconds.append(s / (Double(n) * Double(n) / 2)) }
                }
                medians[t] = seconds.sorted()[seconds.count / 2]
            }
            return (0..<threads).reduce(0) { $0 + medians[$1] } / Double(threads)
        }
    }
}

/// The time of a symmetric eigendecomposition with eigenvectors (LAPACK `dsyevd`, as the ridge
/// machines run it), measured now on a small matrix: its mix of memory-bound `dsymv` passes, GEMMs
/// of panel width and LAPACK's own loops differs from one machine to another (Docs/path-kernel.md
/// §7, Session 22), so the plan scales this time instead of pricing the parts.
public enum EigenSpeed {
    /// Seconds of one `dsyevd` with eigenvectors of an `m × m` kernel matrix (a Gaussian kernel,
    /// `exp(−‖x_i − x_j‖²/4)`, of m fixed pseudo-random points in the unit cube of 20 dimensions,
    /// plus `10⁻³·I`: a fast-decaying spectrum, as the ridge machines' kernel matrices have,
    /// which decides how much of the divide and conquer deflates) on one BLAS thread, with
    /// `threads` threads each running its own at the same time (as the two ridge machines run
    /// side by side): the mean over the threads of each one's time. One run each (about 0.4 s
    /// at m = 1,024 on the AVX2 EPYC of sessions 17–22), the matrix built before the clock starts
    /// (LAPACK's own copy of it, under 1 % of the time, inside); NaN when LAPACK fails.
    public static func measure(m: Int = 1024, threads: Int = 1) -> Double {
        let threads = max(1, threads), d = 20
        var rng = PortableRandom(seed: 5)
        let x = Matrix(rows: m, cols: d, data: (0..<(m * d)).map { _ in rng.uniform() })
        var k = Matrix.product(x, x, transposeB: true)
        let norms = (0..<m).map { k[$0, $0] }
        k.data.withUnsafeMutableBufferPointer { p in
            for i in 0..<m {
                for j in 0..<m { p[i * m + j] = exp(-(norms[i] + norms[j] - 2 * p[i * m + j]) / 4) + (i == j ? 1e-3 : 0) }
            }
        }
        return BLASThreads.with(1) {
            let seconds = UnsafeMutablePointer<Double>.allocate(capacity: threads)
            defer { seconds.deallocate() }
            Parallel.forEach(threads) { t in
                let t0 = DispatchTime.now().uptimeNanoseconds
                let ok = (try? LinearAlgebra.symmetricEigen(k)) != nil
                seconds[t] = ok ? Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 : .nan
            }
            return (0..<threads).reduce(0) { $0 + seconds[$1] } / Double(threads)
        }
    }
}
