import Foundation

/// The machine's GEMM rate, measured now: the physical limit for kernel work, printed next to
/// every benchmark figure.
public enum GemmRate {
    /// Median GFLOP/s of an `n×n · n×n` GEMM in `Scalar` over `runs` runs (after one warm-up),
    /// with `threads` BLAS threads (restored to one afterwards).
    public static func measure<Scalar: BLASScalar>(_: Scalar.Type, n: Int = 2048, runs: Int = 3, threads: Int = 1) -> Double {
        BLASThreads.set(threads)
        defer { BLASThreads.set(1) }
        var rng = PortableRandom(seed: 1)
        let a = DenseMatrix<Scalar>(rows: n, cols: n, data: (0..<(n * n)).map { _ in Scalar(rng.uniform()) })
        let b = DenseMatrix<Scalar>(rows: n, cols: n, data: (0..<(n * n)).map { _ in Scalar(rng.uniform()) })
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
