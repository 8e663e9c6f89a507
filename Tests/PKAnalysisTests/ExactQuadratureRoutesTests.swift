import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// Exact quadrature through each query's kinks (path-kernel math §1.1) on the routes other than
/// (S)GD's: the backward route of momentum, Nesterov, Adam, AdamW and RMSProp
/// (`accumulatePreconditioned`), momentum's window and the JVP route. Oracles: the two-time
/// kernel written out as a double sum (`PreconditionedKernelTests.handOptimizer`) with each query's
/// `J̄_t` by composite Gauss–Legendre between breakpoints found by bisection on the network's own
/// activation pattern (`ExactQuadratureTests.referenceBreakpoints`), explicit Jacobians; and for a
/// layer network hand-made per-query nodes, integrated by the same double sum.
@Suite("Exact quadrature on the momentum, Adam and JVP routes", .serialized)
struct ExactQuadratureRoutesTests {
    /// Reconstruction and kernel-form residuals of exact quadrature in float64, relative (the
    /// issue's target; measured 1e-15 to 1e-14 here).
    static let exactTolerance = 1e-10
    /// What q = 4 Gauss over each whole step must leave at least, so that the test bites.
    static let gaussAtLeast = 1e-6
    /// Float32 features, R and products (sums in float64): float32 round-off, ≈ 6e-8 per
    /// operation, grown over a few hundred terms.
    static let f32Tolerance = 1e-5
    /// The analyzer's K^p against the oracle's double sum: both exact up to round-off on sums of a
    /// few thousand O(1) products.
    static let oracleTolerance = 1e-11

    static let optimizers = [
        #"{"kind":"sgd","learningRate":1.0,"momentum":0.9}"#,
        #"{"kind":"sgd","learningRate":1.5,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":1.0,"momentum":0.9,"nesterov":true,"weightDecay":0.01,"clipNorm":2.0}"#,
        #"{"kind":"adam","learningRate":0.1,"weightDecay":0.02}"#,
        #"{"kind":"adamw","learningRate":0.1,"weightDecay":0.05,"beta1":0.8,"beta2":0.99}"#,
        #"{"kind":"rmsprop","learningRate":0.03,"momentum":0.7,"weightDecay":0.01}"#,
        #"{"kind":"rmsprop","learningRate":0.03,"alpha":0.9}"#,
    ]

    /// The reconstruction (and the kernel form) closes to round-off by default, where q = 4 does
    /// not; in float32 to float32 round-off. Momentum also on its window (`--momentum-tolerance`).
    @Test(arguments: optimizers)
    func reconstructionAtRoundOff(optimizer: String) throws {
        let path = try ExactQuadratureTests.run(steps: 5, optimizer: optimizer)
        let result = try analyze(path)
        #expect(result.settings.quadrature == "exact", "\(result.run.notes)")
        let e = try #require(result.reconstruction.exact)
        #expect(e.kinkedShare > 0.1, "the test wants kinks: \(e.kinkedShare)")
        for res in [result.reconstruction.test!, result.reconstruction.train!] {
            #expect(res.relativeResidual <= Self.exactTolerance, "residual \(res.relativeResidual)")
            // (The outputs and their change are of order 1 here: absolute and relative agree.)
            #expect(res.kernelFormMaxAbs <= Self.exactTolerance, "kernel form \(res.kernelFormMaxAbs)")
        }
        var gauss = AnalysisSettings()
        gauss.quadrature = .gauss
        let g = try analyze(path, gauss)
        #expect(g.settings.quadrature == nil)
        #expect(g.reconstruction.test!.relativeResidual >= Self.gaussAtLeast, "q = 4: \(g.reconstruction.test!.relativeResidual)")
        // Stored under the default key before exact quadrature was the default on this route: recomputed.
        #expect(AnalysisStore.predatesExactQuadrature(g, settings: AnalysisSettings()) != nil)
        #expect(AnalysisStore.predatesExactQuadrature(result, settings: AnalysisSettings()) == nil)

        var f32 = AnalysisSettings()
        f32.precision = .f32
        let r32 = try analyze(path, f32)
        #expect(r32.settings.quadrature == "exact")
        #expect(r32.reconstruction.test!.relativeResidual <= Self.f32Tolerance, "f32: \(r32.reconstruction.test!.relativeResidual)")
        #expect(r32.reconstruction.test!.relativeResidual > 0)

        if optimizer.contains("momentum\":0.9}") {
            // SGD momentum on the window, a negligible tail: the same, in the forward pass.
            var windowed = AnalysisSettings()
            windowed.momentumTolerance = 1e-300
            let w = try analyze(path, windowed)
            #expect(w.settings.pathKernel?.contains("tail <") == true)
            #expect(w.settings.quadrature == "exact")
            #expect(w.reconstruction.test!.relativeResidual <= Self.exactTolerance)
            #expect(w.reconstruction.test!.kernelFormMaxAbs <= Self.exactTolerance)
        }
    }

    /// Same trace, same bits on one thread and on two: the backward route (momentum with its
    /// factored first layer, Adam) with per-query nodes, 64 queries (so that the threads' row
    /// chunks hold both kinds of query), in both precisions.
    @Test(arguments: [#"{"kind":"sgd","learningRate":0.5,"momentum":0.9}"#, #"{"kind":"adam","learningRate":0.1}"#],
          [AnalysisSettings.Precision.f64, .f32])
    func backwardRouteIsDeterministic(optimizer: String, precision: AnalysisSettings.Precision) throws {
        let path = try ExactQuadratureTests.run(train: 40, test: 24, steps: 3, optimizer: optimizer)
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
            prints.append(try DeterminismTests.fingerprint(r, k))
        }
        #expect(prints[0] == prints[1], "1 and 2 threads differ")
    }

    /// `J̄_t(x)` of one query x by composite Gauss–Legendre (16 panels of 3 nodes) on every piece
    /// between its reference breakpoints, explicit Jacobians (C × P).
    static func referenceMeanJacobian(_ model: any Network, _ w: [Double], _ delta: [Double], _ x: Matrix) -> (Matrix, Int) {
        let cuts = [0] + ExactQuadratureTests.referenceBreakpoints(model, w, delta, x) + [1]
        let panel = GaussLegendre(nodes: 3), panels = 16
        var jbar = Matrix(rows: model.outputDim, cols: model.parameterCount)
        for p in 0..<(cuts.count - 1) {
            let h = (cuts[p + 1] - cuts[p]) / Double(panels)
            for k in 0..<panels {
                for (s, o) in zip(panel.nodes, panel.weights) {
                    var wt = w
                    Vec.axpy(cuts[p] + h * (Double(k) + s), delta, &wt)
                    let j = explicitJacobians(model, wt, x)
                    for i in jbar.data.indices { jbar.data[i] += h * o * j.data[i] }
                }
            }
        }
        return (jbar, cuts.count - 2)
    }

    /// The two-time kernel of math §5 as the double sum, `K^p(x, x_i) = Σ_t Σ_{s≤t, i∈B_s} η_t
    /// c_{t,s} (s_s/|B_s|) J̄_t(x) Dq_t (Dx_s ⊙ J(x_i; w_s))ᵀ`, and `Σ_t J̄_t(x) Δw_t`, with
    /// `jbar(t, q)` giving `J̄_t` of query q (C × P).
    static func doubleSum(_ spec: OptimizerSpec, reader: TraceReader, queries xq: Matrix,
                          jbar: (_ t: Int, _ q: Int, _ w: [Double], _ delta: [Double]) -> Matrix) throws -> (kernel: Matrix, jvp: Matrix) {
        let run = try TraceRun.load(reader)
        let model = run.model, C = model.outputDim, T = run.steps, n = run.trainX.rows, nQ = xq.rows
        let w = try (0...T).map { try reader.checkpoint(step: $0) }
        let batches = run.stepRecords.map { $0.batch.map(Int.init) }
        let rates = run.stepRecords.map(\.learningRate)
        var grads: [[Double]] = []
        for s in 0..<T {
            let xs = run.trainX.rows(at: batches[s]), ys = run.trainY.rows(at: batches[s])
            let g = run.loss.evaluate(outputs: model.forward(w[s], xs), targets: ys).perExampleGradient
            grads.append(model.vjp(w[s], xs, cotangent: (1 / Double(xs.rows)) * g))
        }
        let hand = PreconditionedKernelTests.handOptimizer(spec, gradients: grads, weights: Array(w[0..<T]), rates: rates)
        for t in 0..<T {
            let err = zip(zip(w[t + 1], w[t]).map { $0 - $1 }, hand.delta[t]).map { abs($0 - $1) }.max()!
            #expect(err < 1e-13, "step \(t): hand-kept optimizer is \(err) off the recorded update")
        }
        let clipScales = grads.map { g -> Double in
            guard let clip = spec.clipNorm else { return 1 }
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return norm > clip ? clip / norm : 1
        }
        let isAdam = spec.kind == .adam || spec.kind == .adamw
        func c(_ t: Int, _ s: Int) -> Double {
            if spec.kind == .sgd {
                let heavy = pow(spec.momentum, Double(t - s)) * (s == 0 ? 1 : 1 - spec.dampening)
                return spec.nesterov ? spec.momentum * heavy + (s == t ? 1 : 0) : heavy
            }
            return isAdam ? (1 - spec.beta1) * pow(spec.beta1, Double(t - s)) / (1 - pow(spec.beta1, Double(t + 1)))
                          : pow(spec.momentum, Double(t - s))
        }
        var kernel = Matrix(rows: nQ * C, cols: n * C), jvp = Matrix(rows: nQ, cols: C)
        for t in 0..<T {
            let delta = zip(w[t + 1], w[t]).map { $0 - $1 }
            var jb = Matrix(rows: nQ * C, cols: model.parameterCount)
            for q in 0..<nQ {
                let j = jbar(t, q, w[t], delta)
                for cc in 0..<C {
                    for k in 0..<model.parameterCount { jb[q * C + cc, k] = j[cc, k] }
                    jvp[q, cc] += zip(j.row(cc), delta).reduce(0) { $0 + $1.0 * $1.1 }
                }
            }
            for s in 0...t {
                var jx = explicitJacobians(model, w[s], run.trainX.rows(at: batches[s]))
                let d = isAdam ? hand.d[t] : hand.d[s]
                for r in 0..<jx.rows { for k in 0..<jx.cols { jx[r, k] *= d[k] } }
                let k = Matrix.product(jb, jx, transposeB: true)
                let coef = rates[t] * c(t, s) * clipScales[s] / Double(batches[s].count)
                for q in 0..<(nQ * C) {
                    for (b, i) in batches[s].enumerated() { for cc in 0..<C { kernel[q, i * C + cc] += coef * k[q, b * C + cc] } }
                }
            }
        }
        return (kernel, jvp)
    }

    /// The backward route's K^p (held-out queries, full blocks) against the double sum through
    /// each query's kinks, in float64 at round-off and in float32 at its own; q = 4 Gauss is far off.
    @Test(arguments: Array(optimizers.dropLast()))
    func backwardKernelAgainstTheDoubleSum(optimizer: String) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        let path = try ExactQuadratureTests.run(steps: 4, optimizer: optimizer)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        var crossings = 0
        let (oracle, _) = try Self.doubleSum(spec, reader: reader, queries: run.testX) { _, q, w, delta in
            let (j, cuts) = Self.referenceMeanJacobian(run.model, w, delta, run.testX.rows(q..<(q + 1)))
            crossings += cuts
            return j
        }
        #expect(crossings >= run.testX.rows / 2, "the test wants kinks: \(crossings) crossings")
        var settings = AnalysisSettings(queries: .test, kernel: .full)
        settings.scope = .exact
        let (result, kp) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(result.settings.quadrature == "exact")
        #expect(result.settings.pathKernel?.contains("exact") == true, "\(result.settings.pathKernel ?? "")")
        let error = ExactQuadratureTests.relativeError(kp.data, oracle.data)
        #expect(error <= Self.oracleTolerance, "K^p against the double sum: \(error)")
        settings.quadrature = .gauss
        let (_, gk) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(ExactQuadratureTests.relativeError(gk.data, oracle.data) > 1e3 * Self.oracleTolerance)
        settings.quadrature = nil
        settings.precision = .f32
        let (_, k32) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
        let e32 = ExactQuadratureTests.relativeError(k32.data, oracle.data)
        #expect(e32 <= Self.f32Tolerance && e32 > 0, "float32 K^p: \(e32)")
    }

    /// The layer-network (generic, one block of Jacobian rows) branch of the backward route with
    /// per-query nodes made by hand (a smooth CNN has no breakpoints of its own): query 0 on the
    /// shared 2-node rule, query 1 cut at 0.3, query 2 at 0.25 and 0.6, query 3 at a point that
    /// moves with the step; K^p and the JVP sum against the double sum on exactly those nodes, in
    /// both precisions; without the per-query nodes the kernel differs (the test bites).
    @Test(arguments: [
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}"#,
        #"{"kind":"adamw","learningRate":0.05,"weightDecay":0.05,"beta1":0.8,"beta2":0.99}"#,
        #"{"kind":"rmsprop","learningRate":0.01,"momentum":0.7,"weightDecay":0.01}"#,
    ])
    func layerNetworkWithHandMadeNodes(optimizer: String) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        let cfg = config(name: "pw", data: LayerNetworkFixtures.teacher, model: LayerNetworkFixtures.smoothCNN, loss: .mse,
                         optimizer: spec, steps: 4, batchSize: 4)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let model = run.model
        let rule = GaussLegendre(nodes: 2)
        func cuts(_ t: Int) -> [[Double]] { [[], [0.3], [0.25, 0.6], [0.1 + 0.2 * Double(t)]] }
        let (oracle, oracleJVP) = try Self.doubleSum(spec, reader: reader, queries: run.testX) { t, q, w, delta in
            let ends = [0] + cuts(t)[q] + [1]
            var j = Matrix(rows: model.outputDim, cols: model.parameterCount)
            for p in 0..<(ends.count - 1) {
                let (a, b) = (ends[p], ends[p + 1])
                for (s, o) in zip(rule.nodes, rule.weights) {
                    var wt = w
                    Vec.axpy(a + (b - a) * s, delta, &wt)
                    let jt = explicitJacobians(model, wt, run.testX.rows(q..<(q + 1)))
                    for i in j.data.indices { j.data[i] += (b - a) * o * jt.data[i] }
                }
            }
            return j
        }
        func analyzed(_ precision: AnalysisSettings.Precision, piecewise: Bool) throws -> KernelAccumulators {
            var settings = AnalysisSettings(nodes: 2, queries: .test, kernel: .full, precision: precision)
            settings.scope = .exact
            let context = try AnalysisContext(settings: settings, run: run)
            let optimizer = try run.optimizer.transformation(parameters: model.parameterTensors)
            let form = try #require(optimizer.kernelForm.flatMap { PreconditionedForm($0, recordedKind: run.optimizer.kind) })
            var route = PreconditionedRoute(context: context, form: form, optimizer: optimizer)
            #expect(route.takesPiecewiseNodes)
            var weights = try WeightPath(run: run, reader: TraceReader.open(path))
            var acc = KernelAccumulators(zeroFor: context)
            let shared = zip(rule.nodes, rule.weights).map { (s: $0, w: $1) }
            while let seg = try weights.next() {
                let batch = seg.record.batch.map(Int.init)
                let step = RouteSegment(segment: seg, delta: seg.delta, batch: batch, xb: run.trainX.rows(at: batch),
                                        yb: run.trainY.rows(at: batch), nodes: shared,
                                        piecewise: piecewise ? PiecewiseNodes(breakpoints: cuts(seg.step), rule: rule) : nil)
                route.consume(step, into: &acc)
            }
            route.finish(end: weights.current, into: &acc) { _, _ in }
            return acc
        }
        let exact = try analyzed(.f64, piecewise: true)
        let error = ExactQuadratureTests.relativeError(exact.kp.data, oracle.data)
        #expect(error <= Self.oracleTolerance, "K^p against the double sum on the same nodes: \(error)")
        let jvpError = ExactQuadratureTests.relativeError(exact.jvpSum.data, oracleJVP.data)
        #expect(jvpError <= Self.oracleTolerance, "JVP sum: \(jvpError)")
        let shared = try analyzed(.f64, piecewise: false)
        #expect(ExactQuadratureTests.relativeError(shared.kp.data, oracle.data) > 1e2 * Self.oracleTolerance)
        let f32 = try analyzed(.f32, piecewise: true)
        let e32 = ExactQuadratureTests.relativeError(f32.kp.data, oracle.data)
        #expect(e32 <= Self.f32Tolerance && e32 > 0, "float32 K^p: \(e32)")
        #expect(ExactQuadratureTests.relativeError(f32.jvpSum.data, oracleJVP.data) <= Self.f32Tolerance)
    }

    /// The JVP route (what a chain without a usable kernel form gets; built here by hand on a
    /// momentum trace) integrates each query through its kinks: exact quadrature applies to it, and
    /// its reconstruction closes at round-off where q = 4 does not.
    @Test func jvpRouteAtRoundOff() throws {
        let path = try ExactQuadratureTests.run(steps: 5, optimizer: #"{"kind":"sgd","learningRate":0.5,"momentum":0.9}"#)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let context = try AnalysisContext(settings: AnalysisSettings(), run: run)
        let optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors)
        let route = JVPRoute(context: context, form: optimizer.kernelForm)
        #expect(route.takesPiecewiseNodes)
        let (exact, notes) = PathAnalyzer.exactQuadrature(settings: AnalysisSettings(), model: run.model, route: route)
        #expect(exact && notes.isEmpty)
        // Both quadratures through the JVP route by hand, on the same path.
        func residual(_ exactQuadrature: Bool) throws -> Double {
            var weights = try WeightPath(run: run, reader: TraceReader.open(path))
            var route = JVPRoute(context: context, form: optimizer.kernelForm)
            var quadrature = SegmentQuadrature(settings: AnalysisSettings(), steps: run.steps, model: run.model, exact: exactQuadrature)
            var acc = KernelAccumulators(zeroFor: context)
            let w0 = weights.current
            while let seg = try weights.next() {
                let batch = seg.record.batch.map(Int.init)
                let nodes = quadrature.nodes(model: run.model, start: seg.start, delta: seg.delta, x: context.xq)
                route.consume(RouteSegment(segment: seg, delta: seg.delta, batch: batch, xb: run.trainX.rows(at: batch),
                                           yb: run.trainY.rows(at: batch), nodes: nodes.shared, piecewise: nodes.piecewise), into: &acc)
            }
            #expect(!exactQuadrature || quadrature.kinkedPairs > 0)
            let change = run.model.forward(weights.current, context.xq) - run.model.forward(w0, context.xq)
            return ExactQuadratureTests.relativeError(acc.jvpSum.data, change.data)
        }
        let e = try residual(true), g = try residual(false)
        #expect(e <= Self.exactTolerance, "exact: \(e)")
        #expect(g >= Self.gaussAtLeast, "q = 4: \(g)")
    }
}

/// The cost model with exact quadrature (Docs/path-kernel.md §7): ⌈L/2⌉ shared nodes and the
/// kinked pairs' own nodes by the stated estimate, instead of `--nodes`.
@Suite("Exact quadrature's cost estimate")
struct ExactQuadratureCostTests {
    @Test func exactRunsCountTheirNodes() throws {
        let path = try ExactQuadratureTests.run(steps: 3, optimizer: #"{"kind":"sgd","learningRate":0.5,"momentum":0.9}"#)
        let run = try TraceRun.load(TraceReader.open(path))
        let optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors)
        func model(_ settings: AnalysisSettings) throws -> (AnalysisCostModel, AnalysisContext, PreconditionedRoute) {
            let context = try AnalysisContext(settings: settings, run: run)
            let route = try #require(KernelRoutes.select(context: context, optimizer: optimizer, checkpointResolution: false,
                                                         initialState: nil).route as? PreconditionedRoute)
            return (AnalysisCostModel(context: context, route: route), context, route)
        }
        let (exact, context, route) = try model(AnalysisSettings())
        var gaussSettings = AnalysisSettings()
        gaussSettings.quadrature = .gauss
        let (gauss, _, _) = try model(gaussSettings)
        // Written out: depth 3, q = 2; kinked share 0.25 with 1.2 breakpoints → own nodes 4.4;
        // node evaluations 0.75·2 + 0.25·4.4 = 2.6; features (all queries at the shared nodes in
        // the backward pass, own nodes at twice the cost) 2 + 2·0.25·4.4 = 4.2.
        let net = run.model, Q = Double(context.queries), C = Double(net.outputDim)
        let PR = Double(PathAnalyzer.querySideScalars(model: net, form: route.form))
        let nb = Double(run.stepRecords.reduce(0) { $0 + $1.batch.count }) / Double(run.steps)
        let rows = Double(net.featureBlocks.reduce(0) { $0 + $1.outputs })
        // The memory-bound part at the speed this process measured (both measurements are cached).
        let scalarCost = AnalysisCostModel.querySideFactor * PathAnalyzer.measuredQuerySideSeconds(.f64)
            * PathAnalyzer.measuredGemmRate(.f64) * 1e9 * PathAnalyzer.efficiency.backward
        // R's own kernels at the product kernel's rate measured by this process.
        let productCost = AnalysisCostModel.backwardGemmEfficiency * PathAnalyzer.measuredGemmRate(.f64)
            / (AnalysisCostModel.productKernelEfficiency * PathAnalyzer.measuredProductRate(.f64, batch: context.meanBatch))
        // The kernel sums (AnalysisCostModel.kernelAddFactor) at the `dsymv` speed this process measured.
        let valueCost = PathAnalyzer.measuredSymvSeconds() * PathAnalyzer.measuredGemmRate(.f64) * 1e9 * PathAnalyzer.efficiency.backward
        let B = Double(context.blocks), layers = Double(net.featureBlocks.count)
        let sums = valueCost * (AnalysisCostModel.kernelAddFactor * Q * C * layers * nb * (1 + B) + AnalysisCostModel.kernelScatterFactor * Q * B * B * nb)
        // The queries' features at their width's rate (`gemmWidthFactor`, since session 23, with
        // `queryFeatureHalfWidth` since session 25).
        let width = AnalysisCostModel.gemmWidthFactor(net, halfWidth: AnalysisCostModel.queryFeatureHalfWidth)
        #expect(width > 1)
        func backward(qf: Double, qd: Double) -> Double {
            (qf * Q * width * net.featureCostPerExample + productCost * 2 * C * Q * PR * (qd + nb))
                * PathAnalyzer.efficiency.backward / AnalysisCostModel.backwardGemmEfficiency
                + scalarCost * C * Q * (PR + AnalysisCostModel.rowScalars * rows) + sums
        }
        let tolerance = 1e-12   // the same sums in another order
        #expect(abs(exact.backwardPerStep - backward(qf: 4.2, qd: 2.6)) <= tolerance * exact.backwardPerStep)
        #expect(abs(gauss.backwardPerStep - backward(qf: 4, qd: 4)) <= tolerance * gauss.backwardPerStep)
        // (Which of the two is larger depends on the network: exact quadrature updates R on fewer
        // nodes, 2.6 against 4, but computes more features, 4.2 against 4, and this small
        // network's features cost more per flop than R's products.)
    }
}
