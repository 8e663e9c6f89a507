#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Matrix products through CBLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
extension Matrix {
    /// `C ← α·op(A)·op(B) + β·C` with row-major storage (`dgemm`).
    ///
    /// - Parameters: `transposeA`/`transposeB` select `op(X) = Xᵀ`. Shapes are checked.
    public static func gemm(_ a: Matrix, transposeA: Bool = false,
                            _ b: Matrix, transposeB: Bool = false,
                            alpha: Double = 1, beta: Double = 0, into c: inout Matrix) {
        let m = transposeA ? a.cols : a.rows
        let k = transposeA ? a.rows : a.cols
        let kb = transposeB ? b.cols : b.rows
        let n = transposeB ? b.rows : b.cols
        precondition(k == kb, "gemm inner dimensions differ: \(k) vs \(kb)")
        precondition(c.rows == m && c.cols == n, "gemm output is \(c.rows)×\(c.cols), expected \(m)×\(n)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in c.data.indices { c.data[i] *= beta }
            return
        }
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    cblas_dgemm(CblasRowMajor,
                                transposeA ? CblasTrans : CblasNoTrans,
                                transposeB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), alpha,
                                pa.baseAddress, Int32(max(a.cols, 1)),
                                pb.baseAddress, Int32(max(b.cols, 1)),
                                beta, pc.baseAddress, Int32(max(n, 1)))
                }
            }
        }
    }

    /// `op(A)·op(B)` as a new matrix.
    public static func product(_ a: Matrix, transposeA: Bool = false,
                               _ b: Matrix, transposeB: Bool = false) -> Matrix {
        var c = Matrix(rows: transposeA ? a.cols : a.rows, cols: transposeB ? b.rows : b.cols)
        gemm(a, transposeA: transposeA, b, transposeB: transposeB, into: &c)
        return c
    }

    /// `A·B`.
    public static func * (a: Matrix, b: Matrix) -> Matrix { product(a, b) }

    /// The reference triple loop, used as the oracle for `gemm` in tests.
    public static func naiveProduct(_ a: Matrix, _ b: Matrix) -> Matrix {
        precondition(a.cols == b.rows)
        var c = Matrix(rows: a.rows, cols: b.cols)
        for i in 0..<a.rows {
            for j in 0..<b.cols {
                var s = 0.0
                for k in 0..<a.cols { s += a[i, k] * b[k, j] }
                c[i, j] = s
            }
        }
        return c
    }
}

/// Vector helpers on `[Double]` (BLAS level 1 where it matters).
public enum Vec {
    public static func dot(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count, "dot of lengths \(x.count) and \(y.count)")
        if x.isEmpty { return 0 }
        return cblas_ddot(Int32(x.count), x, 1, y, 1)
    }

    /// `y ← α·x + y`.
    public static func axpy(_ alpha: Double, _ x: [Double], _ y: inout [Double]) {
        precondition(x.count == y.count, "axpy of lengths \(x.count) and \(y.count)")
        if x.isEmpty { return }
        y.withUnsafeMutableBufferPointer { py in
            cblas_daxpy(Int32(x.count), alpha, x, 1, py.baseAddress, 1)
        }
    }

    public static func norm(_ x: [Double]) -> Double { dot(x, x).squareRoot() }
}

/// BLAS threading. OpenBLAS's own threads help large GEMMs but cost far more than they give on
/// the many small GEMMs of a path analysis (measured on 2 cores: 90 s with 2 threads against 24 s
/// with 1 on `moons-mlp`, the difference being spin-waiting in the kernel).
public enum BLASThreads {
    /// Sets the number of BLAS threads for the whole process (no-op on Accelerate).
    public static func set(_ n: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(max(n, 1)))
        #endif
    }
}
