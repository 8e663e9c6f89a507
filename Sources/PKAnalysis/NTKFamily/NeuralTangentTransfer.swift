import Foundation
import PKNetworks
import PKNumerics
import PKOptim

/// Neural Tangent Transfer (Liu & Zenke 2020, "Finding trainable sparse networks through Neural
/// Tangent Transfer", ICML; the authors' code fmi-basel/neural-tangent-transfer): a sparse
/// student `M ⊙ s` is fitted, without labels, to the outputs and the empirical NTK of a dense
/// teacher `w_T` (ntk-family contract §7, Docs/bandits-and-pruning.md).
///
/// On a batch `B` of inputs, split in order into `B₁` (the first `⌊|B|/2⌋` rows) and `B₂`:
///
///     L(s) = λ_K ‖Θ̂_{M⊙s}(B₁,B₂) − Θ̂_{w_T}(B₁,B₂)‖²_F / (|B₁||B₂|C²)       kernel term
///          + ‖f(B; M⊙s) − f(B; w_T)‖²_F / (|B| C)                           target term
///          + (λ₂/ρ) ‖M ⊙ s‖²_weights                                         L2 term
///
/// `Θ̂_u(B₁,B₂)` is the full `(n₁, n₂, C, C)` cross NTK, flattened to `(n₁C) × (n₂C)` (row
/// `r·C + c`), of the network at the parameter vector `u = M ⊙ s`, differentiated with respect to
/// every entry of `u` (pruned ones included: the authors' `empirical_ntk_fn` at the masked
/// parameters; the oracle of §7 holds for this reading and not for `J diag(M) Jᵀ`).
///
/// Priorities, in order: the exact value and the exact gradient (checked against the contract's
/// oracle 7, explicit Jacobian products and central differences), cost linear in `P` per
/// iteration (no Jacobian is formed), then clarity.
///
/// **The gradient.** Per layer the NTK factors (path-kernel math §6):
/// `Θ̂_ab = Σ_l D_l[a,b] (s_W² A_l[r_a,r_b] + s_b²)` with `D_l = Δ_l Δ_lᵀ` the Gram of the
/// back-propagated signals `δ_l^{(r,c)} = ∂f_c(x_r)/∂z_l` and `A_l` the Gram of the layer inputs.
/// `∇L` is the reverse of that computation: the kernel term's adjoint flows into `Δ_l` and `a_l`,
/// then back through the signals' own backward pass (`δ_{l−1} = φ'(z_{l−1}) ⊙ s_W δ_l W_l`, whose
/// adjoint needs `φ''`) and the forward pass: reverse-over-reverse written out by hand, one
/// forward pass, `C` signal passes and their adjoints, all GEMMs on `n·C` rows.
/// `∇_s L = M ⊙ ∇_u L`: pruned entries get zero gradient.
///
/// Only MLPs (`MLP`): the hand-written second-order pass knows dense layers only.
public struct NTTObjective: Sendable {
    /// The three terms of `L` and what the report prints beside them.
    public struct Terms: Sendable, Equatable {
        /// `‖Θ̂_S − Θ̂_T‖²_F / (n₁n₂C²)`, before `λ_K`.
        public var kernel: Double
        /// `‖f_S − f_T‖²_F / (nC)`.
        public var target: Double
        /// `‖M ⊙ s‖²` over the weights (biases left out), before `λ₂/ρ`.
        public var weightNormSquared: Double
        /// `L = λ_K·kernel + target + (λ₂/ρ)·weightNormSquared`.
        public var loss: Double
        /// `‖Θ̂_S − Θ̂_T‖_F / ‖Θ̂_T‖_F` on the same halves.
        public var relativeKernelDistance: Double
    }

    public let network: MLP
    /// The dense teacher `w_T` (raw parameters, length P).
    public let teacher: [Double]
    /// `λ_K`, `λ₂` and the density `ρ` (the L2 term's divisor).
    public let lambdaKernel: Double, lambdaL2: Double, density: Double

    public init(network: MLP, teacher: [Double], lambdaKernel: Double, lambdaL2: Double, density: Double) {
        precondition(teacher.count == network.parameterCount, "NTTObjective: teacher has \(teacher.count) entries, the network \(network.parameterCount)")
        self.network = network
        self.teacher = teacher
        self.lambdaKernel = lambdaKernel
        self.lambdaL2 = lambdaL2
        self.density = density
    }

    /// `L` and its terms at student `s` with mask `mask` (P entries; biases must be kept) on the
    /// batch `x` (`n × d_0`, `n ≥ 2`).
    public func terms(student s: [Double], mask: [Bool], batch x: Matrix) -> Terms {
        evaluate(student: s, mask: mask, batch: x, gradient: false).terms
    }

    /// `L`'s terms and `∇_s L` (P entries, zero on pruned entries).
    public func termsAndGradient(student s: [Double], mask: [Bool], batch x: Matrix) -> (terms: Terms, gradient: [Double]) {
        let r = evaluate(student: s, mask: mask, batch: x, gradient: true)
        return (r.terms, r.gradient!)
    }

    // MARK: Implementation

    /// One forward pass with the pre-activations kept, and the signals of every output.
    struct Pass {
        /// `a_l`, `n × d_l`, `l = 0..<L`.
        var inputs: [Matrix] = []
        /// `z_l`, `n × d_{l+1}`, hidden layers `l = 0..<L−1`.
        var preActivations: [Matrix] = []
        /// `φ'(z_l)`, hidden layers.
        var slopes: [Matrix] = []
        var weights: [Matrix] = []
        var output = Matrix(rows: 0, cols: 0)
        /// `Δ_l`, `(nC) × d_{l+1}`, row `r·C + c` = `∂f_c(x_r)/∂z_l`, `l = 0..<L`.
        var signals: [Matrix] = []
        /// `g_l = s_W Δ_l W_l`, `(nC) × d_l`, `l = 1..<L` (index 0 unused).
        var signalInputs: [Matrix] = []
    }

    func pass(_ u: [Double], _ x: Matrix) -> Pass {
        let net = network, L = net.depth, C = net.outputDim, n = x.rows
        var p = Pass()
        var a = x
        for layer in net.layers {
            let W = layer.weight(u)
            p.weights.append(W)
            p.inputs.append(a)
            var z = layer.broadcastBiasForNTT(u, rows: n)
            Matrix.gemm(a, W, transposeB: true, alpha: layer.weightScale, beta: 1, into: &z)
            if layer.index == L - 1 { p.output = z; break }
            p.preActivations.append(z)
            let (values, slopes) = net.activation.valuesAndDerivatives(z, leakySlope: net.spec.leakySlope)
            p.slopes.append(slopes)
            a = values
        }
        var delta = Matrix(rows: n * C, cols: C)
        for r in 0..<n { for c in 0..<C { delta[r * C + c, c] = 1 } }
        p.signals = [Matrix](repeating: delta, count: L)
        p.signalInputs = [Matrix](repeating: Matrix(rows: 0, cols: 0), count: L)
        for l in stride(from: L - 1, to: 0, by: -1) {
            let layer = net.layers[l]
            var g = Matrix(rows: n * C, cols: layer.inputs)
            Matrix.gemm(p.signals[l], p.weights[l], alpha: layer.weightScale, into: &g)
            p.signalInputs[l] = g
            p.signals[l - 1] = Self.rowScaled(g, by: p.slopes[l - 1], outputs: C)
        }
        return p
    }

    /// `g ⊙ s` with `s` (`n × d`) repeated over the `C` rows `r·C + c` of `g` (`(nC) × d`).
    static func rowScaled(_ g: Matrix, by s: Matrix, outputs C: Int) -> Matrix {
        var out = g
        let d = g.cols
        for row in 0..<g.rows {
            let r = row / C
            for j in 0..<d { out.data[row * d + j] *= s.data[r * d + j] }
        }
        return out
    }

    /// `Θ̂(B₁,B₂)` from a pass: `Σ_l D_l ⊙ (s_W² A_l ⊗ 1 + s_b²)`, with the per-layer Grams.
    func crossKernel(_ p: Pass, split n1: Int) -> (kernel: Matrix, signalGrams: [Matrix], inputGrams: [Matrix]) {
        let net = network, C = net.outputDim, n = p.output.rows, n2 = n - n1
        var theta = Matrix(rows: n1 * C, cols: n2 * C)
        var dGrams: [Matrix] = [], aGrams: [Matrix] = []
        for layer in net.layers {
            let l = layer.index
            let D1 = p.signals[l].rows(0..<(n1 * C)), D2 = p.signals[l].rows((n1 * C)..<(n * C))
            var D = Matrix(rows: n1 * C, cols: n2 * C)
            Matrix.gemm(D1, D2, transposeB: true, into: &D)
            let A1 = p.inputs[l].rows(0..<n1), A2 = p.inputs[l].rows(n1..<n)
            var A = Matrix(rows: n1, cols: n2)
            Matrix.gemm(A1, A2, transposeB: true, into: &A)
            let sW2 = layer.weightScale * layer.weightScale
            let sB2 = layer.biasOffset == nil ? 0 : layer.biasScale * layer.biasScale
            for i in 0..<(n1 * C) {
                for j in 0..<(n2 * C) {
                    theta.data[i * n2 * C + j] += D.data[i * n2 * C + j] * (sW2 * A.data[(i / C) * n2 + j / C] + sB2)
                }
            }
            dGrams.append(D)
            aGrams.append(A)
        }
        return (theta, dGrams, aGrams)
    }

    /// The teacher's outputs and cross kernel on a batch (cached by the runner per batch).
    func teacherKernel(_ x: Matrix) -> (output: Matrix, kernel: Matrix) {
        let p = pass(teacher, x)
        return (p.output, crossKernel(p, split: x.rows / 2).kernel)
    }

    func evaluate(student s: [Double], mask: [Bool], batch x: Matrix, gradient wantGradient: Bool,
                  teacherValues: (output: Matrix, kernel: Matrix)? = nil) -> (terms: Terms, gradient: [Double]?) {
        let net = network, C = net.outputDim, n = x.rows, n1 = n / 2, n2 = n - n1
        precondition(n >= 2, "NTTObjective: a batch needs at least 2 rows (one per half)")
        precondition(s.count == net.parameterCount && mask.count == net.parameterCount, "NTTObjective: parameter count")
        var u = s
        for k in u.indices where !mask[k] { u[k] = 0 }
        let teacherValues = teacherValues ?? teacherKernel(x)
        let p = pass(u, x)
        let (theta, dGrams, aGrams) = crossKernel(p, split: n1)

        // The terms, each sum in index order.
        let kernelScale = 1 / Double(n1 * n2 * C * C)
        var g2 = 0.0, t2 = 0.0
        for k in theta.data.indices {
            let d = theta.data[k] - teacherValues.kernel.data[k]
            g2 += d * d
            t2 += teacherValues.kernel.data[k] * teacherValues.kernel.data[k]
        }
        var f2 = 0.0
        for k in p.output.data.indices {
            let d = p.output.data[k] - teacherValues.output.data[k]
            f2 += d * d
        }
        var w2 = 0.0
        for layer in net.layers {
            for k in layer.weightOffset..<(layer.weightOffset + layer.weightCount) { w2 += u[k] * u[k] }
        }
        let kernelTerm = g2 * kernelScale, targetTerm = f2 / Double(n * C)
        let terms = Terms(kernel: kernelTerm, target: targetTerm, weightNormSquared: w2,
                          loss: lambdaKernel * kernelTerm + targetTerm + lambdaL2 / density * w2,
                          relativeKernelDistance: (g2 / t2).squareRoot())
        guard wantGradient else { return (terms, nil) }

        // Adjoint of the kernel term: Ḡ = λ_K · 2(Θ_S − Θ_T)/(n₁n₂C²), (n₁C) × (n₂C).
        var gBar = theta
        for k in gBar.data.indices { gBar.data[k] = lambdaKernel * 2 * kernelScale * (theta.data[k] - teacherValues.kernel.data[k]) }
        let L = net.depth
        var grad = [Double](repeating: 0, count: net.parameterCount)
        var signalBars: [Matrix] = []   // Δ̄_l, (nC) × d_{l+1}
        var inputBars: [Matrix] = []    // ā_l, n × d_l
        for layer in net.layers {
            let l = layer.index
            let sW2 = layer.weightScale * layer.weightScale
            let sB2 = layer.biasOffset == nil ? 0 : layer.biasScale * layer.biasScale
            // D̄_l = Ḡ ⊙ (s_W² A_l ⊗ 1 + s_b²); Ā_l = s_W² Σ_{c,c'} (Ḡ ⊙ D_l).
            var dBar = Matrix(rows: n1 * C, cols: n2 * C)
            var aBar = Matrix(rows: n1, cols: n2)
            for i in 0..<(n1 * C) {
                for j in 0..<(n2 * C) {
                    let e = i * n2 * C + j
                    dBar.data[e] = gBar.data[e] * (sW2 * aGrams[l].data[(i / C) * n2 + j / C] + sB2)
                    aBar.data[(i / C) * n2 + j / C] += sW2 * gBar.data[e] * dGrams[l].data[e]
                }
            }
            // Δ̄_l[B₁] = D̄ Δ_l[B₂], Δ̄_l[B₂] = D̄ᵀ Δ_l[B₁]; the same for the inputs with Ā.
            let d = layer.outputs
            var sb = Matrix(rows: n * C, cols: d)
            var top = Matrix(rows: n1 * C, cols: d), bottom = Matrix(rows: n2 * C, cols: d)
            Matrix.gemm(dBar, p.signals[l].rows((n1 * C)..<(n * C)), into: &top)
            Matrix.gemm(dBar, transposeA: true, p.signals[l].rows(0..<(n1 * C)), into: &bottom)
            sb.data.replaceSubrange(0..<(n1 * C * d), with: top.data)
            sb.data.replaceSubrange((n1 * C * d)..<(n * C * d), with: bottom.data)
            signalBars.append(sb)
            let din = layer.inputs
            var ab = Matrix(rows: n, cols: din)
            if l > 0 {
                var at = Matrix(rows: n1, cols: din), abot = Matrix(rows: n2, cols: din)
                Matrix.gemm(aBar, p.inputs[l].rows(n1..<n), into: &at)
                Matrix.gemm(aBar, transposeA: true, p.inputs[l].rows(0..<n1), into: &abot)
                ab.data.replaceSubrange(0..<(n1 * din), with: at.data)
                ab.data.replaceSubrange((n1 * din)..<(n * din), with: abot.data)
            }
            inputBars.append(ab)
        }
        // Reverse of the signals' backward pass, l = 1 … L−1: δ_{l−1} = φ'(z_{l−1}) ⊙ g_l,
        // g_l = s_W δ_l W_l. Adds into Δ̄_l, W̄_l and z̄_{l−1}.
        var zBars = (0..<(L - 1)).map { Matrix(rows: n, cols: net.layers[$0].outputs) }
        let act = net.activation, alpha = net.spec.leakySlope
        for l in 1..<max(L, 1) {
            let layer = net.layers[l]
            let din = layer.inputs
            let prev = signalBars[l - 1]
            let gBarL = Self.rowScaled(prev, by: p.slopes[l - 1], outputs: C)
            let g = p.signalInputs[l]
            for r in 0..<n {
                for j in 0..<din {
                    var acc = 0.0
                    for c in 0..<C { acc += g.data[(r * C + c) * din + j] * prev.data[(r * C + c) * din + j] }
                    zBars[l - 1].data[r * din + j] += act.secondDerivative(p.preActivations[l - 1].data[r * din + j], leakySlope: alpha) * acc
                }
            }
            Matrix.gemm(gBarL, p.weights[l], transposeB: true, alpha: layer.weightScale, beta: 1, into: &signalBars[l])
            var dW = Matrix(rows: layer.outputs, cols: din)
            Matrix.gemm(p.signals[l], transposeA: true, gBarL, alpha: layer.weightScale, into: &dW)
            for k in 0..<dW.data.count { grad[layer.weightOffset + k] += dW.data[k] }
        }
        // Reverse of the forward pass: z̄_{L−1} = 2(f_S − f_T)/(nC).
        var zBar = p.output
        for k in zBar.data.indices { zBar.data[k] = 2 * (p.output.data[k] - teacherValues.output.data[k]) / Double(n * C) }
        for l in stride(from: L - 1, through: 0, by: -1) {
            let layer = net.layers[l]
            var dW = Matrix(rows: layer.outputs, cols: layer.inputs)
            Matrix.gemm(zBar, transposeA: true, p.inputs[l], alpha: layer.weightScale, into: &dW)
            for k in 0..<dW.data.count { grad[layer.weightOffset + k] += dW.data[k] }
            if let bo = layer.biasOffset {
                let sums = zBar.columnSums()
                for i in 0..<layer.outputs { grad[bo + i] += layer.biasScale * sums[i] }
            }
            if l == 0 { break }
            var aBarL = inputBars[l]
            Matrix.gemm(zBar, p.weights[l], alpha: layer.weightScale, beta: 1, into: &aBarL)
            var next = zBars[l - 1]
            for k in next.data.indices { next.data[k] += p.slopes[l - 1].data[k] * aBarL.data[k] }
            zBar = next
        }
        // The L2 term, then the mask: ∇_s L = M ⊙ ∇_u L.
        let l2 = 2 * lambdaL2 / density
        for layer in net.layers {
            for k in layer.weightOffset..<(layer.weightOffset + layer.weightCount) { grad[k] += l2 * u[k] }
        }
        for k in grad.indices where !mask[k] { grad[k] = 0 }
        return (terms, grad)
    }
}

extension DenseLayer {
    /// `broadcastBias` for the NTT pass (which keeps the pre-activations itself).
    func broadcastBiasForNTT(_ w: [Double], rows n: Int) -> Matrix {
        var z = Matrix(rows: n, cols: outputs)
        guard let bo = biasOffset else { return z }
        for r in 0..<n { for i in 0..<outputs { z.data[r * outputs + i] = biasScale * w[bo + i] } }
        return z
    }
}

/// Layerwise magnitude masks (ntk-family contract §7): in each weight tensor of `S` entries keep
/// the `k = ⌊ρS + ½⌋` entries of largest `|w|`, ties to the lower flat index; biases are always
/// kept. A mask is `[Bool]` over the flat parameters (`true` = kept).
public enum MagnitudeMask {
    /// `k = ⌊ρS + ½⌋`.
    public static func keptCount(density rho: Double, size S: Int) -> Int {
        Int((rho * Double(S) + 0.5).rounded(.down))
    }

    /// The mask of `w` for network `network` at density `ρ ∈ (0, 1]`.
    public static func make(_ network: MLP, weights w: [Double], density rho: Double) -> [Bool] {
        var mask = [Bool](repeating: true, count: network.parameterCount)
        for layer in network.layers {
            let o = layer.weightOffset, S = layer.weightCount
            let k = keptCount(density: rho, size: S)
            let order = (0..<S).sorted { i, j in
                let a = abs(w[o + i]), b = abs(w[o + j])
                return a != b ? a > b : i < j
            }
            for i in 0..<S { mask[o + i] = false }
            for i in order.prefix(k) { mask[o + i] = true }
        }
        return mask
    }

    /// A uniform random mask with the same `k` per weight tensor (the "random sparse" baseline):
    /// the first `k` of a Fisher–Yates permutation of each tensor's entries.
    public static func random(_ network: MLP, density rho: Double, seed: UInt64) -> [Bool] {
        var rng = PortableRandom.stream(seed: seed, label: 0x4D41534B)   // "MASK"
        var mask = [Bool](repeating: true, count: network.parameterCount)
        for layer in network.layers {
            let o = layer.weightOffset, S = layer.weightCount
            let k = keptCount(density: rho, size: S)
            let order = rng.permutation(S)
            for i in 0..<S { mask[o + i] = false }
            for i in order.prefix(k) { mask[o + i] = true }
        }
        return mask
    }

    /// Entries whose state differs between two masks, per weight tensor (the symmetric
    /// difference: a swap of one kept entry for one pruned entry counts 2).
    public static func changes(_ network: MLP, from old: [Bool], to new: [Bool]) -> [Int] {
        network.layers.map { layer in
            (layer.weightOffset..<(layer.weightOffset + layer.weightCount)).reduce(0) { $0 + (old[$1] != new[$1] ? 1 : 0) }
        }
    }

    /// Kept weight entries per weight tensor.
    public static func keptPerLayer(_ network: MLP, _ mask: [Bool]) -> [Int] {
        network.layers.map { layer in
            (layer.weightOffset..<(layer.weightOffset + layer.weightCount)).reduce(0) { $0 + (mask[$1] ? 1 : 0) }
        }
    }
}
