import PKNumerics

/// What the routes accumulate over the steps (path-kernel math §1–4, see `PathAnalyzer`): K^p,
/// N's row sums, diagonal and attributed rows, the decay term, the JVP sum, and the scalar
/// weights of the fixed coefficients. Every entry is a sum over steps, so the sums of two
/// step ranges add up to the sum over both.
///
/// N(x, i) is kept only as far as it is read: its row sums (the exact decomposition), its
/// diagonal N(x_i, i) (path-km-self) and the rows of the attributed queries.
struct KernelAccumulators {
    /// The path kernel K^p, (nQ·blocks) × (n·blocks) (`AnalysisContext.mode`).
    var kp: Matrix
    /// `Σ_i N(x, i)`, nQ × C.
    var nSum: Matrix
    /// `N(x_i, i)`, n × C (scope full; 0 × C in scope exact).
    var nDiag: Matrix
    /// `N(x, i)` of the attributed queries, C × n each.
    var nAttr: [Matrix]
    /// The weight-decay term R_wd, nQ × C.
    var rwd: Matrix
    /// Σ_t J̄_t(x)Δw_t (the JVP route's reconstruction), nQ × C.
    var jvpSum: Matrix
    /// `Σ_t c_{i,t}` (n) and `Σ_t c_{i,t} g_{i,t}` (n × C): the fixed coefficients' weights.
    var cSum: [Double]
    var gSum: Matrix
}

extension KernelAccumulators {
    /// Zero accumulators for `context`'s queries, training points and kernel storage.
    init(zeroFor context: AnalysisContext) {
        let nQ = context.queries, n = context.train, C = context.outputs, blocks = context.blocks
        self.init(kp: Matrix(rows: nQ * blocks, cols: n * blocks),
                  nSum: Matrix(rows: nQ, cols: C),
                  nDiag: Matrix(rows: context.exactOnly ? 0 : n, cols: C),
                  nAttr: context.attributed.map { _ in Matrix(rows: C, cols: n) },
                  rwd: Matrix(rows: nQ, cols: C),
                  jvpSum: Matrix(rows: nQ, cols: C),
                  cSum: [Double](repeating: 0, count: n),
                  gSum: Matrix(rows: n, cols: C))
    }

    /// Adds one training side's weights to the fixed coefficients' sums: `c_i += weight`,
    /// `c_i g_i += weight · g_b` for the batch's examples (`batch[b] = i`, `g` |B| × C).
    mutating func addCoefficients(batch: [Int], g: Matrix, weight: Double) {
        for (b, i) in batch.enumerated() {
            cSum[i] += weight
            for c in 0..<gSum.cols { gSum[i, c] += weight * g[b, c] }
        }
    }
}
