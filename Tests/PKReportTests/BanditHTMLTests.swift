import Foundation
import Testing
@testable import PKAnalysis
@testable import PKReport

/// The bandit page (`pathkernel bandit --html`) and its band chart: the band's coordinates on a
/// case worked by hand, breaks at non-finite points, and the page's structure (sections, one
/// band and one mean line per algorithm in each figure, the final-regret table), well-formed and
/// self-contained.
@Suite("Bandit HTML page")
struct BanditHTMLTests {
    /// x = 1, 2, 3, mean 1, 2, 3, spread 1: y runs over [0, 4]. The frame (480 × 210, margins 60,
    /// 12, 28, 38) maps x to 60 + (x − 1)·204 and y to 172 − 36·y.
    @Test func bandCoordinatesByHand() {
        let svg = SVG.bandChart(title: "t", bands: [SVG.Band(name: "a", x: [1, 2, 3], mean: [1, 2, 3], spread: [1, 1, 1])],
                                xLabel: "round", yLabel: "R")
        #expect(svg.contains("points=\"60.0,100.0 264.0,64.0 468.0,28.0 468.0,100.0 264.0,136.0 60.0,172.0\""), "\(svg)")
        #expect(svg.contains("<polyline fill=\"none\" stroke=\"#1f6fb4\" stroke-width=\"1.5\" points=\"60.0,136.0 264.0,100.0 468.0,64.0\"/>"))
        #expect(Markup.balanceProblem(svg) == nil)
    }

    @Test func nonFiniteBreaksTheBandAndEmptyDrawsTheFrame() {
        let svg = SVG.bandChart(title: "t", bands: [SVG.Band(name: "a", x: [1, 2, 3, 4, 5], mean: [1, 2, .nan, 4, 5], spread: [0.5, 0.5, 0.5, -1, 0.5])],
                                xLabel: "round", yLabel: "R")
        // Points 1–2 form a band; point 3 (NaN) and 4 (negative spread) break it; point 5 is alone.
        #expect(svg.components(separatedBy: "<polygon").count - 1 == 1)
        #expect(svg.contains("<circle cx=\"468.0\""))
        #expect(Markup.nonFiniteAttributes(svg).isEmpty && Markup.balanceProblem(svg) == nil)
        let empty = SVG.bandChart(title: "t", bands: [SVG.Band(name: "a", x: [1], mean: [.infinity], spread: [0])], xLabel: "x", yLabel: "y")
        #expect(empty.contains("no finite values"))
        // Long curves are thinned to about maxPoints points (and the last).
        let long = SVG.bandChart(title: "t", bands: [SVG.Band(name: "a", x: (1...5000).map(Double.init), mean: (1...5000).map(Double.init),
                                                              spread: [Double](repeating: 3, count: 5000))], xLabel: "x", yLabel: "y", maxPoints: 100)
        let polygon = long.components(separatedBy: "<polygon")[1].components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }
        #expect(polygon.split(separator: " ").count == 2 * 101)
    }

    static func summary(_ algorithm: NeuralUCB.Algorithm, regrets: [[Double]]) -> NeuralUCB.Summary {
        var settings = NeuralUCB.Settings(algorithm: algorithm)
        settings.lambda = 0.5
        let runs = regrets.enumerated().map { i, r in
            NeuralUCB.Run(seed: UInt64(i), steps: r.enumerated().map { t, g in
                NeuralUCB.Step(scores: [], widths: [], arm: t % 3, reward: 1 - g, regret: g, logDet: nil, parameterDistance: nil)
            }, arms: 3)
        }
        return NeuralUCB.Summary(settings: settings, runs: runs)
    }

    @Test func pageStructure() throws {
        let a = Self.summary(.neuralucb, regrets: [[0, 1, 0, 0], [1, 0, 0, 0]])
        let b = Self.summary(.uniform, regrets: [[1, 1, 0, 1], [1, 0, 1, 0]])
        let page = Report.BanditPage(title: "bandit <test>", card: [("bandit", "x & y"), ("runs", "2")], settings: ["neuralucb": "λ 0.5"])
        let html = Report.banditHTML(page, summaries: [a, b])
        for id in ["run", "regret", "final"] { #expect(html.contains("<section id=\"\(id)\">"), "section \(id)") }
        for id in ["fig-regret", "fig-regret-rate"] { #expect(html.contains("<figure id=\"\(id)\" class=\"fig\"><svg"), "figure \(id)") }
        // One band per algorithm in each of the two figures.
        #expect(html.components(separatedBy: "<polygon class=\"band\"").count - 1 == 4)
        // Escaped text, well-formed, nothing fetched, nothing non-finite.
        #expect(html.contains("bandit &lt;test&gt;") && html.contains("x &amp; y") && !html.contains("<test>"))
        #expect(Markup.balanceProblem(html) == nil)
        #expect(Markup.externalReferences(html).isEmpty)
        #expect(Markup.nonFiniteAttributes(html).isEmpty)
        // The table: R_T mean ± sample std (1 ± 0 and 2.5 ± 0.707), each run, the ratio 1/2.5.
        #expect(html.contains("<td class=\"n\">1.0 ± 0.0</td>"), "\(html)")
        #expect(html.contains("<td class=\"n\">2.5 ± 0.7</td>"), "\(html)")
        #expect(html.contains("<td>1.0 0.0</td>") == false && html.contains("<td>1.0 1.0</td>"), "each run's R_T")
        #expect(html.contains("<td class=\"n\">0.400</td>"), "ratio 1/2.5")
        // Play counts: arm t % 3 over 4 rounds and 2 runs = 4, 2, 2.
        #expect(html.contains("<td>neuralucb</td><td class=\"n\">4</td><td class=\"n\">2</td><td class=\"n\">2</td>"))
        // The same inputs give the same bytes.
        #expect(Report.banditHTML(page, summaries: [a, b]) == html)
    }
}
