import PKNetworks
import PKNumerics
import PKOptim

extension NeuralUCB.Training {
    /// The optimizer of this TrainNN run as a trace states it: full-batch GD with the rate
    /// `η s t` and the decay `λ/t` towards the run's initial weights (`decayAnchor` "initial"),
    /// so that on the mean MSE loss over the `t` contexts each step is the policy's
    /// `v ← v − η s (Σ_i ∇½(f̃_i − r_i)² + λ(v − w₀))` (Docs/bandits-and-pruning.md, "Traces of
    /// chosen rounds"). Throws when the rate or decay is not a valid optimizer setting (η = 0).
    public func traceOptimizer() throws -> OptimizerSpec {
        var o = OptimizerSpec(kind: .gd, learningRate: traceLearningRate, weightDecay: traceWeightDecay)
        o.decayAnchor = .initial
        try o.validate()
        return o
    }

    /// The trace's data: the `t` played contexts of rounds 1 … `round` (full rows: a disjoint
    /// bandit's `e_a ⊗ x`) with the targets `r_i + f(x_i; w₀)` (the centering: `f − (r + f₀)` is
    /// `f̃ − r`), and held out the `K` contexts of the next round with every arm's reward
    /// `+ f(x; w₀)` (none after the last round). `arms` are the run's played arms, `f₀` each
    /// computed as the dense policy does (one row at a time), so the targets are its own to the
    /// bit (a disjoint bandit's policy computes on arm blocks: the same to round-off).
    public func traceData(bandit: NeuralUCB.Bandit, arms: [Int], model: MLP, w0: [Double])
        -> (trainX: Matrix, trainY: Matrix, testX: Matrix, testY: Matrix) {
        let D = bandit.contextDim
        var trainX = Matrix(rows: played, cols: D), trainY = Matrix(rows: played, cols: 1)
        for i in 0..<played {
            let r = bandit.round(i), a = arms[i]
            let x = r.contexts.rows(at: [a])
            for j in 0..<D { trainX[i, j] = x[0, j] }
            trainY[i, 0] = r.rewards[a] + model.forward(w0, x)[0, 0]
        }
        guard round < bandit.rounds else {
            return (trainX, trainY, Matrix(rows: 0, cols: D), Matrix(rows: 0, cols: 1))
        }
        let next = bandit.round(round)
        var testY = Matrix(rows: next.arms, cols: 1)
        for a in 0..<next.arms { testY[a, 0] = next.rewards[a] + model.forward(w0, next.contexts.rows(at: [a]))[0, 0] }
        return (trainX, trainY, next.contexts, testY)
    }
}
