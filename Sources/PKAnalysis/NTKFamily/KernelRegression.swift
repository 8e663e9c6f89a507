import Foundation
import PKNumerics

/// Kernel regression at `t = ∞`: the infinite ensemble's mean after training to convergence on
/// the mean MSE (ntk-family contract §2 with `f₀` averaged out, `Θ` the NTK; with the NNGP `K` in
/// its place, the GP posterior mean):
///
///     f(x) = Θ(x, X) (Θ(X, X) + λ_r I)⁻¹ Y,     λ_r = ρ·tr(Θ(X, X))/n
///
/// solved by `LinearizedDynamics` (the solver of `predict-linear --time inf`: Cholesky of the
/// symmetrized kernel plus the ridge, refusing a kernel singular to working precision without one).
/// `Y` is `n × C`; the kernels are scalar per output pair (applied to every column).
public enum KernelRegression {
    public struct Result: Sendable {
        /// `f(X)`, `n × C`.
        public let train: Matrix
        /// `f(x)` on the held-out points, `q × C`.
        public let test: Matrix
        /// The absolute ridge `λ_r`.
        public let ridge: Double
        /// Eigenvalues of `Θ(X, X) + λ_r I`, ascending.
        public let eigenvalues: [Double]
    }

    /// `kernel` is `Θ(X, X)` (`n × n`), `cross` `Θ(T, X)` (`q × n`), `targets` `Y` (`n × C`), `ridge`
    /// the relative `ρ ≥ 0`. Throws an `AnalysisError` for mismatched shapes, a non-finite kernel
    /// or a singular one without a ridge (the message says to give `--ridge`).
    public static func infiniteTime(kernel: Matrix, cross: Matrix, targets: Matrix, ridge rho: Double = 0) throws -> Result {
        guard kernel.rows == targets.rows, cross.cols == kernel.rows || cross.rows == 0 else {
            throw AnalysisError("kernel regression: Θ(X, X) is \(kernel.rows) × \(kernel.cols), Θ(T, X) \(cross.rows) × \(cross.cols), Y \(targets.rows) × \(targets.cols)")
        }
        let dynamics = try LinearizedDynamics(kernel: kernel, examples: kernel.rows, learningRate: 1, dynamics: .flow, ridge: rho)
        let zeros = { (rows: Int) in Matrix(rows: rows, cols: targets.cols) }
        let train = try dynamics.predict(cross: kernel, initial: zeros(kernel.rows), residual: targets, time: .infinity)
        let test = cross.rows > 0
            ? try dynamics.predict(cross: cross, initial: zeros(cross.rows), residual: targets, time: .infinity) : zeros(0)
        return Result(train: train, test: test, ridge: dynamics.ridge, eigenvalues: dynamics.eigenvalues)
    }
}
