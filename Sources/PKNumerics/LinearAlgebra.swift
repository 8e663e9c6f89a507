#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Dense solves: Cholesky through LAPACK (`dpotrf`/`dpotrs`), and a small general solve by
/// Gaussian elimination with partial pivoting (for C×C blocks).
public enum LinearAlgebra {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Solves `A X = B` for symmetric positive-definite `A` (n × n) and `B` (n × m).
    /// Throws when `A` is not positive definite (LAPACK `info > 0`).
    public static func choleskySolve(_ a: Matrix, _ b: Matrix) throws -> Matrix {
        precondition(a.rows == a.cols && b.rows == a.rows, "choleskySolve shapes \(a.rows)×\(a.cols), \(b.rows)×\(b.cols)")
        var n = Int32(a.rows), nrhs = Int32(b.cols), info: Int32 = 0
        if a.rows == 0 { return b }
        // A is symmetric, so its row-major storage is also its column-major storage.
        var factor = a.data
        var uplo: CChar = 76 // "L"
        var lda = n
        dpotrf_(&uplo, &n, &factor, &lda, &info, 1)
        guard info == 0 else { throw Failure(description: "matrix is not positive definite (leading minor \(info))") }
        var rhs = b.transposed.data    // column-major B
        var ldb = n
        dpotrs_(&uplo, &n, &nrhs, factor, &lda, &rhs, &ldb, &info, 1)
        guard info == 0 else { throw Failure(description: "dpotrs failed (info \(info))") }
        return Matrix(rows: b.cols, cols: b.rows, data: rhs).transposed
    }

    /// Ridge solve in place: `(A + λI) X = B` for the symmetric matrix whose strictly lower
    /// triangle and diagonal are stored in `a` (row-major; the upper triangle is ignored). Tries
    /// `lambdas` in order and returns the first λ whose Cholesky factorization succeeds, with X;
    /// nil when none does. On return `a`'s strictly lower triangle and diagonal hold A again (the
    /// upper triangle holds the factor), so `symmetricProduct(lowerOf:)` can reuse it. One n×n
    /// buffer in all: large kernel systems are never copied.
    public static func ridgeSolveInPlace(_ a: inout Matrix, _ b: Matrix, lambdas: [Double]) -> (x: Matrix, lambda: Double)? {
        precondition(a.rows == a.cols && b.rows == a.rows, "ridgeSolveInPlace shapes \(a.rows)×\(a.cols), \(b.rows)×\(b.cols)")
        let m = a.rows
        if m == 0 { return (b, lambdas.first ?? 0) }
        let diagonal = (0..<m).map { a[$0, $0] }
        var n = Int32(m), nrhs = Int32(b.cols), info: Int32 = 0, lda = n, ldb = n
        // Row-major upper = column-major lower: LAPACK factors "L" there and leaves the row-major
        // lower triangle (the source of truth, copied up before each attempt) alone.
        var uplo: CChar = 76 // "L"
        for lambda in lambdas {
            a.data.withUnsafeMutableBufferPointer { p in
                for i in 0..<m {
                    for j in (i + 1)..<max(m, i + 1) { p[i * m + j] = p[j * m + i] }   // upper ← lower
                    p[i * m + i] = diagonal[i] + lambda
                }
                dpotrf_(&uplo, &n, p.baseAddress, &lda, &info, 1)
            }
            guard info == 0 else { continue }
            var rhs = b.transposed.data    // column-major B
            a.data.withUnsafeBufferPointer { p in dpotrs_(&uplo, &n, &nrhs, p.baseAddress, &lda, &rhs, &ldb, &info, 1) }
            for i in 0..<m { a[i, i] = diagonal[i] }
            guard info == 0 else { return nil }
            return (Matrix(rows: b.cols, cols: b.rows, data: rhs).transposed, lambda)
        }
        for i in 0..<m { a[i, i] = diagonal[i] }
        return nil
    }

    /// Kernel ridge regression on the positive semi-definite part of a symmetric matrix.
    ///
    /// With `A = V Λ Vᵀ` (LAPACK `dsyevd`) and `A₊ = V max(Λ, 0) Vᵀ`, solves
    /// `(A₊ + λI) X = B` with `λ = ρ · tr(A₊)/m` (`ρ` relative, as the ridge machines state it;
    /// `λ = 1e-12 · max(tr(A₊)/m, 1)` when that is 0). An indefinite kernel (the symmetrized path
    /// kernel of minibatch, momentum or Adam runs) thus loses its negative eigen-directions
    /// instead of a ridge raised until the matrix is barely positive definite (which makes the
    /// solve nearly singular). `negativeMass` is `Σ_{λ_j<0} |λ_j| / Σ_j |λ_j|` (0 for a PSD
    /// matrix; the discarded share of the spectrum). `fitted` is `A X` (the symmetric matrix
    /// itself, not its PSD part, applied to X: the machine's predictions at the training rows).
    ///
    /// `a` (m × m, both triangles, row-major) is overwritten by the eigenvectors. Memory: about
    /// 2m² doubles of LAPACK workspace besides `a`; cost about 9m³ flops (10× a Cholesky solve).
    public static func psdRidgeSolve(_ a: inout Matrix, _ b: Matrix, rho: Double) throws
        -> (x: Matrix, fitted: Matrix, lambda: Double, negativeMass: Double, negativeCount: Int) {
        precondition(a.rows == a.cols && b.rows == a.rows, "psdRidgeSolve shapes \(a.rows)×\(a.cols), \(b.rows)×\(b.cols)")
        let m = a.rows
        if m == 0 { return (b, b, 0, 0, 0) }
        let w = try eigenInPlace(&a, uplo: 76) // "L"
        // LAPACK's column j (an eigenvector) is row j of `a` read row-major: E = Vᵀ.
        var positive = 0.0, negative = 0.0, negativeCount = 0
        for v in w { if v > 0 { positive += v } else if v < 0 { negative -= v; negativeCount += 1 } }
        var lambda = rho * positive / Double(m)
        if !(lambda > 0) { lambda = 1e-12 * max(positive / Double(m), 1) }
        // X = V diag(1/(λ₊_j + λ)) Vᵀ B;  A X = V diag(λ_j) Vᵀ X.
        var c = Matrix.product(a, b)                                  // Vᵀ B
        var d = c
        for j in 0..<m {
            let inv = 1 / (max(w[j], 0) + lambda)
            for k in 0..<c.cols {
                c[j, k] *= inv
                d[j, k] = w[j] * c[j, k]
            }
        }
        let x = Matrix.product(a, transposeA: true, c)                // V c
        let fitted = Matrix.product(a, transposeA: true, d)           // V Λ Vᵀ X
        let total = positive + negative
        return (x, fitted, lambda, total > 0 ? negative / total : 0, negativeCount)
    }

    /// LAPACK `dsyevd` with eigenvectors on the m × m matrix `a` in place (its column-major
    /// triangle `uplo`, 76 "L" or 85 "U", is read; the eigenvectors overwrite it, column j of the
    /// column-major storage = row j read row-major): the eigenvalues, ascending.
    private static func eigenInPlace(_ a: inout Matrix, uplo: CChar) throws -> [Double] {
        let m = a.rows
        var n = Int32(m), lda = n, info: Int32 = 0
        var jobz: CChar = 86 // "V"
        var uplo = uplo
        var w = [Double](repeating: 0, count: m)
        var lwork: Int32 = -1, liwork: Int32 = -1
        var wq = [Double](repeating: 0, count: 1)
        var iwq = [Int32](repeating: 0, count: 1)
        a.data.withUnsafeMutableBufferPointer { p in
            dsyevd_(&jobz, &uplo, &n, p.baseAddress, &lda, &w, &wq, &lwork, &iwq, &liwork, &info, 1, 1)
        }
        guard info == 0 else { throw Failure(description: "dsyevd workspace query failed (info \(info))") }
        lwork = Int32(wq[0])
        liwork = max(iwq[0], 1)
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        a.data.withUnsafeMutableBufferPointer { p in
            dsyevd_(&jobz, &uplo, &n, p.baseAddress, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        }
        guard info == 0 else { throw Failure(description: "dsyevd failed (info \(info))") }
        return w
    }

    /// Eigenvalues and eigenvectors of a symmetric matrix (LAPACK `dsyevd`; only the lower
    /// triangle of `a` is read): `values` ascending, and `vectors` holding the eigenvectors as
    /// its *rows* (`vectors = Vᵀ`, row `j` the unit eigenvector of `values[j]`), so that
    /// `a = vectorsᵀ diag(values) vectors`. Throws when LAPACK fails.
    public static func symmetricEigen(_ a: Matrix) throws -> (values: [Double], vectors: Matrix) {
        precondition(a.rows == a.cols, "eigenvectors of a non-square matrix")
        let m = a.rows
        if m == 0 { return ([], a) }
        var e = a
        // "U": the lower triangle of row-major storage is the upper of column-major.
        let w = try eigenInPlace(&e, uplo: 85)
        // LAPACK's column j (an eigenvector) is row j of the row-major storage.
        return (w, e)
    }

    /// Eigenvalues of a symmetric matrix, ascending (LAPACK `dsyevd`, no vectors).
    public static func symmetricEigenvalues(_ a: Matrix) throws -> [Double] {
        precondition(a.rows == a.cols, "eigenvalues of a non-square matrix")
        var n = Int32(a.rows)
        if n == 0 { return [] }
        var m = a.data
        var jobz: CChar = 78 // "N"
        var uplo: CChar = 76 // "L"
        var lda = n, info: Int32 = 0
        var w = [Double](repeating: 0, count: a.rows)
        var lwork: Int32 = -1, liwork: Int32 = -1
        var wq = [Double](repeating: 0, count: 1)
        var iwq = [Int32](repeating: 0, count: 1)
        dsyevd_(&jobz, &uplo, &n, &m, &lda, &w, &wq, &lwork, &iwq, &liwork, &info, 1, 1)
        lwork = Int32(wq[0])
        liwork = iwq[0]
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(max(liwork, 1)))
        dsyevd_(&jobz, &uplo, &n, &m, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else { throw Failure(description: "dsyevd failed (info \(info))") }
        return w
    }

    /// Solves `A X = B` for a small general square `A` (partial pivoting). Throws when singular.
    public static func solve(_ a: Matrix, _ b: Matrix) throws -> Matrix {
        precondition(a.rows == a.cols && b.rows == a.rows)
        let n = a.rows
        var m = a, x = b
        for col in 0..<n {
            var piv = col
            for r in (col + 1)..<max(n, col + 1) where abs(m[r, col]) > abs(m[piv, col]) { piv = r }
            let scale = (0..<n).map { abs(m[$0, col]) }.max() ?? 0
            guard abs(m[piv, col]) > 1e-300 && abs(m[piv, col]) > 1e-14 * scale else {
                throw Failure(description: "singular matrix")
            }
            if piv != col {
                for c in 0..<n { let t = m[col, c]; m[col, c] = m[piv, c]; m[piv, c] = t }
                for c in 0..<x.cols { let t = x[col, c]; x[col, c] = x[piv, c]; x[piv, c] = t }
            }
            for r in (col + 1)..<max(n, col + 1) {
                let f = m[r, col] / m[col, col]
                if f == 0 { continue }
                for c in col..<n { m[r, c] -= f * m[col, c] }
                for c in 0..<x.cols { x[r, c] -= f * x[col, c] }
            }
        }
        for r in stride(from: n - 1, through: 0, by: -1) {
            for c in 0..<x.cols {
                var s = x[r, c]
                for k in (r + 1)..<max(n, r + 1) { s -= m[r, k] * x[k, c] }
                x[r, c] = s / m[r, r]
            }
        }
        return x
    }
}
