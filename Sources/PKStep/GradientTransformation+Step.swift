import PKNetworks
import PKOptim
import PKNumerics

/// One update of a network on a batch: the single definition that training and the analyzer's
/// replay share, so that a replay reproduces a recorded run bit for bit.
public struct StepResult: Sendable {
    /// Mean batch loss at the weights before the update.
    public let loss: Double
    /// Per-example output gradients `g_i = ∂ℓ/∂f(x_i)` at those weights, |B| × C.
    public let outputGradient: Matrix
    /// `w_{t+1}` (not computed when the loss is not finite).
    public let next: [Double]?
    /// The optimizer's state after the update (the state before it when the loss is not finite).
    public var state: OptimizerState? = nil
    /// What the update did besides `Δw` (clip scale, decoupled decay, Adam's coefficient).
    public var info: UpdateInfo? = nil
}

extension GradientTransformation {
    /// `w_{t+1} = w_t + update(∇_w (1/|B|) Σ_{i∈B} ℓ(f(x_i; w_t), y_i), state, w_t, η_t)`.
    public func step(model: any Network, parameters w: [Double], state: OptimizerState, inputs x: Matrix, targets y: Matrix,
                     loss: LossKind, learningRate eta: Double) -> StepResult {
        let (output, pullback) = model.forwardWithPullback(w, x)
        let (batchLoss, g) = loss.evaluate(outputs: output, targets: y)
        guard batchLoss.isFinite else { return StepResult(loss: batchLoss, outputGradient: g, next: nil, state: state) }
        let grad = pullback((1.0 / Double(x.rows)) * g)
        let u = update(grad, state: state, parameters: w, learningRate: eta)
        var next = w
        Vec.axpy(1, u.updates, &next)
        return StepResult(loss: batchLoss, outputGradient: g, next: next, state: u.state, info: u.info)
    }
}
