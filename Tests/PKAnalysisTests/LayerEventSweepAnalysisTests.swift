import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// Exact quadrature of layer networks by the event sweep in the analyzer (path-kernel math §1.1,
/// "The event sweep"): the same K^p and reconstruction as the node route it replaces (each
/// query's breakpoints, ⌈D/2⌉ Gauss nodes per piece: `PathAnalyzer.nodeRouteForLayerNetworks`), on
/// the forward route (SGD) and the backward route (SGD momentum), the residual at round-off, the
/// report's counts, and shards merging to the single run.
@Suite("Exact quadrature of layer networks by the event sweep (analyzer)", .serialized)
struct LayerEventSweepAnalysisTests {
    /// The sweep's analysis against the node route's, relative to the largest kernel entry: two
    /// exact routes to the same integrals, round-off of sums over the steps.
    static let againstNodeRoute = 1e-12
    /// The relative reconstruction residual of exact quadrature in float64.
    static let roundOff = 1e-13

    /// A relu CNN with two fused relu → max pool stages (D = 3): kinks on most (query, step) pairs.
    static let cnn = #"""
    {"kind": "sequential", "input": [1, 4, 4], "layers": [
      {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#

    /// The analysis with the sweep and with the node route.
    static func bothRoutes(_ path: String, _ settings: AnalysisSettings) throws -> (sweep: (AnalysisResult, Matrix), nodes: (AnalysisResult, Matrix)) {
        let sweep = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
        var nodeRoute = PathAnalyzer(settings: settings)
        nodeRoute.nodeRouteForLayerNetworks = true
        let nodes = try nodeRoute.analyzeWithKernel(reader: TraceReader.open(path))
        return (sweep, nodes)
    }

    @Test(arguments: [(0.0, 1.0), (0.9, 0.5)])
    func sameAnalysisAsTheNodeRoute(momentum: Double, lr: Double) throws {
        let path = try LayerExactQuadratureTests.run(Self.cnn, steps: 4, lr: lr, momentum: momentum)
        var settings = AnalysisSettings(queries: .test, kernel: .full)
        settings.scope = .exact
        settings.quadrature = .exact
        let (sweep, nodes) = try Self.bothRoutes(path, settings)
        let label = momentum > 0 ? "momentum" : "sgd"
        let e = ExactQuadratureTests.relativeError(sweep.1.data, nodes.1.data)
        #expect(e <= Self.againstNodeRoute, "\(label): K^p against the node route: \(e)")
        let rs = try #require(sweep.0.reconstruction.test), rn = try #require(nodes.0.reconstruction.test)
        #expect(rs.relativeResidual <= Self.roundOff, "\(label): residual \(rs.relativeResidual)")
        #expect(abs(rs.relativeResidual - rn.relativeResidual) <= Self.roundOff)
        let es = try #require(sweep.0.reconstruction.exact), en = try #require(nodes.0.reconstruction.exact)
        #expect(es.sweepEventsPerQueryStep != nil && en.sweepEventsPerQueryStep == nil)
        #expect(es.kinkedShare > 0.2, "\(label): the test wants kinks: \(es.kinkedShare)")
        #expect(es.nodesPerQueryStep == 0 && en.nodesPerQueryStep > 0)
        // The sweep's J-changing events are the fused search's breakpoints, up to coincident ones.
        #expect(abs(es.kinkedShare - en.kinkedShare) <= 0.05, "\(label): kinked share \(es.kinkedShare) vs \(en.kinkedShare)")
    }

    /// Shards (each a range of query rows) merge to the single run, with the sweep.
    @Test func shardsMergeToTheSingleRun() throws {
        let path = try LayerExactQuadratureTests.run(Self.cnn, steps: 3, lr: 0.5, momentum: 0.9)
        var settings = AnalysisSettings()
        settings.quadrature = .exact
        try ShardMergeTests.expectSame(try analyze(path, settings), try ShardMergeTests.sharded(path, settings, shards: 3), "relu CNN, momentum, sweep")
    }
}

extension LayerEventSweepAnalysisTests {
    /// On the backward route (SGD momentum) a layer network the sweep covers takes exact
    /// quadrature by default (the sweep, no note); one with a residual block keeps the Gauss rule
    /// with the note (`LayerExactQuadratureTests.backwardRouteTakesExactOnlyWhenAsked`).
    @Test func exactByDefaultOnTheBackwardRoute() throws {
        let path = try LayerExactQuadratureTests.run(Self.cnn, steps: 3, lr: 0.5, momentum: 0.9)
        let r = try analyze(path)
        #expect(r.settings.quadrature == "exact" && r.reconstruction.exact?.sweepEventsPerQueryStep != nil)
        #expect(!r.run.notes.contains { $0.contains("quadrature") }, "\(r.run.notes)")
        #expect(r.reconstruction.test!.relativeResidual <= Self.roundOff)
    }
}

extension LayerEventSweepAnalysisTests {
    /// The JVP route (built by hand on a momentum trace, as `ExactQuadratureRoutesTests
    /// .jvpRouteAtRoundOff`) takes the sweep's JVPs: the reconstruction at round-off, as the node
    /// route's, where q = 4 is not.
    @Test func jvpRouteTakesTheSweep() throws {
        let path = try LayerExactQuadratureTests.run(Self.cnn, steps: 3, lr: 0.5, momentum: 0.9)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let context = try AnalysisContext(settings: AnalysisSettings(), run: run)
        let optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors)
        func residual(_ exact: Bool, nodeRoute: Bool = false) throws -> (Double, SegmentQuadrature) {
            var weights = try WeightPath(run: run, reader: TraceReader.open(path))
            var route = JVPRoute(context: context, form: optimizer.kernelForm)
            var quadrature = SegmentQuadrature(settings: AnalysisSettings(), steps: run.steps, model: run.model, exact: exact,
                                               nodeRoute: nodeRoute)
            var acc = KernelAccumulators(zeroFor: context)
            let w0 = weights.current
            while let seg = try weights.next() {
                let batch = seg.record.batch.map(Int.init)
                let nodes = quadrature.nodes(model: run.model, start: seg.start, delta: seg.delta, x: context.xq)
                route.consume(RouteSegment(segment: seg, delta: seg.delta, batch: batch, xb: run.trainX.rows(at: batch),
                                           yb: run.trainY.rows(at: batch), nodes: nodes.shared, piecewise: nodes.piecewise), into: &acc)
            }
            let change = run.model.forward(weights.current, context.xq) - run.model.forward(w0, context.xq)
            return (ExactQuadratureTests.relativeError(acc.jvpSum.data, change.data), quadrature)
        }
        let (e, q) = try residual(true), (n, _) = try residual(true, nodeRoute: true), (g, _) = try residual(false)
        #expect(q.sweep != nil && q.kinkedPairs > 0, "the sweep, with kinks")
        #expect(e <= Self.roundOff, "sweep: \(e)")
        #expect(n <= Self.roundOff, "node route: \(n)")
        #expect(g >= 1e-6, "q = 4: \(g)")
    }
}
