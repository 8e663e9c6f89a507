import Foundation
import Testing
import PKNetworks
import PKNumerics

/// `LayerNetwork.segmentIntegratedJacobians` (path-kernel math §1.1, "Layer networks": what the
/// exact routes take for a kinked query, its Jacobian rows summed over its own nodes): against
/// the per-node rows it replaces (`segmentFeatures` then `weightedRowSums`, the former route, kept
/// as the oracle), against a composite Gauss–Legendre rule on the pieces between independently
/// found breakpoints, against the fundamental theorem of calculus, and the same bits on one
/// thread and two. Networks: a relu CNN with max pooling, max pooling before a leaky relu, and a
/// residual relu block.
@Suite("Integrated Jacobian rows of layer networks along a segment")
struct LayerSegmentIntegralTests {
    /// Against the per-node rows summed afterwards: the same Jacobians (up to the ≤ 1e-15 by
    /// which a row can depend on its batch) and the same weighted sums, relative to the largest
    /// entry.
    static let perNodeRows = 1e-13
    /// Against the composite rule (8 panels of 4 nodes per piece, explicit Jacobians) on the
    /// pieces between the reference breakpoints (bisected on the pattern to 1e-13): a breakpoint
    /// off by δ costs |jump|·δ, plus round-off.
    static let composite = 1e-10
    /// `Σ_r J̄_r Δw` against `f(w + Δw) − f(w)`: round-off of sums of a few hundred terms.
    static let fundamentalTheorem = 1e-12

    static let networks = [LayerSegmentBreakpointTests.cnn, LayerSegmentBreakpointTests.poolFirst, LayerSegmentBreakpointTests.residual]

    /// Each row's nodes: the exact rule (⌈D/2⌉ Gauss–Legendre nodes) on every piece between its
    /// breakpoints, as the analyzer lays them out.
    static func nodes(_ model: LayerNetwork, _ w: [Double], _ v: [Double], _ x: Matrix) throws -> [[(t: Double, weight: Double)]] {
        let degree = try #require(model.piecewiseJacobianDegree)
        let rule = GaussLegendre(nodes: (degree + 2) / 2)
        return model.segmentBreakpoints(start: w, delta: v, x).map { cuts in
            let ends = [0] + cuts + [1]
            return (0..<(ends.count - 1)).flatMap { p in
                zip(rule.nodes, rule.weights).map { (t: ends[p] + (ends[p + 1] - ends[p]) * $0, weight: (ends[p + 1] - ends[p]) * $1) }
            }
        }
    }

    static func problem(_ json: String, seed: UInt64) throws -> (LayerNetwork, w: [Double], v: [Double], u: [Double], x: Matrix) {
        let model = try LayerSegmentBreakpointTests.network(json)
        let w = model.initialParameters(seed: seed)
        let v = randomVector(model.parameterCount, seed: seed + 1).map { 0.5 * $0 }
        let u = randomVector(model.parameterCount, seed: seed + 2)
        let x = randomMatrix(rows: 4, cols: model.inputDim, seed: seed + 3)
        return (model, w, v, u, x)
    }

    /// The integrated rows and their JVPs equal the per-node rows summed with the nodes' weights,
    /// and the composite rule through the reference breakpoints; `J̄Δw` closes the change of f.
    @Test(arguments: networks)
    func integratedRowsAreTheIntegral(json: String) throws {
        let (model, w, v, u, x) = try Self.problem(json, seed: 81)
        let nodes = try Self.nodes(model, w, v, x)
        #expect(nodes.contains { $0.count > nodes.map(\.count).min()! } || nodes.allSatisfy { $0.count > 2 },
                "the test wants kinks: \(nodes.map(\.count)) nodes per row")
        let n = x.rows, C = model.outputDim, P = model.parameterCount
        let (f, jvps) = model.segmentIntegratedJacobians(start: w, delta: v, x, nodes: nodes, tangents: [v, u])
        #expect(f.count == n && f.signals[0].rows == C * n && f.signals[0].cols == P && jvps.count == 2)

        // Oracle 1: every node's rows (`segmentFeatures`), summed per row with the weights.
        let flat = nodes.enumerated().flatMap { r, list in list.map { (row: r, node: $0) } }
        let rows = model.segmentFeatures(start: w, delta: v, x.rows(at: flat.map(\.row)), at: flat.map(\.node.t), tangents: [v, u])
        var groups = [[(row: Int, weight: Double)]](repeating: [], count: n)
        var jvpSums = [Matrix](repeating: Matrix(rows: n, cols: C), count: 2)
        for (k, entry) in flat.enumerated() {
            groups[entry.row].append((k, entry.node.weight))
            for j in 0..<2 { for c in 0..<C { jvpSums[j][entry.row, c] += entry.node.weight * rows.outputTangents[j][k, c] } }
        }
        let summed = rows.weightedRowSums(groups)
        let perNode = relativeError(f.signals[0].data, summed.signals[0].data)
        #expect(perNode <= Self.perNodeRows, "against the per-node rows: \(perNode)")
        for j in 0..<2 { #expect(relativeError(jvps[j].data, jvpSums[j].data) <= Self.perNodeRows, "JVP sums of tangent \(j)") }

        // Oracle 2: the composite rule on the pieces between the reference breakpoints.
        let panel = GaussLegendre(nodes: 4), panels = 8
        for r in 0..<n {
            let xr = x.rows(r..<(r + 1))
            let cuts = [0] + LayerSegmentBreakpointTests.referenceBreakpoints(model, w, v, xr) + [1]
            var jbar = [Double](repeating: 0, count: C * P)
            for p in 0..<(cuts.count - 1) {
                let h = (cuts[p + 1] - cuts[p]) / Double(panels)
                for k in 0..<panels {
                    for (s, o) in zip(panel.nodes, panel.weights) {
                        var wt = w
                        Vec.axpy(cuts[p] + h * (Double(k) + s), v, &wt)
                        let j = model.jacobians(wt, xr)
                        for i in jbar.indices { jbar[i] += h * o * j.data[i] }
                    }
                }
            }
            let mine = (0..<C).flatMap { c in f.signals[0].row(c * n + r) }
            let e = relativeError(mine, jbar)
            #expect(e <= Self.composite, "row \(r) against the composite rule: \(e)")
        }

        // The fundamental theorem of calculus: Σ_k ω_k J(t_k)Δw = f(w + Δw) − f(w).
        var end = w
        Vec.axpy(1, v, &end)
        let change = model.forward(end, x) - model.forward(w, x)
        let ftc = relativeError(jvps[0].data, change.data)
        #expect(ftc <= Self.fundamentalTheorem, "J̄Δw against the change of f: \(ftc)")
    }

    /// Float32 rows at float32 round-off of the float64 ones.
    @Test func float32RowsAtTheirRoundOff() throws {
        let (model, w, v, u, x) = try Self.problem(LayerSegmentBreakpointTests.residual, seed: 91)
        let nodes = try Self.nodes(model, w, v, x)
        let (f64, j64) = model.segmentIntegratedJacobians(start: w, delta: v, x, nodes: nodes, tangents: [u])
        let (f32, j32) = model.segmentIntegratedJacobians(start: w, delta: v, x, nodes: nodes, as: Float.self, tangents: [u])
        let e = relativeError(f32.signals[0].data.map(Double.init), f64.signals[0].data)
        #expect(e <= LayerSegmentBreakpointTests.floatFeatures && e > 0, "float32 rows: \(e)")
        #expect(relativeError(j32[0].data, j64[0].data) <= LayerSegmentBreakpointTests.floatFeatures)
    }

    /// Same rows, same bits on one thread and two (9 rows: several blocks).
    @Test func sameBitsOnOneAndTwoThreads() throws {
        let model = try LayerSegmentBreakpointTests.network(LayerSegmentBreakpointTests.residual)
        let w = model.initialParameters(seed: 95)
        let v = randomVector(model.parameterCount, seed: 96).map { 0.5 * $0 }
        let x = randomMatrix(rows: 9, cols: model.inputDim, seed: 97)
        let nodes = try Self.nodes(model, w, v, x)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var prints: [[UInt64]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let (f, jvps) = model.segmentIntegratedJacobians(start: w, delta: v, x, nodes: nodes, tangents: [v])
            prints.append(f.signals[0].data.map(\.bitPattern) + jvps[0].data.map(\.bitPattern))
        }
        #expect(prints[0] == prints[1], "1 and 2 threads differ")
    }
}
