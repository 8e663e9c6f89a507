import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
import PKTraining
@testable import PKAnalysis

/// Small layer networks on 4×4 single-channel images (a teacher with 16 inputs, 2 outputs).
enum LayerNetworkFixtures {
    /// conv 3×3 same (2 channels), tanh, average pool 2, flatten, dense 2: P = 20 + 18 = 38.
    static let smoothCNN = #"""
    {"kind": "sequential", "input": [1, 4, 4], "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"}, {"kind": "tanh"},
      {"kind": "avgpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    /// A stem conv, a residual block (layer norm, conv, gelu, conv without bias) with a 1×1
    /// projection shortcut, global average pooling and a dense head (`Docs/networks.md`'s worked
    /// example with two outputs).
    static let residual = #"""
    {"kind": "sequential", "input": [1, 4, 4], "layers": [
      {"kind": "conv2d", "out": 2, "kernel": 3, "padding": "same"},
      {"kind": "residual",
       "block": {"kind": "sequential", "layers": [
         {"kind": "layernorm"},
         {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"},
         {"kind": "gelu"},
         {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same", "bias": false}]},
       "shortcut": {"kind": "conv2d", "out": 3, "kernel": 1, "bias": false}},
      {"kind": "globalavgpool"},
      {"kind": "dense", "out": 2}]}
    """#
    /// conv 3×3 same (3 channels), relu, max pool 2, flatten, dense 2: piecewise linear.
    static let reluCNN = #"""
    {"kind": "sequential", "input": [1, 4, 4], "layers": [
      {"kind": "conv2d", "out": 3, "kernel": 3, "padding": "same"}, {"kind": "relu"},
      {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 2}]}
    """#
    static let teacher = #"{"kind":"teacher","train":12,"test":4,"inputDim":16,"outputDim":2}"#
}

/// Per-example Jacobians `(n·C) × P` by an independent route: for a layer network, one
/// forward-mode JVP per parameter (column k = `J·e_k`), never the pullback rows the analyzer's
/// features are made of; for an MLP, `MLP.jacobians`.
func explicitJacobians(_ model: any Network, _ w: [Double], _ x: Matrix) -> Matrix {
    guard model is LayerNetwork else { return model.jacobians(w, x) }
    let n = x.rows, C = model.outputDim, P = model.parameterCount
    var J = Matrix(rows: n * C, cols: P)
    for k in 0..<P {
        var e = [Double](repeating: 0, count: P)
        e[k] = 1
        let col = model.jvp(w, x, tangent: e)
        for r in 0..<n { for c in 0..<C { J[r * C + c, k] = col[r, c] } }
    }
    return J
}

@Suite("Layer networks in training and analysis")
struct LayerNetworkAnalysisTests {
    static func network(_ json: String) throws -> any Network {
        try Networks.make(JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)))
    }

    /// The tangent features of a layer network give `J_A J_Bᵀ` at two different weights
    /// (explicit Jacobians from JVPs), their JVPs `J·v`, and the preconditioned route's explicit
    /// rows (`DenseLayer.accumulateJacobians` on its one block).
    @Test(arguments: [LayerNetworkFixtures.smoothCNN, LayerNetworkFixtures.residual, LayerNetworkFixtures.reluCNN])
    func featuresAreTheJacobianRows(json: String) throws {
        let model = try Self.network(json)
        var rng = PortableRandom(seed: 5)
        let u = model.initialParameters(seed: 1), v = model.initialParameters(seed: 2)
        let x1 = Matrix(rows: 3, cols: 16, data: (0..<48).map { _ in rng.normal() })
        let x2 = Matrix(rows: 2, cols: 16, data: (0..<32).map { _ in rng.normal() })
        let tangent = (0..<model.parameterCount).map { _ in rng.normal() }
        let ja = explicitJacobians(model, u, x1), jb = explicitJacobians(model, v, x2)
        let explicit = Matrix.product(ja, jb, transposeB: true)
        let fa = model.tangentFeatures(u, x1, as: Double.self, tangents: [tangent]), fb = model.features(v, x2)
        let scale = max(1, explicit.data.map(abs).max()!)
        // 1e-12 of the largest entry: two routes (pullback rows, JVP columns) at round-off.
        for (a, b) in zip(TangentFeatures.kernel(fa, fb).data, explicit.data) { #expect(abs(a - b) <= 1e-12 * scale) }
        let jv = Matrix.product(ja, Matrix(rows: tangent.count, cols: 1, data: tangent))
        let jvScale = max(1, jv.data.map(abs).max()!)
        for r in 0..<3 { for c in 0..<2 { #expect(abs(fa.outputTangents[0][r, c] - jv[r * 2 + c, 0]) <= 1e-12 * jvScale) } }
        #expect(fa.outputs == model.forward(u, x1))
        // Float32 features: the same kernel to float32 round-off (1e-5 of the largest entry).
        let f32 = TangentFeatures.kernel(model.tangentFeatures(u, x1, as: Float.self, tangents: []),
                                         model.tangentFeatures(v, x2, as: Float.self, tangents: []))
        for (a, b) in zip(f32.data, explicit.data) { #expect(abs(Double(a) - b) <= 1e-5 * scale) }
        // The preconditioned route's rows: block 0 with a scale vector d, rows c·n + r.
        let block = model.featureBlocks[0], P = model.parameterCount
        #expect(model.featureBlocks.count == 1 && block.outputs == P && block.inputs == 1)
        let d = (0..<P).map { _ in 0.5 + abs(rng.normal()) }
        var target = [Double](repeating: 0, count: 2 * 3 * P)
        d.withUnsafeBufferPointer { dp in
            target.withUnsafeMutableBufferPointer { tp in
                block.accumulateJacobians([(fa, 0.7)], block: 0, rows: 0..<6, scale: dp.baseAddress!, decay: 0,
                                          weights: tp.baseAddress!, bias: nil)
            }
        }
        for c in 0..<2 { for r in 0..<3 { for k in 0..<P {
            let want = 0.7 * ja[r * 2 + c, k] * d[k]
            #expect(abs(target[(c * 3 + r) * P + k] - want) <= 1e-12 * max(1, abs(want)))
        } } }
    }

    /// Smooth layer networks reconstruct at round-off under GD, momentum and Adam, every kernel
    /// route included, in float64; float32 to its round-off.
    @Test(arguments: [
        #"{"kind":"gd","learningRate":0.05}"#,
        #"{"kind":"sgd","learningRate":0.05,"momentum":0.9}"#,
        #"{"kind":"adam","learningRate":0.01}"#,
        // Parameter groups: no decay on biases (large λ elsewhere, so a decay applied to every
        // parameter would leave the kernel form far off).
        #"{"kind":"adamw","learningRate":0.01,"weightDecay":0.5,"groups":[{"parameters":["*.bias"],"weightDecay":0}]}"#,
        #"{"kind":"sgd","learningRate":0.05,"momentum":0.9,"weightDecay":0.3,"groups":[{"parameters":["*.bias"],"weightDecay":0}]}"#,
        // Parameter groups with their own learning rates: GD becomes the preconditioned form with
        // D = M; RMSProp takes D ⊙ M.
        #"{"kind":"gd","learningRate":0.05,"weightDecay":0.1,"groups":[{"parameters":["0.*"],"learningRate":0.2},{"parameters":["*.bias"],"learningRate":0.01,"weightDecay":0}]}"#,
        #"{"kind":"rmsprop","learningRate":0.003,"momentum":0.5,"weightDecay":0.1,"groups":[{"parameters":["*.bias"],"learningRate":0.01,"weightDecay":0}]}"#,
    ], [LayerNetworkFixtures.smoothCNN, LayerNetworkFixtures.residual])
    func smoothNetworksReconstructAtRoundOff(optimizer: String, model: String) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        let cfg = config(name: "ln", data: LayerNetworkFixtures.teacher, model: model, loss: .mse, optimizer: spec,
                         steps: 6, batchSize: spec.kind == .gd ? nil : 4, checkpointEvery: 3)
        let path = try recordTrace(cfg)
        let result = try analyze(path, AnalysisSettings(nodes: 4))
        let test = try #require(result.reconstruction.test)
        // Round-off: the residual of f_T − f_0 rebuilt by the JVP route and by the kernel form.
        #expect(test.relativeResidual < 1e-9, "relative residual \(test.relativeResidual)")
        #expect(test.kernelFormMaxAbs < 1e-9, "kernel form \(test.kernelFormMaxAbs)")
        #expect(result.replay.inconsistent != true)
        #expect(result.kernelMachines.contains { $0.name == "path-km" })
        #expect(result.run.model.hasPrefix("sequential [1, 4, 4]: conv2d(2, 3)"))
        // The trainer stores image inputs as [n, C, H, W]; inspect reads them back.
        let summary = try TraceSummary.make(path: path)
        #expect(summary.train.features == 16 && summary.train.exampleShape == [1, 4, 4])
        #expect(summary.text().contains("16 features (examples 1×4×4)"))
        let r32 = try analyze(path, AnalysisSettings(nodes: 4, precision: .f32))
        #expect(try #require(r32.reconstruction.test).kernelFormMaxAbs < 1e-4)
    }

    /// ReLU with max pooling under the Gauss rule stops at the quadrature error; more nodes and
    /// `--adaptive` shrink it.
    @Test func reluNetworkAtItsQuadratureError() throws {
        let cfg = config(name: "lnr", data: LayerNetworkFixtures.teacher, model: LayerNetworkFixtures.reluCNN, loss: .mse,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 0.5), steps: 6)
        let path = try recordTrace(cfg)
        // The Gauss rule asked for: exact quadrature is the default for this network on GD (math §1.1).
        var one = AnalysisSettings(nodes: 1, queries: .test, scope: .exact)
        one.quadrature = .gauss
        let coarse = try #require(analyze(path, one).reconstruction.test)
        var settings = AnalysisSettings(nodes: 2, adaptiveTolerance: 1e-10, queries: .test, scope: .exact)
        settings.maxNodes = 4096
        let adaptive = try #require(analyze(path, settings).reconstruction.test)
        // Kinks are crossed: one node per step is off by far more than round-off.
        #expect(coarse.maxAbsResidual > 1e-6, "one node: residual \(coarse.maxAbsResidual)")
        #expect(adaptive.maxAbsResidual <= coarse.maxAbsResidual)
        #expect(adaptive.maxAbsResidual < 1e-8, "adaptive residual \(adaptive.maxAbsResidual), one node \(coarse.maxAbsResidual)")
    }

    /// The kink pattern changes exactly when a ReLU input changes sign or a max-pool arg-max moves.
    @Test func kinkPatternSeesReluAndMaxPool() throws {
        let model = try Self.network(LayerNetworkFixtures.reluCNN)
        #expect(model.isPiecewiseLinear)
        let w = model.initialParameters(seed: 3)
        var rng = PortableRandom(seed: 9)
        let x = Matrix(rows: 2, cols: 16, data: (0..<32).map { _ in rng.normal() })
        let p = model.kinkPattern(w, x)
        #expect(p.count == 2 * 3 * 16 + 2 * 3 * 4)   // ReLU inputs, then one arg-max per pooled output
        #expect(try Self.network(LayerNetworkFixtures.smoothCNN).kinkPattern(w.prefix(38).map { $0 }, x).isEmpty)
        // Flipping the sign of the first conv's weights flips its ReLU signs.
        var flipped = w
        for k in 0..<27 { flipped[k] = -flipped[k] }
        for k in 27..<30 { flipped[k] = -flipped[k] }
        #expect(model.kinkPattern(flipped, x) != p)
    }
}

/// Same input, same bits: a layer network's analysis on 1 and 2 threads (the batched Jacobians
/// and the analyzer's blocks depend on the sizes only), for the backward routes and SGD, f64 and f32.
@Suite("Layer networks: determinism")
struct LayerNetworkDeterminismTests {
    @Test(arguments: [
        #"{"kind":"adamw","learningRate":0.01,"weightDecay":0.1,"groups":[{"parameters":["*.bias"],"weightDecay":0}]}|residual"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|relu|f32"#,
        #"{"kind":"sgd","learningRate":0.1}|cnn"#,
    ])
    func oneAndTwoThreadsAgree(route: String) throws {
        let parts = route.split(separator: "|").map(String.init)
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(parts[0].utf8))
        let model = parts[1] == "residual" ? LayerNetworkFixtures.residual : parts[1] == "relu" ? LayerNetworkFixtures.reluCNN : LayerNetworkFixtures.smoothCNN
        let cfg = config(name: "lnd", data: LayerNetworkFixtures.teacher, model: model, loss: .mse, optimizer: spec,
                         steps: 5, batchSize: 4, checkpointEvery: 2)
        let path = try recordTrace(cfg)
        var settings = AnalysisSettings()
        if parts.contains("f32") { settings.precision = .f32 }
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        var prints: [[UInt64]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let (r, k) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
            prints.append(try DeterminismTests.fingerprint(r, k))
        }
        #expect(prints[1] == prints[0], "\(route): 1 and 2 threads differ")
    }
}
