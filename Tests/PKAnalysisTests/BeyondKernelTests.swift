import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// The mechanism of the `beyond-kernels` preset (Docs/ntk-family.md, "Beyond kernels"), reduced so
/// that it runs in a debug build: a narrow relu MLP trained by full-batch GD on the single-index
/// quadratic `y ∝ (w·x)²` learns features and beats every kernel predictor of its own
/// initialization on held-out data, while the same network made wide (the lazy regime) ends
/// close to them. The three predictors are the analyzer's (ntk-family §5's beyond-kernel gap),
/// built here from the library's parts without the path integration (which would take minutes in
/// a debug build): `ntk0-lin` `f_0 + J(·; w_0)(w_T − w_0)` by a JVP, the closed form with `Θ̂_{w_0}`
/// (`LinearizedDynamics`, discrete, T steps: `ntk0-km` for this full-batch run) and the same with
/// the analytic NTK (`ntkinf-km`). That the analyzer's figures are these predictors' losses is
/// `OverParameterizationTests`' business.
@Suite("Beyond kernels: feature learning against the lazy regime")
struct BeyondKernelTests {
    /// `beyond-kernels`' target, reduced: 16 inputs (136 quadratic monomials, so 200 training
    /// points are too few for a kernel), one hidden teacher unit, `square`.
    static let data = #"{"kind":"teacher","train":200,"test":100,"inputDim":16,"teacherWidths":[1],"teacherActivation":"square"}"#
    static let steps = 300, rate = 2.0

    /// Feature learning: the network's held-out loss is at most this fraction of each kernel
    /// predictor's (measured at most 0.63 over seeds 1–3: `narrowNetworkBeatsItsKernels`).
    static let featureLearningRatio = 0.75
    /// Lazy control: the network's held-out loss within this relative distance of each kernel
    /// predictor's (measured at most 0.097 over seeds 1–3: `wideNetworkStaysWithItsKernels`;
    /// the narrow network is 0.37 or more away).
    static let lazyTolerance = 0.15

    struct Losses { let network: Double; let predictors: [(name: String, loss: Double)] }

    /// `(1/q) Σ ½(f − y)²` over the held-out rows.
    static func mse(_ f: Matrix, _ y: Matrix) -> Double {
        var s = 0.0
        for i in 0..<f.rows { let d = f[i, 0] - y[i, 0]; s += d * d }
        return 0.5 * s / Double(f.rows)
    }

    /// The held-out losses of the reduced run at `width`: the network and its three kernel predictors.
    static func losses(width: Int, seed: UInt64) throws -> Losses {
        let cfg = config(name: "beyond-\(width)", data: data,
                         model: #"{"layers":[16,\#(width),1],"activation":"relu","parameterization":"ntk","sigmaW":1.4142135623730951,"sigmaB":0.1}"#,
                         loss: .mse, optimizer: OptimizerSpec(kind: .gd, learningRate: rate), steps: steps,
                         checkpointEvery: steps, seed: seed)
        let reader = try TraceReader.open(try recordTrace(cfg, name: "beyond-\(width).sqlite"))
        defer { reader.close() }
        let run = try TraceRun.load(reader)
        let model = run.model, n = run.trainX.rows
        let w0 = try reader.checkpoint(step: 0), wT = try reader.checkpoint(step: steps)
        let f0 = model.forward(w0, run.trainX), f0t = model.forward(w0, run.testX)
        let residual = run.trainY - f0
        let network = mse(model.forward(wT, run.testX), run.testY)
        // ntk0-lin: the network linearized at w_0, evaluated at w_T.
        let lin = f0t + model.jvp(w0, run.testX, tangent: zip(wT, w0).map { $0 - $1 })
        // The closed form with the empirical NTK at w_0, then with the analytic NTK.
        let fx = model.features(w0, run.trainX), ft = model.features(w0, run.testX)
        let empirical = try LinearizedDynamics(kernel: TangentFeatures<Double>.kernel(fx, fx, mode: .full), examples: n,
                                               learningRate: rate, dynamics: .discrete)
            .predict(cross: TangentFeatures<Double>.kernel(ft, fx, mode: .full), initial: f0t, residual: residual, time: Double(steps))
        let k = try InfiniteWidthKernel(spec: model.spec)
        let analytic = try LinearizedDynamics(kernel: try k.kernels(run.trainX).ntk, examples: n, learningRate: rate, dynamics: .discrete)
            .predict(cross: try k.kernels(run.testX, run.trainX).ntk, initial: f0t, residual: residual, time: Double(steps))
        return Losses(network: network, predictors: [("ntk0-lin", mse(lin, run.testY)), ("closed form", mse(empirical, run.testY)),
                                                     ("ntkinf-km", mse(analytic, run.testY))])
    }

    /// Width 32. Network/predictor loss ratios measured (ntk0-lin, closed form, ntkinf-km):
    /// seed 1: 0.18, 0.48, 0.42; seed 2 (this test): 0.21, 0.35, 0.63; seed 3: 0.25, 0.35, 0.47.
    @Test func narrowNetworkBeatsItsKernels() throws {
        let seed: UInt64 = 2
        let l = try Self.losses(width: 32, seed: seed)
        for p in l.predictors {
            #expect(l.network <= Self.featureLearningRatio * p.loss,
                    "width 32, seed \(seed): network \(l.network) against \(p.name) \(p.loss): not beyond the kernel")
        }
    }

    /// Width 1024. Ratios measured: seed 1: 0.96, 0.97, 0.90; seed 2 (this test): 0.94, 0.96,
    /// 0.90; seed 3: 0.93, 0.95, 1.00. (The narrow network's are 0.37 and more from 1.)
    @Test func wideNetworkStaysWithItsKernels() throws {
        let seed: UInt64 = 2
        let l = try Self.losses(width: 1024, seed: seed)
        for p in l.predictors {
            #expect(abs(l.network - p.loss) <= Self.lazyTolerance * p.loss,
                    "width 1024, seed \(seed): network \(l.network) against \(p.name) \(p.loss): not lazy")
        }
    }
}
