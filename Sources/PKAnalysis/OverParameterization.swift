import Foundation
import PKNetworks
import PKNumerics
import PKOptim

/// The over-parameterization diagnostics of a full-scope analysis (ntk-family contract §5;
/// Docs/path-kernel.md §7, "Over-parameterization diagnostics"; Docs/ntk-family.md for users):
/// where the run sits between the lazy (kernel) regime and feature learning.
///
/// Priorities: the contract's definitions; a cost small next to the analysis (two empirical
/// kernels of at most `maxKernelRows` rows, one analytic Gram, two forward passes over the
/// training set); never a NaN in the result (a figure that is not finite is absent, with a note).
///
/// On `m = min(n, pointLimit, ⌊maxKernelRows/C⌋)` evenly spaced training points (the dynamics'
/// subset when `C ≤ 10`; the whole training set when `n ≤ m`):
///
///     λ_min(Θ̂_{w_0}(X,X)), λ_min(Θ̂_{w_T}(X,X))     full C×C blocks, mC × mC, symmetrized
///     λ_min(Θ(X,X))                                  analytic NTK of the MLP spec (§1), m × m
///     δ = min_{i≠j} ‖x̂_i − x̂_j‖,  x̂ = x/‖x‖        zero rows left out
///     ‖Θ̂_T − Θ̂_0‖_F/‖Θ̂_0‖_F,  1 − cos(Θ̂_0, Θ̂_T)
///
/// On every parameter and every training point:
///
///     τ = ‖W_T − W_0‖_F/‖W_0‖_F per parameter tensor (raw stored values), ‖w_T − w_0‖/‖w_0‖
///     flips_l = #{(i, u): [z_l(x_i; w_0)_u > 0] ≠ [z_l(x_i; w_T)_u > 0]} / (n·d_l)   (MLPs)
///
/// On the analyzed held-out queries: the run's mean loss of the network at `w_T` minus that of
/// `ntk0-lin`, of §2's closed form with `Θ̂_{w_0}` (`ntk0-km`'s predictions where the run is
/// full-batch constant-rate GD on MSE, which they equal; else computed when `nC ≤ maxKernelRows`)
/// and of `ntkinf-km` (the analytic NTK's machine, where it ran); for classification also each
/// one's held-out accuracy.
struct OverParameterization {
    /// Most training points of the kernels (the dynamics' subset size).
    static let pointLimit = 100
    /// Most rows of an empirical kernel (`points · C`, and `n · C` for the closed form).
    static let maxKernelRows = 1000

    let context: AnalysisContext
    let w0: [Double], wT: [Double]
    /// The network's and the machines' outputs at every query (rows as `context.xq`).
    let fT: Matrix, f0: Matrix
    let linearization: Matrix?
    let kernelMachine: Matrix?
    /// `ntkinf-km`'s analytic `Θ(queries, X)` (nQ × n) when it computed one.
    let analyticQX: Matrix?
    /// `ntkinf-km`'s predictions (the analytic NTK's machine) when it ran.
    let analyticMachine: Matrix?

    /// Most (pair, hidden layer) evaluations of the analytic NTK's quadrature (tanh, sigmoid,
    /// softplus) the diagnostics compute themselves when `ntkinf-km` left no kernel: `M² ≈ 9,409`
    /// activation products each, 2,000 take about 6 s in a debug build (a fraction of a second
    /// in release).
    static let quadraturePairLimit = 2_000

    /// Points of the kernels for `n` training points and `C` outputs.
    static func pointCount(train n: Int, outputs C: Int) -> Int {
        min(n, pointLimit, max(1, maxKernelRows / max(C, 1)))
    }

    func compute() -> AnalysisResult.Diagnostics {
        let run = context.run, model = context.model, n = context.train, C = context.outputs
        let m = Self.pointCount(train: n, outputs: C)
        let indices = PathAnalyzer.evenlySpaced(n, count: m)
        let x = run.trainX.rows(at: indices)
        var d = AnalysisResult.Diagnostics(points: m, subset: m < n, kernelRows: m * C, travel: Self.travel(model, w0, wT))
        var notes: [String] = []

        guard m > 0 else {
            d.totalTravel = Self.relativeDistance(wT, w0)
            d.notes = ["no training points: no kernels, no separation, no pattern"]
            return d
        }
        // Empirical kernels at both ends, their λ_min, change and cosine distance.
        let theta0 = EmpiricalNTK.gram(model, weights: w0, x, mode: .full)
        let thetaT = EmpiricalNTK.gram(model, weights: wT, x, mode: .full)
        if theta0.isFinite && thetaT.isFinite {
            d.lambdaMinStart = Self.lambdaMin(theta0, &notes, "Θ̂_{w_0}")
            d.lambdaMinEnd = Self.lambdaMin(thetaT, &notes, "Θ̂_{w_T}")
            let n0 = theta0.frobeniusNorm
            if n0 > 0 {
                d.kernelChange = Self.finite((thetaT - theta0).frobeniusNorm / n0)
                d.kernelDistance = Self.finite(1 - PathAnalyzer.cosine(theta0, thetaT))
            } else {
                notes.append("the kernel change is not defined: Θ̂_{w_0} is zero on these points")
            }
        } else {
            notes.append("the empirical kernels are not finite (the weights overflow the network): no λ_min, no kernel change")
        }
        (d.analyticLambdaMin, d.analyticNote) = analyticLambdaMin(x, indices: indices)
        d.separation = Self.separation(x)
        d.totalTravel = Self.relativeDistance(wT, w0)
        (d.patternChange, d.patternNote) = Self.patternChange(model, w0, wT, run.trainX)
        (d.beyondKernel, d.beyondKernelNote) = beyondKernel(&notes)
        d.notes = notes.isEmpty ? nil : notes
        return d
    }

    // MARK: The figures

    /// λ_min of the symmetrized kernel, nil (with a note) when the eigen-solver fails; a note
    /// when it is at round-off, `|λ_min| ≤ m·ε·λ_max` (singular to working precision: fewer
    /// parameters than rows, duplicate inputs, or a smooth kernel's fast-decaying spectrum).
    static func lambdaMin(_ k: Matrix, _ notes: inout [String], _ name: String) -> Double? {
        do {
            let spectrum = try KernelSpectrum(k)
            if abs(spectrum.lambdaMin) <= Double(k.rows) * .ulpOfOne * spectrum.lambdaMax {
                notes.append("λ_min of \(name) is at round-off (|λ_min| ≤ m·ε·λ_max, λ_max = \(String(format: "%.3g", spectrum.lambdaMax))): singular to working precision on these points")
            }
            return finite(spectrum.lambdaMin)
        } catch {
            notes.append("the eigenvalues of \(name) were not computed: \(error)")
            return nil
        }
    }

    /// The points whose analytic Gram matrix the diagnostics compute by quadrature when
    /// `ntkinf-km` left no kernel to reuse (`analyticLambdaMin`), nil when they compute none:
    /// the cost model's count.
    static func analyticGram(context: AnalysisContext) -> Matrix? {
        let spec = context.model.spec
        guard spec.kind == "mlp", !GaussianExpectation.hasClosedForm(spec.activation) else { return nil }
        let m = pointCount(train: context.train, outputs: context.outputs), hidden = spec.layers.count - 2
        guard m > 0, m * (m + 1) / 2 * hidden <= quadraturePairLimit else { return nil }
        return context.run.trainX.rows(at: PathAnalyzer.evenlySpaced(context.train, count: m))
    }

    /// λ_min(Θ(X, X)) of the analytic NTK on the training points `indices` (rows `x`), or why
    /// not. Closed forms: the Gram matrix of `x`. Quadrature activations: `ntkinf-km`'s
    /// `Θ(queries, X)` restricted to those points where it was computed (training point `i` is
    /// query row `heldOut + i`), else the Gram matrix within `quadraturePairLimit`.
    func analyticLambdaMin(_ x: Matrix, indices: [Int]) -> (Double?, String?) {
        let spec = context.model.spec
        guard spec.kind == "mlp" else { return (nil, "the analytic NTK covers MLPs (model.kind \"mlp\")") }
        let hidden = spec.layers.count - 2, m = x.rows
        let pairs = m * (m + 1) / 2 * hidden
        var reused: Matrix? = nil
        if !GaussianExpectation.hasClosedForm(spec.activation) {
            if let qx = analyticQX, qx.rows == context.queries, qx.cols == context.train {
                var t = Matrix(rows: m, cols: m)
                for (a, i) in indices.enumerated() { for (b, j) in indices.enumerated() { t[a, b] = qx[context.heldOut + i, j] } }
                reused = t
            } else if pairs > Self.quadraturePairLimit {
                return (nil, "Θ(X, X) of \(spec.activation.rawValue) needs the quadrature on \(m * (m + 1) / 2) pairs × \(hidden) hidden layer\(hidden == 1 ? "" : "s"), more than \(Self.quadraturePairLimit) without ntkinf-km's kernel to reuse (`pathkernel kernel` computes it on its own)")
            }
        }
        do {
            let theta = try reused ?? InfiniteWidthKernel(spec: spec).kernels(x).ntk
            guard theta.isFinite else { return (nil, "the analytic NTK is not finite on these points") }
            var notes: [String] = []
            let value = Self.lambdaMin(theta, &notes, "Θ")
            return (value, notes.first)
        } catch {
            return (nil, "\(error)")
        }
    }

    /// `min_{i≠j} ‖x̂_i − x̂_j‖` over the nonzero rows of `x` (nil for fewer than two).
    static func separation(_ x: Matrix) -> Double? {
        var unit: [[Double]] = []
        for r in 0..<x.rows {
            let row = Array(x.data[(r * x.cols)..<((r + 1) * x.cols)])
            let norm = Vec.norm(row)
            guard norm > 0, norm.isFinite else { continue }
            unit.append(row.map { $0 / norm })
        }
        guard unit.count >= 2 else { return nil }
        var best = Double.infinity
        for i in 0..<unit.count {
            for j in (i + 1)..<unit.count {
                var s = 0.0
                for k in 0..<unit[i].count { let t = unit[i][k] - unit[j][k]; s += t * t }
                best = min(best, s)
            }
        }
        return finite(best.squareRoot())
    }

    /// `‖a − b‖/‖b‖`, nil when `b = 0` or not finite.
    static func relativeDistance(_ a: [Double], _ b: [Double]) -> Double? {
        let nb = Vec.norm(b)
        guard nb > 0 else { return nil }
        return finite(Vec.norm(zip(a, b).map { $0 - $1 }) / nb)
    }

    /// Per parameter tensor in layout order.
    static func travel(_ model: any Network, _ w0: [Double], _ wT: [Double]) -> [AnalysisResult.Travel] {
        model.layout.map { t in
            var change = 0.0, initial = 0.0
            for k in t.offset..<(t.offset + t.count) {
                let diff = wT[k] - w0[k]
                change += diff * diff
                initial += w0[k] * w0[k]
            }
            let c = change.squareRoot(), i = initial.squareRoot()
            return .init(tensor: t.name, change: c.isFinite ? c : .greatestFiniteMagnitude, initialNorm: i.isFinite ? i : .greatestFiniteMagnitude,
                         relative: i > 0 ? finite(c / i) : nil)
        }
    }

    /// The sign flips of every hidden layer of an MLP between `w_0` and `w_T` on `x`.
    static func patternChange(_ model: any Network, _ w0: [Double], _ wT: [Double], _ x: Matrix)
        -> ([AnalysisResult.PatternChange]?, String?) {
        guard let mlp = model as? MLP else {
            return (nil, "activation patterns are measured on MLPs (this network's layers are not)")
        }
        guard mlp.depth > 1 else { return (nil, "a linear model (no hidden layer) has no activation pattern") }
        guard x.rows > 0 else { return (nil, "no training examples") }
        let z0 = mlp.hiddenPreActivations(w0, x), zT = mlp.hiddenPreActivations(wT, x)
        let changes = zip(z0, zT).enumerated().map { l, pair -> AnalysisResult.PatternChange in
            var flipped = 0
            for k in pair.0.data.indices where (pair.0.data[k] > 0) != (pair.1.data[k] > 0) { flipped += 1 }
            return .init(layer: l + 1, units: pair.0.cols, examples: x.rows, flipped: flipped,
                         fraction: Double(flipped) / Double(max(pair.0.data.count, 1)))
        }
        return (changes, nil)
    }

    /// The held-out losses of the network and the two kernel predictors, or why not.
    func beyondKernel(_ notes: inout [String]) -> (AnalysisResult.BeyondKernel?, String?) {
        let run = context.run, nT = context.heldOut
        guard nT > 0 else {
            return (nil, run.testX.rows == 0 ? "the run has no held-out data" : "no held-out queries were analyzed (--queries train)")
        }
        let heldOut = Array(0..<nT)
        let y = run.testY.rows(0..<nT)
        func loss(_ f: Matrix) -> Double? {
            let part = f.rows(at: heldOut)
            guard part.isFinite else { return nil }
            return Self.finite(run.loss.evaluate(outputs: part, targets: y).loss)
        }
        /// Held-out accuracy (classification only; nil for regression or outputs that are not finite).
        func accuracy(_ f: Matrix) -> Double? {
            guard run.isClassification else { return nil }
            let part = f.rows(at: heldOut)
            guard part.isFinite else { return nil }
            return PathAnalyzer.accuracy(part, labels: heldOut.map { run.testY[$0, 0] }, task: run.info.task)
        }
        guard let network = loss(fT) else { return (nil, "the network's held-out outputs are not finite") }
        var b = AnalysisResult.BeyondKernel(heldOut: nT, loss: run.loss.rawValue, networkLoss: network)
        b.networkAccuracy = accuracy(fT)
        if let f = linearization, let lin = loss(f) {
            b.linearizationLoss = lin
            b.linearizationGap = Self.finite(network - lin)
            b.linearizationAccuracy = accuracy(f)
        }
        switch closedForm() {
        case .success(let (prediction, source, note)):
            if let cf = loss(prediction) {
                b.closedFormLoss = cf
                b.closedFormGap = Self.finite(network - cf)
                b.closedFormSource = source
                b.closedFormNote = note
                b.closedFormAccuracy = accuracy(prediction)
            } else {
                b.closedFormNote = "the closed form's predictions are not finite"
            }
        case .failure(let why):
            b.closedFormNote = why.description
        }
        if let f = analyticMachine, let inf = loss(f) {
            b.analyticLoss = inf
            b.analyticGap = Self.finite(network - inf)
            b.analyticAccuracy = accuracy(f)
        }
        return (b, nil)
    }

    struct Reason: Error, CustomStringConvertible { let description: String }

    /// §2's closed form with `Θ̂_{w_0}` at `t = T` on the held-out queries (at least), where it
    /// came from (`ntk0-km` or `computed`), and how it departs from the run.
    func closedForm() -> Result<(Matrix, String, String?), Reason> {
        let run = context.run, model = context.model, n = context.train, C = context.outputs, nT = context.heldOut
        guard run.loss == .mse else {
            return .failure(Reason(description: "the closed form is gradient descent on the MSE loss (this run's loss is \(run.loss.rawValue))"))
        }
        let records = run.stepRecords.prefix(context.steps)
        let rates = Set(records.map(\.learningRate))
        let fullBatch = records.allSatisfy { $0.batch.count == n }
        let departures = LinearizedProblem.departures(optimizer: run.optimizer, fullBatch: fullBatch, constantRate: rates.count <= 1)
        if departures.isEmpty && run.optimizer.groups.isEmpty, let km = kernelMachine {
            return .success((km, "ntk0-km", nil))
        }
        guard n * C <= Self.maxKernelRows else {
            return .failure(Reason(description: "Θ̂_{w_0}(X, X) would have \(n * C) rows, more than \(Self.maxKernelRows) (`pathkernel predict-linear` computes it on its own)"))
        }
        guard let rate = records.first?.learningRate, rate > 0, rate.isFinite else {
            return .failure(Reason(description: "no recorded step with a positive learning rate"))
        }
        let fx = model.features(w0, run.trainX)
        let theta = TangentFeatures<Double>.kernel(fx, fx, mode: .full)
        let cross = TangentFeatures<Double>.kernel(model.features(w0, context.xq.rows(0..<nT)), fx, mode: .full)
        guard theta.isFinite, cross.isFinite else { return .failure(Reason(description: "Θ̂_{w_0} is not finite")) }
        do {
            let dynamics = try LinearizedDynamics(kernel: theta, examples: n, learningRate: rate, dynamics: .discrete)
            let f0Train = f0.rows(nT..<context.queries)
            let test = try dynamics.predict(cross: cross, initial: f0.rows(0..<nT), residual: run.trainY - f0Train,
                                            time: Double(context.steps))
            return .success((test, "computed", departures.first ?? (run.optimizer.groups.isEmpty ? nil : "the run's parameter groups are not in the closed form (one rate for every parameter)")))
        } catch {
            return .failure(Reason(description: "\(error)"))
        }
    }

    static func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
}
