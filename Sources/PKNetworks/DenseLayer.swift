import PKNumerics

/// One dense layer `z = s_W · a Wᵀ + s_b · b` acting on a batch, with its forward pass, its
/// pullback and its tangent (forward-mode) rule side by side.
///
/// Shapes: input `a` is `n × inputs` (one example per row), `W` is `outputs × inputs` (row-major,
/// PyTorch's `nn.Linear` convention), `b` has `outputs` entries, `z` is `n × outputs`.
/// The scales fold the parameterization into the layer (see `Parameterization`):
/// `ntk`: `s_W = σ_w/√inputs`, `s_b = σ_b`; `standard`: `s_W = s_b = 1`.
///
/// The Jacobian of `z_i` (one example) with respect to `W` is the outer product `s_W e_i aᵀ`, and
/// with respect to `b` is `s_b e_i`: so `∂f_c/∂W = s_W δ_c aᵀ` and `∂f_c/∂b = s_b δ_c`, where
/// `δ_c = ∂f_c/∂z` is the back-propagated signal (path-kernel-math §6).
public struct DenseLayer: Sendable, Equatable {
    /// Position `l` in the network, `0..<depth`.
    public let index: Int
    public let inputs: Int
    public let outputs: Int
    /// Offset of `layers.l.weight` (`outputs × inputs` entries) in the flat parameter vector.
    public let weightOffset: Int
    /// Offset of `layers.l.bias` (`outputs` entries), or `nil` when the network has no biases.
    public let biasOffset: Int?
    /// `s_W`: multiplies `a Wᵀ` in the forward pass.
    public let weightScale: Double
    /// `s_b`: multiplies `b` in the forward pass (unused without biases).
    public let biasScale: Double

    public var weightCount: Int { inputs * outputs }

    /// `W` as an `outputs × inputs` matrix (a copy of its slice of `w`).
    public func weight(_ w: [Double]) -> Matrix {
        Matrix(rows: outputs, cols: inputs, data: Array(w[weightOffset..<(weightOffset + weightCount)]))
    }

    /// An `n × outputs` matrix whose every row is `s_b · b` (zero without biases).
    func broadcastBias(_ w: [Double], rows n: Int) -> Matrix {
        var z = Matrix(rows: n, cols: outputs)
        guard let bo = biasOffset else { return z }
        z.data.withUnsafeMutableBufferPointer { zp in
            for i in 0..<outputs {
                let bi = biasScale * w[bo + i]
                for r in 0..<n { zp[r * outputs + i] = bi }
            }
        }
        return z
    }

    // MARK: Forward

    /// `z = s_W · a Wᵀ + s_b · 1 bᵀ` (`n × outputs`); `W` is `weight(w)`, passed in to share the copy.
    func forward(_ W: Matrix, _ w: [Double], _ a: Matrix) -> Matrix {
        var z = broadcastBias(w, rows: a.rows)
        Matrix.gemm(a, W, transposeB: true, alpha: weightScale, beta: 1, into: &z)
        return z
    }

    // MARK: Pullback

    /// Given the signal `δ = ∂s/∂z` (`n × outputs`) of a scalar `s`, writes `∂s/∂W = s_W δᵀ a` and
    /// `∂s/∂b = s_b Σ_rows δ` into their slices of `gradient`.
    func accumulateParameterGradient(input a: Matrix, signal delta: Matrix, into gradient: inout [Double]) {
        var dW = Matrix(rows: outputs, cols: inputs)
        Matrix.gemm(delta, transposeA: true, a, alpha: weightScale, into: &dW)
        gradient.replaceSubrange(weightOffset..<(weightOffset + weightCount), with: dW.data)
        if let bo = biasOffset {
            let sums = delta.columnSums()
            for i in 0..<outputs { gradient[bo + i] = biasScale * sums[i] }
        }
    }

    /// `∂s/∂a = s_W δ W` (`n × inputs`).
    func inputGradient(_ W: Matrix, signal delta: Matrix) -> Matrix {
        var da = Matrix(rows: delta.rows, cols: inputs)
        Matrix.gemm(delta, W, alpha: weightScale, into: &da)
        return da
    }

    // MARK: Tangent (forward mode)

    /// `ż = s_W (ȧ Wᵀ + a Ẇᵀ) + s_b ḃ` for a parameter tangent `v` (`Ẇ`, `ḃ` are its slices) and an
    /// input tangent `ȧ` (`nil` means zero, as for the network input).
    func tangent(_ W: Matrix, _ v: [Double], input a: Matrix, inputTangent da: Matrix?) -> Matrix {
        var dz = broadcastBias(v, rows: a.rows)
        Matrix.gemm(a, weight(v), transposeB: true, alpha: weightScale, beta: 1, into: &dz)
        if let da { Matrix.gemm(da, W, transposeB: true, alpha: weightScale, beta: 1, into: &dz) }
        return dz
    }
}
