import Foundation
import Testing
import PKNetworks
import PKNumerics

/// The fused search of a relu (or leaky relu) directly followed by a max pool (path-kernel math
/// §1.1, "Layer networks"; `MaxPool2D.rectifiedSegmentPieces`): breakpoints by hand on a case
/// with silent sign changes, and on small CNNs and residual nets the same integrated Jacobian
/// rows `J̄` as the search that takes each layer on its own (`fusingRectifiedPools: false`,
/// every sign change a breakpoint), with fewer breakpoints, and `J̄Δw = f(w + Δw) − f(w)`.
@Suite("Relu followed by max pooling: the fused breakpoint search")
struct LayerSegmentFusedPoolTests {
    /// Closed-form breakpoints: roots of exactly rounded linear coefficients, a few ulps.
    static let closedForm = 1e-14
    /// `J̄` on the fused pieces against `J̄` on the finer separate pieces: both integrate the
    /// same piecewise polynomial exactly; what differs is round-off (the nodes, the summation
    /// order), relative to the largest entry.
    static let samePieces = 1e-13
    /// `Σ_k ω_k J(t_k)Δw` against `f(w + Δw) − f(w)`: round-off of sums of a few hundred terms.
    static let fundamentalTheorem = 1e-12
    /// A breakpoint of the fused search against the separate search's nearest one: the same
    /// roots of the same coefficients, on intervals cut differently (bisection to adjacent doubles).
    static let sameRoot = 1e-12

    /// A 1×1 convolution with two output channels (standard parameterization: channel c's unit
    /// i is `z_ci(t) = (w_c + tΔw_c) x_i + b_c + tΔb_c`) on one 2×2 image, `activation`, a 2×2
    /// max pool (one window per channel), dense 1.
    static func handBuilt(_ activation: String) throws -> LayerNetwork {
        try LayerSegmentBreakpointTests.network(#"""
        {"kind": "sequential", "input": [1, 2, 2], "parameterization": "standard", "leakySlope": 0.2, "layers": [
          {"kind": "conv2d", "out": 2, "kernel": 1}, {"kind": "\#(activation)"}, {"kind": "maxpool2d", "kernel": 2},
          {"kind": "flatten"}, {"kind": "dense", "out": 1}]}
        """#)
    }

    /// x = (1, −0.5, 2, 0.25). Every unit of a channel crosses the others at `t = −w_c/Δw_c`
    /// (where `w_c + tΔw_c = 0`): before it the largest x is the window's maximum, after it the
    /// smallest.
    /// - Channel 0 (w, Δw, b, Δb = 1, −2, 0.2, 0.1): the crossing at t = 0.5 is at z = 0.25 > 0,
    ///   the maximum stays positive on [0, 1] (unit x = 2 until 0.5, then x = −0.5, positive from
    ///   0.27): one fused breakpoint, 0.5. The units x = −0.5 (at 0.27, not the maximum), x = 2
    ///   (at 0.56, no longer the maximum) and x = 1 (0.63, never) change sign silently.
    /// - Channel 1 (1, −1.6, 0.1, −0.5): the crossing at t = 0.625 is at z = −0.2125 < 0. The
    ///   maximum, unit x = 2 (`2.1 − 3.7t`), crosses 0 at 21/37 ≈ 0.568: a breakpoint; after it
    ///   every unit is negative (x = −0.5: `−0.4 + 0.3t`), so the switch at 0.625 is silent for a
    ///   relu, and for a leaky relu (slope 0.2) it moves the routed unit: a breakpoint there. The
    ///   units x = 0.25 (0.39) and x = 1 (0.52) change sign silently.
    /// Relu: 2 breakpoints fused against 7 separate (6 sign changes and the crossing at 0.5);
    /// leaky relu: 3 against 8. The same `J̄` either way, and it closes the change of f.
    @Test(arguments: ["relu", "leaky-relu"])
    func silentSignChangesByHand(activation: String) throws {
        let model = try Self.handBuilt(activation)
        let x = Matrix(rows: 1, cols: 4, data: [1, -0.5, 2, 0.25])
        let (w0, dw, b0, db) = ([1.0, 1.0], [-2.0, -1.6], [0.2, 0.1], [0.1, -0.5])
        let w = w0 + b0 + [0.3, -0.7, 0.5], v = dw + db + [0.1, 0.2, -0.3]
        #expect(model.parameterCount == w.count)
        func root(_ c: Int, _ xi: Double) -> Double { -(w0[c] * xi + b0[c]) / (dw[c] * xi + db[c]) }
        let signChanges = (0..<2).flatMap { c in x.data.map { root(c, $0) } }.filter { $0 > 0 && $0 < 1 }
        #expect(signChanges.count == 6)
        let crossing = (0..<2).map { -w0[$0] / dw[$0] }   // 0.5, 0.625
        let leaky = activation == "leaky-relu"
        let fusedExpected = ([crossing[0], root(1, 2)] + (leaky ? [crossing[1]] : [])).sorted()
        let separateExpected = (signChanges + [crossing[0]] + (leaky ? [crossing[1]] : [])).sorted()

        let fused = model.segmentBreakpoints(start: w, delta: v, x)[0]
        let separate = model.segmentBreakpoints(start: w, delta: v, x, fusingRectifiedPools: false)[0]
        for (found, expected, name) in [(fused, fusedExpected, "fused"), (separate, separateExpected, "separate")] {
            #expect(found.count == expected.count, "\(name): \(found) against \(expected)")
            for (a, b) in zip(found, expected) { #expect(abs(a - b) <= Self.closedForm, "\(name): \(found) against \(expected)") }
        }
        #expect(fused.count == (leaky ? 3 : 2) && separate.count == (leaky ? 8 : 7))
        try expectSameIntegral(model, w, v, x)
    }

    /// The networks of `LayerSegmentBreakpointTests` with a relu or leaky relu before a max pool
    /// (2×2 windows, overlapping 3×3 windows of stride 2 with padding, 2×2 of stride 1 with
    /// padding, an image whose last row and column are in no window, a pool inside a residual
    /// block, a residual block before the pool): every fused breakpoint is one of the separate
    /// search's, there are fewer, and `J̄` is the same.
    @Test(arguments: [LayerSegmentBreakpointTests.cnn, LayerSegmentBreakpointTests.residual, LayerSegmentBreakpointTests.overlappingPool,
                      LayerSegmentBreakpointTests.leakyPools, LayerSegmentBreakpointTests.pooledResidual])
    func fewerBreakpointsSameIntegral(json: String) throws {
        let model = try LayerSegmentBreakpointTests.network(json)
        let w = model.initialParameters(seed: 121)
        let v = randomVector(model.parameterCount, seed: 122).map { 0.5 * $0 }
        let x = randomMatrix(rows: 4, cols: model.inputDim, seed: 123)
        let fused = model.segmentBreakpoints(start: w, delta: v, x)
        let separate = model.segmentBreakpoints(start: w, delta: v, x, fusingRectifiedPools: false)
        for r in 0..<x.rows {
            for t in fused[r] {
                let nearest = separate[r].map { abs($0 - t) }.min() ?? .infinity
                #expect(nearest <= Self.sameRoot, "example \(r): fused breakpoint \(t) is not a separate one (\(nearest) away)")
            }
        }
        let (nf, ns) = (fused.map(\.count).reduce(0, +), separate.map(\.count).reduce(0, +))
        #expect(nf >= 4 && nf < ns, "the test wants kinks, some silent: \(nf) fused, \(ns) separate")
        try expectSameIntegral(model, w, v, x)
    }

    /// The fused breakpoints, the same bits on one thread and two (9 rows: several blocks).
    @Test func sameBreakpointsOnOneAndTwoThreads() throws {
        let model = try LayerSegmentBreakpointTests.network(LayerSegmentBreakpointTests.leakyPools)
        let w = model.initialParameters(seed: 131)
        let v = randomVector(model.parameterCount, seed: 132).map { 0.5 * $0 }
        let x = randomMatrix(rows: 9, cols: model.inputDim, seed: 133)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var prints: [[UInt64]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            prints.append(model.segmentBreakpoints(start: w, delta: v, x).flatMap { $0.map(\.bitPattern) + [0] })
        }
        #expect(prints[0] == prints[1], "1 and 2 threads differ")
    }

    /// `J̄` (and its JVP with Δw) on the fused search's pieces against the separate search's, and
    /// `J̄Δw` against `f(w + Δw) − f(w)`.
    func expectSameIntegral(_ model: LayerNetwork, _ w: [Double], _ v: [Double], _ x: Matrix,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let degree = try #require(model.piecewiseJacobianDegree)
        let rule = GaussLegendre(nodes: (degree + 2) / 2)
        func nodes(_ breaks: [[Double]]) -> [[(t: Double, weight: Double)]] {
            breaks.map { cuts in
                let ends = [0] + cuts + [1]
                return (0..<(ends.count - 1)).flatMap { p in
                    zip(rule.nodes, rule.weights).map { (t: ends[p] + (ends[p + 1] - ends[p]) * $0, weight: (ends[p + 1] - ends[p]) * $1) }
                }
            }
        }
        let fused = model.segmentIntegratedJacobians(start: w, delta: v, x, nodes: nodes(model.segmentBreakpoints(start: w, delta: v, x)), tangents: [v])
        let separate = model.segmentIntegratedJacobians(start: w, delta: v, x,
                                                        nodes: nodes(model.segmentBreakpoints(start: w, delta: v, x, fusingRectifiedPools: false)),
                                                        tangents: [v])
        let e = relativeError(fused.features.signals[0].data, separate.features.signals[0].data)
        #expect(e <= Self.samePieces, "J̄ on the fused pieces against the separate ones: \(e)", sourceLocation: sourceLocation)
        var end = w
        Vec.axpy(1, v, &end)
        let change = model.forward(end, x) - model.forward(w, x)
        let ftc = relativeError(fused.tangents[0].data, change.data)
        #expect(ftc <= Self.fundamentalTheorem, "J̄Δw against the change of f: \(ftc)", sourceLocation: sourceLocation)
    }
}
