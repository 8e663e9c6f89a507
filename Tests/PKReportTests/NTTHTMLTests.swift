import Foundation
import Testing
@testable import PKReport

/// The NTT page (`pathkernel ntt --html`): one line per variant with one point per density,
/// each point's value as given (its hover title), a diverged run left out, the table's numbers,
/// escaping, well-formed and self-contained.
@Suite("NTT HTML page")
struct NTTHTMLTests {
    static let rows = [
        Report.NTTRow(density: 0.1, kernelDistanceBefore: 0.849356, kernelDistanceAfter: 0.326048,
                      ntt: 0.821, magnitude: 0.819, random: 0.822, dense: 0.843),
        Report.NTTRow(density: 0.03, kernelDistanceBefore: 0.961089, kernelDistanceAfter: 0.350931,
                      ntt: 0.773, magnitude: nil, random: 0.698, dense: 0.843),
    ]

    @Test func pointsTableAndStructure() throws {
        let page = Report.nttHTML(title: "pathkernel ntt: a <b>", card: [("config", "ntt-fmnist & co")],
                                  metric: "test accuracy", rows: Self.rows)
        #expect(page.contains("id=\"fig-ntt-accuracy\""))
        #expect(page.contains("Test accuracy against density"))
        // Every point that exists has its hover title with its value; the diverged one has none.
        for r in Self.rows {
            for (name, value) in [("ntt", r.ntt), ("magnitude", r.magnitude), ("random", r.random), ("dense", r.dense)] {
                let title = "\(name) at density ρ \(SVG.tickLabel(r.density)): "
                if let value {
                    #expect(page.contains(title + Report.num(value, 4)), "no point '\(title)\(Report.num(value, 4))'")
                } else {
                    #expect(!page.contains(title), "a diverged run drawn: \(title)")
                }
            }
        }
        // One line per variant (magnitude: one point left, a circle rather than a line).
        let figure = page.components(separatedBy: "id=\"fig-ntt-accuracy\"")[1].components(separatedBy: "</figure>")[0]
        #expect(figure.components(separatedBy: "<polyline").count - 1 == 3)
        // The table: densities ascending, the distances, "diverged".
        let table = page.components(separatedBy: "id=\"table\"")[1]
        #expect(table.range(of: "0.03")!.lowerBound < table.range(of: "0.1<")!.lowerBound)
        for text in ["0.9611", "0.3509", "0.8494", "0.3260", "0.7730", "diverged", "0.8430"] {
            #expect(table.contains(text), "\(text) not in the table")
        }
        #expect(page.contains("a &lt;b&gt;") && page.contains("ntt-fmnist &amp; co"))
        #expect(Markup.balanceProblem(page) == nil)
        #expect(Markup.externalReferences(page).isEmpty)
        #expect(Markup.nonFiniteAttributes(page).isEmpty)
        // The same input gives the same bytes; a regression config names its metric.
        #expect(page == Report.nttHTML(title: "pathkernel ntt: a <b>", card: [("config", "ntt-fmnist & co")],
                                       metric: "test accuracy", rows: Self.rows.reversed()))
        #expect(Report.nttHTML(title: "t", card: [], metric: "test RMSE", rows: Self.rows).contains("Test RMSE against density"))
    }
}
