import Foundation
import PKNetworks
import PKNumerics
import PKOptim

/// The preconditioned path kernel of Adam-type updates (path-kernel math §5).
///
/// Adam, AdamW and RMSProp (with or without momentum) all update as
///
///     Δw_t = −η_t Σ_{s≤t} a_t b ρ^{t−s} · Dq_t ⊙ Dx_s ⊙ u_s   (+ AdamW's −η_t λ w_t)
///
/// with `u_s` the (clipped) batch gradient plus coupled L2 decay `λ w_s`, and the recorded
/// diagonal preconditioner `D = 1/(√v̂ + ε)` on the query side (`Dq_t`, Adam: it scales the
/// first moment after averaging) or on the training side (`Dx_s`, RMSProp: it scales each
/// gradient before the momentum sum). Adam: `ρ = β₁`, `a_t = 1/(1 − β₁^{t+1})`,
/// `b = 1 − β₁`; RMSProp: `ρ = μ` (0 without momentum), `a = b = 1`.
///
/// Substituting into math §1 gives, per query x and training point i,
///
///     K^p(x, x_i) = Σ_s b (s_s/|B_s|) R_s(x) (Dx_s ⊙ J(x_i; w_s))ᵀ,
///     R_s(x)      = Σ_{t≥s} η_t a_t ρ^{t−s} J̄_t(x) ⊙ Dq_t = ρ R_{s+1}(x) + η_s a_s J̄_s(x) ⊙ Dq_s,
///
/// an exact sum (no truncated tail): the query side `R_s` is kept as explicit P-vectors and
/// run backwards in time, each step meeting only its own batch's Jacobians. Cost per step:
/// one pass over `R` (queries · C · P) and the products with the batch.
struct PreconditionedForm {
    struct Step {
        let start: [Double]
        /// `D_t` from the optimizer state after update t.
        let preconditioner: [Double]
        let batch: [Int]
        let learningRate: Double
        /// `s_t/|B_t|`: clip scale over batch size.
        let scale: Double
        let nodes: [(s: Double, w: Double)]
    }

    let name: String
    let rho: Double
    let b: Double
    /// Adam's β₁ for `a_t = 1/(1 − β₁^{t+1})`; nil: `a_t = 1`.
    let biasCorrectionBeta: Double?
    /// Adam: D with the query (`Dq_t`); RMSProp: with the training side (`Dx_s`).
    let preconditionQuery: Bool
    /// Coupled L2 decay (part of `u_s`).
    let coupledDecay: Double
    /// AdamW's decoupled decay: the term `−η_t λ w_t` of Δw_t outside the sum (its JVPs give R_wd).
    let decoupledDecay: Double
    var steps: [Step] = []
    var end: [Double] = []

    /// The form of `spec`'s optimizer, or nil when it has none (SGD).
    init?(spec: OptimizerSpec) {
        switch spec.kind {
        case .adam, .adamw:
            name = spec.kind == .adam ? "Adam" : "AdamW"
            rho = spec.beta1
            b = 1 - spec.beta1
            biasCorrectionBeta = spec.beta1
            preconditionQuery = true
            coupledDecay = spec.kind == .adam ? spec.weightDecay : 0
            decoupledDecay = spec.kind == .adamw ? spec.weightDecay : 0
        case .rmsprop:
            name = "RMSProp"
            rho = spec.momentum
            b = 1
            biasCorrectionBeta = nil
            preconditionQuery = false
            coupledDecay = spec.weightDecay
            decoupledDecay = 0
        default:
            return nil
        }
    }

    func a(_ t: Int) -> Double {
        guard let beta = biasCorrectionBeta else { return 1 }
        return 1 / (1 - Foundation.pow(beta, Double(t + 1)))
    }

    /// How the report names this kernel.
    var description: String {
        let weights = biasCorrectionBeta != nil
            ? "η_t(1−β₁)β₁^{t−s}/(1−β₁^{t+1}), β₁ = \(rho)"
            : (rho > 0 ? "η_t μ^{t−s}, μ = \(rho)" : "η_t (s = t)")
        let kernel = preconditionQuery ? "J̄_t(x) D_t J(x_i; w_s)ᵀ" : "J̄_t(x) D_s J(x_i; w_s)ᵀ"
        return "\(name): preconditioned path kernel \(kernel) with the recorded D = 1/(√v̂ + ε), weighted by \(weights), summed exactly (no truncation)"
    }
}

/// What the kernel form accumulates (see `PathAnalyzer`): K^p, N's row sums, diagonal and
/// attributed rows, the decay term, and the scalar weights of the fixed coefficients.
struct KernelAccumulators {
    var kp: Matrix
    var nSum: Matrix
    var nDiag: Matrix
    var nAttr: [Matrix]
    var rwd: Matrix
    /// Σ_t J̄_t(x)Δw_t (the JVP route's reconstruction).
    var jvpSum: Matrix
    var cSum: [Double]
    var gSum: Matrix
}

extension PathAnalyzer {
    /// Accumulates the preconditioned kernel form of `form`'s recorded steps into `acc`.
    /// `xq`: all queries (held-out first, `nT` of them, then the training points unless
    /// `exactOnly`); `attrIndex`: query row → attributed row. `progress(done)` counts steps
    /// (over all query blocks).
    static func accumulatePreconditioned(_ form: PreconditionedForm, model: MLP, run: TraceRun, xq: Matrix, nT: Int,
                                         exactOnly: Bool, mode: KernelMode, attrIndex: [Int: Int],
                                         into acc: inout KernelAccumulators, progress: (Int, Int) -> Void) {
        let C = model.outputDim, P = model.parameterCount, T = form.steps.count
        let blocks = mode == .full ? C : 1
        let nQ = xq.rows
        // Query rows per block: R stays under about 256 MB.
        let perBlock = max(1, min(nQ, (256 << 20) / max(8 * C * P, 1)))
        let queryBlocks = stride(from: 0, to: nQ, by: perBlock).map { $0..<min($0 + perBlock, nQ) }
        var done = 0
        for (blockIndex, rows) in queryBlocks.enumerated() {
            let xb = xq.rows(rows), m = rows.count
            var R = LayeredRows(rows: C * m, model: model)   // row c·m + r: R_s(x_r) for output c
            var rsum = 0.0                                   // Σ_{t≥s} η_t a_t ρ^{t−s}
            for s in stride(from: T - 1, through: 0, by: -1) {
                let st = form.steps[s]
                let next = s + 1 < T ? form.steps[s + 1].start : form.end
                let delta = zip(next, st.start).map { $0 - $1 }
                let coef = st.learningRate * form.a(s)
                // The queries' features at the nodes, with the fused JVPs of Δw_s (the reconstruction)
                // and of AdamW's decoupled part −η_s λ w_s (R_wd).
                var tangents = [delta]
                if form.decoupledDecay > 0 { tangents.append(st.start.map { -st.learningRate * form.decoupledDecay * $0 }) }
                let nodes = st.nodes.map { node -> (features: TangentFeatures<Double>, weight: Double) in
                    var ws = st.start
                    Vec.axpy(node.s, delta, &ws)
                    let f = model.tangentFeatures(ws, xb, tangents: tangents)
                    for r in 0..<m {
                        for c in 0..<C {
                            acc.jvpSum[rows.lowerBound + r, c] += node.w * f.outputTangents[0][r, c]
                            if tangents.count > 1 { acc.rwd[rows.lowerBound + r, c] += node.w * f.outputTangents[1][r, c] }
                        }
                    }
                    return (f, coef * node.w)
                }
                model.accumulateJacobians(nodes, scaledBy: form.preconditionQuery ? st.preconditioner : nil, decay: form.rho, into: &R)
                rsum = form.rho * rsum + coef
                // RMSProp's D_s sits with the training side; moved onto a copy of R (D is diagonal).
                var rs = R
                if !form.preconditionQuery { rs.scale(by: st.preconditioner, model: model) }

                // The batch's side at w_s, structured: ∂f_k(x_i)/∂W_l = s_l δ_{k,i} a_iᵀ, so per layer one
                // GEMM Y = A_b R_lᵀ and a contraction of Y's (row, ·) blocks with the signals.
                let batch = st.batch, nb = batch.count
                let xs = run.trainX.rows(at: batch)
                let fb = model.tangentFeatures(st.start, xs)
                let g = run.loss.evaluate(outputs: fb.outputs, targets: run.trainY.rows(at: batch)).perExampleGradient
                let fg = fb.contracted(with: g)
                let weight = form.b * st.scale
                // K(x_r, x_i) per channel pair (full: (C·m) × (nb·C); trace: m × nb), N's Σ_k K_ck g_ik.
                var kFull = Matrix(rows: mode == .full ? C * m : 0, cols: nb * C)
                var kTrace = Matrix(rows: mode == .full ? 0 : m, cols: nb)
                var nBlock = Matrix(rows: C * m, cols: nb)
                for layer in model.layers {
                    let l = layer.index, dout = layer.outputs
                    let y = parallelProduct(fb.inputs[l], rs.weights[l])   // nb × (C·m·out)
                    let sig = fb.signals[l], sigG = fg.signals[l]
                    let sw = layer.weightScale
                    y.data.withUnsafeBufferPointer { yp in
                        sig.data.withUnsafeBufferPointer { dp in
                            sigG.data.withUnsafeBufferPointer { gp in
                                for i in 0..<nb {
                                    for row in 0..<(C * m) {
                                        let yr = yp.baseAddress! + i * (C * m * dout) + row * dout
                                        func dotSignal(_ p: UnsafePointer<Double>) -> Double {
                                            var v = 0.0
                                            for j in 0..<dout { v += yr[j] * p[j] }
                                            return sw * v
                                        }
                                        nBlock[row, i] += dotSignal(gp.baseAddress! + i * dout)
                                        if mode == .full {
                                            for k in 0..<C { kFull[row, i * C + k] += dotSignal(dp.baseAddress! + (k * nb + i) * dout) }
                                        } else {
                                            let c = row / m
                                            kTrace[row % m, i] += dotSignal(dp.baseAddress! + (c * nb + i) * dout)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if layer.biasOffset != nil {
                        // s_b Σ_j R_b[row, j] δ_k[i, j]: one GEMM against the signals and δ^g stacked.
                        let stacked = Matrix(rows: (C + 1) * nb, cols: dout, data: sig.data + sigG.data)
                        let yb = parallelProduct(rs.biases[l], stacked)     // (C·m) × ((C+1)·nb)
                        let sb = layer.biasScale
                        for row in 0..<(C * m) {
                            for i in 0..<nb {
                                nBlock[row, i] += sb * yb[row, C * nb + i]
                                if mode == .full {
                                    for k in 0..<C { kFull[row, i * C + k] += sb * yb[row, k * nb + i] }
                                } else {
                                    kTrace[row % m, i] += sb * yb[row, (row / m) * nb + i]
                                }
                            }
                        }
                    }
                }
                for r in 0..<m {
                    let q = rows.lowerBound + r
                    let diag = (!exactOnly && q >= nT) ? q - nT : -1
                    let attr = attrIndex[q]
                    for (i, ex) in batch.enumerated() {
                        if mode == .full {
                            for c in 0..<C { for kk in 0..<C {
                                acc.kp[q * blocks + c, ex * blocks + kk] += weight * kFull[c * m + r, i * C + kk]
                            } }
                        } else {
                            acc.kp[q, ex] += weight * kTrace[r, i]
                        }
                        for c in 0..<C {
                            let v = weight * nBlock[c * m + r, i]
                            acc.nSum[q, c] += v
                            if ex == diag { acc.nDiag[ex, c] += v }
                            if let attr { acc.nAttr[attr][c, ex] += v }
                        }
                    }
                }
                // Coupled decay: R_wd −= b R_s (Dx_s ⊙ λ w_s).
                if form.coupledDecay > 0 {
                    let rv = rs.dot(st.start.map { form.coupledDecay * $0 }, model: model)
                    for c in 0..<C { for r in 0..<m { acc.rwd[rows.lowerBound + r, c] -= form.b * rv[c * m + r] } }
                }
                // Scalar weights of the fixed coefficients (once, not per query block).
                if blockIndex == 0 {
                    for (i, ex) in batch.enumerated() {
                        acc.cSum[ex] += weight * rsum
                        for c in 0..<C { acc.gSum[ex, c] += weight * rsum * g[i, c] }
                    }
                }
                done += 1
                progress(done, T * queryBlocks.count)
            }
        }
    }

    /// `A Bᵀ` with A's rows split over `Parallel.threads` (one single-threaded GEMM each).
    static func parallelProduct(_ a: Matrix, _ b: Matrix) -> Matrix {
        let parts = Parallel.ranges(a.rows, minimum: 16)
        var pieces = [Matrix](repeating: Matrix(rows: 0, cols: 0), count: parts.count)
        pieces.withUnsafeMutableBufferPointer { pp in
            let out = pp.baseAddress!
            Parallel.forEach(parts.count) { p in
                var c = Matrix(rows: parts[p].count, cols: b.rows)
                Matrix.gemm(a, rows: parts[p], b, rows: 0..<b.rows, into: &c)
                out[p] = c
            }
        }
        return parts.count == 1 ? pieces[0] : Matrix(rows: a.rows, cols: b.rows, data: pieces.flatMap(\.data))
    }
}
