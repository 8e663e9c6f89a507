#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import CKernels

/// A scalar type BLAS computes with: `Double` (`dgemm`) and `Float` (`sgemm`).
public protocol BLASScalar: BinaryFloatingPoint, Sendable, Codable {
    /// The value as a `Double` (exact for both types). Code generic over the scalar that is not
    /// specialized would otherwise convert through `BinaryFloatingPoint`'s generic initializer,
    /// tens of nanoseconds a value (it was most of the (S)GD route's time on small networks).
    var doubleValue: Double { get }
    /// Row-major `C ← α·op(A)·op(B) + β·C` on raw storage (`m×n` result, inner dimension `k`).
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// ReLU in place with its derivative, one branch-free pass: `d[k] = [v[k] > 0]`,
    /// `v[k] ← v[k]·[v[k] > 0]` (0 for NaN and −0).
    static func reluInPlace(_ v: UnsafeMutablePointer<Self>, derivatives d: UnsafeMutablePointer<Self>, count: Int)
    /// `v[k] = s[k]·(c₀a₀[k] + c₁a₁[k] + c₂a₂[k] + c₃a₃[k])` (sums left to right; `s` nil: every
    /// `s[k]` is 1, the same bits without reading it) for k < n, then
    /// `o[k] = v[k]` (`decay == 0`), `o[k] += v[k]` (`decay == 1`), else `o[k] = decay·o[k] + v[k]`:
    /// the C kernel `pk_scaled_combination` (AVX-512 or AVX2 where the CPU has them, the same bits either way).
    static func scaledCombination(_ o: UnsafeMutablePointer<Self>, scale s: UnsafePointer<Self>?,
                                  _ a: (UnsafePointer<Self>, UnsafePointer<Self>, UnsafePointer<Self>, UnsafePointer<Self>),
                                  _ c: (Self, Self, Self, Self), decay: Self, count n: Int)
    /// For each channel k of `channels`: `z[k·nb + i] = Σ_j (base_j[i] + bias_j)·sT[(k·dout + j)·nb + i]`
    /// (j ascending, from 0), `base_j = (sw·u[j])·gram` when `u` is given (a factored layer) else row j
    /// of `y` (dout × nb), `bias_j = sb·b[j]` or 0: the C kernel `pk_signal_contraction`.
    static func signalContraction(_ z: UnsafeMutablePointer<Self>, channels: UnsafePointer<Int32>, count nch: Int,
                                  y: UnsafePointer<Self>?, u: UnsafePointer<Self>?, gram: UnsafePointer<Self>?, sw: Self,
                                  bias b: UnsafePointer<Self>?, sb: Self, signals sT: UnsafePointer<Self>,
                                  dout: Int, nb: Int, scratch: UnsafeMutablePointer<Self>)
    /// `signalContraction` for `rows` query rows at once (the same bits): row q writes
    /// `z + q·zStride` and reads `y + q·yStride` (or `u + q·uStride`, `gram + q·gramStride`) and
    /// `b + q·biasStride`; groups of 4 rows share each load of the signals (AVX-512): the C kernel
    /// `pk_signal_contraction_rows`.
    static func signalContractionRows(_ z: UnsafeMutablePointer<Self>, zStride: Int, channels: UnsafePointer<Int32>, count nch: Int, rows: Int,
                                      y: UnsafePointer<Self>?, yStride: Int, u: UnsafePointer<Self>?, uStride: Int,
                                      gram: UnsafePointer<Self>?, gramStride: Int, sw: Self, bias b: UnsafePointer<Self>?, biasStride: Int,
                                      sb: Self, signals sT: UnsafePointer<Self>, dout: Int, nb: Int, scratch: UnsafeMutablePointer<Self>)
    /// `y[i·nb + j] = alpha · Σ_kk r[i·k + kk]·bt[kk·ldb + j]` for i < m, j < nb, each sum a chain
    /// of fused multiply-adds in kk order from 0: R's rows times the batch's inputs transposed
    /// without packing R (the backward pass's product; the C kernel `pk_rows_times_batch`, the
    /// same bits on AVX-512, AVX2 and the baseline; fast with `bt` 64-byte aligned and `ldb` a
    /// multiple of 64 bytes).
    static func rowsTimesBatch(_ y: UnsafeMutablePointer<Self>, rows r: UnsafePointer<Self>, batchT bt: UnsafePointer<Self>, ldb: Int,
                               alpha: Self, m: Int, k: Int, nb: Int)
    /// `rowsTimesBatch` with R's column kk meeting the batch's row `idx[kk]` (R kept over a subset
    /// of the inputs, ascending): the C kernel `pk_rows_times_batch_indexed`, the same chains.
    static func rowsTimesBatch(_ y: UnsafeMutablePointer<Self>, rows r: UnsafePointer<Self>, batchT bt: UnsafePointer<Self>, ldb: Int,
                               batchRows idx: UnsafePointer<Int32>, alpha: Self, m: Int, k: Int, nb: Int)
    /// `scaledCombination` with `s` read at `s[idx[k]]`: the C kernel `pk_scaled_combination_indexed`.
    static func scaledCombination(_ o: UnsafeMutablePointer<Self>, scale s: UnsafePointer<Self>?, at idx: UnsafePointer<Int32>,
                                  _ a: (UnsafePointer<Self>, UnsafePointer<Self>, UnsafePointer<Self>, UnsafePointer<Self>),
                                  _ c: (Self, Self, Self, Self), decay: Self, count n: Int)
    /// tanh in place with its derivative: `t = Tanh.value(v[k])` (a `Float` widened first),
    /// `v[k] ← t`, `d[k] ← 1 − t·t`, each rounded once to `Self`: the C kernel
    /// `pk_tanh_in_place` (AVX-512, AVX2 or SSE2 lanes, the bits of `Tanh.value` in every one).
    static func tanhInPlace(_ v: UnsafeMutablePointer<Self>, derivatives d: UnsafeMutablePointer<Self>, count: Int)
    /// ReLU in place without derivatives: `v[k] ← v[k]·[v[k] > 0]`, the values of `reluInPlace`
    /// (its derivative is `[φ(z) > 0]`, read back from the values where needed).
    static func reluInPlace(_ v: UnsafeMutablePointer<Self>, count: Int)
    /// `out[k] = x[k]·[a[k] > 0]` (a multiplication by 1 or 0, as by ReLU's stored derivative);
    /// `out` may be `x`.
    static func multiplyByStep(_ x: UnsafePointer<Self>, of a: UnsafePointer<Self>, into out: UnsafeMutablePointer<Self>, count: Int)
    /// The Hadamard step of a structured kernel, along one row: `k[i] = g_i·(a[i] + shift)`
    /// (`assign`) or `k[i] += g_i·(a[i] + shift)`, with `g_i = d[i]`, or `g_i = scale·d[i]` when
    /// `scale` is given (a one-column Gram, the product of two numbers).
    static func hadamardUpdate(_ k: UnsafeMutablePointer<Self>, _ d: UnsafePointer<Self>, scale: Self?, _ a: UnsafePointer<Self>,
                               shift: Self, count: Int, assign: Bool)
}

extension BLASScalar {
    /// `to[k] += Double(from[k])` for k < count: a row of float64 sums taking a row of this
    /// precision's values, in one pass the compiler vectorizes (wrapping index arithmetic; the
    /// same bits as the element-by-element loop).
    @inlinable
    public static func addWidened(_ to: UnsafeMutablePointer<Double>, _ from: UnsafePointer<Self>, count: Int) {
        var k = 0
        while k < count { to[k] += from[k].doubleValue; k &+= 1 }
    }
}

extension Double: BLASScalar {
    @inlinable public var doubleValue: Double { self }
    @inlinable
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Float: BLASScalar {
    @inlinable public var doubleValue: Double { Double(self) }
    @inlinable
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// Matrix products through CBLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
extension DenseMatrix {
    /// `C ← α·op(A)·op(B) + β·C` with row-major storage (`dgemm` / `sgemm`).
    ///
    /// - Parameters: `transposeA`/`transposeB` select `op(X) = Xᵀ`. Shapes are checked.
    @inlinable
    public static func gemm(_ a: DenseMatrix, transposeA: Bool = false,
                            _ b: DenseMatrix, transposeB: Bool = false,
                            alpha: Scalar = 1, beta: Scalar = 0, into c: inout DenseMatrix) {
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
                    Scalar.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                a: pa.baseAddress!, lda: max(a.cols, 1), b: pb.baseAddress!, ldb: max(b.cols, 1),
                                beta: beta, c: pc.baseAddress!, ldc: max(n, 1))
                }
            }
        }
    }

    /// `C ← α·A[rowsA]·B[rowsB]ᵀ + β·C`: a Gram block between row ranges, without copies.
    @inlinable
    public static func gemm(_ a: DenseMatrix, rows ra: Range<Int>, _ b: DenseMatrix, rows rb: Range<Int>,
                            alpha: Scalar = 1, beta: Scalar = 0, into c: inout DenseMatrix) {
        precondition(a.cols == b.cols, "gemm inner dimensions differ: \(a.cols) vs \(b.cols)")
        precondition(ra.lowerBound >= 0 && ra.upperBound <= a.rows && rb.lowerBound >= 0 && rb.upperBound <= b.rows, "row range out of bounds")
        precondition(c.rows == ra.count && c.cols == rb.count, "gemm output is \(c.rows)×\(c.cols), expected \(ra.count)×\(rb.count)")
        if ra.isEmpty || rb.isEmpty { return }
        if a.cols == 0 {
            for i in c.data.indices { c.data[i] *= beta }
            return
        }
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    Scalar.gemm(transposeA: false, transposeB: true, m: ra.count, n: rb.count, k: a.cols, alpha: alpha,
                                a: pa.baseAddress! + ra.lowerBound * a.cols, lda: a.cols,
                                b: pb.baseAddress! + rb.lowerBound * b.cols, ldb: b.cols,
                                beta: beta, c: pc.baseAddress!, ldc: rb.count)
                }
            }
        }
    }

    /// `op(A)·op(B)` as a new matrix.
    @inlinable
    public static func product(_ a: DenseMatrix, transposeA: Bool = false,
                               _ b: DenseMatrix, transposeB: Bool = false) -> DenseMatrix {
        var c = DenseMatrix(rows: transposeA ? a.cols : a.rows, cols: transposeB ? b.rows : b.cols)
        gemm(a, transposeA: transposeA, b, transposeB: transposeB, into: &c)
        return c
    }

    /// `A·B`.
    @inlinable
    public static func * (a: DenseMatrix, b: DenseMatrix) -> DenseMatrix { product(a, b) }

    /// The reference triple loop, used as the oracle for `gemm` in tests.
    public static func naiveProduct(_ a: DenseMatrix, _ b: DenseMatrix) -> DenseMatrix {
        precondition(a.cols == b.rows)
        var c = DenseMatrix(rows: a.rows, cols: b.cols)
        for i in 0..<a.rows {
            for j in 0..<b.cols {
                var s: Scalar = 0
                for k in 0..<a.cols { s += a[i, k] * b[k, j] }
                c[i, j] = s
            }
        }
        return c
    }
}

extension Matrix {
    /// `S·B` for the symmetric `S` whose lower triangle and diagonal are stored in `a` (the upper
    /// triangle is not read: `dsymm`). Pairs with `LinearAlgebra.ridgeSolveInPlace`.
    public static func symmetricProduct(lowerOf a: Matrix, _ b: Matrix) -> Matrix {
        precondition(a.rows == a.cols && b.rows == a.rows, "symmetricProduct shapes \(a.rows)×\(a.cols), \(b.rows)×\(b.cols)")
        var c = Matrix(rows: a.rows, cols: b.cols)
        if a.rows == 0 || b.cols == 0 { return c }
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    cblas_dsymm(CblasRowMajor, CblasLeft, CblasLower, Int32(a.rows), Int32(b.cols), 1,
                                pa.baseAddress, Int32(a.cols), pb.baseAddress, Int32(b.cols), 0, pc.baseAddress, Int32(b.cols))
                }
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

// Concrete SIMD loops: the generic scalar loop keeps a data-dependent branch (random signs
// mispredict half the time) and never vectorizes.
extension Double {
    @inlinable
    public static func reluInPlace(_ v: UnsafeMutablePointer<Double>, derivatives d: UnsafeMutablePointer<Double>, count: Int) {
        let zero = SIMD4<Double>(repeating: 0), one = SIMD4<Double>(repeating: 1)
        var k = 0
        while k + 4 <= count {
            let x = UnsafeRawPointer(v + k).loadUnaligned(as: SIMD4<Double>.self)
            let positive = x .> zero
            UnsafeMutableRawPointer(d + k).storeBytes(of: zero.replacing(with: one, where: positive), as: SIMD4<Double>.self)
            UnsafeMutableRawPointer(v + k).storeBytes(of: zero.replacing(with: x, where: positive), as: SIMD4<Double>.self)
            k += 4
        }
        while k < count {
            let positive = v[k] > 0
            d[k] = positive ? 1 : 0
            v[k] = positive ? v[k] : 0
            k += 1
        }
    }
}

extension Double {
    @inlinable
    public static func reluInPlace(_ v: UnsafeMutablePointer<Double>, count: Int) {
        let zero = SIMD4<Double>(repeating: 0)
        var k = 0
        while k + 4 <= count {
            let x = UnsafeRawPointer(v + k).loadUnaligned(as: SIMD4<Double>.self)
            UnsafeMutableRawPointer(v + k).storeBytes(of: zero.replacing(with: x, where: x .> zero), as: SIMD4<Double>.self)
            k += 4
        }
        while k < count {
            v[k] = v[k] > 0 ? v[k] : 0
            k += 1
        }
    }

    @inlinable
    public static func multiplyByStep(_ x: UnsafePointer<Double>, of a: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, count: Int) {
        let zero = SIMD4<Double>(repeating: 0), one = SIMD4<Double>(repeating: 1)
        var k = 0
        while k + 4 <= count {
            let xv = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD4<Double>.self)
            let av = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD4<Double>.self)
            UnsafeMutableRawPointer(out + k).storeBytes(of: xv * zero.replacing(with: one, where: av .> zero), as: SIMD4<Double>.self)
            k += 4
        }
        while k < count {
            out[k] = x[k] * (a[k] > 0 ? 1 : 0)
            k += 1
        }
    }

    @inlinable
    public static func hadamardUpdate(_ k: UnsafeMutablePointer<Double>, _ d: UnsafePointer<Double>, scale: Double?, _ a: UnsafePointer<Double>,
                                      shift: Double, count: Int, assign: Bool) {
        @inline(__always) func load(_ p: UnsafePointer<Double>, _ i: Int) -> SIMD4<Double> { UnsafeRawPointer(p + i).loadUnaligned(as: SIMD4<Double>.self) }
        @inline(__always) func store(_ v: SIMD4<Double>, _ i: Int) { UnsafeMutableRawPointer(k + i).storeBytes(of: v, as: SIMD4<Double>.self) }
        let sh = SIMD4<Double>(repeating: shift)
        var i = 0
        switch (scale, assign) {
        case (let s?, true):
            let sv = SIMD4<Double>(repeating: s)
            while i + 4 <= count { store((sv * load(d, i)) * (load(a, i) + sh), i); i += 4 }
            while i < count { k[i] = (s * d[i]) * (a[i] + shift); i += 1 }
        case (let s?, false):
            let sv = SIMD4<Double>(repeating: s)
            while i + 4 <= count { store(load(k, i) + (sv * load(d, i)) * (load(a, i) + sh), i); i += 4 }
            while i < count { k[i] += (s * d[i]) * (a[i] + shift); i += 1 }
        case (nil, true):
            while i + 4 <= count { store(load(d, i) * (load(a, i) + sh), i); i += 4 }
            while i < count { k[i] = d[i] * (a[i] + shift); i += 1 }
        case (nil, false):
            while i + 4 <= count { store(load(k, i) + load(d, i) * (load(a, i) + sh), i); i += 4 }
            while i < count { k[i] += d[i] * (a[i] + shift); i += 1 }
        }
    }
}

extension Float {
    @inlinable
    public static func reluInPlace(_ v: UnsafeMutablePointer<Float>, derivatives d: UnsafeMutablePointer<Float>, count: Int) {
        let zero = SIMD8<Float>(repeating: 0), one = SIMD8<Float>(repeating: 1)
        var k = 0
        while k + 8 <= count {
            let x = UnsafeRawPointer(v + k).loadUnaligned(as: SIMD8<Float>.self)
            let positive = x .> zero
            UnsafeMutableRawPointer(d + k).storeBytes(of: zero.replacing(with: one, where: positive), as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(v + k).storeBytes(of: zero.replacing(with: x, where: positive), as: SIMD8<Float>.self)
            k += 8
        }
        while k < count {
            let positive = v[k] > 0
            d[k] = positive ? 1 : 0
            v[k] = positive ? v[k] : 0
            k += 1
        }
    }
}

extension Double {
    @inlinable
    public static func scaledCombination(_ o: UnsafeMutablePointer<Double>, scale s: UnsafePointer<Double>?,
                                         _ a: (UnsafePointer<Double>, UnsafePointer<Double>, UnsafePointer<Double>, UnsafePointer<Double>),
                                         _ c: (Double, Double, Double, Double), decay: Double, count n: Int) {
        pk_scaled_combination_f64(o, s, a.0, a.1, a.2, a.3, c.0, c.1, c.2, c.3, decay, decay == 0 ? 0 : (decay == 1 ? 1 : 2), n)
    }

    @inlinable
    public static func signalContraction(_ z: UnsafeMutablePointer<Double>, channels: UnsafePointer<Int32>, count nch: Int,
                                         y: UnsafePointer<Double>?, u: UnsafePointer<Double>?, gram: UnsafePointer<Double>?, sw: Double,
                                         bias b: UnsafePointer<Double>?, sb: Double, signals sT: UnsafePointer<Double>,
                                         dout: Int, nb: Int, scratch: UnsafeMutablePointer<Double>) {
        pk_signal_contraction_f64(z, channels, Int32(nch), y, u, gram, sw, b, sb, sT, dout, nb, scratch)
    }

    @inlinable
    public static func signalContractionRows(_ z: UnsafeMutablePointer<Double>, zStride: Int, channels: UnsafePointer<Int32>, count nch: Int, rows: Int,
                                             y: UnsafePointer<Double>?, yStride: Int, u: UnsafePointer<Double>?, uStride: Int,
                                             gram: UnsafePointer<Double>?, gramStride: Int, sw: Double, bias b: UnsafePointer<Double>?, biasStride: Int,
                                             sb: Double, signals sT: UnsafePointer<Double>, dout: Int, nb: Int, scratch: UnsafeMutablePointer<Double>) {
        pk_signal_contraction_rows_f64(z, zStride, channels, Int32(nch), Int32(rows), y, yStride, u, uStride, gram, gramStride, sw, b, biasStride,
                                        sb, sT, dout, nb, scratch)
    }

    @inlinable
    public static func rowsTimesBatch(_ y: UnsafeMutablePointer<Double>, rows r: UnsafePointer<Double>, batchT bt: UnsafePointer<Double>, ldb: Int,
                                      alpha: Double, m: Int, k: Int, nb: Int) {
        pk_rows_times_batch_f64(y, r, bt, ldb, alpha, m, k, nb)
    }

    @inlinable
    public static func rowsTimesBatch(_ y: UnsafeMutablePointer<Double>, rows r: UnsafePointer<Double>, batchT bt: UnsafePointer<Double>, ldb: Int,
                                      batchRows idx: UnsafePointer<Int32>, alpha: Double, m: Int, k: Int, nb: Int) {
        pk_rows_times_batch_indexed_f64(y, r, bt, ldb, idx, alpha, m, k, nb)
    }

    @inlinable
    public static func scaledCombination(_ o: UnsafeMutablePointer<Double>, scale s: UnsafePointer<Double>?, at idx: UnsafePointer<Int32>,
                                         _ a: (UnsafePointer<Double>, UnsafePointer<Double>, UnsafePointer<Double>, UnsafePointer<Double>),
                                         _ c: (Double, Double, Double, Double), decay: Double, count n: Int) {
        pk_scaled_combination_indexed_f64(o, s, idx, a.0, a.1, a.2, a.3, c.0, c.1, c.2, c.3, decay, decay == 0 ? 0 : (decay == 1 ? 1 : 2), n)
    }
}

extension Float {
    @inlinable
    public static func scaledCombination(_ o: UnsafeMutablePointer<Float>, scale s: UnsafePointer<Float>?,
                                         _ a: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
                                         _ c: (Float, Float, Float, Float), decay: Float, count n: Int) {
        pk_scaled_combination_f32(o, s, a.0, a.1, a.2, a.3, c.0, c.1, c.2, c.3, decay, decay == 0 ? 0 : (decay == 1 ? 1 : 2), n)
    }

    @inlinable
    public static func signalContraction(_ z: UnsafeMutablePointer<Float>, channels: UnsafePointer<Int32>, count nch: Int,
                                         y: UnsafePointer<Float>?, u: UnsafePointer<Float>?, gram: UnsafePointer<Float>?, sw: Float,
                                         bias b: UnsafePointer<Float>?, sb: Float, signals sT: UnsafePointer<Float>,
                                         dout: Int, nb: Int, scratch: UnsafeMutablePointer<Float>) {
        pk_signal_contraction_f32(z, channels, Int32(nch), y, u, gram, sw, b, sb, sT, dout, nb, scratch)
    }

    @inlinable
    public static func signalContractionRows(_ z: UnsafeMutablePointer<Float>, zStride: Int, channels: UnsafePointer<Int32>, count nch: Int, rows: Int,
                                             y: UnsafePointer<Float>?, yStride: Int, u: UnsafePointer<Float>?, uStride: Int,
                                             gram: UnsafePointer<Float>?, gramStride: Int, sw: Float, bias b: UnsafePointer<Float>?, biasStride: Int,
                                             sb: Float, signals sT: UnsafePointer<Float>, dout: Int, nb: Int, scratch: UnsafeMutablePointer<Float>) {
        pk_signal_contraction_rows_f32(z, zStride, channels, Int32(nch), Int32(rows), y, yStride, u, uStride, gram, gramStride, sw, b, biasStride,
                                        sb, sT, dout, nb, scratch)
    }

    @inlinable
    public static func rowsTimesBatch(_ y: UnsafeMutablePointer<Float>, rows r: UnsafePointer<Float>, batchT bt: UnsafePointer<Float>, ldb: Int,
                                      alpha: Float, m: Int, k: Int, nb: Int) {
        pk_rows_times_batch_f32(y, r, bt, ldb, alpha, m, k, nb)
    }

    @inlinable
    public static func rowsTimesBatch(_ y: UnsafeMutablePointer<Float>, rows r: UnsafePointer<Float>, batchT bt: UnsafePointer<Float>, ldb: Int,
                                      batchRows idx: UnsafePointer<Int32>, alpha: Float, m: Int, k: Int, nb: Int) {
        pk_rows_times_batch_indexed_f32(y, r, bt, ldb, idx, alpha, m, k, nb)
    }

    @inlinable
    public static func scaledCombination(_ o: UnsafeMutablePointer<Float>, scale s: UnsafePointer<Float>?, at idx: UnsafePointer<Int32>,
                                         _ a: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>),
                                         _ c: (Float, Float, Float, Float), decay: Float, count n: Int) {
        pk_scaled_combination_indexed_f32(o, s, idx, a.0, a.1, a.2, a.3, c.0, c.1, c.2, c.3, decay, decay == 0 ? 0 : (decay == 1 ? 1 : 2), n)
    }
}

/// Whether the C kernels run their AVX2 versions on this CPU (`pk_kernels_avx2`).
public enum ElementwiseKernels {
    public static var avx2: Bool { pk_kernels_avx2() == 1 }
    /// Tests: run the baseline versions whatever the CPU (`false` chooses by CPUID again).
    public static func forceBaseline(_ on: Bool) { pk_kernels_force_baseline(on ? 1 : 0) }
    /// Tests: the widest version any kernel may run (2 AVX-512F, the default; 1 AVX2; 0 the
    /// baseline), each where the CPU has it.
    public static func forceMaxLevel(_ level: Int) { pk_kernels_force_max_level(Int32(level)) }
}
extension Float {
    @inlinable
    public static func reluInPlace(_ v: UnsafeMutablePointer<Float>, count: Int) {
        let zero = SIMD8<Float>(repeating: 0)
        var k = 0
        while k + 8 <= count {
            let x = UnsafeRawPointer(v + k).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(v + k).storeBytes(of: zero.replacing(with: x, where: x .> zero), as: SIMD8<Float>.self)
            k += 8
        }
        while k < count {
            v[k] = v[k] > 0 ? v[k] : 0
            k += 1
        }
    }

    @inlinable
    public static func multiplyByStep(_ x: UnsafePointer<Float>, of a: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        let zero = SIMD8<Float>(repeating: 0), one = SIMD8<Float>(repeating: 1)
        var k = 0
        while k + 8 <= count {
            let xv = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self)
            let av = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + k).storeBytes(of: xv * zero.replacing(with: one, where: av .> zero), as: SIMD8<Float>.self)
            k += 8
        }
        while k < count {
            out[k] = x[k] * (a[k] > 0 ? 1 : 0)
            k += 1
        }
    }

    @inlinable
    public static func hadamardUpdate(_ k: UnsafeMutablePointer<Float>, _ d: UnsafePointer<Float>, scale: Float?, _ a: UnsafePointer<Float>,
                                      shift: Float, count: Int, assign: Bool) {
        @inline(__always) func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> { UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) }
        @inline(__always) func store(_ v: SIMD8<Float>, _ i: Int) { UnsafeMutableRawPointer(k + i).storeBytes(of: v, as: SIMD8<Float>.self) }
        let sh = SIMD8<Float>(repeating: shift)
        var i = 0
        switch (scale, assign) {
        case (let s?, true):
            let sv = SIMD8<Float>(repeating: s)
            while i + 8 <= count { store((sv * load(d, i)) * (load(a, i) + sh), i); i += 8 }
            while i < count { k[i] = (s * d[i]) * (a[i] + shift); i += 1 }
        case (let s?, false):
            let sv = SIMD8<Float>(repeating: s)
            while i + 8 <= count { store(load(k, i) + (sv * load(d, i)) * (load(a, i) + sh), i); i += 8 }
            while i < count { k[i] += (s * d[i]) * (a[i] + shift); i += 1 }
        case (nil, true):
            while i + 8 <= count { store(load(d, i) * (load(a, i) + sh), i); i += 8 }
            while i < count { k[i] = d[i] * (a[i] + shift); i += 1 }
        case (nil, false):
            while i + 8 <= count { store(load(k, i) + load(d, i) * (load(a, i) + sh), i); i += 8 }
            while i < count { k[i] += d[i] * (a[i] + shift); i += 1 }
        }
    }
}

extension Double {
    public static func tanhInPlace(_ v: UnsafeMutablePointer<Double>, derivatives d: UnsafeMutablePointer<Double>, count: Int) {
        pk_tanh_in_place_f64(v, d, count)
    }
}

extension Float {
    public static func tanhInPlace(_ v: UnsafeMutablePointer<Float>, derivatives d: UnsafeMutablePointer<Float>, count: Int) {
        pk_tanh_in_place_f32(v, d, count)
    }
}
