import Foundation
import PKTrace

/// Exact quadrature's kinked share step by step, for the progress bar's ETA (Docs/path-kernel.md
/// §7, "Progress under exact quadrature").
///
/// The share f_s of queries whose segment crosses a kink at step s is what an exact step's work
/// grows with (`AnalysisCostModel.forwardPerKinkedShare`), and it is not constant: it follows how
/// far the step moves the weights, large at the start of a run and small once it settles
/// (teacher-relu: 0.52 at step 0, 0.17 at step 26, 0.08–0.17 after step 50; beyond-kernels 0.15,
/// then about 0.02). The plan prices every step at one share (`exactKinkedShare`), so a bar that
/// counted each step at that price extrapolated the slow early steps over the whole run: its ETA
/// at 10 % of teacher-relu's work was 26–45 % long.
///
/// So the walk counts each step done at the share it measured, and prices the steps to come at
/// `a + b·p_s`, fitted by least squares (a, b ≥ 0) on the steps done, where `p_s = η_s·√L_s` is
/// a proxy recorded for every step before the run: the learning rate times the square root of
/// the step's batch loss, the size of a plain gradient step on a squared loss. On the (S)GD relu
/// presets' traces the fit's ETA at 10 % of the work is within ±5 % of the time left (−3 … +5 %
/// replayed on their measured shares; a constant share: +3 … +36 %; Docs/benchmarks.md, `plan`,
/// Session 26). Where the proxy does not
/// follow the share (Adam's steps are not `η·√L`), the fit falls back towards the mean share of
/// the steps done, which is what a constant share gave. Without a usable proxy (a loss not
/// finite or negative) the steps to come take the mean share of the later half of the steps done.
/// Before the first step: the plan's share.
struct KinkProfile {
    /// Steps in the run.
    let steps: Int
    /// The plan's share, for the steps to come before any is measured.
    let prior: Double
    /// `p_s` for every step; nil when some step's is not usable.
    private let proxy: [Double]?
    /// `Σ_{j ≥ s} p_j`, `steps + 1` entries (the last 0).
    private let proxySuffix: [Double]
    /// `Σ_{j < s} f_j` over the steps done: `done + 1` entries (the first 0).
    private var cumulative: [Double] = [0]
    /// Least-squares sums over the steps done: Σp, Σp², Σf, Σp·f.
    private var sum = (p: 0.0, pp: 0.0, f: 0.0, pf: 0.0)

    init(records: [StepRecord], steps: Int, prior: Double) {
        self.steps = steps
        self.prior = prior
        let p = records.prefix(steps).map { $0.learningRate.magnitude * $0.loss.squareRoot() }
        proxy = p.count == steps && p.allSatisfy({ $0.isFinite }) ? p : nil
        var suffix = [Double](repeating: 0, count: steps + 1)
        if let proxy { for s in stride(from: steps - 1, through: 0, by: -1) { suffix[s] = suffix[s + 1] + proxy[s] } }
        proxySuffix = suffix
    }

    /// The share measured on the next `span` steps (a segment at checkpoint resolution spans
    /// several); a value outside [0, 1] or not finite is clamped (0 when not finite).
    mutating func record(_ share: Double, span: Int = 1) {
        let f = share.isFinite ? min(1, max(0, share)) : 0
        for _ in 0..<max(span, 0) where done < steps {
            let p = proxy?[done] ?? 0
            cumulative.append(sum.f + f)
            sum.p += p; sum.pp += p * p; sum.f += f; sum.pf += p * f
        }
    }

    /// The steps done.
    var done: Int { cumulative.count - 1 }

    /// Σ of the measured shares of the steps done.
    var measuredSum: Double { sum.f }

    /// The predicted Σ of the shares of the steps to come (`done ..< steps`).
    var predictedRemainingSum: Double {
        let left = Double(steps - done)
        guard left > 0 else { return 0 }
        guard done > 0 else { return prior * left }
        let n = Double(done), mean = sum.f / n
        guard proxy != nil, done >= 3 else { return min(left, laterHalfMean * left) }
        // Least squares f ≈ a + b·p with a, b ≥ 0.
        let varP = sum.pp - sum.p * sum.p / n, cov = sum.pf - sum.p * sum.f / n
        var a = mean, b = 0.0
        if varP > 1e-12 * max(sum.pp, .leastNormalMagnitude), cov > 0 {
            b = cov / varP
            a = mean - b * sum.p / n
            if a < 0 { a = 0; b = sum.pp > 0 ? sum.pf / sum.pp : 0 }
        }
        return min(left, max(0, a * left + b * proxySuffix[done]))
    }

    /// The mean share of the later half of the steps done.
    private var laterHalfMean: Double {
        let from = done / 2
        return (cumulative[done] - cumulative[from]) / Double(max(done - from, 1))
    }
}
