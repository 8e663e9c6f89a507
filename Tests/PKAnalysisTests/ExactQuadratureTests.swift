import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// Exact quadrature through each query's kinks (path-kernel math §1.1) on the (S)GD route: the
/// path kernel against an independent oracle (breakpoints by bisection on the network's own
/// activation pattern, composite Gauss–Legendre with 1024 nodes per piece, explicit Jacobians),
/// the reconstruction at round-off where q = 4 is not, the same bits on one thread and two, and
/// where it applies.
@Suite("Exact quadrature for piecewise-linear MLPs", .serialized)
struct ExactQuadratureTests {
    /// Two routes to the same integral of a piecewise polynomial, each exact up to round-off
    /// (sums of a few thousand products of O(1) terms).
    static let oracleTolerance = 1e-11
    /// The reconstruction and kernel-form residuals of exact quadrature, relative.
    static let roundOff = 1e-12

    /// `max_k |a_k − b_k| / max_k |b_k|`.
    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        let scale = b.map(abs).max() ?? 0, diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        return scale == 0 ? diff : diff / scale
    }

    /// A small relu (or leaky-relu) run whose steps are long enough for most queries to cross kinks.
    static func run(_ activation: String = "relu", train: Int = 12, test: Int = 6, steps: Int = 5, lr: Double = 1.5,
                    optimizer: String? = nil) throws -> String {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data((optimizer ?? #"{"kind":"sgd","learningRate":\#(lr)}"#).utf8))
        return try recordTrace(config(name: "exact", data: #"{"kind":"spirals","train":\#(train),"test":\#(test),"classes":3}"#,
                                      model: #"{"layers":[2,6,6,3],"activation":"\#(activation)","leakySlope":0.1}"#,
                                      loss: .crossEntropy, optimizer: spec, steps: steps, batchSize: 4))
    }

    /// The breakpoints of query x on the segment `w + tΔw`, found without polynomials: the
    /// network's activation pattern (`kinkPattern`, its forward pass) at 257 points, and each change
    /// bisected on the pattern until the bracket is below 1e-15.
    static func referenceBreakpoints(_ model: any Network, _ w: [Double], _ v: [Double], _ x: Matrix) -> [Double] {
        func pattern(_ t: Double) -> [Double] {
            var wt = w
            Vec.axpy(t, v, &wt)
            return model.kinkPattern(wt, x)
        }
        let samples = 256
        var cuts: [Double] = []
        var previous = pattern(0)
        for k in 1...samples {
            var (a, b) = (Double(k - 1) / Double(samples), Double(k) / Double(samples))
            let p = pattern(b)
            if p != previous {
                let left = previous
                while b - a > 1e-15 {
                    let m = 0.5 * (a + b)
                    if pattern(m) == left { a = m } else { b = m }
                }
                cuts.append(0.5 * (a + b))
            }
            previous = p
        }
        return cuts
    }

    /// `K^p(x, x_i) = Σ_t (η_t/|B_t|) [i ∈ B_t] J̄_t(x) J(x_i; w_t)ᵀ` (math §2) with `J̄_t` by
    /// composite Gauss–Legendre (256 panels of 4 nodes, 1024 nodes) on every piece between the
    /// reference breakpoints, every Jacobian explicit; and the JVP sum `Σ_t J̄_t Δw_t`.
    @Test(arguments: ["relu", "leaky-relu"])
    func pathKernelAgainstCompositeGaussOracle(activation: String) throws {
        let path = try Self.run(activation)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let model = run.model, C = model.outputDim, T = run.steps, n = run.trainX.rows, P = model.parameterCount
        let xq = Matrix(rows: run.testX.rows + n, cols: run.trainX.cols, data: run.testX.data + run.trainX.data)
        let nQ = xq.rows
        let w = try (0...T).map { try reader.checkpoint(step: $0) }
        let panels = 256
        var oracle = Matrix(rows: nQ * C, cols: n * C), jvpSum = Matrix(rows: nQ, cols: C)
        var crossings = 0
        for t in 0..<T {
            let delta = zip(w[t + 1], w[t]).map { $0 - $1 }
            let batch = run.stepRecords[t].batch.map(Int.init)
            let jb = model.jacobians(w[t], run.trainX.rows(at: batch))   // (|B|·C) × P
            let scale = run.stepRecords[t].learningRate / Double(batch.count)
            for q in 0..<nQ {
                let x = xq.rows(q..<(q + 1))
                let cuts = [0] + Self.referenceBreakpoints(model, w[t], delta, x) + [1]
                crossings += cuts.count - 2
                let jbar = compositePathJacobian(model, start: w[t], delta: delta, x, cuts: cuts, panels: panels)
                let k = Matrix.product(jbar, jb, transposeB: true)   // C × (|B|·C)
                for (b, i) in batch.enumerated() {
                    for c in 0..<C { for kk in 0..<C { oracle[q * C + c, i * C + kk] += scale * k[c, b * C + kk] } }
                }
                for c in 0..<C { jvpSum[q, c] += zip(jbar.row(c), delta).reduce(0) { $0 + $1.0 * $1.1 } }
            }
        }
        #expect(crossings >= nQ / 2, "the test wants kinks: \(crossings) crossings over \(nQ) queries and \(T) steps")
        let (result, kernel) = try PathAnalyzer(settings: AnalysisSettings()).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(result.settings.quadrature == "exact")
        let e = try #require(result.reconstruction.exact)
        #expect(e.nodesPerPiece == 2 && e.kinkedShare > 0)
        let kernelError = Self.relativeError(kernel.data, oracle.data)
        #expect(kernelError <= Self.oracleTolerance, "K^p against the oracle: \(kernelError)")
        // The oracle's own reconstruction closes (it integrates through the kinks too) ...
        let f0 = model.forward(w[0], xq), fT = model.forward(w[T], xq)
        let change = fT - f0
        #expect(Self.relativeError(jvpSum.data, change.data) <= Self.oracleTolerance)
        // ... as the analysis's does, where q = 4 over each whole step is far off.
        for res in [result.reconstruction.test!, result.reconstruction.train!] {
            #expect(res.relativeResidual <= Self.roundOff && res.kernelFormMaxAbs <= Self.roundOff * change.data.map(abs).max()!,
                    "exact quadrature: residual \(res.relativeResidual), kernel form \(res.kernelFormMaxAbs)")
        }
        var gauss = AnalysisSettings()
        gauss.quadrature = .gauss
        let (g, gk) = try PathAnalyzer(settings: gauss).analyzeWithKernel(reader: TraceReader.open(path))
        #expect(g.settings.quadrature == nil && g.reconstruction.exact == nil)
        #expect(g.reconstruction.test!.relativeResidual > 1e4 * Self.roundOff, "q = 4 should leave a quadrature error here")
        #expect(Self.relativeError(gk.data, oracle.data) > 1e4 * Self.oracleTolerance)
        // A result like this one stored under the default key (before exact quadrature was the
        // default) is recomputed; the exact one and an explicit --quadrature gauss are not.
        #expect(AnalysisStore.predatesExactQuadrature(g, settings: AnalysisSettings()) != nil)
        #expect(AnalysisStore.predatesExactQuadrature(result, settings: AnalysisSettings()) == nil)
        #expect(AnalysisStore.predatesExactQuadrature(g, settings: gauss) == nil)
    }

    /// Same trace, same bits: exact quadrature on one thread and on two (64 queries, so that row
    /// blocks of the shared and the per-query features are cut), in both precisions; float32 at
    /// its own round-off.
    @Test(arguments: [AnalysisSettings.Precision.f64, .f32])
    func exactQuadratureIsDeterministic(precision: AnalysisSettings.Precision) throws {
        let path = try Self.run(train: 40, test: 24, steps: 4, lr: 1.0)
        var settings = AnalysisSettings()
        settings.precision = precision
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        var prints: [[UInt64]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let (r, k) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
            #expect(r.settings.quadrature == "exact")
            #expect((r.reconstruction.exact?.nodesPerQueryStep ?? 0) > 2, "the test wants per-query nodes")
            #expect(r.reconstruction.test!.relativeResidual <= (precision == .f64 ? Self.roundOff : 1e-5))
            prints.append(try DeterminismTests.fingerprint(r, k))
        }
        #expect(prints[0] == prints[1], "1 and 2 threads differ")
    }

    /// Exact quadrature is the default where it applies (a relu MLP on any route: (S)GD here,
    /// momentum and Adam in `ExactQuadratureRoutesTests`) and is never silently absent where it
    /// was asked for: smooth networks keep the Gauss rule with a note; `--adaptive` keeps
    /// adaptive; contradictory options are errors.
    @Test func whereItApplies() throws {
        var asked = AnalysisSettings()
        asked.quadrature = .exact
        let momentum = try Self.run(steps: 3, optimizer: #"{"kind":"sgd","learningRate":0.5,"momentum":0.9}"#)
        let m = try analyze(momentum)
        #expect(m.settings.quadrature == "exact" && m.reconstruction.exact != nil)
        #expect(!m.run.notes.contains { $0.contains("quadrature") })

        let smooth = try Self.run("tanh", steps: 3)
        let s = try analyze(smooth, asked)
        #expect(s.settings.quadrature == nil)
        #expect(s.run.notes.contains { $0.contains("--quadrature exact applies to piecewise-linear networks") })
        #expect(!(try analyze(smooth)).run.notes.contains { $0.contains("quadrature") })

        var adaptive = AnalysisSettings()
        adaptive.adaptiveTolerance = 1e-3
        let relu = try Self.run(steps: 2)
        let a = try analyze(relu, adaptive)
        #expect(a.settings.quadrature == nil && a.reconstruction.exact == nil && a.settings.adaptiveTolerance == 1e-3)

        var bad = AnalysisSettings()
        bad.quadrature = .adaptive
        #expect(throws: AnalysisError.self) { try bad.validate() }
        bad.quadrature = .exact
        bad.adaptiveTolerance = 1e-6
        #expect(throws: AnalysisError.self) { try bad.validate() }
        // The default's storage key is the one analyses had before the option existed.
        #expect(!AnalysisStore.key(AnalysisSettings()).contains("quadrature"))
        #expect(AnalysisStore.key(asked).contains(#""quadrature":"exact""#))
        #expect(asked.commandLineArguments == ["--quadrature", "exact"])
    }
}
