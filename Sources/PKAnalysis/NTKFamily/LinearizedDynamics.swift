import Foundation
import PKNumerics

/// Gradient descent on a linearized model in closed form (ntk-family contract §2; Lee et al.
/// 2019, "Wide Neural Networks of Any Depth Evolve as Linear Models Under Gradient Descent";
/// neural-tangents `predict.gradient_descent_mse`): the operator `G_t` of
///
///     f_t(x) = f₀(x) + Θ(x, X) G_t (Y − F₀)
///     discrete  G_t = Θ⁻¹ [I − (I − ηΘ/n)^t]        (t steps of w ← w − (η/n) Σ_i J_iᵀ(f_i − y_i))
///     flow      G_t = Θ⁻¹ [I − exp(−ηΘt/n)]          (dw/dt = −η∇L, t in units of steps)
///     t = ∞     G_∞ = Θ⁻¹
///
/// for the project's mean MSE `L = (1/n) Σ_i ½‖f_i − y_i‖²` (`n` examples, not `nC` rows).
///
/// Priorities, in order: the contract's definitions in float64; no NaN for a singular `Θ` at
/// finite `t`; a clear error (never a trap) at `t = ∞` when `Θ` is singular without a ridge.
///
/// Evaluation: `Θ` symmetrized, `Θ = V diag(λ) Vᵀ`, `λ < 0` clamped to 0, `G_t = V diag(g_t(λ)) Vᵀ`
/// with `a = ηλ/n` and
///
///     discrete  g_t(λ) = −expm1(t·log1p(−a))/λ   (a < 1),   (1 − (1 − a)^t)/λ  (a ≥ 1)
///     flow      g_t(λ) = −expm1(−a t)/λ
///     λ = 0     g_t = ηt/n   (the limit)
///
/// Null directions of `Θ` do not reach predictions (`Θ(x, X) v = 0` when `Θv = 0`), so a
/// singular `Θ` is fine at finite `t`. `t = ∞` solves with the Cholesky factor of `Θ + λ_r I`,
/// refusing a `Θ` whose smallest eigenvalue is below `m·ε·λ_max` (singular to working precision)
/// when no ridge is given. The ridge `λ_r = ρ·tr(Θ)/m` (`m` rows of `Θ`; the project's relative
/// convention, neural-tangents' `diag_reg`) is added to `Θ` at every `t`, as neural-tangents does.
/// Does *not* hold: above `ηλ_max/n = 2` discrete GD diverges; the formula then still describes
/// the linearized run (`stability` reports the ratio).
public struct LinearizedDynamics: Sendable {
    /// Discrete gradient descent (integer steps) or gradient flow.
    public enum Dynamics: String, CaseIterable, Sendable, Codable {
        case discrete
        case flow
    }

    public let dynamics: Dynamics
    /// The learning rate `η`.
    public let learningRate: Double
    /// Examples `n` (the mean of the loss), not rows of `Θ`.
    public let examples: Int
    /// The absolute ridge `λ_r` added to the diagonal.
    public let ridge: Double
    /// Eigenvalues of `sym(Θ) + λ_r I`, ascending (before clamping).
    public let eigenvalues: [Double]
    /// Eigenvectors as rows (`Vᵀ`).
    let vectors: Matrix
    /// `sym(Θ) + λ_r I` (for the Cholesky solve at `t = ∞`).
    let kernel: Matrix

    /// The relative ridges `ρ` accepted.
    public static let ridgeRange = NumberRange.atLeast(0)

    /// `Θ` is the training kernel (`m × m`: `nC × nC` for an empirical kernel, `n × n` for an
    /// analytic one applied per output), `examples` the `n` of the loss's mean, `ridge` the
    /// relative `ρ`. Throws an `AnalysisError` for a non-square or non-finite kernel, a learning
    /// rate that is not positive, or a LAPACK failure.
    public init(kernel theta: Matrix, examples: Int, learningRate: Double, dynamics: Dynamics, ridge rho: Double = 0) throws {
        guard theta.rows == theta.cols, theta.rows > 0 else {
            throw AnalysisError("the training kernel is \(theta.rows) × \(theta.cols); it must be square and non-empty")
        }
        guard theta.isFinite else { throw AnalysisError("the training kernel is not finite") }
        guard learningRate > 0, learningRate.isFinite else { throw AnalysisError("the learning rate must be positive, got \(learningRate)") }
        guard examples > 0 else { throw AnalysisError("no training examples") }
        guard rho >= 0, rho.isFinite else { throw AnalysisError("the ridge must be ≥ 0, got \(rho)") }
        let m = theta.rows
        var k = theta
        var trace = 0.0
        for i in 0..<m {
            for j in 0..<i {
                let v = 0.5 * (theta[i, j] + theta[j, i])
                k[i, j] = v
                k[j, i] = v
            }
            trace += theta[i, i]
        }
        let lambdaR = rho * trace / Double(m)
        for i in 0..<m { k[i, i] += lambdaR }
        let (values, vectors) = try LinearAlgebra.symmetricEigen(k)
        self.dynamics = dynamics
        self.learningRate = learningRate
        self.examples = examples
        self.ridge = lambdaR
        self.eigenvalues = values
        self.vectors = vectors
        self.kernel = k
    }

    /// `ηλ_max/n`: discrete gradient descent diverges above 2.
    public var stability: Double { learningRate * (eigenvalues.last ?? 0) / Double(examples) }

    /// `g_t(λ)` of this dynamics at finite `t ≥ 0` (`λ < 0` read as 0).
    public func gain(_ lambda: Double, time t: Double) -> Double {
        let scale = learningRate / Double(examples)
        guard lambda > 0 else { return scale * t }
        let a = scale * lambda
        switch dynamics {
        case .flow: return -expm1(-a * t) / lambda
        case .discrete: return a < 1 ? -expm1(t * log1p(-a)) / lambda : (1 - pow(1 - a, t)) / lambda
        }
    }

    /// `G_t B` for `B` with `m` rows (each column independently); `t = .infinity` for `G_∞`.
    /// Throws an `AnalysisError` at `t = ∞` when `Θ + λ_r I` is singular to working precision.
    public func apply(time t: Double, to b: Matrix) throws -> Matrix {
        precondition(b.rows == kernel.rows, "G_t of \(kernel.rows) rows applied to \(b.rows)")
        guard t.isFinite else {
            let m = Double(kernel.rows)
            let top = max(eigenvalues.last ?? 0, 0)
            guard let low = eigenvalues.first, low > m * Double.ulpOfOne * top else {
                throw AnalysisError("t = ∞ needs Θ(X, X)⁻¹, and Θ(X, X) is singular to working precision (smallest eigenvalue \(String(format: "%.3e", eigenvalues.first ?? 0)), largest \(String(format: "%.3e", top)); duplicate or nearly dependent inputs?): give a ridge (--ridge ρ, e.g. 1e-8)")
            }
            do { return try LinearAlgebra.choleskySolve(kernel, b) } catch {
                throw AnalysisError("t = ∞: Θ(X, X) + λ_r I is not positive definite (\(error)); give a larger ridge (--ridge)")
            }
        }
        precondition(t >= 0, "negative time \(t)")
        // V diag(g) Vᵀ B, with Vᵀ = `vectors`.
        var c = Matrix.product(vectors, b)
        for j in 0..<c.rows {
            let g = gain(eigenvalues[j], time: t)
            for k in 0..<c.cols { c[j, k] *= g }
        }
        return Matrix.product(vectors, transposeA: true, c)
    }
}
