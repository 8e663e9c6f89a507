import Foundation
import PKNetworks
import PKNumerics

/// The infinite-width NNGP and NTK of an MLP spec (ntk-family contract §1; Lee et al. 2018,
/// "Deep Neural Networks as Gaussian Processes"; Jacot et al. 2018, "Neural Tangent Kernel";
/// neural-tangents `stax.Dense`, `ABRelu`, `Erf`, `Gelu`).
///
/// Priorities, in order: the contract's definitions in float64; self pairs exact (in a Gram matrix
/// the variances are read from the diagonal of the same matrix, so `ρ = 1`, `θ = 0` exactly); no
/// trap and no NaN for finite inputs; then speed (`n₁ n₂` pair evaluations per hidden layer, `M²`
/// activation evaluations each on the quadrature route).
///
/// The recursion, for `x` from `X₁`, `x'` from `X₂`:
///
///     K⁰(x,x') = x·x'/d_0
///     for l = 0 … L−1:
///       Σˡ = σ_w² Kˡ + σ_b² [bias]
///       ntk:      Θˡ = Σˡ + σ_w² Σ̇ˡ⁻¹ ⊙ Θˡ⁻¹               (no second term for l = 0)
///       standard: Θˡ = d_l Kˡ + 1[bias] + σ_w² Σ̇ˡ⁻¹ ⊙ Θˡ⁻¹
///       if l < L−1:  Kˡ⁺¹ = E[φ(u)φ(v)],  Σ̇ˡ = E[φ'(u)φ'(v)],  (u,v) ~ N(0, Σˡ on {x, x'})
///     NNGP = Σ^{L−1},  NTK = Θ^{L−1}
///
/// The kernels are scalars per output pair: the full kernel of `C` outputs is `K ⊗ I_C`.
/// Does *not* hold: the `standard` NTK has no width-free limit (it grows linearly with the
/// widths in `layers`, as neural-tangents' `parameterization='standard'`); only under `ntk` is
/// it the width-independent limit of the empirical NTK.
public struct InfiniteWidthKernel: Sendable {
    public let spec: ModelSpec
    public let route: GaussianExpectation.Route

    /// Refuses a spec that is not a valid `mlp` (a `ModelSpecError` naming the field).
    public init(spec: ModelSpec, route: GaussianExpectation.Route = .automatic) throws {
        guard spec.kind == "mlp" else {
            throw ModelSpecError("the analytic kernels cover MLPs (model.kind \"mlp\"); this model is \"\(spec.kind)\"")
        }
        try spec.validate()
        self.spec = spec
        self.route = route
    }

    /// The NNGP and NTK between the rows of `x1` (`n₁ × d_0`) and of `x2` (`n₂ × d_0`), or the
    /// Gram matrices of `x1` when `x2` is nil. Both results are `n₁ × n₂` (scalar per output pair).
    /// Throws `InfiniteWidthError` for a wrong column count, a non-finite input or a kernel that
    /// overflows.
    public func kernels(_ x1: Matrix, _ x2: Matrix? = nil) throws -> InfiniteWidthKernels {
        let d0 = spec.layers[0]
        for (name, x) in [("inputs", x1)] + (x2.map { [("second inputs", $0)] } ?? []) {
            guard x.cols == d0 else {
                throw InfiniteWidthError("the \(name) have \(x.cols) columns, the model takes \(d0) (model.layers[0])")
            }
            guard x.rows > 0 else { throw InfiniteWidthError("the \(name) have no rows") }
            if let i = x.data.firstIndex(where: { !$0.isFinite }) {
                throw InfiniteWidthError("the \(name) have a non-finite value (\(x.data[i])) in row \(i / d0 + 1), column \(i % d0 + 1)")
            }
        }
        let gram = x2 == nil
        let y = x2 ?? x1
        let n1 = x1.rows, n2 = y.rows
        let depth = spec.layers.count - 1
        let sw2 = spec.sigmaW * spec.sigmaW
        let sb2 = spec.bias ? spec.sigmaB * spec.sigmaB : 0
        let biasTangent: Double = spec.bias ? 1 : 0

        // K⁰ between the sets by one GEMM; each point's own K⁰(x,x) summed over the features in
        // order. A pair that is parallel to within 1e-8 (a point with itself or with a copy of
        // itself above all) has its entry summed in the same order instead, so that it equals the
        // points' own variances to the bit and ρ = 1 exactly (ntk-family contract §1, numerical
        // rules: relu's Σ̇ has an infinite derivative at ρ = 1). Every other entry is the GEMM's,
        // within d_0·ε of the ordered sum. (The ordered sum for every entry ran at ~1 GFLOP/s per
        // core: 76 % of W7-mlp's relu time, 3.4 times neural-tangents' kernel_fn.)
        func ordered(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>) -> Double {
            var s = 0.0
            for f in 0..<d0 { s += a[f] * b[f] }
            return s / Double(d0)
        }
        var k = Matrix.product(x1, y, transposeB: true)
        for i in k.data.indices { k.data[i] /= Double(d0) }
        var self1 = [Double](repeating: 0, count: n1), self2 = [Double](repeating: 0, count: n2)
        x1.data.withUnsafeBufferPointer { ap in
            y.data.withUnsafeBufferPointer { bp in
                let (a, b) = (ap.baseAddress!, bp.baseAddress!)
                for i in 0..<n1 { self1[i] = ordered(a + i * d0, a + i * d0) }
                if gram { self2 = self1 } else { for j in 0..<n2 { self2[j] = ordered(b + j * d0, b + j * d0) } }
                k.data.withUnsafeMutableBufferPointer { kp in
                    let out = kp.baseAddress!
                    let nearlyOne = (1 - 1e-8) * (1 - 1e-8)
                    for i in 0..<n1 {
                        for j in (gram ? i : 0)..<n2 {
                            let c = out[i * n2 + j]
                            if c * c >= nearlyOne * self1[i] * self2[j] || (gram && i == j) {
                                out[i * n2 + j] = gram && i == j ? self1[i] : ordered(a + i * d0, b + j * d0)
                            }
                        }
                    }
                }
            }
        }

        var theta = Matrix(rows: n1, cols: n2)
        var sigmaDot = Matrix(rows: n1, cols: n2)
        var sigma = Matrix(rows: n1, cols: n2)
        var largestVariance = 0.0
        for l in 0..<depth {
            let width = Double(spec.layers[l])
            for i in 0..<n1 {
                for j in (gram ? i : 0)..<n2 {
                    let s = sw2 * k[i, j] + sb2
                    sigma[i, j] = s
                    let carried = l == 0 ? 0 : sw2 * sigmaDot[i, j] * theta[i, j]
                    switch spec.parameterization {
                    case .ntk: theta[i, j] = s + carried
                    case .standard: theta[i, j] = width * k[i, j] + biasTangent + carried
                    }
                }
            }
            guard l < depth - 1 else { break }
            let q1 = gram ? (0..<n1).map { sigma[$0, $0] } : self1.map { sw2 * $0 + sb2 }
            let q2 = gram ? q1 : self2.map { sw2 * $0 + sb2 }
            // An overflow stops here, before the quadrature spends its largest node count on it.
            guard q1.allSatisfy(\.isFinite), q2.allSatisfy(\.isFinite), sigma.isFinite else { throw Self.overflow }
            largestVariance = max(largestVariance, q1.max() ?? 0, q2.max() ?? 0)
            let (a, alpha, route) = (spec.activation, spec.leakySlope, self.route)
            // Rows in parallel: each iteration writes its own row of `k` and `sigmaDot`.
            let sigmaNow = sigma
            k.data.withUnsafeMutableBufferPointer { kp in
                sigmaDot.data.withUnsafeMutableBufferPointer { dp in
                    let (kBase, dBase) = (kp.baseAddress!, dp.baseAddress!)
                    Parallel.forEach(n1) { i in
                        for j in (gram ? i : 0)..<n2 {
                            let e = GaussianExpectation.pair(a, leakySlope: alpha, q1: q1[i], q2: q2[j],
                                                             c: sigmaNow[i, j], route: route)
                            kBase[i * n2 + j] = e.value
                            dBase[i * n2 + j] = e.derivative
                        }
                    }
                }
            }
            if gram {
                for i in 0..<n1 { self1[i] = k[i, i] }
                self2 = self1
            } else {
                self1 = q1.map { GaussianExpectation.pair(a, leakySlope: alpha, q1: $0, q2: $0, c: $0, route: route).value }
                self2 = q2.map { GaussianExpectation.pair(a, leakySlope: alpha, q1: $0, q2: $0, c: $0, route: route).value }
            }
        }
        if gram {
            for i in 0..<n1 {
                for j in 0..<i {
                    sigma[i, j] = sigma[j, i]
                    theta[i, j] = theta[j, i]
                }
            }
        }
        guard sigma.isFinite && theta.isFinite else { throw Self.overflow }
        return InfiniteWidthKernels(nngp: sigma, ntk: theta, largestVariance: largestVariance)
    }
}

extension InfiniteWidthKernel {
    /// The activation evaluations `kernels(x1, x2)` makes on the quadrature route (0 for the
    /// closed forms): per hidden layer and pair `M²` for the pair's larger variance (`M` when the
    /// pair is a point with itself), from the self-variance recursion alone (`M` evaluations per
    /// point and layer, no pair work). The analyzer's cost model prices them; not a result.
    public func quadratureEvaluations(_ x1: Matrix, _ x2: Matrix? = nil) -> Double {
        guard !GaussianExpectation.hasClosedForm(spec.activation) || route == .quadrature else { return 0 }
        let d0 = Double(spec.layers[0]), depth = spec.layers.count - 1
        let sw2 = spec.sigmaW * spec.sigmaW, sb2 = spec.bias ? spec.sigmaB * spec.sigmaB : 0
        func variances(_ x: Matrix) -> [Double] {
            (0..<x.rows).map { r in (0..<x.cols).reduce(0.0) { $0 + x[r, $1] * x[r, $1] } / d0 }
        }
        var k1 = variances(x1), k2 = x2.map(variances) ?? k1
        var total = 0.0
        for _ in 0..<max(depth - 1, 0) {
            let q1 = k1.map { sw2 * $0 + sb2 }, q2 = k2.map { sw2 * $0 + sb2 }
            guard q1.allSatisfy(\.isFinite), q2.allSatisfy(\.isFinite) else { return total }
            // Pairs by node count: sort one side's counts, count the other side's larger ones.
            let m1 = q1.map { Double(GaussianExpectation.nodeCount(maxVariance: $0)) }
            let m2 = q2.map { Double(GaussianExpectation.nodeCount(maxVariance: $0)) }
            if x2 == nil {
                let sorted = m1.sorted()
                // Each unordered pair i < j costs max(M_i, M_j)², the diagonal M_i.
                for (rank, m) in sorted.enumerated() { total += Double(rank) * m * m + m }
            } else {
                let sorted2 = m2.sorted()
                var prefix = [0.0]
                for m in sorted2 { prefix.append(prefix[prefix.count - 1] + m * m) }
                for m in m1 {
                    // Columns with M ≤ m cost m², the others their own M².
                    var lo = 0, hi = sorted2.count
                    while lo < hi { let mid = (lo + hi) / 2; if sorted2[mid] <= m { lo = mid + 1 } else { hi = mid } }
                    total += Double(lo) * m * m + (prefix[sorted2.count] - prefix[lo])
                }
                total += m1.reduce(0, +) + m2.reduce(0, +)       // the self variances' 1-D sums
            }
            let a = spec.activation, alpha = spec.leakySlope, route = self.route
            k1 = q1.map { GaussianExpectation.pair(a, leakySlope: alpha, q1: $0, q2: $0, c: $0, route: route).value }
            k2 = x2 == nil ? k1 : q2.map { GaussianExpectation.pair(a, leakySlope: alpha, q1: $0, q2: $0, c: $0, route: route).value }
        }
        return total
    }
}

extension InfiniteWidthKernel {
    static let overflow = InfiniteWidthError("the kernels overflowed (inputs of very large norm for these σ's and depth); scale the inputs down")
}

/// The analytic kernels between two input sets, each `n₁ × n₂`: row `i` is `X₁`'s row `i`,
/// column `j` is `X₂`'s row `j` (scalars per output pair; the `C`-output kernel is `K ⊗ I_C`).
public struct InfiniteWidthKernels: Sendable, Equatable {
    /// The NNGP `Σ^{L−1}`: the covariance of the network's outputs at initialization.
    public let nngp: Matrix
    /// The NTK `Θ^{L−1}` of the spec's parameterization.
    public let ntk: Matrix
    /// The largest pre-activation variance `Σˡ(x,x)` an activation layer saw (0 without hidden
    /// layers): the quadrature's error bound (1e-10) holds up to 32.
    public let largestVariance: Double
}

/// Inputs the analytic kernels cannot take, in one line.
public struct InfiniteWidthError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
