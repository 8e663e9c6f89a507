import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// Adam's and RMSProp's preconditioned path kernel (math §5) against the double sum written out:
/// `K^p(x, x_i) = Σ_t Σ_{s≤t, i∈B_s} η_t c_{t,s} (s_s/|B_s|) J̄_t(x) Dq_t (Dx_s ⊙ J(x_i; w_s))ᵀ`
/// with every Jacobian explicit, the preconditioners from moment buffers kept here by hand and
/// checked against the recorded steps.
@Suite("Preconditioned path kernel")
struct PreconditionedKernelTests {
    /// The hand-kept optimizer of the oracle: first and second moments, clip scale and coupled
    /// decay as torch.optim writes them. Returns per step `D_t` and the update it predicts.
    /// Parameter groups: `rate[k]` is parameter k's learning-rate multiplier m_k (its group's lr
    /// over the base rate; the update of parameter k is PyTorch's with the group rate η_t m_k, so
    /// M joins D: SGD's D is M, Adam's and RMSProp's `D ⊙ M`), `lambda[k]` its weight decay.
    static func handOptimizer(_ spec: OptimizerSpec, gradients: [[Double]], weights: [[Double]], rates: [Double],
                              rate: [Double]? = nil, lambda: [Double]? = nil,
                              anchor: [Double]? = nil) -> (d: [[Double]], delta: [[Double]]) {
        let P = gradients[0].count
        let mk = rate ?? [Double](repeating: 1, count: P)
        let wd = lambda ?? [Double](repeating: spec.weightDecay, count: P)
        var m = [Double](repeating: 0, count: P), v = m, buf = m
        var ds: [[Double]] = [], deltas: [[Double]] = []
        for (t, g0) in gradients.enumerated() {
            var g = g0
            if let clip = spec.clipNorm {
                let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > clip { g = g.map { $0 * clip / norm } }
            }
            // The decay acts on w − w_a (w_a: the anchor w₀ under decayAnchor "initial", else 0).
            if spec.kind != .adamw { for k in 0..<P where wd[k] > 0 { g[k] += wd[k] * (weights[t][k] - (anchor?[k] ?? 0)) } }
            var d = [Double](repeating: 0, count: P), delta = d
            if spec.kind == .sgd {
                // PyTorch's heavy ball: buf_0 = u_0, buf_t = μ buf + (1 − dampening) u_t; Nesterov u_t + μ buf_t.
                for k in 0..<P {
                    d[k] = mk[k]
                    buf[k] = t == 0 ? g[k] : spec.momentum * buf[k] + (1 - spec.dampening) * g[k]
                    delta[k] = -(rates[t] * mk[k]) * (spec.nesterov ? g[k] + spec.momentum * buf[k] : buf[k])
                }
            } else if spec.kind == .rmsprop {
                for k in 0..<P {
                    v[k] = spec.alpha * v[k] + (1 - spec.alpha) * g[k] * g[k]
                    let rms = 1 / (v[k].squareRoot() + spec.eps)
                    d[k] = rms * mk[k]
                    buf[k] = spec.momentum * buf[k] + rms * g[k]
                    delta[k] = -(rates[t] * mk[k]) * (spec.momentum > 0 ? buf[k] : rms * g[k])
                }
            } else {
                let bc1 = 1 - pow(spec.beta1, Double(t + 1)), bc2 = 1 - pow(spec.beta2, Double(t + 1))
                for k in 0..<P {
                    m[k] = spec.beta1 * m[k] + (1 - spec.beta1) * g[k]
                    v[k] = spec.beta2 * v[k] + (1 - spec.beta2) * g[k] * g[k]
                    let adam = 1 / ((v[k] / bc2).squareRoot() + spec.eps)
                    d[k] = adam * mk[k]
                    delta[k] = -(rates[t] * mk[k]) * adam * m[k] / bc1
                    if spec.kind == .adamw { delta[k] -= rates[t] * mk[k] * wd[k] * (weights[t][k] - (anchor?[k] ?? 0)) }
                }
            }
            ds.append(d)
            deltas.append(delta)
        }
        return (ds, deltas)
    }

    @Test(arguments: [
        #"{"kind":"adam","learningRate":0.05,"weightDecay":0.02,"clipNorm":0.3}"#,
        #"{"kind":"adamw","learningRate":0.05,"weightDecay":0.05,"beta1":0.8,"beta2":0.99}"#,
        #"{"kind":"rmsprop","learningRate":0.01,"momentum":0.7,"weightDecay":0.01}"#,
        #"{"kind":"rmsprop","learningRate":0.01,"alpha":0.9}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01,"clipNorm":0.5}"#,
        // Decay towards the initial weights (NeuralUCB's ridge): the same kernel, the decay term
        // R_wd of w − w₀ (the kernel form's reconstruction checks it).
        #"{"kind":"adam","learningRate":0.05,"weightDecay":0.2,"clipNorm":0.3,"decayAnchor":"initial"}"#,
        #"{"kind":"adamw","learningRate":0.05,"weightDecay":0.5,"beta1":0.8,"beta2":0.99,"decayAnchor":"initial"}"#,
        #"{"kind":"rmsprop","learningRate":0.01,"momentum":0.7,"weightDecay":0.2,"decayAnchor":"initial"}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.2,"decayAnchor":"initial"}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.2,"clipNorm":0.5,"decayAnchor":"initial"}"#,
    ])
    func kernelEqualsTheDoubleSum(optimizer: String) throws {
        try kernelEqualsTheDoubleSum(optimizer: optimizer, network: .mlp)
    }

    /// The same for layer networks (their tangent features are `Layer.jacobians` rows): a smooth
    /// CNN and a residual block with layer norm, on 4×4 images of a teacher; the oracle's Jacobians
    /// come from forward-mode JVPs (`explicitJacobians`), not from the rows the analyzer uses.
    @Test(arguments: [
        #"{"kind":"adam","learningRate":0.05,"weightDecay":0.02,"clipNorm":0.3}"#,
        #"{"kind":"adamw","learningRate":0.05,"weightDecay":0.05,"beta1":0.8,"beta2":0.99}"#,
        #"{"kind":"rmsprop","learningRate":0.01,"momentum":0.7,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01,"clipNorm":0.5}"#,
    ], [OracleNetwork.cnn, .residual])
    func layerNetworkKernelEqualsTheDoubleSum(optimizer: String, network: OracleNetwork) throws {
        try kernelEqualsTheDoubleSum(optimizer: optimizer, network: network)
    }

    /// Parameter groups with their own learning rates (and decays): plain SGD and momentum
    /// become the preconditioned form with D = M, AdamW takes `D ⊙ M` and the decay `m_k λ_k`.
    /// The biases step at 3× the base rate without decay, the first layer's weights (`*0.weight`:
    /// `layers.0.weight`, `0.weight`, and the residual net's `1.block.0.weight`) at 0.4×.
    @Test(arguments: [
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.02,"groups":[{"parameters":["*.bias"],"learningRate":0.3,"weightDecay":0},{"parameters":["*0.weight"],"learningRate":0.04}]}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01,"groups":[{"parameters":["*.bias"],"learningRate":0.3,"weightDecay":0},{"parameters":["*0.weight"],"learningRate":0.04}]}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"clipNorm":0.5,"groups":[{"parameters":["*.bias"],"learningRate":0.3},{"parameters":["*0.weight"],"learningRate":0.04}]}"#,
        #"{"kind":"adamw","learningRate":0.05,"weightDecay":0.05,"beta1":0.8,"beta2":0.99,"groups":[{"parameters":["*.bias"],"learningRate":0.15,"weightDecay":0},{"parameters":["*0.weight"],"learningRate":0.02}]}"#,
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.2,"decayAnchor":"initial","groups":[{"parameters":["*.bias"],"learningRate":0.3,"weightDecay":0},{"parameters":["*0.weight"],"learningRate":0.04}]}"#,
    ], [OracleNetwork.mlp, .cnn])
    func groupRatesKernelEqualsTheDoubleSum(optimizer: String, network: OracleNetwork) throws {
        try kernelEqualsTheDoubleSum(optimizer: optimizer, network: network)
    }

    enum OracleNetwork: String, CaseIterable, Sendable {
        case mlp, cnn, residual
        var data: String {
            self == .mlp ? #"{"kind":"spirals","train":12,"test":4,"classes":3}"#
                         : #"{"kind":"teacher","train":12,"test":4,"inputDim":16,"outputDim":2}"#
        }
        var model: String {
            switch self {
            case .mlp: return #"{"layers":[2,6,3],"activation":"tanh"}"#
            case .cnn: return LayerNetworkFixtures.smoothCNN
            case .residual: return LayerNetworkFixtures.residual
            }
        }
        var loss: LossKind { self == .mlp ? .crossEntropy : .mse }
        var outputs: Int { self == .mlp ? 3 : 2 }
    }

    func kernelEqualsTheDoubleSum(optimizer: String, network: OracleNetwork) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        let cfg = config(name: "pc", data: network.data, model: network.model, loss: network.loss,
                         optimizer: spec, steps: 7, batchSize: 4)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let model = run.model, C = network.outputs, T = run.steps, nT = run.testX.rows, n = run.trainX.rows
        let w = try (0...T).map { try reader.checkpoint(step: $0) }
        let batches = run.stepRecords.map { $0.batch.map(Int.init) }
        let rates = run.stepRecords.map(\.learningRate)
        // Batch gradients (mean loss) and per-example output gradients at w_s.
        var grads: [[Double]] = [], gs: [Matrix] = []
        for s in 0..<T {
            let xs = run.trainX.rows(at: batches[s]), ys = run.trainY.rows(at: batches[s])
            let g = run.loss.evaluate(outputs: model.forward(w[s], xs), targets: ys).perExampleGradient
            gs.append(g)
            grads.append(model.vjp(w[s], xs, cotangent: (1 / Double(xs.rows)) * g))
        }
        // Group rates and decays placed by hand from the tensor names (the tests' groups: biases,
        // then `*0.weight`; each setting from the first group that matches, else the top level).
        var rate: [Double]? = nil, lambda: [Double]? = nil
        if !spec.groups.isEmpty {
            var r: [Double] = [], l: [Double] = []
            for (name, count) in model.parameterTensors {
                let g = name.hasSuffix(".bias") ? spec.groups[0] : name.hasSuffix("0.weight") ? spec.groups[1] : nil
                r += repeatElement((g?.learningRate ?? spec.learningRate) / spec.learningRate, count: count)
                l += repeatElement(g?.weightDecay ?? spec.weightDecay, count: count)
            }
            #expect(Set(r).count == 3, "three different group rates in \(network)")
            (rate, lambda) = (r, l)
        }
        let hand = Self.handOptimizer(spec, gradients: grads, weights: Array(w[0..<T]), rates: rates, rate: rate, lambda: lambda,
                                      anchor: spec.decayAnchor == .initial ? w[0] : nil)
        // The oracle's optimizer reproduces the recorded steps.
        for t in 0..<T {
            let recorded = zip(w[t + 1], w[t]).map { $0 - $1 }
            let err = zip(recorded, hand.delta[t]).map { abs($0 - $1) }.max()!
            #expect(err < 1e-13, "step \(t): hand-kept optimizer is \(err) off the recorded update")
        }
        let clipScales = grads.map { g -> Double in
            guard let clip = spec.clipNorm else { return 1 }
            let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return norm > clip ? clip / norm : 1
        }
        // c_{t,s} and where D sits (D_t with the query for Adam, D_s with the training side for
        // RMSProp, none for SGD momentum).
        let isAdam = spec.kind == .adam || spec.kind == .adamw
        func c(_ t: Int, _ s: Int) -> Double {
            if spec.kind == .sgd {
                let heavy = pow(spec.momentum, Double(t - s)) * (s == 0 ? 1 : 1 - spec.dampening)
                return spec.nesterov ? spec.momentum * heavy + (s == t ? 1 : 0) : heavy
            }
            return isAdam ? (1 - spec.beta1) * pow(spec.beta1, Double(t - s)) / (1 - pow(spec.beta1, Double(t + 1)))
                          : pow(spec.momentum, Double(t - s))   // 0^0 = 1
        }
        let rule = GaussLegendre(nodes: 3)
        let xq = run.testX
        var oracle = Matrix(rows: nT * C, cols: n * C)
        // The same sum with the group rates left out of D (the control: M must matter).
        var withoutM = Matrix(rows: nT * C, cols: n * C)
        for t in 0..<T {
            let delta = zip(w[t + 1], w[t]).map { $0 - $1 }
            var jbar = Matrix(rows: nT * C, cols: model.parameterCount)
            for (node, weight) in zip(rule.nodes, rule.weights) {
                var ws = w[t]
                Vec.axpy(node, delta, &ws)
                let j = explicitJacobians(model, ws, xq)
                for k in jbar.data.indices { jbar.data[k] += weight * j.data[k] }
            }
            for s in 0...t {
                var jx = explicitJacobians(model, w[s], run.trainX.rows(at: batches[s]))
                let d = isAdam ? hand.d[t] : hand.d[s]
                for r in 0..<jx.rows { for k in 0..<jx.cols { jx[r, k] *= d[k] } }
                let k = Matrix.product(jbar, jx, transposeB: true)
                let coef = rates[t] * c(t, s) * clipScales[s] / Double(batches[s].count)
                for q in 0..<(nT * C) {
                    for (b, i) in batches[s].enumerated() { for cc in 0..<C { oracle[q, i * C + cc] += coef * k[q, b * C + cc] } }
                }
                if let rate {
                    for r in 0..<jx.rows { for k in 0..<jx.cols { jx[r, k] /= rate[k] } }
                    let k0 = Matrix.product(jbar, jx, transposeB: true)
                    for q in 0..<(nT * C) {
                        for (b, i) in batches[s].enumerated() { for cc in 0..<C { withoutM[q, i * C + cc] += coef * k0[q, b * C + cc] } }
                    }
                }
            }
        }
        let (result, kp) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3, kernel: .full))
            .analyzeWithKernel(reader: TraceReader.open(path))
        var err = 0.0, scale = 0.0
        for q in 0..<(nT * C) { for col in 0..<(n * C) {
            err = max(err, abs(kp[q, col] - oracle[q, col]))
            scale = max(scale, abs(oracle[q, col]))
        } }
        #expect(scale > 0)
        #expect(err <= 1e-12 * scale, "K^p is \(err) off the double sum (largest entry \(scale))")
        if rate != nil {
            let off = zip(kp.data, withoutM.data).map { abs($0 - $1) }.max()!
            #expect(off > 1e-2 * scale, "group rates: K^p without M is only \(off) off (largest entry \(scale))")
        }
        // The kernel form rebuilds the network (decay terms included) and names its kernel.
        // (Both routes carry the same quadrature error, q = 3: the JVP route's residual bounds it.)
        let quadrature = max(1e-13, result.reconstruction.test!.maxAbsResidual)
        #expect(result.reconstruction.test!.kernelFormMaxAbs < 10 * quadrature)
        #expect(result.kernelMachines.contains { $0.name == "path-km" })
        // SGD momentum: the two-time kernel; plain SGD with group rates, Adam, RMSProp: preconditioned.
        let twoTime = spec.kind == .sgd && spec.momentum > 0
        #expect(result.run.notes.contains { $0.contains(twoTime ? "two-time path kernel" : "preconditioned path kernel") })
        #expect(result.settings.pathKernel?.hasPrefix(twoTime ? "two-time path kernel" : "preconditioned path kernel") == true)
        if rate != nil {
            #expect(result.settings.pathKernel?.contains("group learning rates M") == true, "\(result.settings.pathKernel ?? "")")
            #expect(result.run.notes.contains { $0.contains("M = diag(η_k/η)") })
            // The windowed momentum route has no M: --momentum-tolerance leaves the exact kernel in place.
            var windowed = AnalysisSettings(nodes: 3, kernel: .full)
            windowed.momentumTolerance = 1e-3
            let (w, kw) = try PathAnalyzer(settings: windowed).analyzeWithKernel(reader: TraceReader.open(path))
            #expect(w.settings.pathKernel == result.settings.pathKernel)
            #expect(kw.data == kp.data)
        } else if spec.kind == .sgd {
            // The windowed route with a negligible tail cut gives the same kernel.
            var windowed = AnalysisSettings(nodes: 3, kernel: .full)
            windowed.momentumTolerance = 1e-300
            let (w, kw) = try PathAnalyzer(settings: windowed).analyzeWithKernel(reader: TraceReader.open(path))
            #expect(w.settings.pathKernel?.contains("tail <") == true)
            #expect(zip(kw.data, kp.data).map { abs($0 - $1) }.max()! <= 1e-12 * scale)
            // Its decay term (a momentum buffer of w_s − w_a) rebuilds the network as well.
            #expect(w.reconstruction.test!.kernelFormMaxAbs < 10 * quadrature)
        }
        #expect(!result.attribution.isEmpty)

        // --precision f32: the same sums in float32 (features, R, products), accumulated in float64.
        let (r32, kp32) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3, kernel: .full, precision: .f32))
            .analyzeWithKernel(reader: TraceReader.open(path))
        let err32 = zip(kp32.data, oracle.data).map { abs($0 - $1) }.max()!
        #expect(err32 <= 1e-4 * scale, "float32 K^p is \(err32) off (largest entry \(scale))")
        #expect(err32 > 0)   // it is float32 indeed
        #expect(r32.reconstruction.test!.kernelFormMaxAbs < 1e-4)

        // Without stored optimizer state (a recorder that writes none) D_t is recomputed from a
        // fresh state along the stored weights: the same kernel.
        try sqlite(path, "DELETE FROM optimizer_state")
        let (_, kpNoState) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3, kernel: .full))
            .analyzeWithKernel(reader: TraceReader.open(path))
        let stateErr = zip(kpNoState.data, kp.data).map { abs($0 - $1) }.max()!
        #expect(stateErr <= 1e-12 * scale)

        // Trace mode keeps Σ_c K_cc and the same decomposition.
        let (traced, kt) = try PathAnalyzer(settings: AnalysisSettings(nodes: 3, kernel: .trace))
            .analyzeWithKernel(reader: TraceReader.open(path))
        var terr = 0.0
        for q in 0..<nT { for i in 0..<n {
            let want = (0..<C).reduce(0.0) { $0 + oracle[q * C + $1, i * C + $1] }
            terr = max(terr, abs(kt[q, i] - want))
        } }
        #expect(terr <= 1e-12 * scale)
        #expect(traced.reconstruction.test!.kernelFormMaxAbs < 10 * quadrature)
    }

    /// The explicit Jacobians built from tangent features, in the analyzer's layer-by-layer layout,
    /// equal `jacobians`, scaled and combined (five nodes: a group of four and a remainder; the
    /// rows in two ranges, as the analyzer's threads split them).
    @Test func accumulatedJacobiansMatchExplicitOnes() throws {
        let model = try MLP(spec: JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[3,5,4,2],"activation":"tanh"}"#.utf8)))
        var rng = PortableRandom(seed: 5)
        let x = Matrix(rows: 3, cols: 3, data: (0..<9).map { _ in rng.normal() })
        let ws = (1...5).map { model.initialParameters(seed: UInt64($0)) }
        let weights = [0.3, -1.2, 0.7, 2.0, -0.4]
        let d = (0..<model.parameterCount).map { _ in rng.uniform() + 0.5 }
        let rows = 6   // C·n, channel-major: row c·3 + r
        var wBlocks = model.layers.map { l in (0..<(rows * l.weightCount)).map { _ in rng.normal() } }
        var bBlocks = model.layers.map { l in (0..<(rows * l.outputs)).map { _ in rng.normal() } }
        let before = (wBlocks, bBlocks)
        let nodes = zip(ws, weights).map { (model.tangentFeatures($0, x), $1) }
        for layer in model.layers {
            let l = layer.index
            d.withUnsafeBufferPointer { dp in
                wBlocks[l].withUnsafeMutableBufferPointer { wp in
                    bBlocks[l].withUnsafeMutableBufferPointer { bp in
                        for range in [0..<2, 2..<rows] {
                            model.accumulateLayerJacobians(nodes, layer: l, rows: range, scale: dp.baseAddress!, decay: 0.7,
                                                           weights: wp.baseAddress!, bias: bp.baseAddress!)
                        }
                    }
                }
            }
        }
        let js = ws.map { model.jacobians($0, x) }
        var err = 0.0
        for c in 0..<2 { for r in 0..<3 {
            let row = c * 3 + r
            func want(_ old: Double, _ k: Int) -> Double {
                0.7 * old + d[k] * zip(js, weights).reduce(0) { $0 + $1.1 * $1.0[r * 2 + c, k] }
            }
            for layer in model.layers {
                let l = layer.index, din = layer.inputs
                for i in 0..<layer.outputs {
                    for k in 0..<din {
                        let e = (row * layer.outputs + i) * din + k
                        err = max(err, abs(wBlocks[l][e] - want(before.0[l][e], layer.weightOffset + i * din + k)))
                    }
                    let e = row * layer.outputs + i
                    err = max(err, abs(bBlocks[l][e] - want(before.1[l][e], layer.biasOffset! + i)))
                }
            }
        } }
        #expect(err < 1e-14)
    }
}
