import Foundation

extension Report {
    /// One density of a `pathkernel ntt` study: the relative kernel distance on the held-out
    /// batch before and after NTT, and the test metric after supervised training of each variant
    /// (nil: the run diverged).
    public struct NTTRow: Sendable, Equatable {
        public var density: Double
        public var kernelDistanceBefore: Double
        public var kernelDistanceAfter: Double
        public var ntt: Double?, magnitude: Double?, random: Double?, dense: Double?
        public init(density: Double, kernelDistanceBefore: Double, kernelDistanceAfter: Double,
                    ntt: Double?, magnitude: Double?, random: Double?, dense: Double?) {
            self.density = density; self.kernelDistanceBefore = kernelDistanceBefore; self.kernelDistanceAfter = kernelDistanceAfter
            self.ntt = ntt; self.magnitude = magnitude; self.random = random; self.dense = dense
        }
    }

    /// The HTML page of a `pathkernel ntt` study (`--html FILE`; Docs/bandits-and-pruning.md):
    /// one self-contained page in the analysis report's style (inline CSS and SVG, no script), a
    /// pure function of its inputs. Sections: the run card; the test metric against the density,
    /// one line per variant (`ntt`, `magnitude`, `random`, `dense`; `fig-ntt-accuracy`, a
    /// diverged run leaves its point out); the table of every number with the kernel distances.
    /// `metric` names the test number ("test accuracy", or "test RMSE" for a regression config).
    public static func nttHTML(title: String, card: [(label: String, value: String)], metric: String, rows: [NTTRow]) -> String {
        let e = SVG.escape
        var body: [String] = []
        body.append(section("run", "Run", "<dl class=\"card\">" + card.map { "<dt>\(e($0.label))</dt><dd>\(e($0.value))</dd>" }.joined() + "</dl>"))
        let sorted = rows.sorted { $0.density < $1.density }
        func series(_ name: String, _ value: (NTTRow) -> Double?) -> SVG.Series {
            SVG.Series(name: name, x: sorted.map(\.density), y: sorted.map { value($0) ?? .nan })
        }
        let chart = SVG.lineChart(title: "\(metric.prefix(1).uppercased() + metric.dropFirst()) against density",
                                  series: [series("ntt", \.ntt), series("magnitude", \.magnitude),
                                           series("random", \.random), series("dense", \.dense)],
                                  xLabel: "density ρ", yLabel: metric, format: { num($0, 4) })
        let fig = figure("fig-ntt-accuracy", chart,
                         caption: "After supervised training with the config's optimizer and steps: the NTT student (mask fixed), the magnitude-pruned teacher, a random mask on a fresh initialization, and the dense network (the same at every density). A diverged run has no point.")
        body.append(section("accuracy", metric.prefix(1).uppercased() + metric.dropFirst(), "<div class=\"grid\">" + fig + "</div>"))
        let table = self.table(["density", "kernel distance before", "after", "ntt", "magnitude", "random", "dense"],
                               sorted.map { r in
                                   [SVG.tickLabel(r.density), num(r.kernelDistanceBefore, 4), num(r.kernelDistanceAfter, 4)]
                                       + [r.ntt, r.magnitude, r.random, r.dense].map { $0.map { num($0, 4) } ?? "diverged" }
                               })
        body.append(section("table", "Numbers", table + "<p>Kernel distance: ‖Θ̂_S − Θ̂_T‖_F / ‖Θ̂_T‖_F on the held-out batch, for the magnitude-pruned teacher (before) and the NTT student (after).</p>"))
        body.append("<footer>pathkernel ntt. Definitions: Docs/bandits-and-pruning.md; contract §7.</footer>")
        return page(title: title, body: body)
    }
}
