import Foundation
import Testing
import PKNumerics
import PKNetworks
import PKOptim
import PKTrace
@testable import PKAnalysis

/// The backward route keeps an MLP's first layer of R compact over each query's nonzero inputs
/// when a preconditioner D keeps it from being factored (`PathAnalyzer.isCompact`,
/// Docs/path-kernel.md §5). The compact layout drops only scalars that are 0 in the full one and
/// computes every other one by the same operations, so the analysis must be bit-identical to the
/// full layout (`compactInputOverride = false`, the oracle): Adam with coupled decay and clipping
/// (D on the query side), AdamW, RMSProp with momentum and decay (D moved onto R's rows), SGD
/// momentum with group learning rates (D = M, Nesterov's V_s), relu Adam (exact quadrature: queries
/// with nodes of their own), float32, and queries whose inputs are all 0; on one thread and two.
@Suite("Compact first layer of R", .serialized)
struct CompactFirstLayerTests {
    /// Sparse inputs: 6 features, each 0 with probability one half; a row of all zeros; 3 classes.
    static func sparseCSV() throws -> String {
        var rng = PortableRandom(seed: 11)
        var lines = ["a,b,c,d,e,f,y"]
        for r in 0..<60 {
            let x = (0..<6).map { _ in r == 5 || rng.uniform() < 0.5 ? 0.0 : rng.normal() }
            let y = (x[0] + x[1] - x[2] > 0 ? 1 : 0) + (x[3] * x[4] > 0 ? 1 : 0)
            lines.append((x.map { "\($0)" } + ["\(y)"]).joined(separator: ","))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pk-compact-\(UUID().uuidString).csv").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let cases = [
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}"#,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}"#,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":0.05,"momentum":0.9,"nesterov":true,"weightDecay":0.001,"groups":[{"parameters":["layers.0.*"],"learningRate":0.03}]}"#,
        #"{"kind":"adam","learningRate":0.02}|relu"#,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|f32"#,
    ]

    @Test(arguments: cases)
    func compactLayoutKeepsTheBits(optimizer: String) throws {
        let parts = optimizer.split(separator: "|").map(String.init)
        let flags = Set(parts.dropFirst())
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(parts[0].utf8))
        let csv = try Self.sparseCSV()
        defer { try? FileManager.default.removeItem(atPath: csv) }
        let activation = flags.contains("relu") ? "relu" : "tanh"
        let cfg = config(name: "compact", data: #"{"kind":"csv","path":"\#(csv)","targetColumn":"y","task":"multiclass","testFraction":0.3}"#,
                         model: #"{"layers":[6,7,3],"activation":"\#(activation)"}"#, loss: .crossEntropy,
                         optimizer: spec, steps: 9, batchSize: 8, checkpointEvery: 4)
        let path = try recordTrace(cfg)
        var settings = AnalysisSettings()
        if flags.contains("f32") { settings.precision = .f32 }
        // The compact layout applies (else this test could not fail): the first layer is compact
        // and the queries' R is smaller than the full one.
        let run = try TraceRun.load(TraceReader.open(path))
        let optimizerChain = try run.optimizer.transformation(parameters: run.model.parameterTensors)
        let route = try #require(KernelRoutes.select(context: AnalysisContext(settings: settings, run: run), optimizer: optimizerChain,
                                                     checkpointResolution: false, initialState: nil).route as? PreconditionedRoute)
        let first = try #require(run.model.featureBlocks.first)
        #expect(PathAnalyzer.isCompact(first, model: run.model, form: route.form))
        #expect(PathAnalyzer.meanQuerySideScalars(model: run.model, form: route.form, queries: run.testX)
                < Double(PathAnalyzer.querySideScalars(model: run.model, form: route.form)))
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        var prints: [[UInt64]] = []
        // Full layout (the oracle), then compact in one block on one and on two threads, and in
        // blocks of 7 query rows.
        for (compact, blockRows, threads) in [(false, nil, 1), (true, nil, 1), (true, nil, 2), (true, 7, 2)] as [(Bool, Int?, Int)] {
            Parallel.threads = threads
            // (Task-local overrides: other tests' analyses meanwhile keep their own layout.)
            let (r, k) = try PathAnalyzer.$compactInputOverride.withValue(compact ? nil : false) {
                #expect(PathAnalyzer.isCompact(first, model: run.model, form: route.form) == compact)
                return try PathAnalyzer.$queryBlockRowsOverride.withValue(blockRows) {
                    try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
                }
            }
            let kernelFormTolerance = settings.precision == .f32 ? 1e-4 : 1e-10   // output units (as DeterminismTests)
            #expect(r.reconstruction.test!.kernelFormMaxAbs < kernelFormTolerance, "\(optimizer), compact \(compact)")
            prints.append(try DeterminismTests.fingerprint(r, k))
        }
        // (Bools, so that a failure prints the case, not the fingerprints.)
        let same = prints[1] == prints[0], sameOnTwo = prints[2] == prints[0], sameInBlocks = prints[3] == prints[0]
        #expect(same, "\(optimizer): the compact layout differs from the full one")
        #expect(sameOnTwo, "\(optimizer): the compact layout on two threads differs from the full one")
        #expect(sameInBlocks, "\(optimizer): the compact layout in blocks of 7 rows differs from the full one")
    }

    /// The compact first layer's shape (its outputs, inputs and the queries' mean nonzero inputs,
    /// counted by hand) and its measured product rate (`compactInputOverride` is task-local: another
    /// test's binding does not reach this one).
    @Test func compactLayerShapeAndRate() throws {
        let net = try MLP(spec: JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[4,3,2],"activation":"relu"}"#.utf8)))
        let x = Matrix(rows: 3, cols: 4, data: [1, 0, 2, 0,   0, 0, 0, 5,   1, 1, 1, 1])   // 2, 1 and 4 nonzero
        let adam = try #require(PreconditionedForm(KernelForm(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 0.1)), recordedKind: .adam))
        let momentum = try #require(PreconditionedForm(KernelForm(.momentum(rho: 0.9, dampening: 0, nesterov: false)), recordedKind: .sgd))
        let shape = try #require(PathAnalyzer.compactShape(model: net, form: adam, queries: x))
        #expect(shape.outputs == 3 && shape.inputs == 4 && shape.support == 7.0 / 3)
        #expect(PathAnalyzer.compactShape(model: net, form: momentum, queries: x) == nil)   // factored, not compact
        // Some rows of the queries (a shard's, a block's), read in place.
        let lastTwo = try #require(PathAnalyzer.compactShape(model: net, form: adam, queries: x, rows: 1..<3))
        #expect(lastTwo.support == 5.0 / 2)
        #expect(PathAnalyzer.meanQuerySideScalars(model: net, form: adam, queries: x, rows: 0..<1)
                == Double(PathAnalyzer.querySideScalars(model: net, form: adam, nonzeroInputs: 2)))
        #expect(PathAnalyzer.meanQuerySideScalars(model: net, form: adam, queries: x)
                == Double([2, 1, 4].map { PathAnalyzer.querySideScalars(model: net, form: adam, nonzeroInputs: $0) }.reduce(0, +)) / 3)
        let rate = PathAnalyzer.measuredCompactProductRate(.f64, batch: 5, outputs: 3, support: 2, inputs: 4)
        #expect(rate.isFinite && rate > 0.01 && rate < 1e4, "compact product kernel: \(rate) GFLOP/s")
    }
}
