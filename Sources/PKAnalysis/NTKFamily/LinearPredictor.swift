import Foundation
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

/// What `pathkernel predict-linear` starts from: a network at its initial weights `w₀`, its
/// regression data and the learning rate of its gradient descent (contract §2).
public struct LinearizedProblem: Sendable {
    public let model: any Network
    public let w0: [Double]
    /// Training inputs `n × d` and targets `n × C`; held-out ones (possibly 0 rows).
    public let trainX: Matrix, trainY: Matrix, testX: Matrix, testY: Matrix
    /// `η` of `w ← w − η∇L` with the project's mean MSE.
    public let learningRate: Double
    /// The network's outputs at stored checkpoints, `step → (train, test)` (a trace), for the
    /// comparison with the network.
    public let network: [Int: (train: Matrix, test: Matrix)]
    /// Where the problem came from (trace or config path) and what the closed form does not cover.
    public let source: String
    public let notes: [String]

    public init(model: any Network, w0: [Double], trainX: Matrix, trainY: Matrix, testX: Matrix, testY: Matrix,
                learningRate: Double, network: [Int: (train: Matrix, test: Matrix)] = [:], source: String, notes: [String] = []) {
        self.model = model
        self.w0 = w0
        self.trainX = trainX
        self.trainY = trainY
        self.testX = testX
        self.testY = testY
        self.learningRate = learningRate
        self.network = network
        self.source = source
        self.notes = notes
    }

    /// Why the closed form (full-batch GD at a constant rate on the mean MSE, no weight decay,
    /// no momentum, no clipping) describes a run only approximately; empty when it is exact.
    public static func departures(optimizer: OptimizerSpec, fullBatch: Bool, constantRate: Bool) -> [String] {
        var why: [String] = []
        if optimizer.kind != .gd { why.append("the optimizer is \(optimizer.kind.rawValue), not gd") }
        if !fullBatch { why.append("the batches are not the full training set") }
        if !constantRate { why.append("the learning rate changes") }
        if optimizer.weightDecay != 0 { why.append("weight decay \(optimizer.weightDecay)") }
        if optimizer.kind == .gd && optimizer.momentum != 0 { why.append("momentum \(optimizer.momentum)") }
        if optimizer.clipNorm != nil { why.append("gradient clipping") }
        if optimizer.parameterMask != nil { why.append("a fixed parameter mask (train --init), while the kernel here uses all P parameters") }
        return why.isEmpty ? [] : ["the closed form is full-batch constant-rate GD on the linearized model; this run differs (\(why.joined(separator: ", "))), so the comparison with the network includes that difference"]
    }

    /// The problem of a recorded run: its model, data, `w₀` (the checkpoint at step 0), the
    /// learning rate of its first step, and its outputs at every stored checkpoint. Throws an
    /// `AnalysisError` for a run that is not MSE regression.
    public static func load(trace path: String) throws -> LinearizedProblem {
        let reader = try TraceReader.open(path)
        defer { reader.close() }
        let run = try TraceRun.load(reader)
        guard run.loss == .mse else {
            throw AnalysisError("\(path): predict-linear covers runs on the MSE loss (this run's loss is \(run.loss.rawValue))")
        }
        let w0 = try reader.checkpoint(step: 0)
        var network: [Int: (train: Matrix, test: Matrix)] = [:]
        for step in run.checkpoints {
            let w = try step == 0 ? w0 : reader.checkpoint(step: step)
            network[step] = (run.model.forward(w, run.trainX), run.testX.rows > 0 ? run.model.forward(w, run.testX) : Matrix(rows: 0, cols: run.model.outputDim))
        }
        let rates = Set(run.stepRecords.map(\.learningRate))
        let fullBatch = run.stepRecords.allSatisfy { $0.batch.count == run.trainX.rows }
        return LinearizedProblem(model: run.model, w0: w0, trainX: run.trainX, trainY: run.trainY, testX: run.testX, testY: run.testY,
                                 learningRate: run.stepRecords.first?.learningRate ?? run.optimizer.learningRate, network: network,
                                 source: path,
                                 notes: run.notes + departures(optimizer: run.optimizer, fullBatch: fullBatch, constantRate: rates.count <= 1))
    }
}

/// `pathkernel predict-linear`: the linearized network's (or the infinite ensemble's)
/// predictions at each time, in closed form (contract §2, `LinearizedDynamics`).
public struct LinearPrediction: Sendable {
    /// Which kernel: the empirical NTK at `w₀` (`(nC) × (nC)`, exact for the linearized network),
    /// or the analytic NTK of §1 (per output).
    public enum KernelSource: String, CaseIterable, Sendable { case empirical, analytic }

    public struct Options: Sendable {
        public var kernel: KernelSource = .empirical
        public var dynamics: LinearizedDynamics.Dynamics = .discrete
        public var ensemble: LinearizedDynamics.Ensemble? = nil
        /// Relative ridge ρ (`λ_r = ρ·tr(Θ)/m`), added at every time.
        public var ridge: Double = 0
        /// Times `t ≥ 0` (`.infinity` for ∞); integers for discrete dynamics.
        public var times: [Double] = []
        public init() {}
    }

    /// Predictions at one time.
    public struct Point: Sendable {
        public let time: Double
        /// `f_t` on the training points (`n × C`) and held-out ones (`nT × C`).
        public let train: Matrix, test: Matrix
        /// The project's mean MSE `(1/n) Σ ½‖f − y‖²` of `train` (and of `test`, when there are held-out points).
        public let trainLoss: Double, testLoss: Double?
        /// The ensemble's mean (`nT × C`) and covariance (`nT × nT`, every output), with `--ensemble`.
        public let ensembleMean: Matrix?, ensembleCovariance: Matrix?
        /// At a stored checkpoint: `‖f_lin − f_net‖_F / ‖f_net − f₀‖_F` on the held-out points (the
        /// training points without them), and the largest absolute difference.
        public let networkGap: Double?, networkMaxDifference: Double?
    }

    public let options: Options
    public let source: String
    public let model: String
    public let examples: Int, heldOut: Int, outputs: Int
    public let learningRate: Double
    /// Rows of `Θ(X, X)`: `nC` (empirical) or `n` (analytic).
    public let kernelRows: Int
    /// Eigenvalues of `Θ(X, X) + λ_r I`, ascending; `λ_r`; `ηλ_max/n`.
    public let eigenvalues: [Double]
    public let ridge: Double
    public let stability: Double
    public let points: [Point]
    public let notes: [String]

    /// Most rows of `Θ(X, X)` (an eigendecomposition of `9m³` flops and `3m²` doubles).
    public static let maxKernelRows = 6000

    /// Every time's predictions for `problem`. Throws an `AnalysisError` for an ensemble with the
    /// empirical kernel or without held-out points, a kernel above `maxKernelRows`, a non-integer
    /// time of discrete dynamics, a singular kernel at `t = ∞` without a ridge; an
    /// `InfiniteWidthError` or `ModelSpecError` for a model the analytic kernels do not cover.
    public static func compute(_ problem: LinearizedProblem, _ options: Options) throws -> LinearPrediction {
        let model = problem.model
        let n = problem.trainX.rows, nT = problem.testX.rows, C = model.outputDim
        guard n > 0 else { throw AnalysisError("\(problem.source): no training examples") }
        if options.ensemble != nil && options.kernel != .analytic {
            throw AnalysisError("--ensemble is the infinite-width ensemble: it needs --kernel analytic (the NNGP and NTK of §1)")
        }
        if options.ensemble != nil && nT == 0 { throw AnalysisError("\(problem.source): no held-out examples for the ensemble's mean and covariance") }
        for t in options.times {
            guard t >= 0, !t.isNaN else { throw AnalysisError("time \(t): times are ≥ 0 (or inf)") }
            if options.dynamics == .discrete && t.isFinite && t != t.rounded() {
                throw AnalysisError("time \(t): discrete gradient descent takes whole steps (use --dynamics flow for other times)")
            }
        }
        let m = options.kernel == .empirical ? n * C : n
        guard m <= maxKernelRows else {
            throw AnalysisError("Θ(X, X) would have \(m) rows, more than \(maxKernelRows) (its eigendecomposition takes 9m³ flops); use fewer training examples")
        }
        let f0 = model.forward(problem.w0, problem.trainX)
        let f0Test = nT > 0 ? model.forward(problem.w0, problem.testX) : Matrix(rows: 0, cols: C)
        var notes = problem.notes
        // Θ(X, X), Θ(T, X); with an ensemble also K(X, X), K(T, X), K(T, T).
        let theta: Matrix, thetaQX: Matrix
        var nngp: (xx: Matrix, qx: Matrix, qq: Matrix)? = nil
        switch options.kernel {
        case .empirical:
            let fx = model.features(problem.w0, problem.trainX)
            theta = TangentFeatures<Double>.kernel(fx, fx, mode: .full)
            thetaQX = nT > 0 ? TangentFeatures<Double>.kernel(model.features(problem.w0, problem.testX), fx, mode: .full) : Matrix(rows: 0, cols: m)
        case .analytic:
            let analytic = try InfiniteWidthKernel(spec: model.spec)
            let train = try analytic.kernels(problem.trainX)
            let cross = try nT > 0 ? analytic.kernels(problem.testX, problem.trainX) : nil
            theta = train.ntk
            thetaQX = cross?.ntk ?? Matrix(rows: 0, cols: n)
            if options.ensemble != nil, let cross {
                nngp = (train.nngp, cross.nngp, try analytic.kernels(problem.testX).nngp)
            }
            if !GaussianExpectation.hasClosedForm(model.spec.activation) && train.largestVariance > 32 {
                notes.append("pre-activation variances reach \(String(format: "%.4g", train.largestVariance)), beyond the 32 up to which the quadrature's error (1e-10) was measured")
            }
        }
        let dynamics = try LinearizedDynamics(kernel: theta, examples: n, learningRate: problem.learningRate,
                                              dynamics: options.dynamics, ridge: options.ridge)
        let kDynamics = try nngp.map { try LinearizedDynamics(kernel: $0.xx, examples: n, learningRate: problem.learningRate,
                                                               dynamics: options.dynamics, ridge: options.ridge) }
        if options.dynamics == .discrete && dynamics.stability > 2 {
            notes.append("ηλ_max/n = \(String(format: "%.3g", dynamics.stability)) > 2: discrete gradient descent on this kernel diverges (the predictions describe that divergence)")
        }
        let residual = problem.trainY - f0
        var points: [Point] = []
        for t in options.times {
            let train = try dynamics.predict(cross: theta, initial: f0, residual: residual, time: t)
            let test = try nT > 0 ? dynamics.predict(cross: thetaQX, initial: f0Test, residual: residual, time: t) : f0Test
            var mean: Matrix? = nil, covariance: Matrix? = nil
            if let kind = options.ensemble, let nngp, let kDynamics {
                let e = try LinearizedDynamics.ensemble(kind, ntk: dynamics, nngp: kDynamics, thetaQX: thetaQX, kQX: nngp.qx,
                                                        kXX: nngp.xx, kQQ: nngp.qq, targets: problem.trainY, time: t)
                mean = e.mean
                covariance = e.covariance
            }
            var gap: Double? = nil, largest: Double? = nil
            if t.isFinite, let net = problem.network[Int(t)], Double(Int(t)) == t {
                let (lin, out, start) = nT > 0 ? (test, net.test, f0Test) : (train, net.train, f0)
                var num = 0.0, den = 0.0, mx = 0.0
                for i in lin.data.indices {
                    let d = lin.data[i] - out.data[i]
                    num += d * d
                    mx = max(mx, abs(d))
                    let c = out.data[i] - start.data[i]
                    den += c * c
                }
                gap = den > 0 ? (num / den).squareRoot() : nil
                largest = mx
            }
            points.append(Point(time: t, train: train, test: test, trainLoss: meanSquaredError(train, problem.trainY),
                                testLoss: nT > 0 && problem.testY.rows == nT ? meanSquaredError(test, problem.testY) : nil,
                                ensembleMean: mean, ensembleCovariance: covariance, networkGap: gap, networkMaxDifference: largest))
        }
        return LinearPrediction(options: options, source: problem.source, model: model.summary, examples: n, heldOut: nT, outputs: C,
                                learningRate: problem.learningRate, kernelRows: m, eigenvalues: dynamics.eigenvalues,
                                ridge: dynamics.ridge, stability: dynamics.stability, points: points, notes: notes)
    }

    /// `(1/n) Σ_i ½‖f_i − y_i‖²`, the project's MSE.
    static func meanSquaredError(_ f: Matrix, _ y: Matrix) -> Double {
        var s = 0.0
        for i in f.data.indices { let d = f.data[i] - y.data[i]; s += d * d }
        return 0.5 * s / Double(max(f.rows, 1))
    }
}
