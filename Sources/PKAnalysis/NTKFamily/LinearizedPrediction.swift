import Foundation
import PKNumerics

extension LinearizedDynamics {
    /// One network's linearized predictions at time `t` (contract §2):
    /// `f_t(x) = f₀(x) + Θ(x, X) G_t (Y − F₀)`, `q × C`.
    ///
    /// Two layouts of the kernels: the empirical one, `Θ(X, X)` `(nC) × (nC)` and `cross`
    /// `(qC) × (nC)` (rows `r·C + c`), where the residual `Y − F₀` (`n × C`) is flattened the same
    /// way; or the analytic one, scalar per output (`n × n`, `cross` `q × n`), applied to each
    /// output column. `cross` with `n` columns selects the second (the same thing when `C = 1`).
    public func predict(cross: Matrix, initial f0: Matrix, residual: Matrix, time t: Double) throws -> Matrix {
        let perOutput = cross.cols == residual.rows
        precondition(perOutput || cross.cols == residual.rows * residual.cols, "cross kernel \(cross.rows)×\(cross.cols), residual \(residual.rows)×\(residual.cols)")
        let rhs = perOutput ? residual : Matrix(rows: residual.data.count, cols: 1, data: residual.data)
        let change = Matrix.product(cross, try apply(time: t, to: rhs))
        return f0 + Matrix(rows: f0.rows, cols: f0.cols, data: change.data)
    }

    /// Which function the infinite ensemble's mean and covariance describe (neural-tangents'
    /// `get`): every layer trained (`ntk`) or the readout layer only (`nngp`).
    public enum Ensemble: String, CaseIterable, Sendable, Codable {
        case ntk
        case nngp
    }

    /// The infinite ensemble of networks trained by this dynamics for time `t` (contract §2,
    /// neural-tangents `gradient_descent_mse_ensemble(...).predict_fn(t, x, get, compute_cov=True)`),
    /// with `f₀ ~ GP(0, K)`, `K` the NNGP and `Θ` the NTK (both analytic, scalar per output):
    ///
    ///     ntk:   T_t(x) = Θ(x, X) G_t                       (G_t of Θ: `ntk`)
    ///            mean μ_t(x) = T_t(x) Y
    ///            cov  K(x,x') + T_t(x) K(X,X) T_t(x')ᵀ − T_t(x) K(X,x') − K(x,X) T_t(x')ᵀ
    ///     nngp:  mean K(x,X) G^K_t Y,   cov K(x,x') − K(x,X) G^K_{2t} K(X,x')   (G^K of K: `nngp`)
    ///
    /// (`K⁻¹[I − A^{2t}] = G^K_{2t}` for both dynamics.) `ntk` must be given for `.ntk`; `nngp`
    /// is always the dynamics of `K(X, X)` (same `η`, `n`, dynamics and ridge). Shapes: `thetaQX`,
    /// `kQX` `q × n`, `kXX` `n × n`, `kQQ` `q × q`, `targets` `n × C`; mean `q × C`, covariance
    /// `q × q` (the same for every output).
    public static func ensemble(_ kind: Ensemble, ntk: LinearizedDynamics?, nngp: LinearizedDynamics, thetaQX: Matrix?,
                                kQX: Matrix, kXX: Matrix, kQQ: Matrix, targets: Matrix, time t: Double) throws -> (mean: Matrix, covariance: Matrix) {
        let kXQ = kQX.transposed
        switch kind {
        case .ntk:
            guard let ntk, let thetaQX else { preconditionFailure("the ntk ensemble needs the NTK's dynamics and cross kernel") }
            let z = try ntk.apply(time: t, to: thetaQX.transposed)          // T_t(Q)ᵀ = G_t Θ(X, Q), n × q
            let mean = Matrix.product(z, transposeA: true, targets)
            let kz = Matrix.product(kXX, z)                                   // K(X,X) T_tᵀ
            let tkt = Matrix.product(z, transposeA: true, kz)
            let tk = Matrix.product(z, transposeA: true, kXQ)                 // T_t(Q) K(X, Q)
            return (mean, kQQ + tkt - tk - tk.transposed)
        case .nngp:
            let mean = Matrix.product(kQX, try nngp.apply(time: t, to: targets))
            let reach = Matrix.product(kQX, try nngp.apply(time: 2 * t, to: kXQ))
            return (mean, kQQ - reach)
        }
    }
}
