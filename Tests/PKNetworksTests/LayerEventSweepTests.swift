import Foundation
import Testing
import PKNetworks
import PKNumerics

/// `LayerNetwork.segmentSweptJacobians` (path-kernel math §1.1, "The event sweep": exact
/// `J̄ = ∫₀¹ J(x; w + tΔw) dt` from the first pattern's polynomials and one local correction per
/// event): against an independent implementation, the node route on the pieces between the
/// unfused breakpoints (`segmentBreakpoints(…, fusingRectifiedPools: false)`, ⌈D/2⌉ Gauss nodes
/// per piece, `segmentIntegratedJacobians`: every layer's own search, full Jacobians at each
/// node), against the fundamental theorem of calculus, on degenerate inputs (a zero background:
/// identical units crossing at the same t; units exactly at 0 at t = 0; Δw = 0), and the same
/// bits on one thread and two. Tiny networks (debug builds).
@Suite("Exact integrated Jacobians of layer networks by the event sweep")
struct LayerEventSweepTests {
    /// Against the node route, relative to the largest |J̄|: both exact in exact arithmetic; the
    /// node route's breakpoints and the sweep's event times agree to ulps of t (a piece's end off
    /// by δ costs δ·|jump|), plus the round-off of sums over a few pieces.
    static let againstNodes = 1e-12
    /// `J̄Δw` against `f(w + Δw) − f(w)`, relative to the largest change: round-off.
    static let fundamentalTheorem = 1e-12
    /// Float32 rows against the float64 ones: one rounding to float32 of each entry.
    static let float32 = 1e-6

    /// conv 3×3 same (3), relu, max pool 2 (fused), conv 3×3 same (4), relu, max pool 2 (fused),
    /// flatten, dense 3: fmnist-cnn's kinds, D = 3.
    static let fusedCNN = #"""
    {"kind": "sequential", "input": [1, 8, 8], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "conv2d", "out": 4, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "flatten"}, {"kind": "dense", "out": 3}]}
    """#
    /// Max pool straight after a conv (unfused), relu after it, leaky relu α = 0.1, two dense: D = 3.
    static let unfusedPool = #"""
    {"kind": "sequential", "input": [2, 6, 6], "sigmaW": 1.5, "sigmaB": 0.5, "leakySlope": 0.1, "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "relu"}, {"kind": "flatten"}, {"kind": "dense", "out": 5}, {"kind": "leaky-relu"},
      {"kind": "dense", "out": 2}]}
    """#
    /// A strided conv with explicit padding, a valid 2×2 conv, an overlapping max pool (3×3,
    /// stride 2, padding 1) after a leaky relu α = 0.1 (fused), dense: D = 3.
    static let stridedPadded = #"""
    {"kind": "sequential", "input": [1, 8, 8], "sigmaW": 1.5, "sigmaB": 0.5, "leakySlope": 0.1, "layers": [
      {"kind": "conv2d", "out": 3, "kernel": 3, "stride": 2, "padding": 1}, {"kind": "relu"},
      {"kind": "conv2d", "out": 2, "kernel": 2}, {"kind": "leaky-relu"},
      {"kind": "maxpool2d", "kernel": 3, "stride": 2, "padding": 1}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// Average pooling, an identity activation, and a max pool with stride 1 (overlapping 2×2
    /// windows) after a relu: D = 3, standard parameterization.
    static let avgPool = #"""
    {"kind": "sequential", "input": [1, 8, 8], "sigmaW": 1.5, "sigmaB": 0.5, "parameterization": "standard", "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "avgpool2d", "kernel": 2},
      {"kind": "identity"}, {"kind": "conv2d", "out": 3, "kernel": 3}, {"kind": "relu"},
      {"kind": "maxpool2d", "kernel": 2, "stride": 1}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// Dense only, four layers: D = 4, watched polynomials of degree 3 (bracketing, not closed forms).
    static let deepDense = #"""
    {"kind": "sequential", "input": [5], "sigmaW": 1.5, "sigmaB": 0.5, "layers": [
      {"kind": "dense", "out": 8}, {"kind": "relu"}, {"kind": "dense", "out": 8}, {"kind": "relu"},
      {"kind": "dense", "out": 8}, {"kind": "relu"}, {"kind": "dense", "out": 3}]}
    """#

    static let networks = [fusedCNN, unfusedPool, stridedPadded, avgPool, deepDense,
                           LayerSegmentBreakpointTests.cnn, LayerSegmentBreakpointTests.poolFirst,
                           LayerSegmentBreakpointTests.overlappingPool, LayerSegmentBreakpointTests.leakyPools]

    /// The node route, independent of the sweep: every row's unfused breakpoints (each layer's own
    /// search, silent ones included), ⌈D/2⌉ Gauss–Legendre nodes per piece, the full Jacobian
    /// rows at every node summed (`segmentIntegratedJacobians`).
    static func nodeRoute(_ model: LayerNetwork, _ w: [Double], _ v: [Double], _ x: Matrix, tangents: [[Double]])
        throws -> (rows: [Double], jvps: [Matrix], breakpoints: [[Double]]) {
        let degree = try #require(model.piecewiseJacobianDegree)
        let rule = GaussLegendre(nodes: (degree + 2) / 2)
        let breaks = model.segmentBreakpoints(start: w, delta: v, x, fusingRectifiedPools: false)
        let nodes = breaks.map { cuts in
            let ends = [0] + cuts + [1]
            return (0..<(ends.count - 1)).flatMap { p in
                zip(rule.nodes, rule.weights).map { (t: ends[p] + (ends[p + 1] - ends[p]) * $0, weight: (ends[p + 1] - ends[p]) * $1) }
            }
        }
        let (f, jvps) = model.segmentIntegratedJacobians(start: w, delta: v, x, nodes: nodes, tangents: tangents)
        return (f.signals[0].data, jvps, breaks)
    }

    static func problem(_ json: String, seed: UInt64, rows: Int = 3, scale: Double = 0.5)
        throws -> (LayerNetwork, w: [Double], v: [Double], u: [Double], x: Matrix) {
        let model = try LayerSegmentBreakpointTests.network(json)
        let w = model.initialParameters(seed: seed)
        let v = randomVector(model.parameterCount, seed: seed + 1).map { scale * $0 }
        let u = randomVector(model.parameterCount, seed: seed + 2)
        let x = randomMatrix(rows: rows, cols: model.inputDim, seed: seed + 3)
        return (model, w, v, u, x)
    }

    /// Checks the sweep against the node route and the fundamental theorem; returns the sweep's counts.
    @discardableResult
    static func check(_ model: LayerNetwork, _ w: [Double], _ v: [Double], _ u: [Double], _ x: Matrix,
                      _ label: String) throws -> [EventSweepCounts] {
        #expect(model.eventSweepEligible, "\(label): not eligible")
        let sweep = try #require(model.segmentSweptJacobians(start: w, delta: v, x, tangents: [v, u]))
        let n = x.rows, C = model.outputDim, P = model.parameterCount
        #expect(sweep.features.count == n && sweep.features.signals[0].rows == C * n && sweep.features.signals[0].cols == P)
        #expect(sweep.tangents.count == 2 && sweep.counts.count == n)
        let oracle = try nodeRoute(model, w, v, x, tangents: [v, u])
        let e = relativeError(sweep.features.signals[0].data, oracle.rows)
        #expect(e <= againstNodes, "\(label): against the node route \(e); counts \(sweep.counts), breakpoints \(oracle.breakpoints.map(\.count))")
        for j in 0..<2 {
            let ej = relativeError(sweep.tangents[j].data, oracle.jvps[j].data)
            #expect(ej <= againstNodes, "\(label): JVP \(j) against the node route \(ej)")
        }
        var end = w
        Vec.axpy(1, v, &end)
        let change = model.forward(end, x) - model.forward(w, x)
        let ftc = relativeError(sweep.tangents[0].data, change.data)
        #expect(ftc <= fundamentalTheorem, "\(label): J̄Δw against the change of f: \(ftc)")
        // Every J-changing event is a breakpoint of the unfused search (which also has the silent ones).
        for r in 0..<n { #expect(sweep.counts[r].breakpoints <= oracle.breakpoints[r].count, "\(label): row \(r) \(sweep.counts[r]) vs \(oracle.breakpoints[r].count)") }
        return sweep.counts
    }

    @Test(arguments: networks)
    func agreesWithTheNodeRoute(json: String) throws {
        let (model, w, v, u, x) = try Self.problem(json, seed: 211)
        let counts = try Self.check(model, w, v, u, x, String(json.prefix(60)))
        #expect(counts.contains { $0.events > 0 }, "the test wants events: \(counts)")
    }

    /// A long step (many events per row, several of them simultaneous in the fused CNN).
    @Test func manyEvents() throws {
        let (model, w, v, u, x) = try Self.problem(Self.fusedCNN, seed: 223, rows: 2, scale: 2)
        let counts = try Self.check(model, w, v, u, x, "fusedCNN, ‖Δw‖ ≈ 2‖w‖")
        #expect(counts.allSatisfy { $0.events >= 10 }, "the test wants many events: \(counts)")
    }

    /// A zero background (identical units: the same polynomial, the same roots, simultaneous
    /// events) with the first conv's biases 0 at w (the background's pre-activations are exactly
    /// 0 at t = 0, `t·s_b·Δb` after: the state is read just after 0).
    @Test(arguments: [fusedCNN, stridedPadded, avgPool])
    func zeroBackground(json: String) throws {
        var (model, w, v, u, x) = try Self.problem(json, seed: 227, rows: 2)
        for i in x.data.indices where (i % model.inputDim) % 8 < 5 { x.data[i] = 0 }
        let layout = model.layout
        let bias = try #require(layout.first { $0.name == "0.bias" })
        for k in bias.offset..<(bias.offset + bias.count) { w[k] = 0 }
        let counts = try Self.check(model, w, v, u, x, "zero background")
        #expect(counts.contains { $0.events > 0 })
    }

    /// Δw = 0: no events, J̄ = J(w).
    @Test(arguments: [fusedCNN, deepDense])
    func zeroStep(json: String) throws {
        let (model, w, _, u, x) = try Self.problem(json, seed: 229)
        let v = [Double](repeating: 0, count: model.parameterCount)
        let sweep = try #require(model.segmentSweptJacobians(start: w, delta: v, x, tangents: [u]))
        let n = x.rows, C = model.outputDim, P = model.parameterCount
        #expect(sweep.counts.allSatisfy { $0 == EventSweepCounts() }, "\(sweep.counts)")
        for r in 0..<n {
            let j = model.jacobians(w, x.rows(r..<(r + 1)))
            var mine: [Double] = []
            for c in 0..<C { mine += sweep.features.signals[0].row(c * n + r) }
            let e = relativeError(mine, j.data)
            #expect(e <= Self.againstNodes, "row \(r): J̄ against J(w): \(e)")
        }
    }

    /// Same bits on one thread and two (9 rows: several blocks).
    @Test func sameBitsOnOneAndTwoThreads() throws {
        let (model, w, v, u, x) = try Self.problem(Self.fusedCNN, seed: 233, rows: 9)
        let hold = Parallel.holdThreadCount()
        defer { hold.release() }
        var prints: [[UInt64]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let s = try #require(model.segmentSweptJacobians(start: w, delta: v, x, tangents: [u]))
            prints.append(s.features.signals[0].data.map(\.bitPattern) + s.tangents[0].data.map(\.bitPattern))
        }
        #expect(prints[0] == prints[1], "1 and 2 threads differ")
    }

    /// Float32 rows are the float64 ones rounded.
    @Test func float32Rows() throws {
        let (model, w, v, u, x) = try Self.problem(Self.fusedCNN, seed: 239)
        let f64 = try #require(model.segmentSweptJacobians(start: w, delta: v, x, tangents: [u]))
        let f32 = try #require(model.segmentSweptJacobians(start: w, delta: v, x, as: Float.self, tangents: [u]))
        let e = relativeError(f32.features.signals[0].data.map(Double.init), f64.features.signals[0].data)
        #expect(e <= Self.float32 && e > 0, "float32 rows: \(e)")
        #expect(f32.tangents[0].data == f64.tangents[0].data, "the JVPs come from the float64 rows")
    }

    /// Networks the sweep does not cover: nil, so the caller keeps the node route.
    @Test func refusesResidualBlocks() throws {
        let model = try LayerSegmentBreakpointTests.network(LayerSegmentBreakpointTests.residual)
        #expect(!model.eventSweepEligible)
        let w = model.initialParameters(seed: 1)
        #expect(model.segmentSweptJacobians(start: w, delta: w, randomMatrix(rows: 1, cols: model.inputDim, seed: 2)) == nil)
    }

    /// NaN in the weights: no trap, NaN in the rows (as the node route gives).
    @Test func nanWeightsDoNotTrap() throws {
        let (model, w0, v, _, x) = try Self.problem(Self.fusedCNN, seed: 241)
        var w = w0
        w[3] = .nan
        let sweep = try #require(model.segmentSweptJacobians(start: w, delta: v, x))
        #expect(sweep.features.signals[0].data.contains { $0.isNaN })
        var v2 = v
        v2[5] = .infinity
        _ = model.segmentSweptJacobians(start: w0, delta: v2, x)
    }
}
