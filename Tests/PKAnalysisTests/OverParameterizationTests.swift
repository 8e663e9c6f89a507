import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// The over-parameterization diagnostics of an analysis (ntk-family contract §5), each figure
/// against an independent oracle on a tiny network: the empirical kernels from explicit Jacobian
/// rows (`explicitJacobians`) and their λ_min from a cyclic Jacobi eigen-solver written here; the
/// analytic λ_min from `pathkernel kernel`'s library code (`InfiniteWidthKernel`) and the same
/// Jacobi solver; travel and pattern flips by direct loops over the raw weights (a forward pass
/// written here from the ntk parameterization's definition); the held-out losses from the
/// linearization by explicit Jacobians and from gradient descent on the linearized model in weight
/// space (which §2's discrete closed form equals). The width-sweep oracle of §5 (widths up to 4096)
/// does not run in seconds in a debug build: it is left for `pathkernel sweep`.
@Suite("Over-parameterization diagnostics")
struct OverParameterizationTests {
    /// λ_min from LAPACK's `dsyevd` against Jacobi on the same (explicitly built) matrix, and two
    /// routes to one kernel (structured features vs explicit Jacobian rows): both round-off on
    /// matrices of ≤ 12 rows with entries O(λ_max); relative to λ_max.
    static let eigenTolerance = 1e-10
    /// Kernel change, travel, losses: the same quantities in another summation order (relative).
    static let roundOffTolerance = 1e-10
    /// Held-out losses through 30 steps of gradient descent on the linearized model in weight
    /// space against the analyzer's route (ntk0-km or the closed form's eigen-decomposition):
    /// round-off amplified by the steps; relative to the loss.
    static let dynamicsTolerance = 1e-8

    /// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (ascending).
    static func jacobiEigenvalues(_ m: Matrix) -> [Double] {
        let n = m.rows
        var a = (0..<n).map { i in (0..<n).map { j in 0.5 * (m[i, j] + m[j, i]) } }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
            if off < 1e-30 * max(1, (0..<n).reduce(0) { $0 + a[$1][$1] * a[$1][$1] }) { break }
            for p in 0..<n {
                for q in (p + 1)..<n where a[p][q] != 0 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k][p], akq = a[k][q]
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p][k], aqk = a[q][k]
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                }
            }
        }
        return (0..<n).map { a[$0][$0] }.sorted()
    }

    /// `Θ̂ = J Jᵀ` from explicit Jacobian rows.
    static func kernel(_ model: any Network, _ w: [Double], _ x: Matrix) -> Matrix {
        let j = explicitJacobians(model, w, x)
        return Matrix.product(j, j, transposeB: true)
    }

    /// Pre-activations of the hidden layers of an `ntk` MLP by its definition (ntk-family §0):
    /// `z_l = (σ_w/√d_l) W_l a_l + σ_b b_l`, flat order `layers.l.weight` `[out, in]` then bias.
    static func preActivations(_ spec: ModelSpec, _ w: [Double], _ x: [Double]) -> [[Double]] {
        var a = x, offset = 0, out: [[Double]] = []
        for l in 0..<(spec.layers.count - 1) {
            let din = spec.layers[l], dout = spec.layers[l + 1]
            let weights = offset, biases = offset + din * dout
            offset = biases + (spec.bias ? dout : 0)
            let z = (0..<dout).map { i in
                var s = 0.0
                for k in 0..<din { s += w[weights + i * din + k] * a[k] }
                return spec.sigmaW / Double(din).squareRoot() * s + (spec.bias ? spec.sigmaB * w[biases + i] : 0)
            }
            if l == spec.layers.count - 2 { break }
            out.append(z)
            a = z.map { max($0, 0) }   // relu
        }
        return out
    }

    /// The trained network, its two ends and its data.
    struct Fixture {
        let result: AnalysisResult
        let diagnostics: AnalysisResult.Diagnostics
        let run: TraceRun
        let w0: [Double], wT: [Double]
    }

    static func fixture(batch: Int?, steps: Int = 30, settings: AnalysisSettings = AnalysisSettings()) throws -> Fixture {
        let cfg = config(name: "overparam", data: #"{"kind":"teacher","train":10,"test":5,"inputDim":3}"#,
                         model: #"{"layers":[3,8,6,1],"activation":"relu","parameterization":"ntk","sigmaW":1.5,"sigmaB":0.1}"#,
                         loss: .mse, optimizer: OptimizerSpec(kind: batch == nil ? .gd : .sgd, learningRate: 0.5),
                         steps: steps, batchSize: batch)
        let path = try recordTrace(cfg)
        let result = try analyze(path, settings)
        let reader = try TraceReader.open(path)
        defer { reader.close() }
        let run = try TraceRun.load(reader)
        return Fixture(result: result, diagnostics: try #require(result.diagnostics), run: run,
                       w0: try reader.checkpoint(step: 0), wT: try reader.checkpoint(step: run.steps))
    }

    /// `(1/q) Σ ½(f − y)²` over the held-out rows.
    static func heldOutMSE(_ f: Matrix, _ y: Matrix) -> Double {
        var s = 0.0
        for i in 0..<f.rows { let d = f[i, 0] - y[i, 0]; s += d * d }
        return 0.5 * s / Double(f.rows)
    }

    /// `steps` full-batch GD steps at rate `eta` on the mean MSE of the model linearized at `w0`,
    /// in weight space with explicit Jacobians; its held-out predictions.
    static func linearizedGD(_ run: TraceRun, _ w0: [Double], eta: Double, steps: Int) -> Matrix {
        let model = run.model, n = run.trainX.rows
        let jx = explicitJacobians(model, w0, run.trainX), jt = explicitJacobians(model, w0, run.testX)
        let f0x = model.forward(w0, run.trainX), f0t = model.forward(w0, run.testX)
        var v = [Double](repeating: 0, count: model.parameterCount)
        for _ in 0..<steps {
            let r = (0..<n).map { i in f0x[i, 0] + (0..<v.count).reduce(0) { $0 + jx[i, $1] * v[$1] } - run.trainY[i, 0] }
            for k in v.indices {
                var g = 0.0
                for i in 0..<n { g += jx[i, k] * r[i] }
                v[k] -= eta / Double(n) * g
            }
        }
        var f = f0t
        for i in 0..<f.rows { f[i, 0] += (0..<v.count).reduce(0) { $0 + jt[i, $1] * v[$1] } }
        return f
    }

    /// `steps` full-batch GD steps at rate `eta` in function space with the analytic NTK `Θ`
    /// (`pathkernel kernel`'s library code) from the network's own `f_0`, written out step by step:
    /// `f ← f − (η/n) Θ(·, X)(f(X) − Y)`; its held-out predictions (what `ntkinf-km` predicts).
    /// Function-space (S)GD with the analytic NTK, written out: step t moves every output by
    /// `−(η/|B_t|) Σ_{j ∈ B_t} Θ(·, x_j)(f(x_j) − y_j)`, B_t the run's recorded batch (`minibatches`)
    /// or every training point.
    static func analyticGD(_ run: TraceRun, _ w0: [Double], eta: Double, steps: Int, minibatches: Bool = false) throws -> Matrix {
        let model = run.model, n = run.trainX.rows
        let k = try InfiniteWidthKernel(spec: model.spec)
        let kxx = try k.kernels(run.trainX).ntk, ktx = try k.kernels(run.testX, run.trainX).ntk
        var fx = model.forward(w0, run.trainX), ft = model.forward(w0, run.testX)
        for t in 0..<steps {
            let batch = minibatches ? run.stepRecords[t].batch.map(Int.init) : Array(0..<n)
            let r = batch.map { fx[$0, 0] - run.trainY[$0, 0] }
            let scale = eta / Double(batch.count)
            let dx = (0..<n).map { i in zip(batch, r).reduce(0) { $0 + kxx[i, $1.0] * $1.1 } }
            for i in 0..<ft.rows { ft[i, 0] -= scale * zip(batch, r).reduce(0) { $0 + ktx[i, $1.0] * $1.1 } }
            for i in 0..<n { fx[i, 0] -= scale * dx[i] }
        }
        return ft
    }

    @Test func kernelsTravelFlipsAndLossesMatchTheirOracles() throws {
        let fx = try Self.fixture(batch: nil)
        let d = fx.diagnostics, run = fx.run, model = run.model
        #expect(d.points == 10 && !d.subset && d.kernelRows == 10)

        // λ_min at both ends, the kernel change and the cosine distance.
        let k0 = Self.kernel(model, fx.w0, run.trainX), kT = Self.kernel(model, fx.wT, run.trainX)
        let e0 = Self.jacobiEigenvalues(k0), eT = Self.jacobiEigenvalues(kT)
        let start = try #require(d.lambdaMinStart), end = try #require(d.lambdaMinEnd)
        #expect(abs(start - e0[0]) <= Self.eigenTolerance * e0.last!, "λ_min(Θ̂_0) \(start) vs \(e0[0])")
        #expect(abs(end - eT[0]) <= Self.eigenTolerance * eT.last!, "λ_min(Θ̂_T) \(end) vs \(eT[0])")
        var diff = 0.0, norm0 = 0.0, dot = 0.0, normT = 0.0
        for k in k0.data.indices {
            diff += (kT.data[k] - k0.data[k]) * (kT.data[k] - k0.data[k])
            norm0 += k0.data[k] * k0.data[k]
            normT += kT.data[k] * kT.data[k]
            dot += k0.data[k] * kT.data[k]
        }
        let change = (diff / norm0).squareRoot(), distance = 1 - dot / (norm0 * normT).squareRoot()
        #expect(change > 1e-3, "the kernel moved: the comparison is not vacuous")
        #expect(abs(try #require(d.kernelChange) - change) <= Self.roundOffTolerance * change)
        #expect(abs(try #require(d.kernelDistance) - distance) <= Self.roundOffTolerance)

        // Analytic λ_min: pathkernel kernel's library code, Jacobi on its matrix.
        let analytic = try InfiniteWidthKernel(spec: model.spec).kernels(run.trainX).ntk
        let ea = Self.jacobiEigenvalues(analytic)
        #expect(d.analyticNote == nil)
        #expect(abs(try #require(d.analyticLambdaMin) - ea[0]) <= Self.eigenTolerance * ea.last!)

        // Separation: 2 − 2 cos of every pair.
        var best = Double.infinity
        for i in 0..<run.trainX.rows {
            for j in 0..<run.trainX.rows where j != i {
                var xi = 0.0, xj = 0.0, xij = 0.0
                for c in 0..<run.trainX.cols {
                    xi += run.trainX[i, c] * run.trainX[i, c]
                    xj += run.trainX[j, c] * run.trainX[j, c]
                    xij += run.trainX[i, c] * run.trainX[j, c]
                }
                best = min(best, (max(0, 2 - 2 * xij / (xi * xj).squareRoot())).squareRoot())
            }
        }
        // √(2 − 2cos) loses digits for close pairs: 1e-7 absolute on distances O(0.1–1).
        #expect(abs(try #require(d.separation) - best) <= 1e-7, "δ \(d.separation ?? -1) vs \(best)")

        // Travel per tensor (layout order layers.l.weight, layers.l.bias) and total.
        let spec = model.spec
        var offset = 0, expected: [(String, Double, Double)] = []
        for l in 0..<(spec.layers.count - 1) {
            for (name, count) in [("layers.\(l).weight", spec.layers[l] * spec.layers[l + 1]), ("layers.\(l).bias", spec.layers[l + 1])] {
                var c = 0.0, i0 = 0.0
                for k in offset..<(offset + count) { c += pow(fx.wT[k] - fx.w0[k], 2); i0 += fx.w0[k] * fx.w0[k] }
                expected.append((name, c.squareRoot(), i0.squareRoot()))
                offset += count
            }
        }
        #expect(d.travel.map(\.tensor) == expected.map(\.0))
        for (t, e) in zip(d.travel, expected) {
            #expect(abs(t.change - e.1) <= Self.roundOffTolerance * e.1 && abs(t.initialNorm - e.2) <= Self.roundOffTolerance * e.2)
            #expect(abs(try #require(t.relative) - e.1 / e.2) <= Self.roundOffTolerance * e.1 / e.2, "\(t.tensor)")
        }
        let total = (zip(fx.wT, fx.w0).reduce(0) { $0 + pow($1.0 - $1.1, 2) } / fx.w0.reduce(0) { $0 + $1 * $1 }).squareRoot()
        #expect(abs(try #require(d.totalTravel) - total) <= Self.roundOffTolerance * total)

        // Pattern flips: the definition's forward pass, every training example and unit.
        var flips = [0, 0]
        for i in 0..<run.trainX.rows {
            let x = (0..<run.trainX.cols).map { run.trainX[i, $0] }
            let z0 = Self.preActivations(spec, fx.w0, x), zT = Self.preActivations(spec, fx.wT, x)
            for l in 0..<2 { for u in z0[l].indices where (z0[l][u] > 0) != (zT[l][u] > 0) { flips[l] += 1 } }
        }
        let pc = try #require(d.patternChange)
        #expect(pc.map(\.layer) == [1, 2] && pc.map(\.units) == [8, 6] && pc.allSatisfy { $0.examples == 10 })
        #expect(pc.map(\.flipped) == flips)
        #expect(flips.reduce(0, +) > 0, "some pattern flipped: the count is not vacuous")
        #expect(pc[0].fraction == Double(flips[0]) / 80 && pc[1].fraction == Double(flips[1]) / 60)

        // Held-out losses: the network, the linearization by explicit Jacobians, and the closed
        // form (= ntk0-km here, full-batch constant-rate GD) by weight-space GD.
        let b = try #require(d.beyondKernel)
        let yT = run.testY
        let net = Self.heldOutMSE(model.forward(fx.wT, run.testX), yT)
        let jt = explicitJacobians(model, fx.w0, run.testX)
        var lin = model.forward(fx.w0, run.testX)
        for i in 0..<lin.rows { lin[i, 0] += (0..<fx.w0.count).reduce(0) { $0 + jt[i, $1] * (fx.wT[$1] - fx.w0[$1]) } }
        let linLoss = Self.heldOutMSE(lin, yT)
        let cfLoss = Self.heldOutMSE(Self.linearizedGD(run, fx.w0, eta: 0.5, steps: run.steps), yT)
        #expect(b.heldOut == 5 && b.loss == "mse")
        #expect(abs(b.networkLoss - net) <= Self.roundOffTolerance * net)
        #expect(abs(try #require(b.linearizationLoss) - linLoss) <= Self.roundOffTolerance * linLoss)
        #expect(abs(try #require(b.linearizationGap) - (net - linLoss)) <= Self.roundOffTolerance * max(net, linLoss))
        #expect(b.closedFormSource == "ntk0-km" && b.closedFormNote == nil)
        #expect(abs(try #require(b.closedFormLoss) - cfLoss) <= Self.dynamicsTolerance * cfLoss, "\(b.closedFormLoss ?? -1) vs \(cfLoss)")
        #expect(abs(try #require(b.closedFormGap) - (net - cfLoss)) <= Self.dynamicsTolerance * max(net, cfLoss))
        // The analytic NTK's machine (ntkinf-km) by function-space GD written out here.
        let infLoss = Self.heldOutMSE(try Self.analyticGD(run, fx.w0, eta: 0.5, steps: run.steps), yT)
        #expect(abs(try #require(b.analyticLoss) - infLoss) <= Self.dynamicsTolerance * infLoss, "\(b.analyticLoss ?? -1) vs \(infLoss)")
        #expect(abs(try #require(b.analyticGap) - (net - infLoss)) <= Self.dynamicsTolerance * max(net, infLoss))
        // Regression: no accuracies.
        #expect(b.networkAccuracy == nil && b.linearizationAccuracy == nil && b.closedFormAccuracy == nil && b.analyticAccuracy == nil)
    }

    /// Minibatch SGD: the closed form is computed (discrete GD at the first rate, T steps on the
    /// full batch), not read from ntk0-km, and says how the run departs from it.
    @Test func closedFormIsComputedForOtherRuns() throws {
        let fx = try Self.fixture(batch: 4, steps: 12)
        let b = try #require(fx.diagnostics.beyondKernel)
        #expect(b.closedFormSource == "computed")
        #expect(b.closedFormNote?.contains("batches are not the full training set") == true)
        let cfLoss = Self.heldOutMSE(Self.linearizedGD(fx.run, fx.w0, eta: 0.5, steps: fx.run.steps), fx.run.testY)
        #expect(abs(try #require(b.closedFormLoss) - cfLoss) <= Self.dynamicsTolerance * cfLoss, "\(b.closedFormLoss ?? -1) vs \(cfLoss)")
        // ntkinf-km on the recorded minibatches (its kernel's batch columns gathered per step).
        let infLoss = Self.heldOutMSE(try Self.analyticGD(fx.run, fx.w0, eta: 0.5, steps: fx.run.steps, minibatches: true), fx.run.testY)
        #expect(abs(try #require(b.analyticLoss) - infLoss) <= Self.dynamicsTolerance * infLoss, "\(b.analyticLoss ?? -1) vs \(infLoss)")
    }

    /// What is absent says why: scope exact has no diagnostics; without held-out queries there is
    /// no beyond-kernel gap; a classification run has no MSE closed form; a layer network has no
    /// analytic kernel and no MLP pattern; the JSON omits the key when absent.
    @Test func absentFiguresSayWhy() throws {
        var exact = AnalysisSettings()
        exact.scope = .exact
        exact.queries = .test
        let ex = try Self.fixtureResult(settings: exact)
        #expect(ex.diagnostics == nil)
        #expect(!AnalysisStore.encode(ex).contains("\"diagnostics\""))

        var trainOnly = AnalysisSettings()
        trainOnly.queries = .train
        let tr = try #require(try Self.fixtureResult(settings: trainOnly).diagnostics)
        #expect(tr.beyondKernel == nil && tr.beyondKernelNote?.contains("--queries train") == true)

        let cls = config(name: "cls", data: #"{"kind":"moons","train":12,"test":6}"#,
                         model: #"{"layers":[2,5,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 0.3), steps: 5)
        let clsPath = try recordTrace(cls, name: "cls.sqlite")
        let c = try analyze(clsPath)
        let cd = try #require(c.diagnostics)
        #expect(AnalysisStore.encode(c).contains("\"diagnostics\""))
        #expect(cd.beyondKernel?.closedFormLoss == nil && cd.beyondKernel?.closedFormNote?.contains("MSE") == true)
        #expect(cd.beyondKernel?.linearizationLoss != nil)
        // Classification: held-out accuracies, counted here from the outputs (sign of f: class 1).
        let creader = try TraceReader.open(clsPath)
        defer { creader.close() }
        let crun = try TraceRun.load(creader)
        let cw0 = try creader.checkpoint(step: 0), cwT = try creader.checkpoint(step: crun.steps)
        func accuracy(_ f: Matrix) -> Double {
            Double((0..<f.rows).filter { (f[$0, 0] > 0 ? 1.0 : 0.0) == crun.testY[$0, 0] }.count) / Double(f.rows)
        }
        let cb = try #require(cd.beyondKernel)
        #expect(cb.networkAccuracy == accuracy(crun.model.forward(cwT, crun.testX)))
        let cjt = explicitJacobians(crun.model, cw0, crun.testX)
        var clin = crun.model.forward(cw0, crun.testX)
        for i in 0..<clin.rows { clin[i, 0] += (0..<cw0.count).reduce(0) { $0 + cjt[i, $1] * (cwT[$1] - cw0[$1]) } }
        #expect(cb.linearizationAccuracy == accuracy(clin))
        #expect(cb.closedFormAccuracy == nil && (cb.analyticLoss == nil) == (cb.analyticAccuracy == nil))

        let layer = config(name: "cnn", data: LayerNetworkFixtures.teacher, model: LayerNetworkFixtures.smoothCNN, loss: .mse,
                           optimizer: OptimizerSpec(kind: .gd, learningRate: 0.1), steps: 3)
        let l = try #require(try analyze(try recordTrace(layer)).diagnostics)
        #expect(l.analyticLambdaMin == nil && l.analyticNote?.contains("MLP") == true)
        #expect(l.patternChange == nil && l.patternNote != nil)
        #expect(l.lambdaMinStart != nil && l.kernelRows == 24)
        #expect(l.travel.count == 4)
    }

    static func fixtureResult(settings: AnalysisSettings) throws -> AnalysisResult {
        let cfg = config(name: "overparam", data: #"{"kind":"teacher","train":10,"test":5,"inputDim":3}"#,
                         model: #"{"layers":[3,8,6,1],"activation":"relu","parameterization":"ntk"}"#,
                         loss: .mse, optimizer: OptimizerSpec(kind: .gd, learningRate: 0.5), steps: 4)
        return try analyze(try recordTrace(cfg), settings)
    }

    /// A linear model `[3, 1]` on 10 points: 4 parameters, so `Θ̂(X, X)` (10 × 10, rank ≤ 4) and
    /// the analytic `Θ` are singular: λ_min is at round-off and the notes say so; no hidden layer,
    /// no pattern. The tiny MLP of the first test (positive definite kernels) has no such note.
    @Test func singularKernelsAreNoted() throws {
        let cfg = config(name: "linear", data: #"{"kind":"teacher","train":10,"test":5,"inputDim":3}"#,
                         model: #"{"layers":[3,1],"activation":"relu"}"#,
                         loss: .mse, optimizer: OptimizerSpec(kind: .gd, learningRate: 0.5), steps: 3)
        let d = try #require(try analyze(try recordTrace(cfg)).diagnostics)
        #expect(d.notes?.contains { $0.hasPrefix("λ_min of Θ̂_{w_0} is at round-off") } == true, "\(d.notes ?? [])")
        #expect(d.analyticLambdaMin != nil && d.analyticNote?.hasPrefix("λ_min of Θ is at round-off") == true)
        #expect(d.patternChange == nil && d.patternNote?.contains("no hidden layer") == true)
        let fine = try #require(Self.fixtureResult(settings: AnalysisSettings()).diagnostics)
        #expect(fine.notes == nil && fine.analyticNote == nil)
    }

    /// A quadrature activation (tanh): with full-batch GD the analytic λ_min reads `ntkinf-km`'s
    /// `Θ(queries, X)`, with Adam (ntkinf-km skipped) it computes the Gram matrix itself; both
    /// against `pathkernel kernel`'s Gram matrix and the Jacobi solver. Above the diagnostics'
    /// quadrature budget without ntkinf-km's kernel it is absent with a note.
    @Test(arguments: [OptimizerSpec(kind: .gd, learningRate: 0.3), OptimizerSpec(kind: .adam, learningRate: 0.01)])
    func analyticLambdaMinOfQuadratureActivations(optimizer: OptimizerSpec) throws {
        let cfg = config(name: "tanh", data: #"{"kind":"teacher","train":10,"test":5,"inputDim":3}"#,
                         model: #"{"layers":[3,6,6,1],"activation":"tanh","sigmaW":1.5,"sigmaB":0.1}"#,
                         loss: .mse, optimizer: optimizer, steps: 3)
        let path = try recordTrace(cfg)
        let r = try analyze(path)
        let reused = r.kernelMachines.first { $0.name == "ntkinf-km" }?.test != nil
        #expect(reused == (optimizer.kind == .gd))
        let d = try #require(r.diagnostics)
        let run = try TraceRun.load(try TraceReader.open(path))
        let ea = Self.jacobiEigenvalues(try InfiniteWidthKernel(spec: run.model.spec).kernels(run.trainX).ntk)
        #expect(d.analyticNote == nil)
        #expect(abs(try #require(d.analyticLambdaMin) - ea[0]) <= Self.eigenTolerance * ea.last!, "\(d.analyticLambdaMin ?? -1) vs \(ea[0])")
    }

    @Test func quadratureBeyondTheBudgetIsAbsent() throws {
        let cfg = config(name: "tanh100", data: #"{"kind":"teacher","train":100,"test":2,"inputDim":2}"#,
                         model: #"{"layers":[2,3,1],"activation":"tanh"}"#,
                         loss: .mse, optimizer: OptimizerSpec(kind: .adam, learningRate: 0.01), steps: 1)
        let d = try #require(try analyze(try recordTrace(cfg)).diagnostics)
        #expect(d.points == 100 && d.analyticLambdaMin == nil)
        #expect(d.analyticNote?.contains("5050 pairs × 1 hidden layer, more than 2000") == true, "\(d.analyticNote ?? "")")
    }

    /// Above `pointLimit` training points the kernels take the evenly spaced subset.
    @Test func largeTrainingSetsUseTheSubset() {
        #expect(OverParameterization.pointCount(train: 40, outputs: 3) == 40)
        #expect(OverParameterization.pointCount(train: 500, outputs: 1) == 100)
        #expect(OverParameterization.pointCount(train: 500, outputs: 20) == 50)
        #expect(OverParameterization.pointCount(train: 5000, outputs: 5000) == 1)
    }
}
