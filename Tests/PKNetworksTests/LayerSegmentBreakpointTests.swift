import Foundation
import Testing
import PKNetworks
import PKNumerics

/// `LayerNetwork.segmentBreakpoints`, `Layer.segmentPieces` and `LayerNetwork.segmentFeatures`
/// (path-kernel math §1.1, "Layer networks"): breakpoints of small CNNs with relu and max
/// pooling and of residual nets against an independent search on the network's own pattern
/// (`kinkPattern`, or the routing of each relu–max-pool pair for the fused search; dense
/// sampling and bisection) and against closed forms, the pieces'
/// polynomials against the forward pass, the per-row features against `tangentFeatures`, and the
/// piecewise Gauss rule against the fundamental theorem of calculus.
@Suite("Breakpoints of piecewise-linear layer networks along a segment")
struct LayerSegmentBreakpointTests {
    /// A breakpoint found against the reference (bisected to 1e-13 on the pattern): both are
    /// roots to a few ulps of t, the reference to its bracket.
    static let located = 1e-11
    /// Closed-form breakpoints: roots of exactly rounded linear coefficients, a few ulps.
    static let closedForm = 1e-14
    /// The pieces' polynomials against the forward pass at points inside them: sums of a few
    /// dozen products of O(1) terms, relative to the largest output.
    static let polynomialValue = 1e-12
    /// A piecewise rule exact for the integrand's degree against the network's own change (or a
    /// 64-panel composite rule on the same pieces): round-off.
    static let exactIntegral = 1e-12
    /// Float32 Jacobian rows against float64, relative to the largest entry: float32 round-off
    /// over sums of up to a few hundred terms through five layers.
    static let floatFeatures = 1e-5

    /// conv 3×3 same (3 channels), relu, max pool 2, flatten, dense 2: D = 2.
    static let cnn = #"""
    {"kind": "sequential", "input": [1, 4, 4], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"}, {"kind": "relu"},
      {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// Max pooling straight after a convolution (every pairwise crossing of a window is a true
    /// arg-max candidate), then leaky relu and two dense layers: D = 3.
    static let poolFirst = #"""
    {"kind": "sequential", "input": [2, 4, 4], "sigmaW": 1.5, "sigmaB": 0.5, "leakySlope": 0.2, "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "leaky-relu"}, {"kind": "flatten"}, {"kind": "dense", "out": 3}, {"kind": "relu"},
      {"kind": "dense", "out": 2}]}
    """#
    /// A stem conv and relu, an identity residual block (conv, relu, conv) whose output is the
    /// block's degree-3 polynomial plus the shortcut's degree 1, relu, max pool, dense: D = 4.
    static let residual = #"""
    {"kind": "sequential", "input": [1, 4, 4], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
      {"kind": "residual", "block": {"kind": "sequential", "layers": [
        {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
        {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}]}},
      {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// Dense layers with a projection shortcut (degree 1) beside a block of degree 2 with a relu
    /// inside: the shortcut runs on the block's finer pieces. D = 1 + 2 + 1 = 4.
    static let projection = #"""
    {"kind": "sequential", "input": [3], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "dense", "out": 4}, {"kind": "relu"},
      {"kind": "residual", "block": {"kind": "sequential", "layers": [
        {"kind": "dense", "out": 5}, {"kind": "relu"}, {"kind": "dense", "out": 3}]},
       "shortcut": {"kind": "dense", "out": 3}},
      {"kind": "relu"}, {"kind": "dense", "out": 2}]}
    """#

    static func network(_ json: String) throws -> LayerNetwork {
        try LayerNetwork(spec: JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)))
    }

    /// The breakpoints of `x` (one row) on `w + tΔw` without polynomials: the network's pattern
    /// (`kinkPattern`: relu signs, max-pool arg-maxes, from the forward pass) at `samples` + 1
    /// points, each change bisected on the pattern until the bracket is below 1e-13 (both halves
    /// wherever their ends differ, so that several changes in one sample interval are all found).
    static func referenceBreakpoints(_ model: any Network, _ w: [Double], _ v: [Double], _ x: Matrix, samples: Int = 2048) -> [Double] {
        referenceBreakpoints(w, v, x, samples: samples) { model.kinkPattern($0, $1) }
    }

    /// The same search on another pattern `patternAt(w, x)`.
    static func referenceBreakpoints(_ w: [Double], _ v: [Double], _ x: Matrix, samples: Int = 2048,
                                     pattern patternAt: ([Double], Matrix) -> [Double]) -> [Double] {
        func pattern(_ t: Double) -> [Double] {
            var wt = w
            Vec.axpy(t, v, &wt)
            return patternAt(wt, x)
        }
        /// Every change in (a, b), whose ends' patterns differ: halves with different ends are
        /// bisected on, so that two changes in one sample interval are both found.
        func bisect(_ a: Double, _ b: Double, _ pa: [Double], _ pb: [Double], into cuts: inout [Double]) {
            if b - a <= 1e-13 { cuts.append(0.5 * (a + b)); return }
            let m = 0.5 * (a + b), pm = pattern(m)
            if pm != pa { bisect(a, m, pa, pm, into: &cuts) }
            if pm != pb { bisect(m, b, pm, pb, into: &cuts) }
        }
        var cuts: [Double] = []
        var previous = pattern(0)
        for k in 1...samples {
            let (a, b) = (Double(k - 1) / Double(samples), Double(k) / Double(samples))
            let p = pattern(b)
            if p != previous { bisect(a, b, previous, p, into: &cuts) }
            previous = p
        }
        return cuts
    }

    /// The pattern the Jacobian depends on, from the forward pass and the layers' own pullbacks
    /// (no polynomials, no search): every layer's `kinkPattern`, except that a relu or leaky relu
    /// (slope ≥ 0) directly followed by a max pool in a `Sequential` (at any depth, residual
    /// blocks included) contributes the pair's derivative instead, `∂y_o/∂z_i` for every pooled
    /// output o and relu input i (the pool's then the activation's pullback of each unit
    /// cotangent e_o): which input each window routes to, and with which slope. A unit that is
    /// not routed does not appear, whatever its sign.
    static func routingPattern(_ model: LayerNetwork, _ w: [Double], _ x: Matrix) -> [Double] {
        func walk(_ layer: any Layer, _ a: Matrix, _ w: [Double], _ pattern: inout [Double]) -> Matrix {
            if let s = layer as? Sequential {
                var a = a, offset = 0, i = 0
                func slice(_ j: Int) -> [Double] { Array(w[offset..<(offset + s.children[j].layer.parameterCount)]) }
                while i < s.children.count {
                    if i + 1 < s.children.count, let act = s.children[i].layer as? ActivationLayer,
                       act.activation == .relu || (act.activation == .leakyRelu && act.leakySlope >= 0),
                       let pool = s.children[i + 1].layer as? MaxPool2D {
                        let (z, actCache) = act.forward(a, parameters: [Double]())
                        let (y, poolCache) = pool.forward(z, parameters: [Double]())
                        for r in 0..<a.rows {
                            for o in 0..<y.cols {
                                var e = Matrix(rows: a.rows, cols: y.cols)
                                e[r, o] = 1
                                let g = pool.pullback(e, cache: poolCache, needsInputCotangent: true).input!
                                pattern += act.pullback(g, cache: actCache, needsInputCotangent: true).input!.row(r)
                            }
                        }
                        a = y
                        i += 2
                        continue
                    }
                    a = walk(s.children[i].layer, a, slice(i), &pattern)
                    offset += s.children[i].layer.parameterCount
                    i += 1
                }
                return a
            }
            if let res = layer as? Residual {
                let k = res.block.parameterCount
                let f = walk(res.block, a, Array(w[0..<k]), &pattern)
                guard let shortcut = res.shortcut else { return f + a }
                return f + walk(shortcut, a, Array(w[k...]), &pattern)
            }
            return layer.kinkPattern(a, parameters: w, into: &pattern)
        }
        var pattern: [Double] = []
        _ = walk(model.root, x, w, &pattern)
        return pattern
    }

    /// A relu, a max pool with overlapping 3×3 windows (stride 2, padding 1: windows of 4, 6 and 9
    /// entries), dense: D = 2.
    static let overlappingPool = #"""
    {"kind": "sequential", "input": [1, 5, 5], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
      {"kind": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// A leaky relu before 2×2 windows of stride 1 with padding 1 (the corners' windows hold one
    /// entry), then a relu before 2×2 windows of stride 2 on a 5×5 image (the last row and column
    /// are in no window), dense: D = 3.
    static let leakyPools = #"""
    {"kind": "sequential", "input": [1, 4, 4], "sigmaW": 1.5, "sigmaB": 0.5, "leakySlope": 0.2, "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "leaky-relu"},
      {"kind": "maxpool2d", "kernel": 2, "stride": 1, "padding": 1},
      {"kind": "conv2d", "out": 2, "kernel": 1}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// A relu and a same-size max pool (3×3, stride 1, padding 1) inside an identity residual
    /// block: D = 1 + 2 + 1 = 4.
    static let pooledResidual = #"""
    {"kind": "sequential", "input": [1, 4, 4], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
      {"kind": "residual", "block": {"kind": "sequential", "layers": [
        {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
        {"kind": "maxpool2d", "kernel": 3, "stride": 1, "padding": 1},
        {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}]}},
      {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#

    /// The networks, their degree D, and whether a relu or leaky relu comes directly before a max pool.
    static let searchCases = [(cnn, 2, true), (poolFirst, 3, false), (residual, 4, true), (projection, 4, false),
                              (overlappingPool, 2, true), (leakyPools, 3, true), (pooledResidual, 4, true)]

    /// Every pattern change the reference finds is a breakpoint, to `located`, and no breakpoint
    /// is found where the pattern does not change (max pooling's crossings of two entries below
    /// the maximum are not breakpoints); the declared degree is the polynomials' carried one.
    /// The search that takes each layer on its own (`fusingRectifiedPools: false`) against every
    /// layer's pattern (`kinkPattern`), the default fused one against `routingPattern` (a relu
    /// followed by a max pool: only where the routing changes); the fused one finds fewer on the
    /// networks with a relu before a max pool.
    @Test(arguments: LayerSegmentBreakpointTests.searchCases)
    func breakpointsAreThePatternChanges(case c: (json: String, degree: Int, pooled: Bool)) throws {
        let model = try Self.network(c.json)
        #expect(model.root.segmentDegree == c.degree && model.piecewiseJacobianDegree == c.degree - 1)
        let w = model.initialParameters(seed: 41)
        let v = randomVector(model.parameterCount, seed: 42).map { 0.5 * $0 }
        let x = randomMatrix(rows: 3, cols: model.inputDim, seed: 43)
        let fusedBreaks = model.segmentBreakpoints(start: w, delta: v, x)
        let separateBreaks = model.segmentBreakpoints(start: w, delta: v, x, fusingRectifiedPools: false)
        var totals = (fused: 0, separate: 0)
        for r in 0..<x.rows {
            let xr = x.rows(r..<(r + 1))
            let references = (fused: Self.referenceBreakpoints(w, v, xr) { Self.routingPattern(model, $0, $1) },
                              separate: Self.referenceBreakpoints(model, w, v, xr))
            for (breaks, reference, name) in [(fusedBreaks[r], references.fused, "fused"), (separateBreaks[r], references.separate, "separate")] {
                #expect(breaks.count == reference.count, "\(name), example \(r): found \(breaks), reference \(reference)")
                for (a, b) in zip(breaks, reference) { #expect(abs(a - b) <= Self.located, "\(name), example \(r): found \(a), reference \(b)") }
                #expect(breaks == breaks.sorted() && Set(breaks).count == breaks.count)
            }
            totals.fused += references.fused.count
            totals.separate += references.separate.count
        }
        #expect(totals.fused >= 6, "the test wants kinks: \(totals.fused) pattern changes")
        if c.pooled {   // (fewer on every such network: LayerSegmentFusedPoolTests)
            #expect(totals.fused <= totals.separate, "\(totals.fused) fused, \(totals.separate) separate")
        } else {
            #expect(totals.fused == totals.separate)
        }
        let pieces = try #require(model.root.segmentPieces(SegmentPieces(examples: x), start: w, delta: v))
        #expect(pieces.degree == c.degree)
    }

    /// On every piece the carried polynomials are the network's output: at three points inside
    /// each piece, `Σ_k C_k t^k` against `forward(w + tΔw, x)`.
    @Test(arguments: [LayerSegmentBreakpointTests.cnn, LayerSegmentBreakpointTests.poolFirst, LayerSegmentBreakpointTests.residual, LayerSegmentBreakpointTests.projection])
    func piecesCarryTheOutputPolynomials(json: String) throws {
        let model = try Self.network(json)
        let w = model.initialParameters(seed: 51)
        let v = randomVector(model.parameterCount, seed: 52).map { 0.5 * $0 }
        let x = randomMatrix(rows: 2, cols: model.inputDim, seed: 53)
        let pieces = try #require(model.root.segmentPieces(SegmentPieces(examples: x), start: w, delta: v))
        #expect(pieces.rows > x.rows, "the test wants kinks")
        for r in 0..<pieces.rows {
            for s in [0.1, 0.5, 0.9] {
                let t = pieces.lo[r] + s * (pieces.hi[r] - pieces.lo[r])
                var wt = w
                Vec.axpy(t, v, &wt)
                let f = model.forward(wt, x.rows(pieces.example[r]..<(pieces.example[r] + 1)))
                let p = (0..<model.outputDim).map { pieces.value(r, $0, at: t) }
                #expect(relativeError(p, f.data) <= Self.polynomialValue, "piece \(r) at \(t): \(p) against \(f.data)")
            }
        }
    }

    /// A 1×1 convolution (standard parameterization: `z_i(t) = (w + tΔw)x_i + b + tΔb`) before a
    /// relu: the breakpoints are `t_i = −(w x_i + b)/(Δw x_i + Δb)` inside (0, 1). Before a max
    /// pool without bias all window entries cross together at `t = −w/Δw`, where the arg-max goes
    /// from the largest `x_i` to the smallest: one breakpoint (not one per pair).
    @Test func closedFormBreakpoints() throws {
        let relu = try Self.network(#"""
        {"kind": "sequential", "input": [1, 2, 2], "parameterization": "standard", "layers": [
          {"kind": "conv2d", "out": 1, "kernel": 1}, {"kind": "relu"}, {"kind": "flatten"}, {"kind": "dense", "out": 1}]}
        """#)
        let x = Matrix(rows: 1, cols: 4, data: [1, -0.5, 2, 0.25])
        let (w0, b0, dw, db) = (1.0, 0.2, -2.0, 0.1)
        let head = [0.3, -0.7, 0.5, 1.1, 0.05]
        let w = [w0, b0] + head, v = [dw, db] + [0.1, 0.2, -0.3, 0.4, 0.0]
        let expected = x.data.map { -(w0 * $0 + b0) / (dw * $0 + db) }.filter { $0 > 0 && $0 < 1 }.sorted()
        #expect(expected.count == 3)
        let found = relu.segmentBreakpoints(start: w, delta: v, x)[0]
        #expect(found.count == expected.count, "\(found) against \(expected)")
        for (a, b) in zip(found, expected) { #expect(abs(a - b) <= Self.closedForm, "\(found) against \(expected)") }

        let pool = try Self.network(#"""
        {"kind": "sequential", "input": [1, 2, 2], "parameterization": "standard", "layers": [
          {"kind": "conv2d", "out": 1, "kernel": 1, "bias": false}, {"kind": "maxpool2d", "kernel": 2},
          {"kind": "flatten"}, {"kind": "dense", "out": 1}]}
        """#)
        let xp = Matrix(rows: 1, cols: 4, data: [0.3, -1, 2, 0.7])
        let one = pool.segmentBreakpoints(start: [0.5, 1.5, 0.1], delta: [-1.25, 0.2, 0], xp)[0]
        #expect(one.count == 1 && abs((one.first ?? .nan) - 0.4) <= Self.closedForm, "\(one) against [0.4]")
        // w + tΔw stays positive: the arg-max never moves, although no pair crossing is searched away.
        #expect(pool.segmentBreakpoints(start: [0.5, 1.5, 0.1], delta: [0.25, 0.2, 0], xp)[0].isEmpty)
    }

    /// Not piecewise polynomial along a segment: layer norm or tanh beside a relu; no kinks at all.
    @Test func notEligible() throws {
        let layerNorm = try Self.network(#"""
        {"kind": "sequential", "input": [3], "layers": [
          {"kind": "dense", "out": 4}, {"kind": "layernorm"}, {"kind": "relu"}, {"kind": "dense", "out": 1}]}
        """#)
        let tanh = try Self.network(#"""
        {"kind": "sequential", "input": [3], "layers": [
          {"kind": "dense", "out": 4}, {"kind": "relu"}, {"kind": "dense", "out": 4}, {"kind": "tanh"}, {"kind": "dense", "out": 1}]}
        """#)
        let smooth = try Self.network(#"""
        {"kind": "sequential", "input": [3], "layers": [{"kind": "dense", "out": 4}, {"kind": "identity"}, {"kind": "dense", "out": 1}]}
        """#)
        for model in [layerNorm, tanh, smooth] {
            #expect(model.piecewiseJacobianDegree == nil)
            let w = model.initialParameters(seed: 1), v = randomVector(model.parameterCount, seed: 2)
            #expect(model.segmentBreakpoints(start: w, delta: v, randomMatrix(rows: 2, cols: 3, seed: 3)) == [[], []])
        }
        #expect(layerNorm.isPiecewiseLinear && layerNorm.root.segmentDegree == nil && smooth.root.segmentDegree == 2)
    }

    /// `segmentFeatures` with each row at its own point agrees with `tangentFeatures` there (the
    /// Jacobian rows, outputs and the JVPs of two tangents), float64 and float32.
    @Test func perRowFeaturesMatchFeaturesAtEachPoint() throws {
        let model = try Self.network(Self.residual)
        let w = model.initialParameters(seed: 61)
        let v = randomVector(model.parameterCount, seed: 62).map { 0.3 * $0 }
        let u = randomVector(model.parameterCount, seed: 63)
        let x = randomMatrix(rows: 5, cols: model.inputDim, seed: 64)
        let t = [0.1, 0.9, 0.35, 0.6, 0.02]
        let joint = model.segmentFeatures(start: w, delta: v, x, at: t, tangents: [v, u])
        let single = model.segmentFeatures(start: w, delta: v, x, at: t, as: Float.self, tangents: [v, u])
        for r in 0..<x.rows {
            var wt = w
            Vec.axpy(t[r], v, &wt)
            let ref = model.tangentFeatures(wt, x.rows(r..<(r + 1)), as: Double.self, tangents: [v, u])
            for c in 0..<model.outputDim {
                let want = ref.signals[0].row(c)
                #expect(relativeError(joint.signals[0].row(c * x.rows + r), want) <= Tolerance.roundOff, "row \(r) channel \(c)")
                #expect(relativeError(single.signals[0].row(c * x.rows + r).map(Double.init), want) <= Self.floatFeatures)
            }
            #expect(relativeError(joint.outputs.row(r), ref.outputs.data) <= Tolerance.roundOff)
            for k in 0..<2 { #expect(relativeError(joint.outputTangents[k].row(r), ref.outputTangents[k].data) <= Tolerance.roundOff) }
        }
    }

    /// The piecewise rule with ⌈D/2⌉ nodes per piece (exact for `J`'s degree D − 1) integrates
    /// `J(x; w(t))Δw` to `f(w + Δw) − f(w)`, and `J(x; w(t))u` for another tangent u to a
    /// 64-panel composite Gauss rule on the same pieces, at round-off; 4 nodes over the whole
    /// segment are far off.
    @Test(arguments: [LayerSegmentBreakpointTests.cnn, LayerSegmentBreakpointTests.residual, LayerSegmentBreakpointTests.projection])
    func piecewiseRuleIsExact(json: String) throws {
        let model = try Self.network(json)
        let w = model.initialParameters(seed: 71)
        let v = randomVector(model.parameterCount, seed: 72).map { 0.5 * $0 }
        let u = randomVector(model.parameterCount, seed: 73)
        let x = randomMatrix(rows: 3, cols: model.inputDim, seed: 74)
        var end = w
        Vec.axpy(1, v, &end)
        let change = model.forward(end, x) - model.forward(w, x)
        let degree = try #require(model.piecewiseJacobianDegree)
        let rule = GaussLegendre(nodes: (degree + 2) / 2), four = GaussLegendre(nodes: 4), panel = GaussLegendre(nodes: 4)
        let breaks = model.segmentBreakpoints(start: w, delta: v, x)
        let C = model.outputDim
        var piecewise = Matrix(rows: x.rows, cols: C), whole = piecewise, otherTangent = piecewise, composite = piecewise
        for r in 0..<x.rows {
            let xr = x.rows(r..<(r + 1)), cuts = [0] + breaks[r] + [1]
            func jvp(_ t: Double, _ tangent: [Double]) -> [Double] {
                var wt = w
                Vec.axpy(t, v, &wt)
                return model.jvp(wt, xr, tangent: tangent).data
            }
            for p in 0..<(cuts.count - 1) {
                let (a, b) = (cuts[p], cuts[p + 1])
                for (s, o) in zip(rule.nodes, rule.weights) {
                    for (c, j) in jvp(a + (b - a) * s, v).enumerated() { piecewise[r, c] += (b - a) * o * j }
                    for (c, j) in jvp(a + (b - a) * s, u).enumerated() { otherTangent[r, c] += (b - a) * o * j }
                }
                let h = (b - a) / 64
                for k in 0..<64 {
                    for (s, o) in zip(panel.nodes, panel.weights) {
                        for (c, j) in jvp(a + h * (Double(k) + s), u).enumerated() { composite[r, c] += h * o * j }
                    }
                }
            }
            for (s, o) in zip(four.nodes, four.weights) { for (c, j) in jvp(s, v).enumerated() { whole[r, c] += o * j } }
        }
        let exactError = relativeError(piecewise.data, change.data), wholeError = relativeError(whole.data, change.data)
        #expect(exactError <= Self.exactIntegral, "piecewise rule: \(exactError)")
        #expect(relativeError(otherTangent.data, composite.data) <= Self.exactIntegral)
        #expect(wholeError > 1e4 * Self.exactIntegral, "4 nodes over the whole segment: \(wholeError) (the test wants kinks)")
    }
}
