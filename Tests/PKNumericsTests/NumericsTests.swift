import Foundation
import Testing
import RealModule
@testable import PKNumerics

/// Relative closeness with a named tolerance: |a − b| ≤ tol · max(1, |a|, |b|).
func close(_ a: Double, _ b: Double, tol: Double) -> Bool {
    abs(a - b) <= tol * max(1, abs(a), abs(b))
}

@Suite("GEMM against the triple loop")
struct GemmTests {
    @Test(arguments: [(1, 1, 1), (3, 5, 2), (17, 9, 33), (64, 1, 7)])
    func matchesNaive(shape: (Int, Int, Int)) {
        var rng = PortableRandom(seed: 7)
        let (m, k, n) = shape
        let a = Matrix(rows: m, cols: k, data: (0..<(m * k)).map { _ in rng.normal() })
        let b = Matrix(rows: k, cols: n, data: (0..<(k * n)).map { _ in rng.normal() })
        let fast = a * b
        let slow = Matrix.naiveProduct(a, b)
        for (x, y) in zip(fast.data, slow.data) { #expect(close(x, y, tol: 1e-12)) }
        // Transposed operands against explicitly transposed matrices.
        let t = Matrix.product(a.transposed, transposeA: true, b.transposed, transposeB: true)
        for (x, y) in zip(t.data, slow.data) { #expect(close(x, y, tol: 1e-12)) }
    }

    @Test func betaAccumulates() {
        let a = Matrix([[1, 2], [3, 4]])
        var c = Matrix([[1, 1], [1, 1]])
        Matrix.gemm(a, Matrix.identity(2), alpha: 2, beta: 3, into: &c)
        #expect(c.data.elementsEqual([5, 7, 9, 11]) { close($0, $1, tol: 1e-15) })
    }
}

@Suite("Gauss–Legendre on [0, 1]")
struct GaussLegendreTests {
    /// Exact for every monomial of degree ≤ 2q − 1: ∫₀¹ sᵏ ds = 1/(k + 1).
    @Test(arguments: [1, 2, 3, 4, 5, 8, 16, 31, 32, 48, 64])
    func polynomialExactness(q: Int) {
        let rule = GaussLegendre(nodes: q)
        #expect(rule.nodes.count == q)
        #expect(close(rule.weights.reduce(0, +), 1, tol: 1e-14))
        #expect(rule.nodes.allSatisfy { $0 > 0 && $0 < 1 })
        #expect(zip(rule.nodes, rule.nodes.dropFirst()).allSatisfy { $0 < $1 })
        for k in 0...(2 * q - 1) {
            let exact = 1.0 / Double(k + 1)
            let got = rule.integrate { Double.pow($0, k) }
            #expect(close(got, exact, tol: 1e-13), "q=\(q) k=\(k): \(got) vs \(exact)")
        }
    }

    /// And not exact at degree 2q (the rule is no better than claimed, so the test can fail).
    @Test(arguments: [1, 2, 3, 4])
    func notExactBeyond(q: Int) {
        let rule = GaussLegendre(nodes: q)
        let k = 2 * q
        #expect(abs(rule.integrate { Double.pow($0, k) } - 1.0 / Double(k + 1)) > 1e-6)
    }

    @Test func knownTwoPointRule() {
        let r = GaussLegendre(nodes: 2)
        #expect(close(r.nodes[0], 0.5 - 0.5 / 3.0.squareRoot(), tol: 1e-15))
        #expect(close(r.weights[0], 0.5, tol: 1e-15))
    }
}

@Suite("Portable random generator")
struct PortableRandomTests {
    /// Reference values from the published C code (splitmix64 seeding + xoshiro256**),
    /// reproduced by Tools/reference/xoshiro.py.
    @Test func matchesReferenceStream() {
        var r = PortableRandom(seed: 42)
        let got = (0..<4).map { _ in r.nextUInt64() }
        #expect(got == PortableRandomTests.reference42)
    }

    static let reference42: [UInt64] = [1546998764402558742, 6990951692964543102, 12544586762248559009, 17057574109182124193]

    @Test func uniformMoments() {
        var r = PortableRandom(seed: 1)
        let xs = (0..<200_000).map { _ in r.uniform() }
        let mean = xs.reduce(0, +) / Double(xs.count)
        #expect(abs(mean - 0.5) < 0.005)
        #expect(xs.allSatisfy { $0 >= 0 && $0 < 1 })
    }

    @Test func normalMoments() {
        var r = PortableRandom(seed: 2)
        let xs = (0..<200_000).map { _ in r.normal() }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let varc = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count)
        #expect(abs(mean) < 0.01)
        #expect(abs(varc - 1) < 0.02)
    }

    @Test func portableLogMatchesLibm() {
        var r = PortableRandom(seed: 3)
        for _ in 0..<10_000 {
            let x = r.uniform() * 10 + 1e-300
            #expect(close(PortableRandom.log(x), Double.log(x), tol: 4e-16))
        }
        for x in [1e-300, 1e-5, 0.5, 1.0, 2.0, 1e300, 5e-324] {
            #expect(close(PortableRandom.log(x), Double.log(x), tol: 4e-16), "\(x)")
        }
    }

    @Test func sameSeedSameStream() {
        var a = PortableRandom(seed: 99), b = PortableRandom(seed: 99)
        for _ in 0..<1000 { #expect(a.normal().bitPattern == b.normal().bitPattern) }
    }

    @Test func permutationIsAPermutation() {
        var r = PortableRandom(seed: 5)
        let p = r.permutation(1000)
        #expect(p.sorted() == Array(0..<1000))
        #expect(p != Array(0..<1000))
    }
}

@Suite("Linear solves")
struct LinearAlgebraTests {
    /// A random SPD system: the residual ‖AX − B‖ is at round-off, and an indefinite matrix throws.
    @Test(arguments: [1, 3, 20, 64])
    func choleskySolvesSPD(n: Int) throws {
        var rng = PortableRandom(seed: UInt64(n))
        let g = Matrix(rows: n, cols: n, data: (0..<(n * n)).map { _ in rng.normal() })
        var a = Matrix.product(g, g, transposeB: true)
        for i in 0..<n { a[i, i] += 0.5 }
        let b = Matrix(rows: n, cols: 3, data: (0..<(n * 3)).map { _ in rng.normal() })
        let x = try LinearAlgebra.choleskySolve(a, b)
        let r = a * x - b
        #expect(r.frobeniusNorm <= 1e-10 * max(1, b.frobeniusNorm))
        let y = try LinearAlgebra.solve(a, b)
        #expect((a * y - b).frobeniusNorm <= 1e-9 * max(1, b.frobeniusNorm))
    }

    @Test func indefiniteThrows() {
        let a = Matrix([[1, 2], [2, 1]])
        #expect(throws: LinearAlgebra.Failure.self) { try LinearAlgebra.choleskySolve(a, Matrix([[1], [1]])) }
        #expect(throws: LinearAlgebra.Failure.self) { try LinearAlgebra.solve(Matrix([[1, 2], [2, 4]]), Matrix([[1], [1]])) }
    }
}

@Suite("Symmetric eigenvalues")
struct EigenTests {
    /// Q diag(λ) Qᵀ with Q from a rotation has eigenvalues λ; trace and Frobenius norm are kept.
    @Test func knownSpectrum() throws {
        let c = 0.6, s = 0.8
        let q = Matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        let d = Matrix([[3, 0, 0], [0, -1, 0], [0, 0, 0.5]])
        let a = q * d * q.transposed
        let e = try LinearAlgebra.symmetricEigenvalues(a)
        for (x, y) in zip(e, [-1, 0.5, 3]) { #expect(abs(x - y) <= 1e-13) }
    }

    /// `symmetricEigen`: the same eigenvalues, orthonormal rows, and `Vᵀ diag(λ) V` gives the
    /// matrix back (round-off of a 20 × 20 random symmetric matrix).
    @Test func eigenvectorsReconstruct() throws {
        var rng = PortableRandom(seed: 11)
        let n = 20
        let g = Matrix(rows: n, cols: n, data: (0..<(n * n)).map { _ in rng.normal() })
        let a = g + g.transposed
        let (values, v) = try LinearAlgebra.symmetricEigen(a)
        let reference = try LinearAlgebra.symmetricEigenvalues(a)
        for (x, y) in zip(values, reference) { #expect(abs(x - y) <= 1e-12 * abs(reference.last!)) }
        var d = Matrix(rows: n, cols: n)
        for i in 0..<n { d[i, i] = values[i] }
        #expect((Matrix.product(v, transposeA: true, d * v) - a).frobeniusNorm <= 1e-12 * a.frobeniusNorm)
        #expect((v * v.transposed - Matrix.identity(n)).frobeniusNorm <= 1e-12 * Double(n))
    }
}

@Test func argmaxTakesTheFirstLargest() {
    let m = Matrix([[0.1, 0.7, 0.2], [3, 3, -1], [-2, -5, -1]])
    #expect(m.argmax(row: 0) == 1 && m.argmax(row: 1) == 0 && m.argmax(row: 2) == 2)
}


@Suite("Float matrices and row-range GEMM")
struct FloatMatrixTests {
    @Test func floatGemmAndRowRangesAgreeWithTheTripleLoop() {
        var rng = PortableRandom(seed: 4)
        let a = Matrix(rows: 9, cols: 5, data: (0..<45).map { _ in rng.normal() })
        let b = Matrix(rows: 7, cols: 5, data: (0..<35).map { _ in rng.normal() })
        let exact = Matrix.naiveProduct(a.rows(2..<8), b.rows(1..<6).transposed)
        var c = Matrix(rows: 6, cols: 5)
        Matrix.gemm(a, rows: 2..<8, b, rows: 1..<6, into: &c)
        for (x, y) in zip(c.data, exact.data) { #expect(abs(x - y) <= 1e-13 * max(1, abs(y))) }
        var cf = FloatMatrix(rows: 6, cols: 5)
        FloatMatrix.gemm(FloatMatrix(a), rows: 2..<8, FloatMatrix(b), rows: 1..<6, into: &cf)
        // float32: 5-term dot products of O(1) numbers, relative round-off about 1e-7.
        for (x, y) in zip(cf.data, exact.data) { #expect(abs(Double(x) - y) <= 1e-5 * max(1, abs(y))) }
    }

    /// A second holder waits for the first (which restores the count before letting it in).
    /// The 0.5 s wait can only make the test pass wrongly if the second thread is not scheduled
    /// within it while exclusivity is broken; with exclusivity it always times out.
    @Test func threadCountHoldsAreExclusiveAndRestore() {
        final class Box: @unchecked Sendable { var seen = 0 }
        let box = Box()
        let first = Parallel.holdThreadCount()
        let before = Parallel.threads
        Parallel.threads = before + 4
        let entered = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let hold = Parallel.holdThreadCount()
            box.seen = Parallel.threads
            entered.signal()
            hold.release()
        }
        #expect(entered.wait(timeout: .now() + 0.5) == .timedOut, "the second holder got in while the first held")
        first.release()
        #expect(entered.wait(timeout: .now() + 30) == .success)
        #expect(box.seen == before, "the first release did not restore the count before the next holder")
    }

    @Test func rangesCoverEachIndexOnce() {
        for n in [0, 1, 5, 31, 32, 33, 64, 100, 1000] {
            let r = Parallel.ranges(n, minimum: 32)
            #expect(r.flatMap { Array($0) } == Array(0..<n))
            #expect(r.count == 1 || r.allSatisfy { $0.count >= 32 })
        }
    }

    /// The cut must not depend on the thread count (same analysis, same bits on 1 or 2 threads).
    @Test func rangesDoNotDependOnTheThreadCount() {
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        for n in [0, 40, 64, 100, 1000, 100_000] {
            Parallel.threads = 1
            let one = Parallel.ranges(n, minimum: 16)
            Parallel.threads = 2
            #expect(Parallel.ranges(n, minimum: 16) == one)
            Parallel.threads = 7
            #expect(Parallel.ranges(n, minimum: 16) == one)
            #expect(one.count <= Parallel.maxParts)
        }
    }

    @Test func powerOfTwoRangesCoverEachIndexOnce() {
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        for n in [0, 1, 5, 127, 128, 255, 256, 300, 1000, 1200, 100_000] {
            let r = Parallel.powerOfTwoRanges(n, minimum: 128)
            #expect(r.flatMap { Array($0) } == Array(0..<n))
            #expect([1, 2, 4, 8].contains(r.count) && r.count <= Parallel.maxParts)
            #expect(r.count == 1 || r.allSatisfy { $0.count >= 128 })
            // As many as allowed: doubling the count would cut parts below the minimum (or past 8).
            #expect(r.count == Parallel.maxParts || n / (2 * r.count) < 128)
            #expect((r.map(\.count).max() ?? 0) - (r.map(\.count).min() ?? 0) <= 1)
            Parallel.threads = 1
            #expect(Parallel.powerOfTwoRanges(n, minimum: 128) == r)
            Parallel.threads = 3
            #expect(Parallel.powerOfTwoRanges(n, minimum: 128) == r)
        }
        #expect(Parallel.powerOfTwoRanges(1200, minimum: 256).count == 4)
        #expect(Parallel.powerOfTwoRanges(1000, minimum: 128).count == 4)
    }


    @Test func forEachRunsEveryIterationOnce() {
        var hits = [Int](repeating: 0, count: 16)
        hits.withUnsafeMutableBufferPointer { h in Parallel.forEach(16) { h[$0] += 1 } }
        #expect(hits == [Int](repeating: 1, count: 16))
    }
}


@Suite("Ridge solve in place")
struct RidgeSolveTests {
    /// Against `choleskySolve` on a copy, for a λ that works at once and for a matrix that needs
    /// a larger λ (indefinite with small λ); the lower triangle survives for `symmetricProduct`.
    @Test func matchesCholeskyOnACopyAndKeepsTheLowerTriangle() throws {
        var rng = PortableRandom(seed: 9)
        let m = 6
        let b = Matrix(rows: m, cols: 2, data: (0..<(2 * m)).map { _ in rng.normal() })
        let g = Matrix(rows: m, cols: m, data: (0..<(m * m)).map { _ in rng.normal() })
        var s = Matrix.product(g, g, transposeB: true)          // SPD
        for i in 0..<m { s[i, i] -= 3 }                          // now indefinite for small λ
        var work = s
        for i in 0..<m { for j in (i + 1)..<m { work[i, j] = .nan } }   // the upper triangle is never read
        let lambdas = [1e-3, 1e-2, 1e-1, 1, 10]
        let (x, lambda) = try #require(LinearAlgebra.ridgeSolveInPlace(&work, b, lambdas: lambdas))
        var shifted = s
        for i in 0..<m { shifted[i, i] += lambda }
        let reference = try LinearAlgebra.choleskySolve(shifted, b)
        for (u, v) in zip(x.data, reference.data) { #expect(abs(u - v) <= 1e-10 * max(1, abs(v))) }
        #expect(throws: LinearAlgebra.Failure.self) {
            var smaller = s
            for i in 0..<m { smaller[i, i] += lambdas[lambdas.firstIndex(of: lambda)! - 1] }
            _ = try LinearAlgebra.choleskySolve(smaller, b)
        }
        // Lower triangle and diagonal restored: S·X through dsymm equals the plain product.
        let viaSymm = Matrix.symmetricProduct(lowerOf: work, x)
        let plain = Matrix.product(s, x)
        for (u, v) in zip(viaSymm.data, plain.data) { #expect(abs(u - v) <= 1e-10 * max(1, abs(v))) }
        // No λ works: nil.
        var hopeless = Matrix(rows: 2, cols: 2, data: [-5, 0, 0, -5])
        #expect(LinearAlgebra.ridgeSolveInPlace(&hopeless, Matrix(rows: 2, cols: 1), lambdas: [1, 2]) == nil)
    }
}

@Suite("Ridge on the PSD part")
struct PSDRidgeTests {
    /// An orthogonal matrix by Gram–Schmidt on random columns (the oracle's own construction).
    static func orthogonal(_ m: Int, _ rng: inout PortableRandom) -> Matrix {
        var q = Matrix(rows: m, cols: m)
        for j in 0..<m {
            var v = (0..<m).map { _ in rng.normal() }
            for k in 0..<j {
                let d = (0..<m).reduce(0.0) { $0 + v[$1] * q[$1, k] }
                for i in 0..<m { v[i] -= d * q[i, k] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<m { q[i, j] = v[i] / norm }
        }
        return q
    }

    /// `Q diag(e) Qᵀ`.
    static func compose(_ q: Matrix, _ e: [Double]) -> Matrix {
        var d = q
        for i in 0..<q.rows { for j in 0..<q.cols { d[i, j] *= e[j] } }
        return Matrix.product(d, q, transposeB: true)
    }

    /// With eigenvalues chosen (three negative), against `(Q max(E, 0) Qᵀ + λI)⁻¹ B` by Cholesky,
    /// λ = ρ · Σ max(e, 0)/m, the negative mass Σ|e<0|/Σ|e| and the fitted values A·X.
    @Test func solvesThePositivePartWithTheStatedRidge() throws {
        var rng = PortableRandom(seed: 4)
        let m = 7
        let e: [Double] = [5, 3, 1, 0.5, -0.2, -0.01, -1]
        let q = Self.orthogonal(m, &rng)
        let a = Self.compose(q, e)
        let b = Matrix(rows: m, cols: 2, data: (0..<(2 * m)).map { _ in rng.normal() })
        let rho = 1e-3
        var work = a
        let fit = try LinearAlgebra.psdRidgeSolve(&work, b, rho: rho)
        let lambda = rho * e.filter { $0 > 0 }.reduce(0, +) / Double(m)
        // Tolerances: a 7×7 eigenproblem with condition ≈ (5 + λ)/λ ≈ 7e3, so about 1e-12 relative.
        #expect(abs(fit.lambda - lambda) <= 1e-12 * lambda)
        var shifted = Self.compose(q, e.map { max($0, 0) })
        for i in 0..<m { shifted[i, i] += lambda }
        let reference = try LinearAlgebra.choleskySolve(shifted, b)
        for (u, v) in zip(fit.x.data, reference.data) { #expect(abs(u - v) <= 1e-9 * max(1, abs(v))) }
        let mass = 1.21 / e.map(abs).reduce(0, +)
        #expect(abs(fit.negativeMass - mass) <= 1e-12)
        #expect(fit.negativeCount == 3)
        let fitted = Matrix.product(a, fit.x)
        for (u, v) in zip(fit.fitted.data, fitted.data) { #expect(abs(u - v) <= 1e-9 * max(1, abs(v))) }
    }

    /// A positive definite matrix: the same as the Cholesky ridge solve with that λ.
    @Test func equalsCholeskyOnAPositiveDefiniteMatrix() throws {
        var rng = PortableRandom(seed: 5)
        let m = 6
        let g = Matrix(rows: m, cols: m, data: (0..<(m * m)).map { _ in rng.normal() })
        let s = Matrix.product(g, g, transposeB: true)
        let b = Matrix(rows: m, cols: 1, data: (0..<m).map { _ in rng.normal() })
        var work = s
        let fit = try LinearAlgebra.psdRidgeSolve(&work, b, rho: 1e-4)
        #expect(fit.negativeCount == 0 && fit.negativeMass == 0)
        var shifted = s
        for i in 0..<m { shifted[i, i] += fit.lambda }
        let reference = try LinearAlgebra.choleskySolve(shifted, b)
        for (u, v) in zip(fit.x.data, reference.data) { #expect(abs(u - v) <= 1e-9 * max(1, abs(v))) }
    }
}

@Suite("closest valid key")
struct ClosestKeyTests {
    static let optimizer = ["kind", "learningRate", "weightDecay", "schedule", "momentum", "dampening", "nesterov",
                            "beta1", "beta2", "alpha", "eps", "clipNorm"]

    @Test(arguments: [("lr", "learningRate"), ("learning_rate", "learningRate"), ("LearningRate", "learningRate"),
                      ("wd", "weightDecay"), ("momentun", "momentum"), ("nestrov", "nesterov"), ("beta_1", "beta1"),
                      ("sched", "schedule"), ("clip", "clipNorm"), ("kin", "kind")])
    func suggests(typed: String, expected: String) {
        #expect(ConfigProblem.closest(to: typed, among: Self.optimizer) == expected)
    }

    @Test func nothingCloseSuggestsNothing() {
        #expect(ConfigProblem.closest(to: "foo", among: Self.optimizer) == nil)
        #expect(ConfigProblem.closest(to: "batchnorm", among: Self.optimizer) == nil)
    }

    @Test func duplicateKeys() {
        func dup(_ s: String) -> String? { ConfigProblem.duplicateKey(in: Data(s.utf8)).map { "\($0.key) \($0.location)" } }
        #expect(dup(#"{"a": 1, "b": {"a": 2, "c": [{"a": 1}, {"a": 2}]}, "c": "a"}"#) == nil)
        #expect(dup(#"{"a": 1, "b": 2, "a": 3}"#) == "a at the top level")
        #expect(dup(#"{"x": {"y": {"k": 1, "k": 2}}}"#) == "k in x.y")
        #expect(dup(#"{"x": [{"k": 1, "k": 2}]}"#) == "k in x[]")
        #expect(dup(#"{"a\"b": 1, "a\u0022b": 2}"#) == "a\"b at the top level")   // the same key, escaped two ways
        #expect(dup(#"{"s": "{\"a\": 1, \"a\": 2}"}"#) == nil)                   // braces inside a string value
    }

    @Test func editDistance() {
        #expect(ConfigProblem.editDistance("kitten", "sitting") == 3)
        #expect(ConfigProblem.editDistance("", "abc") == 3)
        #expect(ConfigProblem.editDistance("same", "same") == 0)
        #expect(ConfigProblem.editDistance("sdg", "sgd") == 1)   // a swap of neighbours
    }
}

@Suite("PATHKERNEL_THREADS")
struct ThreadsEnvironmentTests {
    @Test func validValuesAndUnset() throws {
        #expect(try Parallel.threadsFromEnvironment([:]) == nil)
        #expect(try Parallel.threadsFromEnvironment(["PATHKERNEL_THREADS": "3"]) == 3)
        #expect(try Parallel.threadsFromEnvironment(["PATHKERNEL_THREADS": " 2 "]) == 2)
    }

    @Test(arguments: ["0", "-1", "abc", "", "1.5", "4096", "99999999999999999999"])
    func badValuesNameTheVariable(value: String) {
        #expect {
            try Parallel.threadsFromEnvironment(["PATHKERNEL_THREADS": value])
        } throws: { error in
            let m = "\(error)"
            return m.contains("PATHKERNEL_THREADS must be a positive integer (1…1024") && m.contains("got '\(value)'") && !m.contains("\n")
        }
    }
}

@Suite("Elementwise kernels against their scalar definitions")
struct ElementwiseKernelTests {
    /// ReLU's SIMD loop, every length 0…19 (the vector body and every tail) in both precisions,
    /// against the definition `d = [v > 0]`, `v ← [v > 0]·v`, bit for bit, with NaN, ±0, ±∞ and
    /// subnormals among the values.
    @Test func reluMatchesDefinition() {
        var rng = PortableRandom(seed: 11)
        let specials: [Double] = [.nan, 0, -0.0, .infinity, -.infinity, 5e-324, -5e-324]
        for count in 0..<20 {
            let values: [Double] = (0..<count).map { k in k % 5 == 3 ? specials[k % specials.count] : rng.normal() }
            for (v, d) in [(values, [Double](repeating: 7, count: count))] {
                var v = v, d = d
                v.withUnsafeMutableBufferPointer { vp in d.withUnsafeMutableBufferPointer { dp in
                    if count > 0 { Double.reluInPlace(vp.baseAddress!, derivatives: dp.baseAddress!, count: count) }
                } }
                for k in 0..<count {
                    let x = values[k]
                    #expect(d[k].bitPattern == (x > 0 ? 1.0 : 0.0).bitPattern)
                    #expect(v[k].bitPattern == (x > 0 ? x : 0.0).bitPattern)
                }
            }
            var vf = values.map(Float.init), df = [Float](repeating: 7, count: count)
            vf.withUnsafeMutableBufferPointer { vp in df.withUnsafeMutableBufferPointer { dp in
                if count > 0 { Float.reluInPlace(vp.baseAddress!, derivatives: dp.baseAddress!, count: count) }
            } }
            for k in 0..<count {
                let x = Float(values[k])
                #expect(df[k].bitPattern == (x > 0 ? Float(1) : 0).bitPattern)
                #expect(vf[k].bitPattern == (x > 0 ? x : 0).bitPattern)
            }
        }
    }


    /// ReLU without derivatives and the multiplication by ReLU's derivative read back from the
    /// activations, every length 0…19, both precisions, bit for bit against their definitions
    /// `v ← v·[v > 0]` (0 for NaN and −0) and `out = x·[a > 0]` (a multiplication, so NaN·0 and
    /// ∞·0 stay NaN and −x·0 is −0, as with a stored derivative), in place and not.
    @Test func reluValuesAndStepProductMatchDefinitions() {
        var rng = PortableRandom(seed: 12)
        let specials: [Double] = [.nan, 0, -0.0, .infinity, -.infinity, 5e-324, -5e-324]
        for count in 0..<20 {
            let values: [Double] = (0..<count).map { k in k % 5 == 3 ? specials[k % specials.count] : rng.normal() }
            let xs: [Double] = (0..<count).map { k in k % 7 == 2 ? specials[(k + 3) % specials.count] : rng.normal() }
            func check<S: BLASScalar>(_: S.Type) {
                var v = values.map { S($0) }
                v.withUnsafeMutableBufferPointer { vp in if count > 0 { S.reluInPlace(vp.baseAddress!, count: count) } }
                for k in 0..<count {
                    let x = S(values[k])
                    let e: S = x > 0 ? x : 0
                    #expect(v[k] == e && v[k].sign == e.sign)
                }
                let a = values.map { S($0) }, x = xs.map { S($0) }
                var out = [S](repeating: 7, count: count), inPlace = x
                a.withUnsafeBufferPointer { ap in x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
                    inPlace.withUnsafeMutableBufferPointer { ip in
                        if count > 0 {
                            S.multiplyByStep(xp.baseAddress!, of: ap.baseAddress!, into: op.baseAddress!, count: count)
                            S.multiplyByStep(ip.baseAddress!, of: ap.baseAddress!, into: ip.baseAddress!, count: count)
                        }
                    }
                } } }
                for k in 0..<count {
                    let expected = x[k] * (a[k] > 0 ? 1 : 0)
                    #expect(out[k] == expected || (out[k].isNaN && expected.isNaN))
                    #expect(out[k].sign == expected.sign || expected.isNaN)
                    #expect(inPlace[k] == out[k] || (out[k].isNaN && inPlace[k].isNaN))
                }
            }
            check(Double.self)
            check(Float.self)
        }
    }

    /// The structured kernel's Hadamard step, every length 0…19 (vector body and tails), both
    /// precisions, all four forms (assign or accumulate, with or without a scale), bit for bit
    /// against `k = g·(a + shift)` / `k += g·(a + shift)` with `g = d` or `g = scale·d`.
    @Test func hadamardUpdateMatchesDefinition() {
        var rng = PortableRandom(seed: 13)
        for count in 0..<20 {
            let d = (0..<count).map { _ in rng.normal() }, a = (0..<count).map { _ in rng.normal() }
            let k0 = (0..<count).map { _ in rng.normal() }
            func check<S: BLASScalar>(_: S.Type) {
                let ds = d.map { S($0) }, as_ = a.map { S($0) }, shift = S(0.01), scale = S(-1.7)
                for (sc, assign) in [(S?.none, true), (S?.none, false), (S?.some(scale), true), (S?.some(scale), false)] {
                    var k = k0.map { S($0) }
                    ds.withUnsafeBufferPointer { dp in as_.withUnsafeBufferPointer { ap in k.withUnsafeMutableBufferPointer { kp in
                        if count > 0 {
                            S.hadamardUpdate(kp.baseAddress!, dp.baseAddress!, scale: sc, ap.baseAddress!, shift: shift, count: count, assign: assign)
                        }
                    } } }
                    for i in 0..<count {
                        let g = sc.map { $0 * ds[i] } ?? ds[i]
                        let v = g * (as_[i] + shift)
                        let expected = assign ? v : S(k0[i]) + v
                        #expect(k[i] == expected)
                    }
                }
            }
            check(Double.self)
            check(Float.self)
        }
    }

}

@Suite("The C kernels against the Swift expression they replace", .serialized)
struct ScaledCombinationTests {
    /// `pk_scaled_combination` in both precisions, every mode (assign, add, decay), lengths 0…40
    /// (vector bodies and tails), AVX-512 and AVX2 (where the CPU has them) and the baseline, each bit
    /// for bit against the scalar Swift expression the analyzer used before (no FMA either way);
    /// without a scale (nil) against the expression with every s[k] = 1.
    @Test func matchesScalarExpressionBitForBit() {
        var rng = PortableRandom(seed: 23)
        for level in [2, 1, 0] {
            // Each version the CPU has: AVX-512F, AVX2, the baseline.
            ElementwiseKernels.forceMaxLevel(level)
            defer { ElementwiseKernels.forceMaxLevel(2) }
            for n in 0...40 {
                for decay in [0.0, 1.0, 0.9] {
                    let s = (0..<n).map { _ in rng.normal() }, o0 = (0..<n).map { _ in rng.normal() }
                    let a = (0..<4).map { _ in (0..<max(n, 1)).map { _ in rng.normal() } }
                    let c = (0..<4).map { _ in rng.normal() }
                    for unit in [false, true] {
                        check(Double.self, n: n, s: s, o0: o0, a: a, c: c, decay: decay, unitScale: unit)
                        check(Float.self, n: n, s: s, o0: o0, a: a, c: c, decay: decay, unitScale: unit)
                    }
                }
            }
        }
        #if arch(x86_64)
        #expect(ElementwiseKernels.avx2, "every machine this project targets has AVX2")
        #endif
    }

    /// `unitScale`: the kernel gets no scale (nil), the loop multiplies by 1.
    private func check<S: BLASScalar>(_: S.Type, n: Int, s: [Double], o0: [Double], a: [[Double]], c: [Double], decay: Double, unitScale: Bool) {
        let sS = s.map { unitScale ? 1 : S($0) }, aS = a.map { $0.map { S($0) } }, cS = c.map { S($0) }, d = S(decay)
        var o = o0.map { S($0) }
        var expected = o
        for k in 0..<n {
            let v = sS[k] * (cS[0] * aS[0][k] + cS[1] * aS[1][k] + cS[2] * aS[2][k] + cS[3] * aS[3][k])
            expected[k] = decay == 0 ? v : (decay == 1 ? expected[k] + v : d * expected[k] + v)
        }
        o.withUnsafeMutableBufferPointer { op in
            sS.withUnsafeBufferPointer { sp in
                aS[0].withUnsafeBufferPointer { a0 in aS[1].withUnsafeBufferPointer { a1 in
                aS[2].withUnsafeBufferPointer { a2 in aS[3].withUnsafeBufferPointer { a3 in
                    guard n > 0 else { return }
                    S.scaledCombination(op.baseAddress!, scale: unitScale ? nil : sp.baseAddress!, (a0.baseAddress!, a1.baseAddress!, a2.baseAddress!, a3.baseAddress!),
                                        (cS[0], cS[1], cS[2], cS[3]), decay: d, count: n)
                } } } }
            }
        }
        for k in 0..<n {
            #expect(o[k] == expected[k] && (o[k] == 0 || o[k].sign == expected[k].sign), "\(S.self) n \(n) decay \(decay) k \(k)")
        }
    }
}

extension ScaledCombinationTests {
    /// `pk_signal_contraction` (AVX2 and baseline) bit for bit against the loop it replaced in the
    /// backward route: factored (u, gram) and explicit (y) coefficients, with and without bias
    /// rows, 1 to 7 of 8 channels (the register blocks of 2 and 1 channels and their mixes),
    /// nb in {1, 5, 8, 21, 64, 70} (whole blocks of 16 (f64) or 32 (f32) examples, and tails); untouched
    /// channels stay as they were.
    @Test func signalContractionMatchesTheLoop() {
        var rng = PortableRandom(seed: 29)
        for level in [2, 1, 0] {
            // Each version the CPU has: AVX-512F, AVX2, the baseline.
            ElementwiseKernels.forceMaxLevel(level)
            defer { ElementwiseKernels.forceMaxLevel(2) }
            for nb in [1, 5, 8, 21, 64, 70] {
                for factored in [false, true] {
                    for withBias in [false, true] {
                        for channels in [[0, 1, 2, 3], [1, 3], [2], [0, 2, 7], [0, 1, 2, 3, 4, 5, 6]] as [[Int32]] {
                            contraction(Double.self, nb: nb, factored: factored, withBias: withBias, channels: channels, rng: &rng)
                            contraction(Float.self, nb: nb, factored: factored, withBias: withBias, channels: channels, rng: &rng)
                        }
                    }
                }
            }
        }
    }

    private func contraction<S: BLASScalar>(_: S.Type, nb: Int, factored: Bool, withBias: Bool, channels: [Int32], rng: inout PortableRandom) {
        let dout = 7, C1 = 8
        let y = (0..<(dout * nb)).map { _ in S(rng.normal()) }, u = (0..<dout).map { _ in S(rng.normal()) }
        let gram = (0..<nb).map { _ in S(rng.normal()) }, b = (0..<dout).map { _ in S(rng.normal()) }
        let sT = (0..<(C1 * dout * nb)).map { _ in S(rng.normal()) }
        let sw = S(rng.normal()), sb = S(rng.normal())
        var expected = [S](repeating: 9, count: C1 * nb)
        for k in channels.map(Int.init) {
            for i in 0..<nb { expected[k * nb + i] = 0 }
            for j in 0..<dout {
                let bj: S = withBias ? sb * b[j] : 0
                for i in 0..<nb {
                    let coefficient = factored ? (sw * u[j]) * gram[i] + bj : y[j * nb + i] + bj
                    expected[k * nb + i] += coefficient * sT[(k * dout + j) * nb + i]
                }
            }
        }
        var z = [S](repeating: 9, count: C1 * nb), scratch = [S](repeating: 0, count: nb)
        z.withUnsafeMutableBufferPointer { zp in scratch.withUnsafeMutableBufferPointer { sp in
            y.withUnsafeBufferPointer { yp in u.withUnsafeBufferPointer { up in gram.withUnsafeBufferPointer { gp in
            b.withUnsafeBufferPointer { bp in sT.withUnsafeBufferPointer { tp in channels.withUnsafeBufferPointer { cp in
                S.signalContraction(zp.baseAddress!, channels: cp.baseAddress!, count: cp.count, y: factored ? nil : yp.baseAddress!,
                                    u: factored ? up.baseAddress! : nil, gram: factored ? gp.baseAddress! : nil, sw: sw,
                                    bias: withBias ? bp.baseAddress! : nil, sb: sb, signals: tp.baseAddress!, dout: dout, nb: nb,
                                    scratch: sp.baseAddress!)
            } } } } } }
        } }
        for k in 0..<(C1 * nb) {
            #expect(z[k] == expected[k] && z[k].sign == expected[k].sign, "\(S.self) nb \(nb) factored \(factored) bias \(withBias) channels \(channels) entry \(k)")
        }
    }
}

extension ScaledCombinationTests {
    /// `pk_signal_contraction_rows` (groups of 4 rows on AVX-512, where the CPU has it, and the
    /// baseline's one row at a time) bit for bit against the plain loop, row by row: 1 to 9 rows
    /// (whole groups and remainders), nb in {5, 16, 32, 64, 70} (whole AVX-512 blocks of 16
    /// doubles or 32 floats, and sizes that fall back), factored and explicit, with and without
    /// bias rows, full-mode and trace-mode channel sets; untouched channels stay as they were.
    @Test func signalContractionRowsMatchesTheLoop() {
        var rng = PortableRandom(seed: 37)
        for level in [2, 1, 0] {
            // Each version the CPU has: AVX-512F, AVX2, the baseline.
            ElementwiseKernels.forceMaxLevel(level)
            defer { ElementwiseKernels.forceMaxLevel(2) }
            for rows in [1, 4, 5, 8, 9] {
                for nb in [5, 16, 32, 64, 70] {
                    for factored in [false, true] {
                        for withBias in [false, true] {
                            for channels in [[0, 1, 2, 3, 4, 5, 6, 7], [2, 7], [0, 2, 7]] as [[Int32]] {
                                contractionRows(Double.self, rows: rows, nb: nb, factored: factored, withBias: withBias, channels: channels, rng: &rng)
                                contractionRows(Float.self, rows: rows, nb: nb, factored: factored, withBias: withBias, channels: channels, rng: &rng)
                            }
                        }
                    }
                }
            }
        }
    }

    private func contractionRows<S: BLASScalar>(_: S.Type, rows: Int, nb: Int, factored: Bool, withBias: Bool, channels: [Int32],
                                                rng: inout PortableRandom) {
        let dout = 9, C1 = 8, zs = C1 * nb
        let y = (0..<(rows * dout * nb)).map { _ in S(rng.normal()) }, u = (0..<(rows * dout)).map { _ in S(rng.normal()) }
        let gram = (0..<(rows * nb)).map { _ in S(rng.normal()) }, b = (0..<(rows * dout)).map { _ in S(rng.normal()) }
        let sT = (0..<(C1 * dout * nb)).map { _ in S(rng.normal()) }
        let sw = S(rng.normal()), sb = S(rng.normal())
        var expected = [S](repeating: 9, count: rows * zs)
        for q in 0..<rows {
            for k in channels.map(Int.init) {
                for i in 0..<nb { expected[q * zs + k * nb + i] = 0 }
                for j in 0..<dout {
                    let bj: S = withBias ? sb * b[q * dout + j] : 0
                    for i in 0..<nb {
                        let coefficient = factored ? (sw * u[q * dout + j]) * gram[q * nb + i] + bj : y[(q * dout + j) * nb + i] + bj
                        expected[q * zs + k * nb + i] += coefficient * sT[(k * dout + j) * nb + i]
                    }
                }
            }
        }
        var z = [S](repeating: 9, count: rows * zs), scratch = [S](repeating: 0, count: nb)
        z.withUnsafeMutableBufferPointer { zp in scratch.withUnsafeMutableBufferPointer { sp in
            y.withUnsafeBufferPointer { yp in u.withUnsafeBufferPointer { up in gram.withUnsafeBufferPointer { gp in
            b.withUnsafeBufferPointer { bp in sT.withUnsafeBufferPointer { tp in channels.withUnsafeBufferPointer { cp in
                S.signalContractionRows(zp.baseAddress!, zStride: zs, channels: cp.baseAddress!, count: cp.count, rows: rows,
                                        y: factored ? nil : yp.baseAddress!, yStride: dout * nb, u: factored ? up.baseAddress! : nil, uStride: dout,
                                        gram: factored ? gp.baseAddress! : nil, gramStride: nb, sw: sw,
                                        bias: withBias ? bp.baseAddress! : nil, biasStride: dout, sb: sb, signals: tp.baseAddress!,
                                        dout: dout, nb: nb, scratch: sp.baseAddress!)
            } } } } } }
        } }
        for k in 0..<(rows * zs) {
            #expect(z[k] == expected[k] && z[k].sign == expected[k].sign,
                    "\(S.self) rows \(rows) nb \(nb) factored \(factored) bias \(withBias) channels \(channels) entry \(k)")
        }
    }
}

extension ScaledCombinationTests {
    /// `pk_rows_times_batch` (AVX-512, AVX2 where the CPU has them, and the baseline) bit for bit against
    /// the plain loop of fused multiply-adds it is defined by: m in {1, 3, 4, 5, 6, 7, 9, 13} (blocks of 4 or 6
    /// rows and tails), k in {1, 7, 128}, nb in {1, 5, 8, 16, 33, 64, 70, 130} (whole blocks of
    /// 16–64 columns, single vectors, scalar tails), a row stride ldb above nb; and against the
    /// BLAS GEMM it replaced, within the dot products' rounding bound `k·ε·Σ|r·b|`.
    @Test func rowsTimesBatchMatchesTheFusedLoop() {
        var rng = PortableRandom(seed: 31)
        for level in [2, 1, 0] {
            // Each version the CPU has: AVX-512F, AVX2, the baseline.
            ElementwiseKernels.forceMaxLevel(level)
            defer { ElementwiseKernels.forceMaxLevel(2) }
            for m in [1, 3, 4, 5, 6, 7, 9, 13] {
                for k in [1, 7, 128] {
                    for nb in [1, 5, 8, 16, 33, 64, 70, 130] {
                        product(Double.self, m: m, k: k, nb: nb, rng: &rng)
                        product(Float.self, m: m, k: k, nb: nb, rng: &rng)
                    }
                }
            }
        }
    }

    private func product<S: BLASScalar>(_: S.Type, m: Int, k: Int, nb: Int, rng: inout PortableRandom) {
        let ldb = nb + 3
        let r = (0..<(m * k)).map { _ in S(rng.normal()) }, bt = (0..<(k * ldb)).map { _ in S(rng.normal()) }
        let alpha = S(rng.normal())
        var y = [S](repeating: .nan, count: m * nb)
        r.withUnsafeBufferPointer { rp in bt.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
            S.rowsTimesBatch(yp.baseAddress!, rows: rp.baseAddress!, batchT: bp.baseAddress!, ldb: ldb, alpha: alpha, m: m, k: k, nb: nb)
        } } }
        // A · Bᵀ by the BLAS, B = btᵀ (nb × k).
        var b = [S](repeating: 0, count: nb * k)
        for j in 0..<nb { for kk in 0..<k { b[j * k + kk] = bt[kk * ldb + j] } }
        var gemm = [S](repeating: 0, count: m * nb)
        r.withUnsafeBufferPointer { rp in b.withUnsafeBufferPointer { bp in gemm.withUnsafeMutableBufferPointer { gp in
            S.gemm(transposeA: false, transposeB: true, m: m, n: nb, k: k, alpha: alpha, a: rp.baseAddress!, lda: k,
                   b: bp.baseAddress!, ldb: k, beta: 0, c: gp.baseAddress!, ldc: nb)
        } } }
        for i in 0..<m {
            for j in 0..<nb {
                var acc: S = 0
                var magnitude: S = 0
                for kk in 0..<k {
                    acc = fusedMultiplyAdd(r[i * k + kk], bt[kk * ldb + j], acc)   // acc + r·b, rounded once
                    magnitude += abs(r[i * k + kk] * bt[kk * ldb + j])
                }
                let expected = acc * alpha
                #expect(y[i * nb + j] == expected, "\(S.self) m \(m) k \(k) nb \(nb) at (\(i), \(j))")
                // The GEMM's rounding bound (its own order of the k terms): k·ε·Σ|r·b|·|alpha|.
                let bound = S(k) * S.ulpOfOne * magnitude * abs(alpha)
                #expect(abs(y[i * nb + j] - gemm[i * nb + j]) <= bound, "\(S.self) against the GEMM")
            }
        }
    }

    private func fusedMultiplyAdd<S: BLASScalar>(_ a: S, _ b: S, _ c: S) -> S { c.addingProduct(a, b) }
}

extension ScaledCombinationTests {
    /// The indexed kernels of the compact first layer (`pk_rows_times_batch_indexed`,
    /// `pk_scaled_combination_indexed`), each version the CPU has, bit for bit against their oracles:
    /// the product against the plain loop of fused multiply-adds over the batch rows `idx[kk]`, and
    /// against the full product whose R has zeros in every column outside `idx` (what the compact
    /// layout drops: the same values); the combination against its loop with `s[idx[k]]`.
    @Test func indexedKernelsMatchTheirLoops() {
        var rng = PortableRandom(seed: 37)
        for level in [2, 1, 0] {
            ElementwiseKernels.forceMaxLevel(level)
            defer { ElementwiseKernels.forceMaxLevel(2) }
            // (From 16 rows on, with rows of whole 64-byte lines, the kernel gathers the batch's
            // rows into a panel first: `lines`.)
            for m in [1, 4, 7, 16, 21] {
                for full in [1, 9, 130] {
                    for nb in [5, 16, 64, 70] {
                        for lines in [false, true] {
                            indexedProduct(Double.self, m: m, full: full, nb: nb, lines: lines, rng: &rng)
                            indexedProduct(Float.self, m: m, full: full, nb: nb, lines: lines, rng: &rng)
                        }
                    }
                }
            }
            for n in [0, 1, 3, 17, 40] {
                indexedCombination(Double.self, n: n, rng: &rng)
                indexedCombination(Float.self, n: n, rng: &rng)
            }
        }
    }

    /// An ascending subset of 0..<full (about half, at least one).
    private func subset(_ full: Int, rng: inout PortableRandom) -> [Int32] {
        let picked = (0..<full).filter { _ in rng.uniform() < 0.5 }.map(Int32.init)
        return picked.isEmpty ? [Int32(full - 1)] : picked
    }

    private func indexedProduct<S: BLASScalar>(_: S.Type, m: Int, full: Int, nb: Int, lines: Bool, rng: inout PortableRandom) {
        let size = MemoryLayout<S>.size
        let ldb = lines ? ((nb + 3) * size + 63) / 64 * 64 / size : nb + 3, idx = subset(full, rng: &rng), k = idx.count
        let r = (0..<(m * k)).map { _ in S(rng.normal()) }, bt = (0..<(full * ldb)).map { _ in S(rng.normal()) }
        let alpha = S(rng.normal())
        var y = [S](repeating: .nan, count: m * nb), yFull = y
        // R's rows over all `full` inputs, zero outside idx.
        var rFull = [S](repeating: 0, count: m * full)
        for i in 0..<m { for (kk, col) in idx.enumerated() { rFull[i * full + Int(col)] = r[i * k + kk] } }
        r.withUnsafeBufferPointer { rp in bt.withUnsafeBufferPointer { bp in idx.withUnsafeBufferPointer { ip in
            y.withUnsafeMutableBufferPointer { yp in
                S.rowsTimesBatch(yp.baseAddress!, rows: rp.baseAddress!, batchT: bp.baseAddress!, ldb: ldb, batchRows: ip.baseAddress!,
                                 alpha: alpha, m: m, k: k, nb: nb)
            }
        } } }
        rFull.withUnsafeBufferPointer { rp in bt.withUnsafeBufferPointer { bp in yFull.withUnsafeMutableBufferPointer { yp in
            S.rowsTimesBatch(yp.baseAddress!, rows: rp.baseAddress!, batchT: bp.baseAddress!, ldb: ldb, alpha: alpha, m: m, k: full, nb: nb)
        } } }
        for i in 0..<m {
            for j in 0..<nb {
                var acc: S = 0
                for kk in 0..<k { acc = acc.addingProduct(r[i * k + kk], bt[Int(idx[kk]) * ldb + j]) }
                #expect(y[i * nb + j] == acc * alpha, "\(S.self) m \(m) full \(full) nb \(nb) ldb \(ldb) at (\(i), \(j))")
                #expect(y[i * nb + j] == yFull[i * nb + j], "\(S.self) against the full product with zeros")
            }
        }
    }

    private func indexedCombination<S: BLASScalar>(_: S.Type, n: Int, rng: inout PortableRandom) {
        let full = 2 * n + 3
        var idx = subset(full, rng: &rng)
        while idx.count < n { idx.append(idx.last! ) }   // (repeats are allowed: only the reads move)
        idx = Array(idx.prefix(n))
        let s = (0..<full).map { _ in S(rng.normal()) }
        let a = (0..<4).map { _ in (0..<max(n, 1)).map { _ in S(rng.normal()) } }
        let c = (0..<4).map { _ in S(rng.normal()) }
        for decay in [S(0), 1, S(0.9)] {
            for unit in [false, true] {
                let o0 = (0..<max(n, 1)).map { _ in S(rng.normal()) }
                var o = o0, expected = o0
                for k in 0..<n {
                    let sk = unit ? 1 : s[Int(idx[k])]
                    let v = sk * (c[0] * a[0][k] + c[1] * a[1][k] + c[2] * a[2][k] + c[3] * a[3][k])
                    expected[k] = decay == 0 ? v : (decay == 1 ? expected[k] + v : decay * expected[k] + v)
                }
                guard n > 0 else { continue }
                o.withUnsafeMutableBufferPointer { op in s.withUnsafeBufferPointer { sp in idx.withUnsafeBufferPointer { ip in
                    a[0].withUnsafeBufferPointer { a0 in a[1].withUnsafeBufferPointer { a1 in
                    a[2].withUnsafeBufferPointer { a2 in a[3].withUnsafeBufferPointer { a3 in
                        S.scaledCombination(op.baseAddress!, scale: unit ? nil : sp.baseAddress!, at: ip.baseAddress!,
                                            (a0.baseAddress!, a1.baseAddress!, a2.baseAddress!, a3.baseAddress!),
                                            (c[0], c[1], c[2], c[3]), decay: decay, count: n)
                    } } } }
                } } }
                for k in 0..<n {
                    #expect(o[k] == expected[k] && (o[k] == 0 || o[k].sign == expected[k].sign), "\(S.self) n \(n) decay \(decay) k \(k)")
                }
            }
        }
    }
}
