import PKNetworks
import PKNumerics

/// One (S)GD update of an MLP on a batch: the single definition that training and the
/// analyzer's replay share, so that a replay reproduces a recorded run bit for bit.
public struct StepResult: Sendable {
    /// Mean batch loss at the weights before the update.
    public let loss: Double
    /// Per-example output gradients `g_i = ∂ℓ/∂f(x_i)` at those weights, |B| × C.
    public let outputGradient: Matrix
    /// `w_{t+1}` (not computed when the loss is not finite).
    public let next: [Double]?
}

extension GradientDescent {
    /// `w_{t+1} = w_t − η (∇_w (1/|B|) Σ_{i∈B} ℓ(f(x_i; w_t), y_i) + λ w_t)`.
    public func step(model: MLP, parameters w: [Double], inputs x: Matrix, targets y: Matrix,
                     loss: LossKind, learningRate eta: Double) -> StepResult {
        let (output, pullback) = model.forwardWithPullback(w, x)
        let (batchLoss, g) = loss.evaluate(outputs: output, targets: y)
        guard batchLoss.isFinite else { return StepResult(loss: batchLoss, outputGradient: g, next: nil) }
        let grad = pullback((1.0 / Double(x.rows)) * g)
        var next = w
        Vec.axpy(1, delta(gradient: grad, parameters: w, learningRate: eta), &next)
        return StepResult(loss: batchLoss, outputGradient: g, next: next)
    }
}
