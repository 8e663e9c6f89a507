import Foundation
import PKNetworks
import PKNumerics

extension PathAnalyzer {
    /// The deepest bisection of a segment in adaptive mode (intervals of length 2⁻⁴⁰).
    public static let maxAdaptiveDepth = 40

    /// `full` when the accumulated C×C path kernel stays under about 200 MB, else `trace`.
    static func defaultKernel(queries: Int, train: Int, outputs C: Int) -> KernelMode {
        if C == 1 { return .full }
        return Double(queries * C) * Double(train * C) <= 2.5e7 ? .full : .trace
    }

    /// `count` indices spread evenly over `0..<n`.
    static func evenlySpaced(_ n: Int, count: Int) -> [Int] {
        guard count < n else { return Array(0..<n) }
        return (0..<count).map { $0 * n / count }
    }

    /// `YYᵀ` with Y the targets as vectors: regression values, ±1 for binary, one-hot for multiclass.
    static func targetGram(_ y: Matrix, task: String, outputs C: Int) -> Matrix {
        var v: Matrix
        switch task {
        case "binary": v = y.map { $0 > 0.5 ? 1 : -1 }
        case "multiclass":
            v = Matrix(rows: y.rows, cols: C)
            for r in 0..<y.rows { v[r, Int(y[r, 0].rounded())] = 1 }
        default: v = y
        }
        return Matrix.product(v, v, transposeB: true)
    }

    /// `⟨A, B⟩_F / (‖A‖_F ‖B‖_F)`.
    static func cosine(_ a: Matrix, _ b: Matrix) -> Double {
        let d = Vec.dot(a.data, b.data)
        let na = a.frobeniusNorm, nb = b.frobeniusNorm
        return na > 0 && nb > 0 ? d / (na * nb) : 0
    }

    /// Domingos' fixed coefficients `ā_i = −Σ_t c_{i,t} g_{i,t} / Σ_t c_{i,t}` (0 for a point never in a batch), n × C.
    static func fixedCoefficients(cSum: [Double], gSum: Matrix) -> Matrix {
        var a = Matrix(rows: gSum.rows, cols: gSum.cols)
        for i in 0..<gSum.rows where cSum[i] > 0 {
            for c in 0..<gSum.cols { a[i, c] = -gSum[i, c] / cSum[i] }
        }
        return a
    }

    /// `Σ_i K(x_q, x_i) a_i` for query row q: C×C blocks (`blocks` = C) or trace/C scalars (`blocks` = 1).
    static func kernelTimes(_ k: Matrix, row q: Int, coefficients a: Matrix, blocks: Int, outputs C: Int) -> [Double] {
        var out = [Double](repeating: 0, count: C)
        let n = a.rows
        if blocks == 1 {
            let base = q * k.cols
            for c in 0..<C {
                var s = 0.0
                for i in 0..<n { s += k.data[base + i] * a.data[i * C + c] }
                out[c] = s / Double(C)
            }
        } else {
            for c in 0..<C {
                let base = (q * C + c) * k.cols
                var s = 0.0
                for i in 0..<n { for kk in 0..<C { s += k.data[base + i * C + kk] * a.data[i * C + kk] } }
                out[c] = s
            }
        }
        return out
    }

    /// Largest training system (m = n·blocks) fitted on its PSD part through an eigendecomposition
    /// (about 9m³ flops and 3m² doubles); larger ones use a Cholesky solve with the stated λ.
    static let eigenRidgeLimit = 6000

    /// A ridge machine's fit (path-kernel math §3, `path-krr` and `ntkT-krr`).
    struct RidgeFit {
        /// α, (n·C) × 1 for full blocks, n × C for trace.
        var alpha: Matrix
        /// The λ used: `ρ · tr(K₊)/m`.
        var ridge: Double
        /// 1/C for the trace kernel with C > 1 (the block read as `trace/C · I`), else 1.
        var scale: Double
        /// `scale · sym(K(X, X)) α`: the machine at the training points (rows × (C or 1)).
        var fitted: Matrix
        /// Share of the spectrum's absolute mass in negative eigenvalues, discarded (nil: the
        /// Cholesky route for large systems, which does not measure it).
        var negativeMass: Double?
        var negativeCount: Int?
    }

    /// Kernel ridge regression on the training points: `α = (K₊ + λI)⁻¹ (f_T(X) − f_0(X))` with
    /// `K₊` the positive semi-definite part of the symmetrized kernel `(K + Kᵀ)/2` (the path
    /// kernel is not symmetric: its query side is integrated along the segment; with minibatches,
    /// momentum or Adam its symmetric part is often indefinite) and `λ = ρ·tr(K₊)/m`. With the
    /// trace kernel and C > 1 the matrix is scaled by 1/C (the block read as `trace/C · I`).
    /// Systems larger than `eigenRidgeLimit` are solved by Cholesky with that λ on the
    /// symmetrized kernel itself (exact for a PSD kernel); nil when it is not positive definite.
    /// `work` holds K(X, X) (m × m) on entry and is overwritten.
    static func ridgeFit(_ work: inout Matrix, target: Matrix, blocks: Int, outputs C: Int, rho: Double) -> RidgeFit? {
        let m = work.rows
        let scale = blocks == 1 && C > 1 ? 1 / Double(C) : 1
        var trace = 0.0
        work.data.withUnsafeMutableBufferPointer { p in
            for i in 0..<m {
                for j in 0..<i {
                    let v = scale * 0.5 * (p[i * m + j] + p[j * m + i])
                    p[i * m + j] = v
                    p[j * m + i] = v
                }
                p[i * m + i] *= scale
                trace += p[i * m + i]
            }
        }
        // Right-hand side: (n·C) × 1 for full blocks, n × C for trace.
        let rhs = blocks == 1 ? target : Matrix(rows: m, cols: 1, data: target.data)
        if m <= eigenRidgeLimit {
            guard let fit = try? LinearAlgebra.psdRidgeSolve(&work, rhs, rho: rho) else { return nil }
            return RidgeFit(alpha: fit.x, ridge: fit.lambda, scale: scale, fitted: fit.fitted,
                            negativeMass: fit.negativeMass, negativeCount: fit.negativeCount)
        }
        var lambda = rho * trace / Double(max(m, 1))
        if !(lambda > 0) { lambda = 1e-12 * max(trace / Double(max(m, 1)), 1) }
        guard let (alpha, used) = LinearAlgebra.ridgeSolveInPlace(&work, rhs, lambdas: [lambda]) else { return nil }
        return RidgeFit(alpha: alpha, ridge: used, scale: scale, fitted: Matrix.symmetricProduct(lowerOf: work, alpha),
                        negativeMass: nil, negativeCount: nil)
    }

    /// `f_0 + scale·K(x, X)·α` reshaped to the outputs (`kqx` rows: queries × blocks).
    static func ridgePrediction(kqx: Matrix, alpha: Matrix, scale: Double, f0: Matrix, outputs C: Int) -> Matrix {
        let fit = scale * Matrix.product(kqx, alpha)   // (n_q·blocks) × (C or 1)
        return f0 + Matrix(rows: f0.rows, cols: C, data: fit.data)
    }

    static func accuracy(_ f: Matrix, labels: [Double], task: String) -> Double {
        var correct = 0
        for r in 0..<f.rows {
            let predicted = task == "binary" ? (f[r, 0] > 0 ? 1 : 0) : f.argmax(row: r)
            if predicted == Int(labels[r].rounded()) { correct += 1 }
        }
        return Double(correct) / Double(max(f.rows, 1))
    }

    /// Fidelity of a kernel machine's predictions against the network (path-kernel math §4).
    static func fidelity(pred: Matrix, network fT: Matrix, initial f0: Matrix, labels: [Double], task: String) -> AnalysisResult.Fidelity {
        let m = Double(pred.data.count)
        var ss = 0.0, mx = 0.0, den = 0.0
        for i in pred.data.indices {
            let e = pred.data[i] - fT.data[i]
            ss += e * e
            mx = max(mx, abs(e))
            let d = fT.data[i] - f0.data[i]
            den += d * d
        }
        var tot = 0.0
        for c in 0..<fT.cols {
            var mean = 0.0
            for r in 0..<fT.rows { mean += fT[r, c] }
            mean /= Double(fT.rows)
            for r in 0..<fT.rows { tot += (fT[r, c] - mean) * (fT[r, c] - mean) }
        }
        let mp = pred.data.reduce(0, +) / m, mf = fT.data.reduce(0, +) / m
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in pred.data.indices {
            let a = pred.data[i] - mp, b = fT.data[i] - mf
            sxy += a * b; sxx += a * a; syy += b * b
        }
        var agreement: Double? = nil, acc: Double? = nil
        if task != "regression" {
            var agree = 0
            for r in 0..<pred.rows {
                let a = task == "binary" ? (pred[r, 0] > 0 ? 1 : 0) : pred.argmax(row: r)
                let b = task == "binary" ? (fT[r, 0] > 0 ? 1 : 0) : fT.argmax(row: r)
                if a == b { agree += 1 }
            }
            agreement = Double(agree) / Double(pred.rows)
            acc = accuracy(pred, labels: labels, task: task)
        }
        return .init(relativeError: den > 0 ? (ss / den).squareRoot() : (ss > 0 ? .infinity : 0),
                     rmse: (ss / m).squareRoot(), maxAbsError: mx,
                     r2: tot > 0 ? 1 - ss / tot : (ss > 0 ? -.infinity : 1),
                     pearson: sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : 0,
                     argmaxAgreement: agreement, accuracy: acc)
    }

    /// Default node budget per segment in adaptive mode (`--max-nodes`).
    public static let defaultMaxAdaptiveNodes = 256

    /// Adaptive Gauss–Legendre nodes for one segment, globally adaptive (QUADPACK's QAG scheme:
    /// Piessens et al. 1983): the interval whose error estimate exceeds its allowance most is split
    /// next, until every interval is within its allowance or the segment's nodes reach `maxNodes`.
    ///
    /// An interval [a, b] with midpoint m is estimated by `max_x |I_q(a, b) − I_q(a, m) − I_q(m, b)|`
    /// (the q-node rule against the composite rule on the halves, allowance `tolerance · (b − a)`).
    /// For piecewise-linear activations (relu, leaky-relu) the integrand `J(x; w_t + sΔw)Δw` jumps
    /// where a unit's pre-activation changes sign, and two Gauss rules can both miss a jump near an
    /// interval's end; there an interval whose activation pattern differs between a and b is
    /// estimated instead by `max_x |J(b)Δw − J(a)Δw| · (b − a)` (the worst error of a jump of that
    /// size) with an absolute allowance `tolerance / 16`. Between kinks the network is polynomial
    /// in s and the rule's own estimate applies. Intervals stop splitting at depth
    /// `maxAdaptiveDepth`. Every interval contributes the composite rule on its halves (2q nodes).
    ///
    /// Does not hold: the budget bounds the work, not the error — when it is reached
    /// (`budgetReached`), the intervals left are used as they are, and the reconstruction residual
    /// shows what was reached. Returns the nodes in [0, 1] (weights summing to 1), the depth reached.
    static func adaptiveNodes(model: any Network, start: [Double], delta: [Double], x: Matrix, rule: GaussLegendre,
                              tolerance: Double, maxNodes: Int = PathAnalyzer.defaultMaxAdaptiveNodes)
        -> (nodes: [(s: Double, w: Double)], depth: Int, budgetReached: Bool) {
        let piecewiseLinear = model.isPiecewiseLinear
        func point(_ s: Double) -> [Double] {
            var ws = start
            Vec.axpy(s, delta, &ws)
            return ws
        }
        func integral(_ a: Double, _ b: Double) -> Matrix {
            var sum = Matrix(rows: x.rows, cols: model.outputDim)
            for (s, w) in zip(rule.nodes, rule.weights) {
                let jv = model.jvp(point(a + (b - a) * s), x, tangent: delta)
                for i in sum.data.indices { sum.data[i] += (b - a) * w * jv.data[i] }
            }
            return sum
        }
        typealias Endpoint = (pattern: [Double], jv: Matrix)
        /// Activation pattern (φ' at every hidden unit of every query) and JΔw at s.
        func endpoint(_ s: Double) -> Endpoint {
            let w = point(s)
            let pattern = piecewiseLinear ? model.kinkPattern(w, x) : []
            return (pattern, piecewiseLinear ? model.jvp(w, x, tangent: delta) : Matrix(rows: 0, cols: 0))
        }
        /// An interval with its halves' integrals and how far its estimate exceeds its allowance
        /// (≤ 1: accepted).
        struct Piece {
            let a: Double, b: Double, level: Int
            let left: Matrix, right: Matrix
            let ea: Endpoint, eb: Endpoint
            let excess: Double
        }
        func piece(_ a: Double, _ b: Double, whole: Matrix, _ ea: Endpoint, _ eb: Endpoint, level: Int) -> Piece {
            let mid = 0.5 * (a + b)
            let left = integral(a, mid), right = integral(mid, b)
            var excess: Double
            if piecewiseLinear && ea.pattern != eb.pattern {
                var jump = 0.0
                for i in ea.jv.data.indices { jump = max(jump, abs(eb.jv.data[i] - ea.jv.data[i])) }
                excess = jump * (b - a) / (tolerance / 16)
            } else {
                var diff = 0.0
                for i in whole.data.indices { diff = max(diff, abs(whole.data[i] - left.data[i] - right.data[i])) }
                excess = diff / (tolerance * (b - a))
            }
            if level >= PathAnalyzer.maxAdaptiveDepth || excess.isNaN { excess = 0 }
            return Piece(a: a, b: b, level: level, left: left, right: right, ea: ea, eb: eb, excess: excess)
        }
        let perPiece = 2 * rule.nodes.count
        var pieces = [piece(0, 1, whole: integral(0, 1), endpoint(0), endpoint(1), level: 1)]
        var budgetReached = false
        while let worst = pieces.indices.max(by: { pieces[$0].excess < pieces[$1].excess }), pieces[worst].excess > 1 {
            // Splitting one piece into two adds one piece's nodes.
            guard (pieces.count + 1) * perPiece <= max(maxNodes, perPiece) else { budgetReached = true; break }
            let p = pieces.remove(at: worst)
            let mid = 0.5 * (p.a + p.b), em = endpoint(mid)
            pieces.append(piece(p.a, mid, whole: p.left, p.ea, em, level: p.level + 1))
            pieces.append(piece(mid, p.b, whole: p.right, em, p.eb, level: p.level + 1))
        }
        pieces.sort { $0.a < $1.a }
        var out: [(s: Double, w: Double)] = []
        for p in pieces {
            let mid = 0.5 * (p.a + p.b)
            for (lo, hi) in [(p.a, mid), (mid, p.b)] {
                for (s, w) in zip(rule.nodes, rule.weights) { out.append((lo + (hi - lo) * s, (hi - lo) * w)) }
            }
        }
        return (out, pieces.map(\.level).max() ?? 1, budgetReached)
    }
}
