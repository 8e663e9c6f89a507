import Foundation

extension Report {
    /// One density of a `pathkernel ntt` study, as the page draws it.
    public struct NTTDensity: Sendable {
        /// `ρ`, the kept fraction of every weight tensor.
        public var density: Double
        /// The held-out rows of the NTT optimization: iteration, the loss `L` and the relative
        /// kernel distance `‖Θ̂_S − Θ̂_T‖_F / ‖Θ̂_T‖_F`, in iteration order.
        public var iterations: [Int]
        public var loss: [Double]
        public var kernelDistance: [Double]
        /// Kept and total weights per layer.
        public var kept: [(kept: Int, of: Int)]
        /// The supervised comparison's metric (`NTTPage.metric`) of the NTT student, the
        /// magnitude-pruned teacher and the random mask; nil when not trained or diverged.
        public var ntt: Double?, magnitude: Double?, random: Double?

        public init(density: Double, iterations: [Int], loss: [Double], kernelDistance: [Double], kept: [(kept: Int, of: Int)],
                    ntt: Double? = nil, magnitude: Double? = nil, random: Double? = nil) {
            self.density = density; self.iterations = iterations; self.loss = loss; self.kernelDistance = kernelDistance
            self.kept = kept; self.ntt = ntt; self.magnitude = magnitude; self.random = random
        }
    }

    /// What the NTT page shows besides the densities.
    public struct NTTPage: Sendable {
        public var title: String
        /// `(label, value)` rows of the run card (network, data, settings, …).
        public var card: [(label: String, value: String)]
        /// The supervised comparison's metric: `test accuracy` (classification) or `test RMSE`
        /// (regression); nil when the comparison was not run (`--no-train`).
        public var metric: String?
        /// The dense network's value of `metric`.
        public var dense: Double?
        public init(title: String, card: [(label: String, value: String)], metric: String?, dense: Double?) {
            self.title = title; self.card = card; self.metric = metric; self.dense = dense
        }
    }

    /// The HTML page of a `pathkernel ntt` study (`--html FILE`; Docs/bandits-and-pruning.md,
    /// "HTML"): one self-contained page in the analysis report's style, a pure function of its
    /// inputs. Sections: the run card; the metric against density for the NTT student, the
    /// magnitude-pruned teacher, the random mask and the dense network (`fig-ntt-density`, when
    /// the comparison ran); the relative kernel distance and the loss `L` along NTT, one line
    /// per density (`fig-ntt-distance`, `fig-ntt-loss`); the table of every density.
    public static func nttHTML(_ page: NTTPage, densities: [NTTDensity]) -> String {
        let e = SVG.escape
        var body: [String] = []
        body.append(section("run", "Run", "<dl class=\"card\">" + page.card.map { "<dt>\(e($0.label))</dt><dd>\(e($0.value))</dd>" }.joined() + "</dl>"))

        let sorted = densities.sorted { $0.density < $1.density }
        if let metric = page.metric {
            let xs = sorted.map(\.density)
            func series(_ name: String, _ value: (NTTDensity) -> Double?) -> SVG.Series {
                SVG.Series(name: name, points: sorted.compactMap { d in value(d).map { SVG.Point(x: d.density, y: $0) } })
            }
            var lines = [series("ntt", \.ntt), series("magnitude", \.magnitude), series("random", \.random)]
            if let dense = page.dense, let lo = xs.first, let hi = xs.last {
                lines.append(SVG.Series(name: "dense", points: [SVG.Point(x: lo, y: dense), SVG.Point(x: hi, y: dense)]))
            }
            let better = metric.contains("RMSE") ? "lower" : "higher"
            let fig = figure("fig-ntt-density", SVG.lineChart(title: "\(metric) against density ρ", series: lines, xLabel: "density ρ", yLabel: metric,
                                                               format: { num($0, 4) }),
                             caption: "After supervised training with the run's optimizer and steps: the NTT student, the teacher magnitude-pruned at the same density (no NTT), a uniform random mask on a fresh initialization, and the dense network (flat line). \(better.capitalized) is better.")
            body.append(section("density", "\(metric.prefix(1).uppercased() + metric.dropFirst()) against density", fig))
        } else {
            body.append(section("density", "Supervised comparison", "<p>Not run (<code>--no-train</code>).</p>"))
        }

        func along(_ value: (NTTDensity) -> [Double]) -> [SVG.Series] {
            sorted.map { d in SVG.Series(name: "ρ = \(SVG.tickLabel(d.density))", x: d.iterations.map(Double.init), y: value(d)) }
        }
        var figs = figure("fig-ntt-distance", SVG.lineChart(title: "Relative kernel distance (held-out batch)", series: along(\.kernelDistance),
                                                            xLabel: "NTT iteration", yLabel: "‖Θ̂_S − Θ̂_T‖/‖Θ̂_T‖", format: { num($0, 4) }),
                          caption: "‖Θ̂_S − Θ̂_T‖_F / ‖Θ̂_T‖_F between the sparse student's and the dense teacher's empirical NTK on the held-out batch, at iteration 0, every mask update and the end.")
        figs += figure("fig-ntt-loss", SVG.lineChart(title: "NTT loss L (held-out batch)", series: along(\.loss), xLabel: "NTT iteration", yLabel: "L",
                                                     logY: true, format: { SVG.tickLabel($0) }),
                       caption: "L = λ_K · kernel term + target term + (λ₂/ρ)‖M ⊙ s‖² on the same rows (log scale).")
        body.append(section("ntt", "Along NTT", "<div class=\"grid\">" + figs + "</div>"))

        var rows: [[String]] = []
        for d in sorted {
            let kept = d.kept.map { "\($0.kept)/\($0.of)" }.joined(separator: " ")
            var row = [SVG.tickLabel(d.density), kept, num(d.kernelDistance.first, 4), num(d.kernelDistance.last, 4)]
            if page.metric != nil { row += [num(d.ntt, 4), num(d.magnitude, 4), num(d.random, 4), num(page.dense, 4)] }
            rows.append(row)
        }
        var header = ["density ρ", "kept weights per layer", "kernel distance before", "after"]
        if let metric = page.metric { header += ["\(metric): ntt", "magnitude", "random", "dense"] }
        body.append(section("table", "Every density", table(header, rows, textColumns: [0, 1])))
        body.append("<footer>pathkernel ntt. Definitions: Docs/bandits-and-pruning.md; contract §7.</footer>")
        return self.page(title: page.title, body: body)
    }
}
