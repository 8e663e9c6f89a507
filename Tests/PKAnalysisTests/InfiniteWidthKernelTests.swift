import Foundation
import Testing
import PKNetworks
import PKNumerics
@testable import PKAnalysis

/// The analytic NNGP and NTK of the MLP against the ntk-family contract §1: oracle 1a
/// (neural-tangents 0.6.5, float64), the trapezoidal rule against the closed forms, exact self
/// pairs, the linear model, cross kernels against Gram matrices, and bad inputs.
@Suite("Infinite-width NNGP and NTK")
struct InfiniteWidthKernelTests {
    /// Contract §1a: relative to `max |entry|` of the matrix, closed forms.
    static let closedFormTolerance = 1e-12
    /// Contract §1a: the same, on the quadrature route (tanh, sigmoid, softplus).
    static let quadratureTolerance = 1e-10
    /// Cross kernels against the blocks of a Gram matrix: the same formulas in another order.
    static let roundOffTolerance = 1e-13

    /// x₁, x₂, x₃, x₄ = −x₁/2.
    static let inputs = Matrix([[0.9, -0.3, 0.4], [0.1, 1.2, -0.5], [-0.7, 0.2, 0.6], [-0.45, 0.15, -0.2]])

    static func spec(_ a: Activation, _ p: Parameterization, bias: Bool = true, layers: [Int] = [3, 512, 512, 1]) -> ModelSpec {
        ModelSpec(layers: layers, activation: a, parameterization: p, sigmaW: 1.5, sigmaB: 0.1, bias: bias, leakySlope: 0.01)
    }

    static func maxAbs(_ m: Matrix) -> Double { m.data.map(abs).max() ?? 0 }

    /// Upper triangle in the order 11 12 13 14 22 23 24 33 34 44.
    static func upper(_ m: Matrix) -> [Double] {
        (0..<4).flatMap { i in (i..<4).map { m[i, $0] } }
    }

    // MARK: - Oracle 1a, full upper triangles

    struct Full: Sendable, CustomTestStringConvertible {
        let activation: Activation
        let parameterization: Parameterization
        let nngp: [Double]?
        let ntk: [Double]
        var testDescription: String { "\(activation.rawValue) \(parameterization.rawValue)" }
    }

    static let reluNNGP = [1.040078125, 0.5436394433009, 0.3796545238416, 0.1862298954164, 1.647578125,
                           0.5712999470956, 0.4294777152233, 0.8787109375, 0.3413138607159, 0.28544921875]
    static let erfNNGP = [1.038771799013, -0.2807729364929, -0.3694205645625, -0.73772559389,
                          1.118671154782, -0.06219559958934, 0.296788446932, 1.004434148964,
                          0.3807410230813, 0.706132846991]

    static let full: [Full] = [
        Full(activation: .relu, parameterization: .ntk, nngp: reluNNGP,
             ntk: [3.088984375, 0.5760940301407, 0.371303044643, 0.1666073580602, 4.911484375,
                   0.737356124531, 0.7649970507293, 2.6048828125, 0.6528679239796, 0.82509765625]),
        Full(activation: .relu, parameterization: .standard, nngp: reluNNGP,
             ntk: [470.9721875, 150.5952435271, 100.7310028291, 41.93644746016, 748.2621875,
                   172.9642285503, 150.1341626356, 397.31703125, 123.1369709222, 126.526015625]),
        Full(activation: .erf, parameterization: .ntk, nngp: erfNNGP,
             ntk: [3.751105532802, -0.8851279271505, -1.166726634505, -2.451357755836, 4.310166493,
                   -0.2162535258933, 0.8690491534864, 3.549844945412, 1.131062622233, 2.225041918484]),
        Full(activation: .erf, parameterization: .standard, nngp: erfNNGP,
             ntk: [522.0345059105, -132.9760698567, -174.398507758, -357.3671270766,
                   574.1115474751, -32.26235318807, 132.7805775191, 500.7033096725,
                   172.550993563, 334.0087920307]),
    ]

    @Test(arguments: full)
    func oracle1aFullMatrices(_ o: Full) throws {
        let k = try InfiniteWidthKernel(spec: Self.spec(o.activation, o.parameterization)).kernels(Self.inputs)
        if let nngp = o.nngp { Self.expectClose(Self.upper(k.nngp), nngp, Self.closedFormTolerance, "NNGP \(o.testDescription)") }
        Self.expectClose(Self.upper(k.ntk), o.ntk, Self.closedFormTolerance, "NTK \(o.testDescription)")
    }

    // MARK: - Oracle 1a, the other activations

    struct Entries: Sendable, CustomTestStringConvertible {
        let activation: Activation
        let parameterization: Parameterization
        var bias = true
        /// Σ₁₂, Σ₁₄, Θ₁₂, Θ₁₄, Θ₃₃.
        let values: [Double]
        var testDescription: String { "\(activation.rawValue) \(parameterization.rawValue)\(bias ? "" : " no bias")" }
    }

    static let entries: [Entries] = [
        Entries(activation: .leakyRelu, parameterization: .ntk, values: [0.5303018833502, 0.1779329022885, 0.5528240029823, 0.148614547042, 2.605399564786]),
        Entries(activation: .leakyRelu, parameterization: .standard, values: [0.5303018833502, 0.1779329022885, 146.1975976539, 38.91313460487, 397.3959300826]),
        Entries(activation: .gelu, parameterization: .ntk, values: [0.1962400195573, -0.01891978898072, 0.1260094781551, -0.1265383479761, 1.773276374061]),
        Entries(activation: .gelu, parameterization: .standard, values: [0.1962400195573, -0.01891978898072, 45.77236586124, -18.59326340244, 260.7823821727]),
        Entries(activation: .identity, parameterization: .ntk, values: [-1.70140625, -1.92921875, -5.14671875, -5.83015625, 10.34453125]),
        Entries(activation: .tanh, parameterization: .ntk, values: [-0.2282616920459, -0.5468909578075, -0.7221074354109, -1.776308657056, 2.594598484807]),
        Entries(activation: .tanh, parameterization: .standard, values: [-0.2282616920459, -0.5468909578075, -108.7363604848, -261.5032736162, 373.358957039]),
        Entries(activation: .sigmoid, parameterization: .ntk, values: [0.63047034695, 0.6300958538755, 0.6855762908091, 0.6834418510719, 0.7222360831626]),
        Entries(activation: .softplus, parameterization: .ntk, values: [2.680715796242, 2.336947217244, 3.415371759751, 2.903727505392, 4.405195214302]),
        Entries(activation: .softplus, parameterization: .standard, values: [2.680715796242, 2.336947217244, 802.4137227753, 688.5722713065, 932.0617923282]),
        Entries(activation: .relu, parameterization: .ntk, bias: false, values: [0.5148209466646, 0.1601372275063, 0.5343567496551, 0.1601372275063, 2.5344140625]),
        Entries(activation: .erf, parameterization: .ntk, bias: false, values: [-0.3143165052198, -0.8124021818875, -0.9592328022535, -2.698264776664, 3.515408106896]),
    ]

    @Test(arguments: entries)
    func oracle1aEntries(_ o: Entries) throws {
        let k = try InfiniteWidthKernel(spec: Self.spec(o.activation, o.parameterization, bias: o.bias)).kernels(Self.inputs)
        let tolerance = GaussianExpectation.hasClosedForm(o.activation) ? Self.closedFormTolerance : Self.quadratureTolerance
        // Relative to max |entry| of each expected matrix (its diagonal holds the largest entry).
        let nngpScale = Self.maxAbs(k.nngp), ntkScale = Self.maxAbs(k.ntk)
        let got = [k.nngp[0, 1], k.nngp[0, 3], k.ntk[0, 1], k.ntk[0, 3], k.ntk[2, 2]]
        let scales = [nngpScale, nngpScale, ntkScale, ntkScale, ntkScale]
        for (i, (g, e)) in zip(got, o.values).enumerated() {
            #expect(abs(g - e) <= tolerance * scales[i], "\(o.testDescription) entry \(i): \(g) vs \(e)")
        }
        // Relu without bias: θ = π at the first layer for x₄ = −x₁/2, so Θ₁₄ = Σ₁₄ exactly.
        if o.activation == .relu && !o.bias { #expect(k.ntk[0, 3] == k.nngp[0, 3]) }
    }

    // MARK: - Independent routes and properties

    /// The trapezoidal rule reproduces the closed forms of erf and gelu at the pair level
    /// (absolute 1e-10, relative above 1; contract §1) over variances up to 32 and correlations
    /// in [−0.999, 1].
    @Test(arguments: [Activation.erf, .gelu, .identity])
    func quadratureMatchesClosedForms(_ a: Activation) {
        let tolerance = 1e-10
        for q1 in [0.05, 0.5, 1, 4, 32.0] {
            for q2 in [0.3, 2, 32.0] {
                for rho in [-0.999, -0.6, 0, 0.3, 0.95, 1] {
                    let c = rho * (q1 * q2).squareRoot()
                    let exact = GaussianExpectation.pair(a, leakySlope: 0.01, q1: q1, q2: q2, c: c)
                    let quad = GaussianExpectation.pair(a, leakySlope: 0.01, q1: q1, q2: q2, c: c, route: .quadrature)
                    #expect(abs(quad.value - exact.value) <= tolerance * max(1, abs(exact.value)), "\(a) q \(q1) \(q2) ρ \(rho): \(quad.value) vs \(exact.value)")
                    #expect(abs(quad.derivative - exact.derivative) <= tolerance * max(1, abs(exact.derivative)), "\(a)' q \(q1) \(q2) ρ \(rho): \(quad.derivative) vs \(exact.derivative)")
                }
            }
        }
    }

    /// The arc-cosine kernels' angle (`GaussianExpectation.angle`, `atan(s/c)` in its quadrant)
    /// against the formulation it replaced, `atan2(s, c)`, spelled out here: relu and leaky relu,
    /// value and derivative within `sameFormulas` relative to their natural scales (`√(q₁q₂)` and
    /// `B = (1+α²)/2`) over variances 1e-6…1e4 and correlations from −1 to 1 (ρ within 1e-15 of
    /// ±1 and 0 included), zero variances and subnormal covariances; and the angles the closed
    /// forms need exactly — 0 for self pairs, π for anti-parallel pairs, π/2 at `c = 0` — equal,
    /// as `atan2`'s were.
    @Test func arcCosineAngleMatchesAtan2() {
        let sameFormulas = 1e-13
        func reference(_ alpha: Double, _ q1: Double, _ q2: Double, _ c: Double) -> GaussianExpectation.Pair {
            let a = (1 - alpha) * (1 - alpha) / (2 * Double.pi), b = (1 + alpha * alpha) / 2
            let s = max(q1 * q2 - c * c, 0).squareRoot()
            let theta = q1 * q2 == 0 ? Double.pi / 2 : atan2(s, c)
            return GaussianExpectation.Pair(value: a * s + (b - a * theta) * c, derivative: b - a * theta)
        }
        var checked = 0
        for alpha in [0, 0.01, 0.2, -0.5] {
            let b = (1 + alpha * alpha) / 2
            for q1 in [0, 1e-6, 0.03, 0.7, 1, 2.5, 40, 1e4] {
                for q2 in [0, 1e-6, 0.3, 1, 9, 1e4] {
                    var cs = [0.0, Double.leastNonzeroMagnitude, -Double.leastNonzeroMagnitude]
                    for rho in [-1, -1 + 1e-15, -0.999999, -0.7, -1e-9, 1e-12, 0.2, 0.5, 0.9, 0.99999999, 1 - 1e-15, 1] {
                        cs.append(rho * (q1 * q2).squareRoot())
                    }
                    for c in cs {
                        let got = GaussianExpectation.arcCosine(slope: alpha, q1: q1, q2: q2, c: c)
                        let want = reference(alpha, q1, q2, c)
                        let scale = max((q1 * q2).squareRoot(), Double.leastNormalMagnitude)
                        #expect(abs(got.value - want.value) <= sameFormulas * scale, "α \(alpha) q \(q1) \(q2) c \(c): \(got.value) vs \(want.value)")
                        #expect(abs(got.derivative - want.derivative) <= sameFormulas * b, "α \(alpha)' q \(q1) \(q2) c \(c): \(got.derivative) vs \(want.derivative)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == 4 * 8 * 6 * 15)
        // The angles the closed forms need exactly (atan2 gave these bits; so must the new route).
        for q in [1e-6, 0.7, 3.0, 1e4] {
            #expect(GaussianExpectation.angle(s: 0, c: q) == 0)
            #expect(GaussianExpectation.angle(s: 0, c: -q) == Double.pi)
            #expect(GaussianExpectation.angle(s: q, c: 0) == Double.pi / 2)
            #expect(GaussianExpectation.arcCosine(slope: 0, q1: q, q2: q, c: q) == reference(0, q, q, q))
            #expect(GaussianExpectation.arcCosine(slope: 0, q1: q, q2: q, c: -q).derivative == 0)
        }
    }

    /// The whole recursion on the quadrature route against the closed forms (erf, gelu, both
    /// parameterizations) on the oracle inputs.
    @Test(arguments: [Activation.erf, .gelu], [Parameterization.ntk, .standard])
    func quadratureRecursionMatchesClosedForms(_ a: Activation, _ p: Parameterization) throws {
        let spec = Self.spec(a, p, layers: [3, 64, 64, 64, 2])
        let exact = try InfiniteWidthKernel(spec: spec).kernels(Self.inputs)
        let quad = try InfiniteWidthKernel(spec: spec, route: .quadrature).kernels(Self.inputs)
        Self.expectClose(quad.nngp.data, exact.nngp.data, Self.quadratureTolerance, "NNGP")
        Self.expectClose(quad.ntk.data, exact.ntk.data, Self.quadratureTolerance, "NTK")
    }

    /// One hidden relu layer by hand, on the diagonal (θ = 0: `E[φ²] = q/2`, `Σ̇ = 1/2`):
    /// `Θ = σ_w²·q/2 + σ_b² + σ_w²·q/2`, `q = σ_w²‖x‖²/d₀ + σ_b²`. Self pairs are exact.
    @Test func reluSelfPairsAreExact() throws {
        let k = try InfiniteWidthKernel(spec: Self.spec(.relu, .ntk, layers: [3, 8, 1])).kernels(Self.inputs)
        for i in 0..<4 {
            let norm2 = (0..<3).reduce(0.0) { $0 + Self.inputs[i, $1] * Self.inputs[i, $1] }
            let q = 2.25 * norm2 / 3 + 0.01
            let nngp = 2.25 * q / 2 + 0.01
            let ntk = nngp + 2.25 * 0.5 * q
            #expect(abs(k.nngp[i, i] - nngp) <= 4 * Double.ulpOfOne * nngp)
            #expect(abs(k.ntk[i, i] - ntk) <= 4 * Double.ulpOfOne * ntk)
        }
    }

    /// `L = 1`: `NNGP = σ_w² x·x'/d₀ + σ_b²`; NTK the same (`ntk`) or `x·x' + 1` (`standard`).
    @Test func linearModel() throws {
        let x = Self.inputs
        let ntk = try InfiniteWidthKernel(spec: Self.spec(.tanh, .ntk, layers: [3, 2])).kernels(x)
        let standard = try InfiniteWidthKernel(spec: Self.spec(.tanh, .standard, layers: [3, 2])).kernels(x)
        for i in 0..<4 {
            for j in 0..<4 {
                let dot = (0..<3).reduce(0.0) { $0 + x[i, $1] * x[j, $1] }
                let nngp = 2.25 * dot / 3 + 0.01
                #expect(abs(ntk.nngp[i, j] - nngp) <= Self.roundOffTolerance)
                #expect(abs(ntk.ntk[i, j] - nngp) <= Self.roundOffTolerance)
                #expect(abs(standard.nngp[i, j] - nngp) <= Self.roundOffTolerance)
                #expect(abs(standard.ntk[i, j] - (dot + 1)) <= Self.roundOffTolerance)
            }
        }
    }

    /// A cross kernel between two sets equals the off-diagonal block of the Gram matrix of both,
    /// the Gram matrix is symmetric, and NNGP and NTK are positive semi-definite.
    @Test(arguments: [Activation.relu, .leakyRelu, .erf, .gelu, .tanh, .softplus])
    func crossKernelsAndProperties(_ a: Activation) throws {
        let kernel = try InfiniteWidthKernel(spec: Self.spec(a, .standard, layers: [3, 16, 16, 1]))
        let x1 = Self.inputs.rows(0..<2), x2 = Self.inputs.rows(2..<4)
        let cross = try kernel.kernels(x1, x2)
        let gram = try kernel.kernels(Self.inputs)
        for i in 0..<2 {
            for j in 0..<2 {
                #expect(abs(cross.nngp[i, j] - gram.nngp[i, j + 2]) <= Self.roundOffTolerance * Self.maxAbs(gram.nngp))
                #expect(abs(cross.ntk[i, j] - gram.ntk[i, j + 2]) <= Self.roundOffTolerance * Self.maxAbs(gram.ntk))
            }
        }
        #expect(gram.ntk == gram.ntk.transposed && gram.nngp == gram.nngp.transposed)
        for m in [gram.nngp, gram.ntk] {
            let smallest = try LinearAlgebra.symmetricEigenvalues(m).min()!
            #expect(smallest >= -Self.roundOffTolerance * Self.maxAbs(m), "\(a): eigenvalue \(smallest)")
        }
    }

    /// `x = 0` without bias has zero variance: finite kernels (neural-tangents' numerical route
    /// gives NaN there), zero against every other input.
    @Test(arguments: [Activation.relu, .erf, .gelu, .tanh, .sigmoid])
    func zeroVarianceInput(_ a: Activation) throws {
        let x = Matrix([[0, 0, 0], [0.9, -0.3, 0.4]])
        let k = try InfiniteWidthKernel(spec: Self.spec(a, .ntk, bias: false)).kernels(x)
        #expect(k.nngp.isFinite && k.ntk.isFinite)
        if a != .sigmoid {   // φ(0) = 0: the zero input's features vanish
            #expect(abs(k.nngp[0, 1]) <= 1e-15 && abs(k.nngp[0, 0]) <= 1e-15)
        }
    }

    /// The largest pre-activation variance an activation sees: relu without bias on x₁,
    /// `q⁰ = σ_w²‖x₁‖²/3 = 0.795`, `q¹ = σ_w² q⁰/2 = 0.894375`; none for a linear model.
    @Test func largestVariance() throws {
        let x = Self.inputs.rows(0..<1)
        let relu = try InfiniteWidthKernel(spec: Self.spec(.relu, .ntk, bias: false)).kernels(x)
        #expect(abs(relu.largestVariance - 0.894375) <= 4 * Double.ulpOfOne)
        #expect(try InfiniteWidthKernel(spec: Self.spec(.tanh, .ntk, layers: [3, 1])).kernels(x).largestVariance == 0)
    }

    @Test func badInputsAreRefused() throws {
        let kernel = try InfiniteWidthKernel(spec: Self.spec(.relu, .ntk))
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Matrix([[1, 2]])) }
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Self.inputs, Matrix([[1, .nan, 2]])) }
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Matrix([[1, 2, .infinity]])) }
        // Finite inputs whose kernel overflows (‖x‖²/d₀ = 1e600): an error, not inf or NaN.
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Matrix([[1e300, 1e300, 1e300]])) }
        let tanh = try InfiniteWidthKernel(spec: Self.spec(.tanh, .ntk))
        #expect(throws: InfiniteWidthError.self) { try tanh.kernels(Matrix([[1e300, 1e300, 1e300]])) }
        #expect(throws: ModelSpecError.self) {
            try InfiniteWidthKernel(spec: ModelSpec(layers: [3, 1], activation: .relu, kind: "sequential"))
        }
        #expect(throws: ModelSpecError.self) { try InfiniteWidthKernel(spec: Self.spec(.relu, .ntk, layers: [3])) }
    }

    static func expectClose(_ got: [Double], _ expected: [Double], _ tolerance: Double, _ what: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == expected.count, sourceLocation: sourceLocation)
        let scale = expected.map(abs).max() ?? 0
        for (i, (g, e)) in zip(got, expected).enumerated() {
            #expect(abs(g - e) <= tolerance * scale, "\(what) entry \(i): \(g) vs \(e)", sourceLocation: sourceLocation)
        }
    }

    /// The trapezoidal rule's row sums for tanh and sigmoid by a geometric sequence of
    /// exponentials equal the plain sums of `Activation`'s own φ and φ' at every node: rows that
    /// cross zero, rows deep in saturation on either side (an exponential that underflows or
    /// overflows at a restart), the largest node count, a zero step.
    @Test(arguments: [Activation.tanh, .sigmoid])
    func geometricRowsEqualThePlainSums(activation: Activation) {
        // Absolute, per unit of Σw (every evaluation within ~1e-14; the rule's own error is 1e-10).
        let rowTolerance = 1e-13
        for (m, v0, d) in [(97, -3.0, 0.06), (545, -40.0, 0.15), (4097, -380.0, 0.18), (4097, 300.0, 0.18),
                           (4097, -9 * 42.4, 18 * 42.4 / 4096), (201, 2.5, 0.0), (97, -1000.0, 0.01), (161, -0.7, 1e-9)] {
            let h = 18.0 / Double(m - 1)
            let weights = (0..<m).map { h * exp(-0.5 * pow(-9 + Double($0) * h, 2)) / (2 * Double.pi).squareRoot() }
            var value = 0.0, derivative = 0.0
            for k in 0..<m {
                let v = v0 + Double(k) * d
                value += weights[k] * activation.value(v)
                derivative += weights[k] * activation.derivative(v)
            }
            let (fast, fastDerivative) = GaussianExpectation.geometricRow(activation, from: v0, by: d, weights: weights)
            let total = weights.reduce(0, +)
            #expect(abs(fast - value) <= rowTolerance * total, "\(activation) m \(m) v0 \(v0) d \(d): \(fast) vs \(value)")
            #expect(abs(fastDerivative - derivative) <= rowTolerance * total, "\(activation) m \(m) v0 \(v0) d \(d): φ' \(fastDerivative) vs \(derivative)")
        }
    }
}
