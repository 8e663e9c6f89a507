import Foundation
import Testing
@testable import PKReport

/// The NTT page (`pathkernel ntt --html`): sections and figures, the dense line, the table's
/// numbers, escaping, well-formed and self-contained; without the comparison, no density figure.
@Suite("NTT HTML page")
struct NTTHTMLTests {
    static let densities = [
        Report.NTTDensity(density: 0.1, iterations: [0, 100, 124], loss: [1.9, 0.8, 0.69], kernelDistance: [0.85, 0.5, 0.476],
                          kept: [(2352, 23520), (300, 3000)], ntt: 0.819, magnitude: 0.8195, random: 0.822),
        Report.NTTDensity(density: 0.03, iterations: [0, 100, 124], loss: [2.5, 1.3, 1.23], kernelDistance: [0.96, 0.7, 0.657],
                          kept: [(706, 23520), (90, 3000)], ntt: 0.57, magnitude: nil, random: 0.698),
    ]

    @Test func pageStructure() {
        let page = Report.NTTPage(title: "ntt <tiny>", card: [("network", "MLP & co")], metric: "test accuracy", dense: 0.843)
        let html = Report.nttHTML(page, densities: Self.densities)
        for id in ["run", "density", "ntt", "table"] { #expect(html.contains("<section id=\"\(id)\">"), "section \(id)") }
        for id in ["fig-ntt-density", "fig-ntt-distance", "fig-ntt-loss"] { #expect(html.contains("<figure id=\"\(id)\" class=\"fig\"><svg"), "figure \(id)") }
        // The density figure: ntt and random with two points each, magnitude with one (a
        // diverged run is left out), and the dense line; along NTT, one line per density.
        #expect(html.contains("ρ = 0.1") && html.contains("ρ = 0.03"))
        #expect(html.contains(">dense<"), "the dense line's legend")
        // The table, densities in increasing order, values to 4 decimals, "–" for the missing one.
        let rowSmall = "<tr><td>0.03</td><td>706/23520 90/3000</td><td class=\"n\">0.9600</td><td class=\"n\">0.6570</td><td class=\"n\">0.5700</td><td class=\"n\">–</td><td class=\"n\">0.6980</td><td class=\"n\">0.8430</td></tr>"
        #expect(html.contains(rowSmall), "\(html)")
        #expect(html.range(of: "<td>0.03</td>")!.lowerBound < html.range(of: "<td>0.1</td>")!.lowerBound)
        #expect(html.contains("ntt &lt;tiny&gt;") && html.contains("MLP &amp; co") && !html.contains("<tiny>"))
        #expect(Markup.balanceProblem(html) == nil)
        #expect(Markup.externalReferences(html).isEmpty)
        #expect(Markup.nonFiniteAttributes(html).isEmpty)
        #expect(Report.nttHTML(page, densities: Self.densities) == html)
    }

    @Test func withoutTheComparisonThereIsNoDensityFigure() {
        let page = Report.NTTPage(title: "t", card: [], metric: nil, dense: nil)
        let html = Report.nttHTML(page, densities: Self.densities)
        #expect(!html.contains("fig-ntt-density") && html.contains("Not run") && html.contains("fig-ntt-loss"))
        #expect(!html.contains("magnitude</th>"))
        #expect(Markup.balanceProblem(html) == nil)
    }
}
