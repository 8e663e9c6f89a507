import Foundation
import PKNetworks
import PKNumerics

/// Neural tangent random features and the Cao–Gu generalization measure (ntk-family contract §4;
/// Cao & Gu 2019, "Generalization Bounds of Stochastic Gradient Descent for Wide and Deep Neural
/// Networks", Theorem 3.3, Definition 3.7, Corollary 3.10).
///
/// The Cao–Gu net `f_W(x) = √m W_L σ(W_{L−1} ⋯ σ(W_1 x))` (relu, no biases, `W_l ~ N(0, 2/m)`,
/// `W_L ~ N(0, 1/m)`) is the project MLP `[d, m, …, m, 1]`, relu, `ntk` parameterization,
/// `σ_w = √2`, no bias, with the same raw parameters: `f_W = √(d/2)·f` and
///
///     H = (d/4)(Θ + Σ)          (Θ, Σ: the analytic NTK and NNGP of that MLP, contract §1)
///
/// on unit-norm inputs. An NTRF function is `√(d/2)·[f(x; w₀) + Σ_l ⟨∇_{raw_l} f(x; w₀), u_l⟩]`
/// with `‖u_l‖_F ≤ R/√2` for the `L − 1` hidden layers and `‖u_L‖_F ≤ R` for the readout (the
/// paper's `‖W_l − W_l⁽⁰⁾‖_F ≤ R/√m`).
///
/// Computed (`pathkernel ntrf`): `H`, `λ_min(H)`, `yᵀH⁻¹y`, `√(yᵀH⁻¹y/n)`, the margin complexity
/// `min_{ỹ_i y_i ≥ 1} ỹᵀH⁻¹ỹ` (exact: an active-set method on the bound-constrained QP, with its
/// KKT residual), the NTRF risk `R̂(R)` per radius (projected FISTA with gradient restart onto the
/// per-layer balls, stopped on the projected-gradient residual), and the bound's terms `4R̂(R)`,
/// `LR/√n`, `√(log(1/δ)/n)`. The paper gives no constants beyond the `4`: no "bound value" is
/// formed. Does *not* hold: the theorem's width condition `m ≥ m*` (polynomial in n, R, L) is
/// not checked — the terms are those of the statement, at the width given.
public enum NeuralTangentRandomFeatures {
    /// Depths `L` (weight matrices; `L − 1` hidden layers).
    public static let depthRange = 2...64
    /// Most examples for the dense `n × n` solves (H, H⁻¹, per-layer kernels: 128 MB each).
    public static let maxExamples = 4_000
    /// Most entries of the per-layer kernels together (`L n²`, float64: 2 GB).
    public static let maxLayerKernelEntries = 250_000_000
    /// Radii `R` (per-layer balls `R/√2`, `R`).
    public static let radiusRange = NumberRange("a number in (0, 1e6]") { $0 > 0 && $0 <= 1e6 }
    /// `δ` of the theorem: `(0, 1/e]`.
    public static let deltaRange = NumberRange("a number in (0, 1/e] (0 < δ ≤ 0.3679)") { $0 > 0 && $0 <= exp(-1.0) }
    /// `H` counts as singular when `λ_min(H) ≤ singularRatio · λ_max(H)` (its inverse would carry
    /// no correct digit).
    public static let singularRatio = 1e-13
    /// Above this condition number `λ_max/λ_min` of `H` the report notes the digits lost in `H⁻¹`.
    public static let illConditioned = 1e8
    /// The risk solver stops when the projected-gradient residual is at most this times
    /// `max(1, ‖∇R̂(0)‖)` (norms in the parameters `u`).
    public static let riskTolerance = 1e-12
    /// The risk solver's iteration cap.
    public static let maxRiskIterations = 200_000

    /// The raw parameters of the finite net: drawn by the project's initializer, or given.
    public enum Parameters: Sendable {
        case seed(UInt64)
        case raw([Double])
    }

    /// The Cao–Gu net of input width `d`, depth `L` and width `m` as a project model spec.
    public static func modelSpec(inputDim d: Int, depth: Int, width: Int) -> ModelSpec {
        ModelSpec(layers: [d] + [Int](repeating: width, count: depth - 1) + [1], activation: .relu,
                  parameterization: .ntk, sigmaW: 2.0.squareRoot(), sigmaB: 0, bias: false)
    }

    /// The rows of `x` scaled to unit Euclidean norm (the norm taken after dividing by the row's
    /// largest magnitude, so no finite row overflows); throws for a zero row or a non-finite value.
    public static func unitRows(_ x: Matrix) throws -> Matrix {
        var out = x
        for i in 0..<x.rows {
            var largest = 0.0
            for j in 0..<x.cols {
                guard x[i, j].isFinite else {
                    throw AnalysisError("input row \(i + 1), feature \(j + 1) is \(x[i, j]); every input must be a finite number")
                }
                largest = max(largest, abs(x[i, j]))
            }
            guard largest > 0 else {
                throw AnalysisError("input row \(i + 1) is zero: the Cao–Gu setting needs inputs scaled to unit norm, and this one cannot be; remove it")
            }
            var s = 0.0
            for j in 0..<x.cols { s += (x[i, j] / largest) * (x[i, j] / largest) }
            let norm = s.squareRoot()
            for j in 0..<x.cols { out[i, j] = (x[i, j] / largest) / norm }
        }
        return out
    }

    /// `H = (d/4)(Θ + Σ)` between the rows of `x` (already of unit norm), `n × n`.
    public static func kernel(_ x: Matrix, depth: Int) throws -> Matrix {
        let spec = modelSpec(inputDim: x.cols, depth: depth, width: 1)
        let k = try InfiniteWidthKernel(spec: spec).kernels(x)
        let scale = Double(x.cols) / 4
        return Matrix(rows: x.rows, cols: x.rows, data: zip(k.ntk.data, k.nngp.data).map { scale * ($0 + $1) })
    }

    /// The per-layer empirical kernels `K_l = J_l J_lᵀ` of the raw parameters of layer `l`
    /// (`J_l = ∂f/∂raw_l`, `n × n`) and the outputs `f(x; w)`: from the tangent features (one
    /// forward and one backward pass), `K_l = s_l² (a_l a_lᵀ) ⊙ (δ_l δ_lᵀ)`.
    public static func layerKernels(network: MLP, weights w: [Double], _ x: Matrix) -> (kernels: [Matrix], outputs: [Double]) {
        precondition(network.outputDim == 1 && !network.spec.bias, "layerKernels: the Cao–Gu net has one output and no bias")
        let features: TangentFeatures<Double> = network.tangentFeatures(w, x)
        let kernels = (0..<network.depth).map { l -> Matrix in
            let a = features.inputs[l], s = features.signals[l]
            let ga = Matrix.product(a, a, transposeB: true)
            let gs = Matrix.product(s, s, transposeB: true)
            let s2 = features.weightScaleSquared[l]
            var k = ga.hadamard(gs)
            for i in k.data.indices { k.data[i] *= s2 }
            return k
        }
        return (kernels, features.outputs.data)
    }

    /// `(1/m)⟨∇_W f_W(x), ∇_W f_W(x')⟩` of the Cao–Gu net at raw parameters `w`: from the raw
    /// per-layer kernels, `(d/2)[Σ_{l<L} K_l/2 + K_L]` (`∇_{W_l} f_W = √(d/2) ∇_{raw_l} f / c_l`,
    /// `m c_l² = 2` for `l < L`, 1 for the readout). Tends to `H` as `m → ∞`.
    public static func empiricalKernel(network: MLP, weights w: [Double], _ x: Matrix) -> Matrix {
        let (kernels, _) = layerKernels(network: network, weights: w, x)
        let d = Double(network.inputDim)
        var h = Matrix(rows: x.rows, cols: x.rows)
        for (l, k) in kernels.enumerated() {
            let factor = d / 2 * (l == kernels.count - 1 ? 1 : 0.5)
            for i in h.data.indices { h.data[i] += factor * k.data[i] }
        }
        return h
    }

    /// Everything `pathkernel ntrf` prints, for inputs `x` (any norm: they are normalized here) and
    /// labels `y ∈ {−1, +1}`. Throws an `AnalysisError` for bad inputs (wrong label values,
    /// too many examples, a zero row, depth, width, radius or δ out of range).
    public static func analyze(x rawX: Matrix, labels y: [Double], depth: Int, width: Int, radii: [Double],
                               delta: Double, parameters: Parameters) throws -> NTRFReport {
        let n = rawX.rows, d = rawX.cols
        guard n > 0, d > 0 else { throw AnalysisError("no examples: the data has \(n) rows of \(d) features") }
        guard n <= maxExamples else {
            throw AnalysisError("\(n) examples: the dense n × n solves take at most \(maxExamples); use a smaller training set (data.train)")
        }
        guard y.count == n else { throw AnalysisError("\(y.count) labels for \(n) examples") }
        if let i = y.firstIndex(where: { $0 != 1 && $0 != -1 }) {
            throw AnalysisError("label \(y[i]) of example \(i + 1) is not ±1 (binary labels 0/1 map to −1/+1)")
        }
        guard depthRange.contains(depth) else { throw AnalysisError("depth \(depth): must be in \(depthRange.lowerBound)…\(depthRange.upperBound)") }
        guard !radii.isEmpty else { throw AnalysisError("give at least one radius R") }
        for r in radii where !radiusRange.contains(r) { throw AnalysisError("radius \(r): must be \(radiusRange)") }
        guard deltaRange.contains(delta) else { throw AnalysisError("δ = \(delta): must be \(deltaRange)") }
        guard depth * n * n <= maxLayerKernelEntries else {
            throw AnalysisError("depth \(depth) × \(n)² examples: the risk keeps one n × n kernel per layer, \(depth * n * n) entries, more than \(maxLayerKernelEntries) (2 GB); use fewer examples or layers")
        }
        let spec = modelSpec(inputDim: d, depth: depth, width: width)
        do { try spec.validate() } catch {
            throw AnalysisError("width \(width), depth \(depth), \(d) inputs: \(error)")
        }
        let network = try MLP(spec: spec)
        let w: [Double]
        switch parameters {
        case .seed(let s): w = network.initialParameters(seed: s)
        case .raw(let given):
            guard given.count == network.parameterCount, given.allSatisfy(\.isFinite) else {
                throw AnalysisError("\(given.count) raw parameters given, the net has \(network.parameterCount) (all finite)")
            }
            w = given
        }

        let x = try unitRows(rawX)
        let h = try kernel(x, depth: depth)
        let spectrum = try KernelSpectrum(h)
        var notes: [String] = []
        var labelComplexity: Double? = nil
        var margin: MarginComplexity? = nil
        if spectrum.lambdaMin > singularRatio * spectrum.lambdaMax, let inverse = try? LinearAlgebra.choleskySolve(h, Matrix.identity(n)) {
            var hinv = inverse
            for i in 0..<n { for j in 0..<i { let v = 0.5 * (hinv[i, j] + hinv[j, i]); hinv[i, j] = v; hinv[j, i] = v } }
            var q = 0.0
            for i in 0..<n { for j in 0..<n { q += y[i] * hinv[i, j] * y[j] } }
            labelComplexity = q
            do { margin = try marginComplexity(inverse: hinv, labels: y) } catch { notes.append("\(error)") }
            let condition = spectrum.lambdaMax / spectrum.lambdaMin
            if condition > illConditioned {
                notes.append("H is ill-conditioned (λ_max/λ_min = \(String(format: "%.2g", condition))): yᵀH⁻¹y and the margin complexity carry about \(max(0, Int((16 - log10(condition)).rounded(.down)))) correct digits (inputs that are close after scaling to unit norm, with different labels?)")
            }
        } else {
            notes.append("H is singular to working precision (λ_min ≤ \(singularRatio)·λ_max: repeated or parallel inputs?): yᵀH⁻¹y and the margin complexity are not defined; remove the repeated inputs")
        }

        let (kernels, f0) = layerKernels(network: network, weights: w, x)
        let risks = try radii.map { r -> NTRFRisk in
            let balls = (0..<depth).map { $0 == depth - 1 ? r : r / 2.0.squareRoot() }
            return try risk(kernels: kernels, outputs: f0, labels: y, outputScale: (Double(d) / 2).squareRoot(), radii: balls, radius: r)
        }
        for r in risks where !r.converged {
            notes.append("R̂(\(r.radius)): the projected-gradient residual stopped at \(String(format: "%.2e", r.residual)) after \(r.iterations) iterations, above the tolerance \(riskTolerance)·max(1, ‖∇R̂(0)‖); the risk is an upper bound on the minimum")
        }
        return NTRFReport(examples: n, inputDim: d, depth: depth, width: width, delta: delta, kernel: h,
                          lambdaMin: spectrum.lambdaMin, lambdaMax: spectrum.lambdaMax,
                          labelComplexity: labelComplexity, margin: margin, risks: risks, notes: notes)
    }

    // MARK: - Margin complexity

    /// `min_{ỹ_i y_i ≥ 1} ỹᵀ H⁻¹ ỹ` from `H⁻¹` (symmetric positive definite) and labels `±1`.
    ///
    /// With `z = y ⊙ ỹ` and `M = D_y H⁻¹ D_y` this is `min_{z ≥ 1} zᵀMz`; with `w = z − 1 ≥ 0`,
    /// `min ½wᵀMw + (M1)ᵀw`: a strictly convex QP with nonnegativity bounds. Its minimizer is
    /// fixed by its free set `F = {i : w_i > 0}`: `M_FF w_F = −(M1)_F` (Cholesky), `w = 0` off `F`.
    /// The free set is found by the primal–dual active-set method (Hintermüller, Ito & Kunisch
    /// 2002: every step solves on the current free set and re-reads it from the signs of `w` and
    /// the multipliers; stops when the set repeats), and, should that cycle, by the Lawson–Hanson
    /// active-set method (finite termination for positive-definite `M`). Either way the KKT
    /// conditions are checked at the end (`kktResidual`); a residual above 1e-9 throws (`analyze`
    /// turns that into a note and leaves the margin complexity out).
    public static func marginComplexity(inverse hinv: Matrix, labels y: [Double]) throws -> MarginComplexity {
        try marginComplexity(inverse: hinv, labels: y, primalDual: true)
    }

    /// `marginComplexity` with the primal–dual stage skipped when `primalDual` is false (tests
    /// reach the Lawson–Hanson route this way).
    static func marginComplexity(inverse hinv: Matrix, labels y: [Double], primalDual: Bool) throws -> MarginComplexity {
        let n = y.count
        precondition(hinv.rows == n && hinv.cols == n, "marginComplexity shapes")
        var m = hinv
        for i in 0..<n { for j in 0..<n { m[i, j] = y[i] * hinv[i, j] * y[j] } }
        let ones = Matrix(rows: n, cols: 1, data: [Double](repeating: 1, count: n))
        let c = Matrix.product(m, ones).data
        let absM = m.map(abs)
        /// `M w + c` and its round-off scale `|M|(1 + w)` per row.
        func gradient(_ w: [Double]) -> [Double] {
            let mw = Matrix.product(m, Matrix(rows: n, cols: 1, data: w)).data
            return (0..<n).map { mw[$0] + c[$0] }
        }
        func scale(_ w: [Double]) -> [Double] {
            Matrix.product(absM, Matrix(rows: n, cols: 1, data: w.map { 1 + $0 })).data
        }
        /// `w` with `M_FF w_F = −c_F` and 0 elsewhere.
        func solve(free: [Bool]) throws -> [Double] {
            let f = (0..<n).filter { free[$0] }
            var s = [Double](repeating: 0, count: n)
            guard !f.isEmpty else { return s }
            let sub = Matrix(rows: f.count, cols: f.count, data: f.flatMap { i in f.map { m[i, $0] } })
            let rhs = Matrix(rows: f.count, cols: 1, data: f.map { -c[$0] })
            let sol = try LinearAlgebra.choleskySolve(sub, rhs)
            for (k, i) in f.enumerated() { s[i] = sol.data[k] }
            return s
        }
        func kkt(_ w: [Double], _ free: [Bool]) -> Double {
            let g = gradient(w), sc = scale(w)
            var worst = 0.0
            for i in 0..<n {
                let r = free[i] ? max(abs(g[i]), max(-w[i], 0)) : max(-g[i], 0)
                worst = max(worst, r / sc[i])
            }
            return worst
        }
        let tolerance = 1e-12
        var iterations = 0

        // Primal–dual active set: free where w_i − λ_i/M_ii > 0 (λ = Mw + c on the bound set).
        var w = [Double](repeating: 0, count: n)
        var free = (0..<n).map { c[$0] < 0 }
        var seen: Set<[Bool]> = []
        var solved = false
        while primalDual && iterations < 100 && !seen.contains(free) {
            seen.insert(free)
            iterations += 1
            w = try solve(free: free)
            let g = gradient(w)
            let next = (0..<n).map { i in free[i] ? w[i] > 0 : g[i] < 0 }
            if next == free { solved = kkt(w, free) <= tolerance; break }
            free = next
        }

        if !solved {
            // Lawson–Hanson: one index enters at a time; blocking indices leave.
            w = [Double](repeating: 0, count: n)
            free = [Bool](repeating: false, count: n)
            outer: while iterations < 10 * n + 200 {
                iterations += 1
                let g = gradient(w), sc = scale(w)
                guard let j = (0..<n).filter({ !free[$0] && g[$0] < -tolerance * sc[$0] }).min(by: { g[$0] < g[$1] }) else { break }
                free[j] = true
                var first = true
                while true {
                    let s = try solve(free: free)
                    if first && s[j] <= 0 {
                        // Round-off: the entering index cannot move; the current point is optimal
                        // to working precision (Lawson–Hanson's safeguard).
                        free[j] = false
                        break outer
                    }
                    first = false
                    let blocking = (0..<n).filter { free[$0] && s[$0] <= 0 }
                    if blocking.isEmpty { w = s; break }
                    let alpha = blocking.map { w[$0] / (w[$0] - s[$0]) }.min()!
                    for i in 0..<n where free[i] { w[i] += alpha * (s[i] - w[i]) }
                    for i in 0..<n where free[i] && (w[i] <= 0 || (blocking.contains(i) && w[i] <= 1e-15 * (1 + abs(s[i])))) {
                        free[i] = false
                        w[i] = 0
                    }
                }
            }
        }
        let residual = kkt(w, free)
        guard residual <= 1e-9 else {
            throw AnalysisError("the margin-complexity QP did not converge (KKT residual \(residual) after \(iterations) active-set steps); H may be too ill-conditioned")
        }
        let z = w.map { 1 + max($0, 0) }
        let mz = Matrix.product(m, Matrix(rows: n, cols: 1, data: z)).data
        let value = zip(z, mz).reduce(0) { $0 + $1.0 * $1.1 }
        return MarginComplexity(value: value, labels: zip(z, y).map { $0 * $1 }, atMargin: free.filter { !$0 }.count,
                                kktResidual: residual, iterations: iterations, primalDual: solved)
    }

    // MARK: - NTRF risk

    /// `R̂ = min (1/n) Σ ℓ(y_i s (f₀_i + Σ_l ⟨J_l(x_i), u_l⟩))` over `‖u_l‖ ≤ radii[l]`, `ℓ` the
    /// logistic loss, from the per-layer kernels `K_l = J_l J_lᵀ` and `f₀` (`s`: the output scale
    /// `√(d/2)`).
    ///
    /// Every iterate has `u_l = J_lᵀ α_l` (the gradient in `u_l` is `J_lᵀ ρ`, a projection onto a
    /// ball rescales), so FISTA runs on `α_l ∈ Rⁿ` with `J_l u_l = K_l α_l` and
    /// `‖u_l‖² = α_lᵀ K_l α_l`, exactly the iterates of FISTA on `u`. Step `1/L_F`,
    /// `L_F = s² λ_max(Σ K_l)/(4n)`; the momentum restarts when it points against the
    /// gradient-mapping direction (O'Donoghue & Candès 2015). Stops when the projected-gradient
    /// residual `L_F ‖u − Π(u − ∇R̂(u)/L_F)‖` is at most `riskTolerance · max(1, ‖∇R̂(0)‖)`.
    public static func risk(kernels: [Matrix], outputs f0: [Double], labels y: [Double], outputScale s: Double,
                            radii: [Double], radius: Double) throws -> NTRFRisk {
        let n = y.count, layers = kernels.count
        precondition(radii.count == layers && f0.count == n)
        func matVec(_ k: Matrix, _ v: [Double]) -> [Double] {
            Matrix.product(k, Matrix(rows: n, cols: 1, data: v)).data
        }
        func quad(_ k: Matrix, _ a: [Double], _ b: [Double]) -> Double {
            let kb = matVec(k, b)
            return zip(a, kb).reduce(0) { $0 + $1.0 * $1.1 }
        }
        /// Predictions `f₀ + Σ K_l α_l`, the risk and its gradient `ρ` in the predictions.
        func evaluate(_ alpha: [[Double]]) -> (risk: Double, rho: [Double]) {
            var v = f0
            for l in 0..<layers { let kv = matVec(kernels[l], alpha[l]); for i in 0..<n { v[i] += kv[i] } }
            var total = 0.0
            var rho = [Double](repeating: 0, count: n)
            for i in 0..<n {
                let z = y[i] * s * v[i]
                total += z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z))
                let sigma = z > 0 ? exp(-z) / (1 + exp(-z)) : 1 / (1 + exp(z))   // σ(−z)
                rho[i] = -y[i] * s * sigma / Double(n)
            }
            return (total / Double(n), rho)
        }
        func project(_ alpha: [[Double]]) -> [[Double]] {
            (0..<layers).map { l in
                let norm = max(quad(kernels[l], alpha[l], alpha[l]), 0).squareRoot()
                guard norm > radii[l] else { return alpha[l] }
                let f = radii[l] / norm
                return alpha[l].map { $0 * f }
            }
        }
        func normU(_ beta: [[Double]]) -> Double {
            (0..<layers).reduce(0.0) { $0 + max(quad(kernels[$1], beta[$1], beta[$1]), 0) }.squareRoot()
        }
        var total = Matrix(rows: n, cols: n)
        for k in kernels { for i in total.data.indices { total.data[i] += k.data[i] } }
        let lambdaMax = try KernelSpectrum(total).lambdaMax
        guard lambdaMax.isFinite else { throw AnalysisError("the per-layer kernels are not finite: the width or depth is too large for float64") }
        let zero = [[Double]](repeating: [Double](repeating: 0, count: n), count: layers)
        let start = evaluate(zero)
        guard lambdaMax > 0 else {
            // No feature moves the outputs: the risk is the loss at initialization.
            return NTRFRisk(radius: radius, risk: start.risk, layerNorms: radii.map { _ in 0 }, layerRadii: radii,
                            residual: 0, iterations: 0, converged: true, coefficients: zero)
        }
        let lip = s * s * lambdaMax / (4 * Double(n))
        let gradNorm0 = normU(zero.map { _ in start.rho })
        let tolerance = riskTolerance * max(1, gradNorm0)
        /// `L_F ‖u − Π(u − ∇R̂(u)/L_F)‖` at `alpha`.
        func residualAt(_ alpha: [[Double]]) -> Double {
            let (_, rho) = evaluate(alpha)
            let check = project(alpha.map { a in zip(a, rho).map { $0 - $1 / lip } })
            return lip * normU((0..<layers).map { l in zip(alpha[l], check[l]).map { $0 - $1 } })
        }
        var x = zero, v = zero, t = 1.0
        var iterations = 0
        var residual = Double.infinity
        while iterations < maxRiskIterations {
            iterations += 1
            let (_, rho) = evaluate(v)
            let next = project(v.map { a in zip(a, rho).map { $0 - $1 / lip } })
            let step = (0..<layers).map { l in zip(v[l], next[l]).map { $0 - $1 } }
            if lip * normU(step) <= tolerance {
                // Small at the extrapolated point: stop if also small at the point returned.
                x = next
                residual = residualAt(next)
                if residual <= tolerance { break }
                t = 1
                v = next
                continue
            }
            let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
            // Restart when the gradient mapping and the last move disagree: ⟨v − x⁺, x⁺ − x⟩ > 0.
            let agreement = (0..<layers).reduce(0.0) { acc, l in
                acc + quad(kernels[l], step[l], zip(next[l], x[l]).map { $0 - $1 })
            }
            if agreement > 0 {
                t = 1
                x = next
                v = next
                continue
            }
            let momentum = (t - 1) / tNext
            v = (0..<layers).map { l -> [Double] in
                (0..<n).map { i -> Double in next[l][i] + momentum * (next[l][i] - x[l][i]) }
            }
            x = next
            t = tNext
        }
        if residual > tolerance { residual = residualAt(x) }
        let final = evaluate(x)
        let norms = (0..<layers).map { max(quad(kernels[$0], x[$0], x[$0]), 0).squareRoot() }
        return NTRFRisk(radius: radius, risk: final.risk, layerNorms: norms, layerRadii: radii, residual: residual,
                        iterations: iterations, converged: residual <= tolerance, coefficients: x)
    }
}

/// The margin complexity `min_{ỹ_i y_i ≥ 1} ỹᵀH⁻¹ỹ` and its minimizer.
public struct MarginComplexity: Sendable, Equatable {
    /// The minimum.
    public let value: Double
    /// The minimizer `ỹ` (`ỹ_i y_i ≥ 1`).
    public let labels: [Double]
    /// How many examples sit at the margin (`ỹ_i y_i = 1` exactly).
    public let atMargin: Int
    /// The largest KKT violation, relative to the round-off scale `(|M|·|z|)_i` of the gradient.
    public let kktResidual: Double
    /// Active-set steps taken.
    public let iterations: Int
    /// Whether the primal–dual active-set method found the free set (false: Lawson–Hanson did).
    public let primalDual: Bool
}

/// The NTRF risk at one radius.
public struct NTRFRisk: Sendable, Equatable {
    /// `R` as given.
    public let radius: Double
    /// `R̂(R)`: the smallest mean logistic loss of an NTRF function in the balls.
    public let risk: Double
    /// `‖u_l‖_F` at the minimizer, per layer, and the balls' radii (`R/√2`, …, `R`).
    public let layerNorms: [Double]
    public let layerRadii: [Double]
    /// The projected-gradient residual `L_F‖u − Π(u − ∇R̂/L_F)‖` at the minimizer.
    public let residual: Double
    public let iterations: Int
    /// Whether the residual reached the tolerance.
    public let converged: Bool
    /// The minimizer in kernel coordinates: `u_l = J_lᵀ α_l` (`α_l ∈ Rⁿ`, one per layer), `J_l`
    /// the raw Jacobian of layer `l` at initialization, `n × P_l`.
    public let coefficients: [[Double]]
}

/// What `pathkernel ntrf` prints (Docs/ntk-family.md, "NTRF and the Cao–Gu measure").
public struct NTRFReport: Sendable {
    public let examples: Int, inputDim: Int, depth: Int, width: Int
    public let delta: Double
    /// `H = (d/4)(Θ + Σ)` on the unit-normalized inputs.
    public let kernel: Matrix
    public let lambdaMin: Double, lambdaMax: Double
    /// `yᵀH⁻¹y` (nil when H is singular).
    public let labelComplexity: Double?
    public let margin: MarginComplexity?
    public let risks: [NTRFRisk]
    public let notes: [String]

    /// `√(yᵀH⁻¹y/n)`.
    public var labelTerm: Double? { labelComplexity.map { ($0 / Double(examples)).squareRoot() } }
    /// `√(min ỹᵀH⁻¹ỹ / n)` (Corollary 3.10's term is `L` times it, up to `Õ`).
    public var marginTerm: Double? { margin.map { ($0.value / Double(examples)).squareRoot() } }
    /// `√(log(1/δ)/n)`.
    public var confidenceTerm: Double { (log(1 / delta) / Double(examples)).squareRoot() }
    /// `LR/√n` at radius `r`.
    public func radiusTerm(_ r: Double) -> Double { Double(depth) * r / Double(examples).squareRoot() }
}
