import Foundation
import Testing
import PKData
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis
import PKTraining

private func tempPath(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-an-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

private func decode<T: Decodable>(_ t: T.Type, _ json: String) -> T {
    try! JSONDecoder().decode(t, from: Data(json.utf8))
}

/// Trains `config` into a fresh trace and returns its path.
func recordTrace(_ config: RunConfig, name: String = "t.sqlite") throws -> String {
    let path = try tempPath(name)
    let trainer = try Trainer(config: config)
    let recorder = TraceRecorder(path: path)
    trainer.run(observers: [recorder])
    try recorder.finish()
    return path
}

func analyze(_ path: String, _ settings: AnalysisSettings = AnalysisSettings()) throws -> AnalysisResult {
    try PathAnalyzer(settings: settings).analyze(reader: TraceReader.open(path))
}

func config(name: String, data: String, model: String, loss: LossKind, optimizer: OptimizerSpec,
            steps: Int, batchSize: Int? = nil, checkpointEvery: Int = 1, seed: UInt64 = 7) -> RunConfig {
    RunConfig(name: name, seed: seed, data: decode(DataSpec.self, data), model: decode(ModelSpec.self, model),
              loss: LossSpec(kind: loss), optimizer: optimizer,
              training: TrainingSpec(steps: steps, batchSize: batchSize, checkpointEvery: checkpointEvery))
}

@Suite("Structured tangent kernels against explicit Jacobians")
struct TangentKernelTests {
    static let specs = [
        #"{"layers":[3,5,4,2],"activation":"tanh","parameterization":"ntk"}"#,
        #"{"layers":[3,6,1],"activation":"relu","parameterization":"standard"}"#,
        #"{"layers":[2,4,4,3],"activation":"gelu","parameterization":"ntk","bias":false}"#,
        #"{"layers":[4,3],"activation":"identity"}"#,
    ]

    @Test(arguments: specs)
    func crossWeightKernelEqualsJacobianProduct(spec: String) throws {
        let model = try MLP(spec: decode(ModelSpec.self, spec))
        var rng = PortableRandom(seed: 3)
        let u = model.initialParameters(seed: 1), v = model.initialParameters(seed: 2)
        let x1 = Matrix(rows: 4, cols: model.inputDim, data: (0..<(4 * model.inputDim)).map { _ in rng.normal() })
        let x2 = Matrix(rows: 3, cols: model.inputDim, data: (0..<(3 * model.inputDim)).map { _ in rng.normal() })
        let explicit = Matrix.product(model.jacobians(u, x1), model.jacobians(v, x2), transposeB: true)
        let fa = model.tangentFeatures(u, x1), fb = model.tangentFeatures(v, x2)
        let full = TangentFeatures.kernel(fa, fb, mode: .full)
        #expect(full.rows == explicit.rows && full.cols == explicit.cols)
        let scale = max(1, explicit.data.map(abs).max()!)
        for (a, b) in zip(full.data, explicit.data) { #expect(abs(a - b) <= 1e-12 * scale) }
        // Trace mode is the sum of each block's diagonal.
        let tr = TangentFeatures.kernel(fa, fb, mode: .trace)
        let C = model.outputDim
        for r in 0..<4 { for s in 0..<3 {
            let expected = (0..<C).reduce(0.0) { $0 + explicit[r * C + $1, s * C + $1] }
            #expect(abs(tr[r, s] - expected) <= 1e-12 * scale)
        } }
        // Contracted features give Θ·g.
        let g = Matrix(rows: 3, cols: C, data: (0..<(3 * C)).map { _ in rng.normal() })
        let kg = TangentFeatures.kernel(fa, fb.contracted(with: g), mode: .full)
        for row in 0..<(4 * C) { for s in 0..<3 {
            let expected = (0..<C).reduce(0.0) { $0 + explicit[row, s * C + $1] * g[s, $1] }
            #expect(abs(kg[row, s] - expected) <= 1e-11 * scale)
        } }
    }
}

@Suite("Path analysis", .serialized)
struct PathAnalysisTests {
    /// f(x) = wᵀx + b (one dense layer, standard parameterization) trained by full-batch GD:
    /// K^p(x, x_i) = Σ_t η_t/|B_t| (xᵀx_i + 1) in closed form.
    @Test func linearModelMatchesClosedForm() throws {
        let cfg = config(name: "lin", data: #"{"kind":"teacher","train":12,"test":5,"inputDim":3}"#,
                         model: #"{"layers":[3,1],"activation":"identity","parameterization":"standard"}"#,
                         loss: .mse, optimizer: OptimizerSpec(kind: .gd, learningRate: 0.1, schedule: ScheduleSpec(kind: .cosine)),
                         steps: 15)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let (result, kp) = try PathAnalyzer(settings: AnalysisSettings(nodes: 2)).analyzeWithKernel(reader: reader)
        let cSum = run.stepRecords.reduce(0.0) { $0 + $1.learningRate / Double($1.batch.count) }
        let nT = result.run.testQueries
        let xq = run.testX.rows(at: Array(0..<nT))
        for q in 0..<nT {
            for i in 0..<run.trainX.rows {
                var dot = 1.0
                for j in 0..<3 { dot += xq[q, j] * run.trainX[i, j] }
                #expect(abs(kp[q, i] - cSum * dot) <= 1e-13 * max(1, abs(cSum * dot)))
            }
        }
        #expect(result.reconstruction.test!.maxAbsResidual < 1e-12)
    }

    /// `--scope exact` computes the held-out rows of the same K^p and the same exact machine;
    /// `--precision f32` stays within single-precision round-off of the float64 analysis.
    @Test func scopeExactAndFloat32AgreeWithTheFullAnalysis() throws {
        var cfg = try Presets.load("sine-tanh")
        cfg.training.steps = 30
        let reader = try TraceReader.open(try recordTrace(cfg))
        let (full, kFull) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3)).analyzeWithKernel(reader: reader)
        let (ex, kEx) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3, queries: .test, scope: .exact)).analyzeWithKernel(reader: reader)
        let nT = full.run.testQueries
        #expect(kEx.rows == nT && kEx.cols == kFull.cols)
        let scale = kFull.data.map(abs).max()!
        for q in 0..<nT { for i in 0..<kEx.cols { #expect(abs(kEx[q, i] - kFull[q, i]) <= 1e-12 * scale) } }
        #expect(ex.kernelMachines.map(\.name) == ["exact", "path-km"])
        let e1 = full.kernelMachines[0].test!, e2 = ex.kernelMachines[0].test!
        #expect(abs(e1.maxAbsError - e2.maxAbsError) <= 1e-12)
        #expect(abs(ex.reconstruction.test!.relativeResidual - full.reconstruction.test!.relativeResidual) <= 1e-12)
        #expect(ex.settings.scope == "exact")

        let (f32, k32) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3, precision: .f32)).analyzeWithKernel(reader: reader)
        #expect(f32.settings.precision == "f32")
        for i in kFull.data.indices { #expect(abs(k32.data[i] - kFull.data[i]) <= 1e-5 * scale) }
        // Float32 JVPs: the residual is single-precision round-off, not quadrature error.
        #expect(f32.reconstruction.test!.relativeResidual < 1e-4)
        #expect(f32.reconstruction.test!.relativeResidual > full.reconstruction.test!.relativeResidual)
    }

    @Test func scopeExactNeedsHeldOutQueries() throws {
        #expect(throws: AnalysisError.self) { try AnalysisSettings(queries: .both, scope: .exact).validate() }
        var bad = AnalysisSettings()
        bad.momentumTolerance = 1
        #expect(throws: AnalysisError.self) { try bad.validate() }
        var cfg = try Presets.load("sine-tanh")
        cfg.training.steps = 2
        cfg.data.test = 0
        let reader = try TraceReader.open(try recordTrace(cfg))
        #expect(throws: AnalysisError.self) {
            try PathAnalyzer(settings: AnalysisSettings(queries: .test, scope: .exact)).analyze(reader: reader)
        }
    }

    /// Every optimizer: the exact decomposition (JVP route) reconstructs a smooth network at
    /// round-off, and replay from sparse checkpoints (restoring the stored optimizer state)
    /// reaches every stored checkpoint.
    @Test(arguments: [#"{"kind":"sgd","learningRate":0.1,"momentum":0.9}"#,
                      #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.001}"#,
                      #"{"kind":"adam","learningRate":0.01}"#,
                      #"{"kind":"adamw","learningRate":0.01,"weightDecay":0.05,"clipNorm":0.5}"#,
                      #"{"kind":"rmsprop","learningRate":0.003}"#,
                      #"{"kind":"rmsprop","learningRate":0.003,"momentum":0.5,"weightDecay":0.01}"#,
                      // Parameter groups with their own learning rates (the kernel with D = M, or D ⊙ M).
                      #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.001,"groups":[{"parameters":["layers.1.*"],"learningRate":0.5},{"parameters":["*.bias"],"learningRate":0.02,"weightDecay":0}]}"#,
                      #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.001,"groups":[{"parameters":["layers.0.*"],"learningRate":0.3},{"parameters":["*.bias"],"learningRate":0.02}]}"#,
                      #"{"kind":"adamw","learningRate":0.01,"weightDecay":0.05,"clipNorm":0.5,"groups":[{"parameters":["layers.2.*"],"learningRate":0.003,"weightDecay":0.2}]}"#])
    func everyOptimizerReconstructsAndReplays(optimizer: String) throws {
        var cfg = config(name: "opt", data: #"{"kind":"moons","train":40,"test":20,"noise":0.1}"#,
                         model: #"{"layers":[2,16,16,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: decode(OptimizerSpec.self, optimizer), steps: 24, batchSize: 10)
        let densePath = try recordTrace(cfg)
        let dense = try analyze(densePath, AnalysisSettings(nodes: 3))
        #expect(dense.reconstruction.test!.relativeResidual < 1e-9)
        #expect(dense.kernelMachines.first!.name == "exact")
        #expect(dense.kernelMachines.first!.test!.maxAbsError < 1e-9)
        // Every optimizer has its kernel form: momentum the two-time kernel (no tail cut in 24 steps
        // at μ = 0.9), Adam and RMSProp the preconditioned one; it reconstructs too.
        #expect(dense.kernelMachines.contains { $0.name == "path-km" })
        #expect(dense.reconstruction.test!.kernelFormMaxAbs < 1e-9)
        // (Plain SGD has it only with group learning rates: the preconditioned kernel with D = M.)
        let twoTime = cfg.optimizer.kind == .sgd && cfg.optimizer.momentum > 0
        #expect(dense.run.notes.contains { $0.contains(twoTime ? "two-time" : "preconditioned path kernel") })
        #expect(!dense.attribution.isEmpty)
        // In float32 the same kernel, to single-precision round-off.
        let f32 = try analyze(densePath, AnalysisSettings(nodes: 3, precision: .f32))
        #expect(f32.kernelMachines.contains { $0.name == "path-km" })
        #expect(f32.settings.pathKernel == dense.settings.pathKernel)
        #expect(f32.reconstruction.test!.kernelFormMaxAbs < 1e-4)
        let km = { (r: AnalysisResult) in r.kernelMachines.first { $0.name == "path-km" }!.test!.relativeError }
        #expect(abs(km(f32) - km(dense)) < 1e-4 * max(1, km(dense)))
        if cfg.optimizer.weightDecay > 0 {
            #expect(dense.run.notes.contains { $0.contains("R_wd") })
        }
        cfg.training.checkpointEvery = 5
        let path = try recordTrace(cfg, name: "sparse.sqlite")
        let reader = try TraceReader.open(path)
        if cfg.optimizer.kind != .gd && (cfg.optimizer.momentum > 0 || cfg.optimizer.kind != .sgd) {
            #expect(try reader.optimizerState(step: 5) != nil)
        }
        let sparse = try analyze(path, AnalysisSettings(nodes: 3))
        #expect(sparse.replay.largestMismatch <= 1e-12)
        #expect(abs(sparse.reconstruction.test!.relativeResidual - dense.reconstruction.test!.relativeResidual) < 1e-9)
    }

    /// Sparse checkpoints of a stateful optimizer without its state cannot be replayed: the
    /// analyzer integrates from checkpoint to checkpoint, still exactly, and says so.
    @Test func withoutOptimizerStateTheDecompositionIsAtCheckpointResolution() throws {
        let cfg = config(name: "res", data: #"{"kind":"moons","train":40,"test":20,"noise":0.1}"#,
                         model: #"{"layers":[2,16,16,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.05, momentum: 0.9), steps: 20,
                         batchSize: 10, checkpointEvery: 5)
        let path = try recordTrace(cfg)
        try sqlite(path, "DELETE FROM optimizer_state")
        let r = try analyze(path, AnalysisSettings(nodes: 8))
        #expect(r.replay.mode.contains("checkpoint resolution"))
        #expect(r.run.notes.contains { $0.contains("checkpoint resolution") })
        #expect(r.reconstruction.test!.relativeResidual < 1e-8)
        #expect(r.run.steps == 20)
    }

    /// Momentum's coefficients against the optimizer's own (`ScaleByMomentum.weights`), and the
    /// tail cut: a coarse tolerance drops old steps, which shows in the kernel form only.
    @Test func momentumCoefficientsAndTailCut() throws {
        for (mu, d, nest) in [(0.9, 0.0, false), (0.5, 0.3, false), (0.8, 0.0, true)] {
            let oracle = ScaleByMomentum(momentum: mu, dampening: d, nesterov: nest)
            for t in [0, 1, 5] {
                let w = oracle.weights(step: t)
                for s in 0...t {
                    let c = PathAnalyzer.momentumCoefficient(t: t, s: s, momentum: mu, dampening: d, nesterov: nest)
                    #expect(abs(c - w[s]) <= 1e-15 * max(1, abs(w[s])))
                }
            }
        }
        let cfg = config(name: "tail", data: #"{"kind":"moons","train":40,"test":20,"noise":0.1}"#,
                         model: #"{"layers":[2,16,16,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1, momentum: 0.9), steps: 30, batchSize: 10)
        let path = try recordTrace(cfg)
        var coarse = AnalysisSettings(nodes: 3)
        coarse.momentumTolerance = 0.3
        let cut = try analyze(path, coarse), full = try analyze(path, AnalysisSettings(nodes: 3))
        #expect(abs(cut.reconstruction.test!.relativeResidual - full.reconstruction.test!.relativeResidual) < 1e-12)
        #expect(full.reconstruction.test!.kernelFormMaxAbs < 1e-9)
        #expect(cut.reconstruction.test!.kernelFormMaxAbs > 1e-4)
    }

    /// Clipped SGD keeps the kernel form (c_t = η_t s_t/|B_t|): the kernel route's exact machine
    /// equals the network at round-off, and the recorded scales show that clipping happened.
    @Test func clippedSGDKeepsTheKernelForm() throws {
        let cfg = config(name: "clip", data: #"{"kind":"moons","train":40,"test":20,"noise":0.1}"#,
                         model: #"{"layers":[2,16,16,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.5, weightDecay: 0.01, clipNorm: 0.05),
                         steps: 20, batchSize: 10)
        let path = try recordTrace(cfg)
        let scales = try TraceReader.open(path).steps().map { $0.clipScale! }
        #expect(scales.contains { $0 < 1 })
        let r = try analyze(path, AnalysisSettings(nodes: 3))
        #expect(r.kernelMachines.contains { $0.name == "path-km" })
        #expect(r.reconstruction.test!.kernelFormMaxAbs < 1e-9)
    }

    @Test func sineTanhReconstructsAtRoundOff() throws {
        var cfg = try Presets.load("sine-tanh")
        cfg.training.steps = 60
        let result = try analyze(try recordTrace(cfg))
        #expect(result.reconstruction.train!.relativeResidual < 1e-9)
        #expect(result.reconstruction.test!.relativeResidual < 1e-9)
        #expect(result.reconstruction.test!.kernelFormMaxAbs < 1e-9)
        let exact = result.kernelMachines.first { $0.name == "exact" }!
        #expect(exact.test!.relativeError < 1e-9)
        // Other machines are approximations: their errors are positive and finite.
        for km in result.kernelMachines where km.name != "exact" {
            let figures = try #require(km.test, "\(km.name) has no held-out figures")
            #expect(figures.relativeError.isFinite)
        }
    }

    /// One step, one node: K^p = (η/|B|) Θ(x, x_i; w_0 + ½Δw, w_0) from explicit Jacobians; the
    /// NTK at each checkpoint is symmetric and positive semi-definite.
    @Test func singleStepOneNodeEqualsExplicitKernel() throws {
        let cfg = config(name: "one", data: #"{"kind":"moons","train":10,"test":6,"noise":0.1}"#,
                         model: #"{"layers":[2,6,6,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 0.5), steps: 1)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let (_, kp) = try PathAnalyzer(settings: AnalysisSettings(nodes: 1)).analyzeWithKernel(reader: reader)
        let w0 = try reader.checkpoint(step: 0), w1 = try reader.checkpoint(step: 1)
        let mid = zip(w0, w1).map { 0.5 * ($0 + $1) }
        let xq = Matrix(rows: 16, cols: 2, data: run.testX.data + run.trainX.data)
        let explicit = Matrix.product(run.model.jacobians(mid, xq), run.model.jacobians(w0, run.trainX), transposeB: true)
        let c = run.stepRecords[0].learningRate / 10
        for i in kp.data.indices { #expect(abs(kp.data[i] - c * explicit.data[i]) <= 1e-13 * max(1, abs(c * explicit.data[i]))) }
        for step in [0, 1] {
            let w = try reader.checkpoint(step: step)
            let f = run.model.features(w, run.trainX)
            let theta = TangentFeatures.kernel(f, f)
            for i in 0..<10 { for j in 0..<10 { #expect(abs(theta[i, j] - theta[j, i]) <= 1e-13 * max(1, abs(theta[i, j]))) } }
            let eig = try LinearAlgebra.symmetricEigenvalues(theta)
            #expect(eig.min()! >= -1e-10 * eig.max()!)
        }
    }

    @Test func replayFromSparseCheckpointsMatchesDenseTrace() throws {
        var cfg = config(name: "rep", data: #"{"kind":"moons","train":24,"test":8,"noise":0.1}"#,
                         model: #"{"layers":[2,8,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.4, weightDecay: 1e-3), steps: 25, batchSize: 8)
        let dense = try analyze(try recordTrace(cfg, name: "dense.sqlite"))
        cfg.training.checkpointEvery = 10
        let sparse = try analyze(try recordTrace(cfg, name: "sparse.sqlite"))
        #expect(sparse.replay.largestMismatch < 1e-12)
        #expect(sparse.replay.checkpointEvery == 10)
        #expect(dense.kernelMachines.map(\.name) == sparse.kernelMachines.map(\.name))
        for (a, b) in zip(dense.kernelMachines, sparse.kernelMachines) {
            // A machine skipped with a note (ntkinf-km: plain (S)GD without decay only) has no figures in either.
            guard let at = a.test, let bt = b.test else {
                #expect(a.test == nil && b.test == nil, "\(a.name)")
                continue
            }
            #expect(abs(at.relativeError - bt.relativeError) <= 1e-9 * max(1, at.relativeError), "\(a.name)")
        }
        #expect(sparse.reconstruction.test!.relativeResidual < 1e-9)
    }

    @Test func adaptiveReachesToleranceWhereTwoNodesDoNot() throws {
        let cfg = config(name: "relu", data: #"{"kind":"teacher","train":12,"test":6,"inputDim":4}"#,
                         model: #"{"layers":[4,16,16,1],"activation":"relu","sigmaW":1.4142135623730951}"#, loss: .mse,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.05), steps: 8, batchSize: 6)
        let path = try recordTrace(cfg)
        let tol = 1e-8
        var twoNodes = AnalysisSettings(nodes: 2)
        twoNodes.quadrature = .gauss   // the fixed rule (exact quadrature is the default for relu)
        let fixed = try analyze(path, twoNodes)
        var settings = AnalysisSettings(nodes: 2, adaptiveTolerance: tol)
        settings.maxNodes = 4096   // this tolerance needs more than the default budget at q = 2
        let adaptive = try analyze(path, settings)
        #expect(fixed.reconstruction.test!.maxAbsResidual > tol)
        #expect(adaptive.reconstruction.test!.maxAbsResidual <= tol)
        #expect(adaptive.reconstruction.train!.maxAbsResidual <= tol)
        #expect(adaptive.reconstruction.maxDepth > 1)
        #expect(!adaptive.run.notes.contains { $0.contains("node budget") })
    }

    /// A node budget bounds the work: a far tighter tolerance with a small budget finishes, says
    /// that it stopped at the budget, and still gives a finite residual no worse than the fixed rule's.
    @Test func adaptiveStopsAtItsNodeBudgetAndSaysSo() throws {
        let cfg = config(name: "relu", data: #"{"kind":"teacher","train":12,"test":6,"inputDim":4}"#,
                         model: #"{"layers":[4,16,16,1],"activation":"relu","sigmaW":1.4142135623730951}"#, loss: .mse,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.05), steps: 8, batchSize: 6)
        let path = try recordTrace(cfg)
        var settings = AnalysisSettings(nodes: 2, adaptiveTolerance: 1e-15)
        settings.maxNodes = 16
        let capped = try analyze(path, settings)
        #expect(capped.run.notes.first?.contains("stopped at its node budget (--max-nodes 16") == true, "\(capped.run.notes)")
        #expect(capped.reconstruction.meanNodesPerStep <= 16)
        var twoNodes = AnalysisSettings(nodes: 2)
        twoNodes.quadrature = .gauss   // the fixed rule (exact quadrature is the default for relu)
        let fixed = try analyze(path, twoNodes)
        #expect(capped.reconstruction.test!.maxAbsResidual.isFinite)
        #expect(capped.reconstruction.test!.maxAbsResidual <= fixed.reconstruction.test!.maxAbsResidual)
        // --max-nodes without --adaptive is refused.
        var alone = AnalysisSettings()
        alone.maxNodes = 16
        #expect(throws: AnalysisError.self) { try alone.validate() }
    }
}

@Suite("Multiclass analysis")
struct MulticlassAnalysisTests {
    /// Full C×C blocks and traces: `exact` is independent of the choice, and every machine gives finite figures.
    @Test(arguments: [KernelMode.full, .trace])
    func bothKernelModes(mode: KernelMode) throws {
        let cfg = config(name: "spirals", data: #"{"kind":"spirals","train":24,"test":9,"classes":3}"#,
                         model: #"{"layers":[2,8,3],"activation":"tanh"}"#, loss: .crossEntropy,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 0.5), steps: 6)
        let r = try analyze(try recordTrace(cfg), AnalysisSettings(kernel: mode))
        #expect(r.settings.kernel == mode.rawValue)
        #expect(r.reconstruction.test!.relativeResidual < 1e-9)
        #expect(r.reconstruction.test!.kernelFormMaxAbs < 1e-9)
        for km in r.kernelMachines {
            let f = try #require(km.test, "\(km.name)")
            #expect(f.relativeError.isFinite && f.argmaxAgreement != nil && f.accuracy != nil, "\(km.name)")
        }
        // ntkT-krr fits the training points almost exactly with a tiny ridge.
        #expect(r.kernelMachines.first { $0.name == "ntkT-krr" }!.train!.relativeError < 1e-2)
    }
}
