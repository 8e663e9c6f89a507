import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// Exact quadrature through each query's kinks for layer networks (path-kernel math §1.1, "Layer
/// networks") on the (S)GD route: a relu CNN with max pooling and a residual relu net, the path
/// kernel against an independent oracle (breakpoints bisected on the network's own pattern, a
/// composite Gauss–Legendre rule on every piece, explicit Jacobians), the reconstruction at
/// round-off where q = 4 is not, float32 at its round-off, the same bits on one thread and two,
/// and where it does not apply.
@Suite("Exact quadrature for piecewise-linear layer networks", .serialized)
struct LayerExactQuadratureTests {
    /// Two routes to the same integral of a piecewise polynomial, each exact up to round-off.
    static let oracleTolerance = 1e-10
    /// The relative reconstruction residual of exact quadrature in float64.
    static let roundOff = 1e-10
    /// q = 4 over each whole step must leave at least this (the runs cross kinks).
    static let gaussResidual = 1e-6
    /// The relative reconstruction residual in float32: float32 round-off (6e-8) over the
    /// features' sums and the steps.
    static let f32RoundOff = 1e-5

    /// A stem conv, an identity residual block with a relu inside, relu, max pool, dense (D = 4).
    static let residualRelu = #"""
    {"kind": "sequential", "input": [1, 4, 4], "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
      {"kind": "residual", "block": {"kind": "sequential", "layers": [
        {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "relu"},
        {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}]}},
      {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#

    static func run(_ model: String, train: Int = 12, test: Int = 4, steps: Int = 4, lr: Double = 1.0, momentum: Double = 0) throws -> String {
        try recordTrace(config(name: "lexact", data: #"{"kind":"teacher","train":\#(train),"test":\#(test),"inputDim":16,"outputDim":2}"#,
                               model: model, loss: .mse, optimizer: OptimizerSpec(kind: .sgd, learningRate: lr, momentum: momentum),
                               steps: steps, batchSize: 4))
    }

    /// `K^p(x, x_i) = Σ_t (η_t/|B_t|) [i ∈ B_t] J̄_t(x) J(x_i; w_t)ᵀ` with `J̄_t` by a composite
    /// Gauss–Legendre rule (8 panels of 4 nodes) on every piece between the reference breakpoints
    /// (`LayerSegmentBreakpointTests`' search: the pattern sampled, changes bisected), Jacobians
    /// explicit; the analysis's kernel and reconstruction against it, and q = 4 far from both.
    @Test(arguments: [LayerNetworkFixtures.reluCNN, LayerExactQuadratureTests.residualRelu])
    func pathKernelAgainstCompositeGaussOracle(model json: String) throws {
        let path = try Self.run(json)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let model = run.model, C = model.outputDim, T = run.steps, n = run.trainX.rows, P = model.parameterCount
        let xq = Matrix(rows: run.testX.rows + n, cols: run.trainX.cols, data: run.testX.data + run.trainX.data)
        let nQ = xq.rows
        let w = try (0...T).map { try reader.checkpoint(step: $0) }
        let panels = 8
        var oracle = Matrix(rows: nQ * C, cols: n * C)
        var crossings = 0
        for t in 0..<T {
            let delta = zip(w[t + 1], w[t]).map { $0 - $1 }
            let batch = run.stepRecords[t].batch.map(Int.init)
            let jb = model.jacobians(w[t], run.trainX.rows(at: batch))
            let scale = run.stepRecords[t].learningRate / Double(batch.count)
            for q in 0..<nQ {
                let x = xq.rows(q..<(q + 1))
                let cuts = [0] + referenceBreakpoints(model, w[t], delta, x) + [1]
                crossings += cuts.count - 2
                let jbar = compositePathJacobian(model, start: w[t], delta: delta, x, cuts: cuts, panels: panels)
                let k = Matrix.product(jbar, jb, transposeB: true)
                for (b, i) in batch.enumerated() {
                    for c in 0..<C { for kk in 0..<C { oracle[q * C + c, i * C + kk] += scale * k[c, b * C + kk] } }
                }
            }
        }
        #expect(crossings >= nQ / 2, "the test wants kinks: \(crossings) crossings over \(nQ) queries and \(T) steps")
        let (result, kernel) = try PathAnalyzer(settings: AnalysisSettings()).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(result.settings.quadrature == "exact")
        let e = try #require(result.reconstruction.exact)
        #expect(e.kinkedShare > 0 && e.nodesPerPiece == PiecewiseNodes.nodesPerPiece(model))
        let kernelError = ExactQuadratureTests.relativeError(kernel.data, oracle.data)
        #expect(kernelError <= Self.oracleTolerance, "K^p against the oracle: \(kernelError)")
        for res in [result.reconstruction.test!, result.reconstruction.train!] {
            #expect(res.relativeResidual <= Self.roundOff, "exact quadrature: residual \(res.relativeResidual)")
        }
        var gauss = AnalysisSettings()
        gauss.quadrature = .gauss
        let (g, gk) = try PathAnalyzer(settings: gauss).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(g.reconstruction.exact == nil)
        #expect(g.reconstruction.test!.relativeResidual >= Self.gaussResidual, "q = 4: \(g.reconstruction.test!.relativeResidual)")
        #expect(ExactQuadratureTests.relativeError(gk.data, oracle.data) > 1e3 * Self.oracleTolerance)
    }

    /// The backward route (SGD momentum) of a relu CNN and of a residual relu net with exact
    /// quadrature, every kinked query's rows summed over its own nodes
    /// (`LayerNetwork.segmentIntegratedJacobians`): K^p against the two-time double sum through
    /// each query's reference breakpoints (composite Gauss–Legendre, 2 panels of 4 nodes, on every
    /// piece) and the reconstruction at round-off; q = 4 is far off.
    @Test(arguments: [LayerNetworkFixtures.reluCNN, LayerExactQuadratureTests.residualRelu])
    func backwardKernelAgainstTheDoubleSum(model json: String) throws {
        let spec = OptimizerSpec(kind: .sgd, learningRate: 0.5, momentum: 0.9)
        let path = try Self.run(json, steps: 3, lr: 0.5, momentum: 0.9)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        var crossings = 0
        let (oracle, _) = try ExactQuadratureRoutesTests.doubleSum(spec, reader: reader, queries: run.testX) { _, q, w, delta in
            // This suite's 1024-sample breakpoint search (256 samples miss close pairs of
            // crossings of the residual net's degree-3 switching functions: 1.5e-4 off).
            let x = run.testX.rows(q..<(q + 1))
            let cuts = [0] + referenceBreakpoints(run.model, w, delta, x) + [1]
            crossings += cuts.count - 2
            return compositePathJacobian(run.model, start: w, delta: delta, x, cuts: cuts, panels: 2)
        }
        #expect(crossings >= run.testX.rows / 2, "the test wants kinks: \(crossings) crossings")
        var settings = AnalysisSettings(queries: .test, kernel: .full)
        settings.scope = .exact
        settings.quadrature = .exact
        let (result, kp) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(result.settings.quadrature == "exact" && (result.reconstruction.exact?.kinkedShare ?? 0) > 0)
        let error = ExactQuadratureTests.relativeError(kp.data, oracle.data)
        #expect(error <= Self.oracleTolerance, "K^p against the double sum: \(error)")
        #expect(result.reconstruction.test!.relativeResidual <= Self.roundOff, "residual \(result.reconstruction.test!.relativeResidual)")
        settings.quadrature = .gauss
        let (_, gk) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(ExactQuadratureTests.relativeError(gk.data, oracle.data) > 1e3 * Self.oracleTolerance)
    }

    /// The breakpoints of one query by its pattern: 1024 samples, each change bisected to 1e-13
    /// (both halves wherever their ends differ: several changes in one sample interval are found).
    func referenceBreakpoints(_ model: any Network, _ w: [Double], _ v: [Double], _ x: Matrix) -> [Double] {
        func pattern(_ t: Double) -> [Double] {
            var wt = w
            Vec.axpy(t, v, &wt)
            return model.kinkPattern(wt, x)
        }
        let samples = 1024
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

    /// Same trace, same bits on one thread and two (40 queries: several row blocks of the
    /// breakpoint search and of the per-query features), in both precisions; float32 at its own
    /// round-off.
    @Test(arguments: [AnalysisSettings.Precision.f64, .f32])
    func deterministicAndAtRoundOff(precision: AnalysisSettings.Precision) throws {
        let path = try Self.run(Self.residualRelu, train: 24, test: 16, steps: 3)
        var settings = AnalysisSettings()
        settings.precision = precision
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        var prints: [[UInt64]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let (r, k) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
            #expect(r.settings.quadrature == "exact")
            #expect((r.reconstruction.exact?.kinkedShare ?? 0) > 0, "the test wants per-query nodes")
            let residual = r.reconstruction.test!.relativeResidual
            #expect(residual <= (precision == .f64 ? Self.roundOff : Self.f32RoundOff), "\(precision): residual \(residual)")
            prints.append(try DeterminismTests.fingerprint(r, k))
        }
        #expect(prints[0] == prints[1], "1 and 2 threads differ")
    }

    /// On the backward route (here SGD momentum) a layer network takes exact quadrature only when
    /// asked for (about 10× q = 4 on a CNN): by default the Gauss rule with a note that says how to
    /// ask; asked, the residual is at round-off where q = 4 is not.
    @Test func backwardRouteTakesExactOnlyWhenAsked() throws {
        let path = try Self.run(Self.residualRelu, steps: 3, lr: 0.5, momentum: 0.9)
        let byDefault = try analyze(path)
        #expect(byDefault.settings.quadrature == nil && byDefault.reconstruction.exact == nil)
        #expect(byDefault.run.notes.contains { $0.contains("--quadrature exact to take it") }, "\(byDefault.run.notes)")
        #expect(byDefault.reconstruction.test!.relativeResidual >= Self.gaussResidual)
        var asked = AnalysisSettings()
        asked.quadrature = .exact
        let exact = try analyze(path, asked)
        #expect(exact.settings.quadrature == "exact" && exact.reconstruction.exact != nil)
        #expect(exact.reconstruction.test!.relativeResidual <= Self.roundOff)
        #expect(!exact.run.notes.contains { $0.contains("quadrature") })
    }

    /// A relu network with layer norm is not piecewise polynomial along a step: the Gauss rule
    /// with a note saying why, whether exact quadrature was asked for or is the default.
    @Test func layerNormKeepsTheGaussRule() throws {
        let path = try Self.run(#"""
        {"kind": "sequential", "input": [16], "layers": [
          {"kind": "dense", "out": 4}, {"kind": "layernorm"}, {"kind": "relu"}, {"kind": "dense", "out": 2}]}
        """#, steps: 2)
        var asked = AnalysisSettings()
        asked.quadrature = .exact
        for settings in [AnalysisSettings(), asked] {
            let r = try analyze(path, settings)
            #expect(r.settings.quadrature == nil && r.reconstruction.exact == nil)
            #expect(r.run.notes.contains { $0.contains("piecewise polynomial along a step") }, "\(r.run.notes)")
        }
    }
}
