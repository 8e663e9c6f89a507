import Foundation
import PKAnalysis

extension Report {
    /// What the bandit page shows besides the runs: its title and the run card's rows.
    public struct BanditPage: Sendable {
        public var title: String
        /// `(label, value)` rows of the run card (bandit, arms, rounds, runs, network, …).
        public var card: [(label: String, value: String)]
        /// Each algorithm's settings line, by algorithm name (empty: none).
        public var settings: [String: String]
        public init(title: String, card: [(label: String, value: String)], settings: [String: String] = [:]) {
            self.title = title; self.card = card; self.settings = settings
        }
    }

    /// The HTML page of a `pathkernel bandit` run (`--html FILE`; Docs/bandits-and-pruning.md,
    /// "HTML"): one self-contained page in the analysis report's style (inline CSS and SVG, no
    /// script), a pure function of its inputs. Sections: the run card; the cumulative regret
    /// `R_t` of every algorithm, mean line over a ±1 std band across runs (`fig-regret`), and the
    /// per-round regret `R_t/t` the same way (`fig-regret-rate`); the table of `R_T` (mean ± std,
    /// each run, the ratio to the first algorithm's) and the play counts.
    public static func banditHTML(_ page: BanditPage, summaries: [NeuralUCB.Summary]) -> String {
        let e = SVG.escape
        var body: [String] = []
        body.append(section("run", "Run", "<dl class=\"card\">" + page.card.map { "<dt>\(e($0.label))</dt><dd>\(e($0.value))</dd>" }.joined() + "</dl>"))

        func band(_ s: NeuralUCB.Summary, rate: Bool) -> SVG.Band {
            let T = s.meanCumulativeRegret.count
            let x = (1...max(T, 1)).prefix(T).map(Double.init)
            let scale: (Int) -> Double = { rate ? 1 / Double($0 + 1) : 1 }
            return SVG.Band(name: s.settings.algorithm.rawValue, x: x,
                            mean: s.meanCumulativeRegret.indices.map { s.meanCumulativeRegret[$0] * scale($0) },
                            spread: s.stdCumulativeRegret.indices.map { s.stdCumulativeRegret[$0] * scale($0) })
        }
        let runs = summaries.map(\.runs.count).max() ?? 0
        let bandNote = runs > 1 ? "the band is ± one sample standard deviation over the \(runs) runs" : "one run: no band"
        var figs = figure("fig-regret", SVG.bandChart(title: "Cumulative regret R_t (mean ± std over runs)", bands: summaries.map { band($0, rate: false) },
                                                       xLabel: "round t", yLabel: "R_t", format: { num($0, 1) }),
                          caption: "R_t = Σ_{s≤t} regret_s: the line is the mean over runs, \(bandNote). Lower is better; uniform play grows linearly.")
        figs += figure("fig-regret-rate", SVG.bandChart(title: "Regret per round R_t/t", bands: summaries.map { band($0, rate: true) },
                                                         xLabel: "round t", yLabel: "R_t / t", format: { num($0, 3) }),
                       caption: "The same curves divided by t: a policy that learns bends down; uniform play stays near its expected regret per round.")
        body.append(section("regret", "Regret", "<div class=\"grid\">" + figs + "</div>"))

        var rows: [[String]] = []
        let first = summaries.first?.finalRegretMean
        for (i, s) in summaries.enumerated() {
            let name = s.settings.algorithm.rawValue
            let ratio = first.map { s.finalRegretMean > 0 ? num($0 / s.finalRegretMean, 3) : "–" } ?? "–"
            rows.append([name, "\(num(s.finalRegretMean, 1)) ± \(num(s.finalRegretStd, 1))",
                         s.runs.map { num($0.finalRegret, 1) }.joined(separator: " "),
                         s.runs.isEmpty ? "–" : num(s.finalRegretMean / Double(max(1, s.meanCumulativeRegret.count)), 4),
                         i == 0 ? "1" : ratio, page.settings[name] ?? ""])
        }
        var table = self.table(["algorithm", "R_T mean ± std", "R_T per run", "R_T/T", "\(summaries.first?.settings.algorithm.rawValue ?? "first")'s R_T / this R_T", "settings"],
                               rows, textColumns: [0, 2, 5], wideLast: true)
        var counts: [[String]] = []
        for s in summaries {
            var total = [Int](repeating: 0, count: s.runs.first?.arms ?? 0)
            for run in s.runs { for (a, c) in run.playCounts.enumerated() where a < total.count { total[a] += c } }
            counts.append([s.settings.algorithm.rawValue] + total.map(String.init))
        }
        let K = summaries.first?.runs.first?.arms ?? 0
        table += "<h3>Play counts per arm, summed over runs</h3>" + self.table(["algorithm"] + (0..<K).map { "arm \($0)" }, counts)
        body.append(section("final", "Final regret", table))
        body.append("<footer>pathkernel bandit. Definitions: Docs/bandits-and-pruning.md; contract §6.</footer>")

        return self.page(title: page.title, body: body)
    }
}
