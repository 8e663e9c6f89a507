import Foundation
import Testing
import PKNetworks
import PKNumerics

/// `MLP.segmentBreakpoints` and `MLP.segmentFeatures` (path-kernel math §1.1): breakpoints against
/// closed forms and against an independent search on the network's own activation pattern, the
/// per-row features against `tangentFeatures` at each row's point, and the piecewise Gauss rule
/// against the fundamental theorem of calculus.
@Suite("Breakpoints of piecewise-linear MLPs along a segment")
struct SegmentBreakpointTests {
    /// Breakpoints are roots of exact polynomial coefficients computed in floating point: a few
    /// ulps of t (t ∈ [0, 1]).
    static let breakpointTolerance = 1e-13
    /// A piecewise rule exact for the integrand's degree, against the network's own change
    /// `f(w + Δw) − f(w)`: round-off of the sum of a few products.
    static let exactIntegral = 1e-12

    /// `W_l`, `b_l` of a standard-parameterized MLP as the flat vector `[W_0, b_0, W_1, b_1, …]`.
    static func flat(_ layers: [(w: [Double], b: [Double])]) -> [Double] { layers.flatMap { $0.w + $0.b } }

    /// One hidden unit, one input: `z_0(t) = (W + tΔW)x + b + tΔb` crosses 0 at
    /// `t* = −(Wx + b)/(ΔWx + Δb)`, whichever side it starts on.
    @Test(arguments: [(1.0, -2.0, 0.5, 0.25), (-0.3, 1.0, 0.1, 0.0), (0.7, -0.1, -0.2, 0.4)])
    func firstLayerRootIsClosedForm(case c: (w: Double, dw: Double, b: Double, db: Double)) throws {
        let model = try MLP(spec: ModelSpec(layers: [1, 1, 1], activation: .relu, parameterization: .standard))
        let x = Matrix(rows: 1, cols: 1, data: [1.5])
        let w = Self.flat([([c.w], [c.b]), ([1.0], [0.0])]), v = Self.flat([([c.dw], [c.db]), ([0.3], [0.1])])
        let expected = -(c.w * 1.5 + c.b) / (c.dw * 1.5 + c.db)
        let found = model.segmentBreakpoints(start: w, delta: v, x)[0]
        if expected > 0 && expected < 1 {
            #expect(found.count == 1)
            #expect(abs((found.first ?? .nan) - expected) <= Self.breakpointTolerance, "\(found) against \(expected)")
        } else {
            #expect(found.isEmpty, "\(found): no root in (0, 1), expected \(expected)")
        }
    }

    /// Two hidden layers of one unit: `z_0 = (1 + t)·1` stays positive, so `a_1 = 1 + t` and
    /// `z_1 = (1 − 4t)(1 + t) − 0.5 = 0.5 − 3t − 4t²`, whose root in (0, 1) is `(√17 − 3)/8`.
    /// With `z_0 = (1 − 2t)` (root ½) instead, `z_1` is quadratic on [0, ½) and constant `b_1`
    /// beyond: the breakpoints are ½ and the root of `(1 − 4t)(1 − 2t) − 0.5` below ½,
    /// `(6 − √20)/16` (`8t² − 6t + 0.5`).
    @Test func secondLayerRootsAreClosedForm() throws {
        let model = try MLP(spec: ModelSpec(layers: [1, 1, 1, 1], activation: .relu, parameterization: .standard))
        let x = Matrix(rows: 1, cols: 1, data: [1])
        let w = Self.flat([([1], [0]), ([1], [-0.5]), ([1], [0])])
        let rising = Self.flat([([1], [0]), ([-4], [0]), ([0.2], [0])])
        let found = model.segmentBreakpoints(start: w, delta: rising, x)[0]
        #expect(found.count == 1)
        #expect(abs((found.first ?? .nan) - (17.0.squareRoot() - 3) / 8) <= Self.breakpointTolerance, "\(found)")

        let falling = Self.flat([([-2], [0]), ([-4], [0]), ([0.2], [0])])
        let both = model.segmentBreakpoints(start: w, delta: falling, x)[0]
        let expected = [(6 - 20.0.squareRoot()) / 16, 0.5]
        #expect(both.count == 2)
        for (a, b) in zip(both, expected) { #expect(abs(a - b) <= Self.breakpointTolerance, "\(both) against \(expected)") }
    }

    /// Real roots of odd multiplicity against polynomials built from their roots, up to degree 5
    /// (the general route: the derivative's sign changes, then bisection).
    @Test func polynomialSignChangesAgainstKnownRoots() {
        func fromRoots(_ roots: [Double], scale: Double) -> [Double] {
            var c = [scale]
            for r in roots {   // c ← c·(t − r)
                var next = [Double](repeating: 0, count: c.count + 1)
                for (k, ck) in c.enumerated() { next[k + 1] += ck; next[k] -= r * ck }
                c = next
            }
            return c
        }
        let cases: [(roots: [Double], inside: [Double])] = [
            ([0.3], [0.3]), ([0.2, 0.7], [0.2, 0.7]), ([0.5, 0.5], []), ([-1, 0.25, 0.6], [0.25, 0.6]),
            ([0.1, 0.4, 0.4, 0.9], [0.1, 0.9]), ([0.05, 0.3, 0.55, 0.8, 1.5], [0.05, 0.3, 0.55, 0.8]),
            ([0.3, 0.3, 0.3], [0.3]), ([2, 3], []),
        ]
        for (roots, inside) in cases {
            for scale in [1.0, -3.0, 1e-6] {
                let found = Polynomial.signChanges(fromRoots(roots, scale: scale), in: 0, 1)
                #expect(found.count == inside.count, "roots \(roots), scale \(scale): found \(found)")
                // A triple root is found to about the cube root of round-off.
                let tol = Set(roots).count < roots.count && roots.count == 3 ? 1e-5 : 1e-12
                for (a, b) in zip(found, inside) { #expect(abs(a - b) <= tol, "roots \(roots), scale \(scale): found \(found)") }
            }
        }
        #expect(Polynomial.signChanges([0, 0, 0], in: 0, 1).isEmpty)
        #expect(Polynomial.signChanges([1, 0, 0], in: 0, 1).isEmpty)
    }

    /// Random relu and leaky-relu nets of depth 2 to 4 (layer pre-activations up to degree 3) on a
    /// long step, so that most examples cross several kinks: every change of the network's own
    /// activation pattern (`kinkPattern`, the forward pass) between 4001 sample points holds
    /// exactly the breakpoints found there, and the pattern differs just before and after each.
    @Test(arguments: [[3, 6, 1], [3, 6, 5, 2], [3, 6, 5, 4, 2]], [Activation.relu, .leakyRelu])
    func breakpointsAreWhereThePatternChanges(layers: [Int], activation: Activation) throws {
        let model = try MLP(spec: ModelSpec(layers: layers, activation: activation, sigmaW: 1.5, sigmaB: 0.5, leakySlope: 0.2))
        let w = model.initialParameters(seed: 11)
        let v = randomVector(model.parameterCount, seed: 12).map { 0.4 * $0 }
        let x = randomMatrix(rows: 6, cols: layers[0], seed: 13)
        let breaks = model.segmentBreakpoints(start: w, delta: v, x)
        let samples = 4000
        var total = 0
        for r in 0..<x.rows {
            let xr = x.rows(r..<(r + 1))
            func pattern(_ t: Double) -> [Double] {
                var wt = w
                Vec.axpy(t, v, &wt)
                return model.kinkPattern(wt, xr)
            }
            var changes: [Int] = []
            var previous = pattern(0)
            for k in 1...samples {
                let p = pattern(Double(k) / Double(samples))
                if p != previous { changes.append(k) }
                previous = p
            }
            let found = breaks[r].map { Int(($0 * Double(samples)).rounded(.up)) }
            #expect(Set(found) == Set(changes), "example \(r): breakpoints in sample intervals \(found), pattern changes in \(changes)")
            #expect(breaks[r] == breaks[r].sorted() && Set(breaks[r]).count == breaks[r].count)
            for t in breaks[r] {
                #expect(pattern(t - 1e-9) != pattern(t + 1e-9), "example \(r): no pattern change at \(t)")
            }
            total += breaks[r].count
        }
        #expect(total >= 3, "the test wants kinks: \(total) breakpoints")
    }

    /// `segmentFeatures` with each row at its own point agrees with `tangentFeatures` at that
    /// point (activations, signals, outputs and the JVPs of two tangents), in both precisions.
    @Test(arguments: [Activation.relu, .leakyRelu, .tanh])
    func perRowFeaturesMatchFeaturesAtEachPoint(activation: Activation) throws {
        let model = try MLP(spec: ModelSpec(layers: [3, 6, 5, 2], activation: activation, sigmaW: 1.5, sigmaB: 0.5, leakySlope: 0.2))
        let w = model.initialParameters(seed: 21)
        let v = randomVector(model.parameterCount, seed: 22).map { 0.3 * $0 }
        let u = randomVector(model.parameterCount, seed: 23)
        let x = randomMatrix(rows: 40, cols: 3, seed: 24)   // above one row block (32): two blocks
        let t = (0..<40).map { Double(($0 * 37) % 40) / 40 + 0.01 }
        let joint = model.segmentFeatures(start: w, delta: v, x, at: t, tangents: [v, u])
        let single = model.segmentFeatures(start: w, delta: v, x, at: t, as: Float.self, tangents: [v, u])
        for r in 0..<x.rows {
            var wt = w
            Vec.axpy(t[r], v, &wt)
            let ref = model.tangentFeatures(wt, x.rows(r..<(r + 1)), as: Double.self, tangents: [v, u])
            for l in 0..<model.depth {
                #expect(relativeError(joint.inputs[l].row(r), ref.inputs[l].data) <= Tolerance.roundOff)
                for c in 0..<2 {
                    let got = joint.signals[l].row(c * x.rows + r), want = ref.signals[l].row(c)
                    #expect(relativeError(got, want) <= Tolerance.roundOff, "layer \(l) channel \(c) row \(r)")
                    #expect(relativeError(single.signals[l].row(c * x.rows + r).map(Double.init), want) <= 1e-5)
                }
            }
            #expect(relativeError(joint.outputs.row(r), ref.outputs.data) <= Tolerance.roundOff)
            for k in 0..<2 { #expect(relativeError(joint.outputTangents[k].row(r), ref.outputTangents[k].data) <= Tolerance.roundOff) }
        }
    }

    /// The piecewise rule: on each piece between breakpoints, ⌈L/2⌉ Gauss–Legendre nodes (exact
    /// for `J`'s degree L − 1) integrate `J(x; w(t))Δw` to `f(w + Δw) − f(w)` at round-off, where
    /// 4 nodes over the whole segment leave an error a million times larger.
    @Test(arguments: [[3, 6, 5, 2], [3, 6, 5, 4, 2]])
    func piecewiseRuleIsExact(layers: [Int]) throws {
        let model = try MLP(spec: ModelSpec(layers: layers, activation: .relu, sigmaW: 1.5, sigmaB: 0.5))
        let w = model.initialParameters(seed: 31)
        let v = randomVector(model.parameterCount, seed: 32).map { 0.4 * $0 }
        let x = randomMatrix(rows: 5, cols: 3, seed: 33)
        var end = w
        Vec.axpy(1, v, &end)
        let change = model.forward(end, x) - model.forward(w, x)
        let rule = GaussLegendre(nodes: (model.depth + 1) / 2)
        let breaks = model.segmentBreakpoints(start: w, delta: v, x)
        var piecewise = Matrix(rows: x.rows, cols: model.outputDim), whole = piecewise
        let four = GaussLegendre(nodes: 4)
        for r in 0..<x.rows {
            let xr = x.rows(r..<(r + 1)), cuts = [0] + breaks[r] + [1]
            func jvp(_ t: Double) -> [Double] {
                var wt = w
                Vec.axpy(t, v, &wt)
                return model.jvp(wt, xr, tangent: v).data
            }
            for p in 0..<(cuts.count - 1) {
                let (a, b) = (cuts[p], cuts[p + 1])
                for (s, o) in zip(rule.nodes, rule.weights) {
                    for (c, j) in jvp(a + (b - a) * s).enumerated() { piecewise[r, c] += (b - a) * o * j }
                }
            }
            for (s, o) in zip(four.nodes, four.weights) { for (c, j) in jvp(s).enumerated() { whole[r, c] += o * j } }
        }
        let exactError = relativeError(piecewise.data, change.data), wholeError = relativeError(whole.data, change.data)
        #expect(exactError <= Self.exactIntegral, "piecewise rule: \(exactError)")
        #expect(wholeError > 1e6 * Self.exactIntegral, "4 nodes over the whole segment: \(wholeError) (the test wants kinks)")
    }
}
