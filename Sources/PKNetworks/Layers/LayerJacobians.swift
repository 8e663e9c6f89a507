import PKNumerics

/// Explicit per-example Jacobian rows of a layer network for a batch, and their contractions: the
/// generic exact route for networks without structured kernel factors (issue 11, item 3). Made by
/// `Layer.jacobians(_:_:)`; `MLP.jacobians` is the same matrix for an MLP (tested to round-off).
///
/// Shapes, for a batch of `n` examples, `C = outputShape.count` outputs and `P` parameters:
///
/// | value | shape |
/// | --- | --- |
/// | `rows` | `(n·C) × P`; row `r·C + c` is `∂f_c(x_r; w)/∂w`, columns in `layout` order (`MLP.jacobians`' layout) |
/// | `outputs` | `n × C`, `f(x_r; w)` |
/// | `product(v)`, `v` of length `P` | `n × C`, entry `(r, c)` = `∂f_c(x_r; w)/∂w · v` |
/// | `kernel(A, B, mode: .full)` | `(nA·C_A) × (nB·C_B)`, `J_A J_Bᵀ`: row `r·C_A + c`, column `r'·C_B + k` (`TangentFeatures.kernel`'s `.full`) |
/// | `kernel(A, B, mode: .trace)` | `nA × nB`, entry `Σ_c Θ_cc(a_r, b_r')` (needs `C_A = C_B`; `TangentFeatures.kernel`'s `.trace`) |
///
/// Memory is `n·C·P` scalars; the kernels are GEMMs over the `P` columns (cost `nA·C_A·nB·C_B·P`
/// for `.full`, `C` times less for `.trace`). Use the structured factors (`TangentFeatures`) where
/// a network has them.
public struct LayerJacobians<Scalar: BLASScalar>: Sendable {
    /// Number of examples n.
    public let count: Int
    /// Number of outputs per example C.
    public let channels: Int
    /// `(n·C) × P`: row `r·C + c` = `∂f_c(x_r; w)/∂w`.
    public let rows: DenseMatrix<Scalar>
    /// `n × C`: `f(x_r; w)`, from the same forward passes.
    public let outputs: DenseMatrix<Scalar>

    public init(count: Int, channels: Int, rows: DenseMatrix<Scalar>, outputs: DenseMatrix<Scalar>) {
        precondition(rows.rows == count * channels, "Jacobian rows: \(rows.rows) rows for \(count) examples × \(channels) outputs")
        precondition(outputs.rows == count && outputs.cols == channels, "outputs are \(outputs.rows)×\(outputs.cols), expected \(count)×\(channels)")
        self.count = count
        self.channels = channels
        self.rows = rows
        self.outputs = outputs
    }

    /// Number of parameters P (columns of `rows`).
    public var parameterCount: Int { rows.cols }

    /// `J(x_r; w)·v` for every example: `n × C`, entry `(r, c)` = row `r·C + c` of `rows` dotted with
    /// `v` (length `P`). One GEMM; equals the network's forward-mode `jvp(w, x, tangent: v)` to round-off.
    public func product(_ v: [Scalar]) -> DenseMatrix<Scalar> {
        precondition(v.count == parameterCount, "Jacobian product: vector has \(v.count) entries, the network has \(parameterCount) parameters")
        var out = DenseMatrix<Scalar>(rows: count * channels, cols: 1)
        DenseMatrix.gemm(rows, DenseMatrix(rows: parameterCount, cols: 1, data: v), into: &out)
        return out.reshaped(rows: count, cols: channels)
    }

    /// The tangent kernel `Θ(A, B) = J_A J_Bᵀ` (Jacobians at possibly different weights of the same
    /// network). `.full`: `(nA·C_A) × (nB·C_B)`, row `r·C_A + c`, column `r'·C_B + k`, one GEMM.
    /// `.trace` (needs `C_A = C_B = C`): `nA × nB`, entry `Σ_c ∂f_c(a_r)/∂w · ∂f_c(b_r')/∂w`, as `C`
    /// GEMMs over the strided rows of channel `c` (leading dimension `C·P`, no copies). The layouts of
    /// `TangentFeatures.kernel(_:_:mode:)`.
    public static func kernel(_ a: LayerJacobians, _ b: LayerJacobians, mode: KernelMode = .full) -> DenseMatrix<Scalar> {
        precondition(a.parameterCount == b.parameterCount, "Jacobians of different networks: \(a.parameterCount) and \(b.parameterCount) parameters")
        switch mode {
        case .full:
            return DenseMatrix.product(a.rows, b.rows, transposeB: true)
        case .trace:
            precondition(a.channels == b.channels, "a trace kernel needs the same channels on both sides (\(a.channels), \(b.channels))")
            let C = a.channels, P = a.parameterCount, nA = a.count, nB = b.count
            var out = DenseMatrix<Scalar>(rows: nA, cols: nB)
            if nA == 0 || nB == 0 || P == 0 { return out }
            a.rows.data.withUnsafeBufferPointer { pa in
                b.rows.data.withUnsafeBufferPointer { pb in
                    out.data.withUnsafeMutableBufferPointer { po in
                        for c in 0..<C {
                            Scalar.gemm(transposeA: false, transposeB: true, m: nA, n: nB, k: P, alpha: 1,
                                        a: pa.baseAddress! + c * P, lda: C * P, b: pb.baseAddress! + c * P, ldb: C * P,
                                        beta: c == 0 ? 0 : 1, c: po.baseAddress!, ldc: nB)
                        }
                    }
                }
            }
            return out
        }
    }
}

/// Where the Jacobian row `∂f_c(x_r)/∂w` of example `r` (of `n`) and output `c` (of `C`) sits in an
/// `(n·C) × P` matrix of rows (`Layer.jacobianRows`).
public enum JacobianRowOrder: Sendable {
    /// Row `r·C + c`: an example's rows together (`LayerJacobians.rows`, `MLP.jacobians`).
    case exampleMajor
    /// Row `c·n + r`: an output's rows together (`TangentFeatures.signals` of a layer network).
    case channelMajor
}
