import Foundation
import Testing
@testable import PKAnalysis
@testable import PKReport

/// Well-formedness checks shared by the SVG and HTML tests: every tag closed in order, nothing
/// fetched, no non-finite number drawn.
enum Markup {
    static let voidElements: Set<String> = ["meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"]

    /// The first problem with the nesting of tags in `text` (nil when balanced): a closing tag
    /// without its opening one, or tags left open.
    static func balanceProblem(_ text: String) -> String? {
        var stack: [String] = []
        var i = text.startIndex
        while let lt = text[i...].firstIndex(of: "<") {
            guard let gt = text[lt...].firstIndex(of: ">") else { return "a '<' never closed" }
            let tag = text[text.index(after: lt)..<gt]
            i = text.index(after: gt)
            if tag.hasPrefix("!") { continue }   // <!DOCTYPE …>, comments
            if tag.hasPrefix("/") {
                let name = tag.dropFirst().lowercased()
                guard let open = stack.popLast() else { return "</\(name)> closes nothing" }
                if open != name { return "</\(name)> closes <\(open)>" }
                continue
            }
            let name = String(tag.prefix { !$0.isWhitespace && $0 != "/" }).lowercased()
            if tag.hasSuffix("/") || voidElements.contains(name) { continue }
            // Raw text: skip to the closing tag (a '<' inside <style> is not a tag).
            if name == "style" || name == "script" {
                guard let end = text.range(of: "</\(name)>", range: i..<text.endIndex) else { return "<\(name)> never closed" }
                i = end.upperBound
                continue
            }
            stack.append(name)
        }
        return stack.isEmpty ? nil : "left open: \(stack.joined(separator: ", "))"
    }

    /// Anything that would make a browser fetch: a URL other than the SVG namespace, `src=`,
    /// `href=`, CSS `url(` or `@import`.
    static func externalReferences(_ text: String) -> [String] {
        var found: [String] = []
        let stripped = text.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        for needle in ["http:", "https:", "//", "src=", "href=", "url(", "@import", "<script", "<link", "<iframe", "<img"] where stripped.lowercased().contains(needle) {
            found.append(needle)
        }
        return found
    }

    /// Attribute values holding "nan" or "inf" (a non-finite number drawn).
    static func nonFiniteAttributes(_ text: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: "(x|y|x1|x2|y1|y2|cx|cy|width|height|points|d|r)=\"[^\"]*(nan|inf)[^\"]*\"", options: [.caseInsensitive])
        let ns = text as NSString
        return pattern.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
    }
}

/// Golden files of the SVG generators on fixed inputs (`Golden/svg-*.svg`), re-recorded only with
/// `PATHKERNEL_RECORD_GOLDEN=1 swift test --filter SVGFigures` (look at them in a browser first).
@Suite("SVG figures")
struct SVGFigures {
    static let cases: [(name: String, svg: String)] = [
        ("svg-line.svg", SVG.lineChart(title: "Two series, a gap", series: [
            SVG.Series(name: "a", x: [0, 10, 20, 30, 40, 50], y: [0.0, 0.1, .nan, 0.3, 0.35, 0.4]),
            SVG.Series(name: "b <&>", x: [0, 25, 50], y: [0.5, 0.2, 0.1]),
        ], xLabel: "step", yLabel: "value", xDomain: (0, 60))),
        ("svg-line-log.svg", SVG.lineChart(title: "Log y", series: [SVG.Series(name: "err", x: [0, 1, 2, 3, 4], y: [1e-14, 0, 1e-6, 0.01, 0.08])],
                                            xLabel: "step", yLabel: "rel err", logY: true, format: { Report.pct($0) })),
        ("svg-line-constant.svg", SVG.lineChart(title: "Constant", series: [SVG.Series(name: "c", x: [0, 1, 2], y: [2, 2, 2])], xLabel: "step", yLabel: "c")),
        ("svg-line-empty.svg", SVG.lineChart(title: "Nothing finite", series: [SVG.Series(name: "e", x: [0, 1], y: [.nan, .infinity])], xLabel: "step", yLabel: "e")),
        ("svg-bars.svg", SVG.logBarChart(title: "Bars", groups: [("exact", [7e-15, 6e-15]), ("path-km", [0.0867, 0.0778]), ("zero", [0, nil]),
                                                                ("nan", [.nan, 1.5]), ("none", [nil, nil])],
                                         seriesNames: ["held out", "train"], yLabel: "rel err", format: { Report.pct($0) })),
        ("svg-loglog.svg", SVG.logLogPlot(title: "Spectrum", series: [
            SVG.Series(name: "start", x: [1, 2, 3, 4, 5], y: [100, 10, 1, 0.1, 0]),
            SVG.Series(name: "end", x: [1, 2, 3, 4, 5], y: [300, 20, 0.5, 1e-3, -1e-9]),
        ], xLabel: "rank", yLabel: "eigenvalue")),
        ("svg-image.svg", SVG.grayscaleImage(pixels: [0, 0, 0, 1, 0.5, 0.5, 0.25, .nan, 2, -1, 0, 0], width: 4, height: 3, range: (0, 1), scale: 2, title: "4×3 <test>")),
        ("svg-image-wrong-size.svg", SVG.grayscaleImage(pixels: [1, 2, 3], width: 2, height: 2, range: (0, 1), title: "bad")),
    ]

    @Test(arguments: cases.map(\.name))
    func matchesGolden(_ name: String) throws {
        let svg = try #require(Self.cases.first { $0.name == name }).svg
        try Golden.check(svg + "\n", against: name)
        #expect(Markup.balanceProblem(svg) == nil, "\(Markup.balanceProblem(svg) ?? "")")
        #expect(Markup.externalReferences(svg).isEmpty, "\(Markup.externalReferences(svg))")
        #expect(Markup.nonFiniteAttributes(svg).isEmpty, "\(Markup.nonFiniteAttributes(svg))")
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    }

    /// Any input draws without trapping and without a non-finite coordinate: empty series, one
    /// point, huge and tiny values, all-negative on a log axis, a degenerate x domain.
    @Test func oddInputsDrawSafely() {
        let odd: [[Double]] = [[], [1], [.nan], [-.infinity, .infinity], [-1, -2], [0, 0], [1e300, -1e300], [5e-324, 1e-320],
                               [.greatestFiniteMagnitude, 1], [1, 1, 1, .nan, 1]]
        for y in odd {
            let x = y.indices.map(Double.init)
            for logY in [false, true] {
                for domain in [nil, (0.0, 0.0), (Double.nan, 1.0), (3.0, -3.0)] as [(Double, Double)?] {
                    let svg = SVG.lineChart(title: "t", series: [SVG.Series(name: "s", x: x, y: y)], xLabel: "x", yLabel: "y", xDomain: domain, logY: logY)
                    #expect(Markup.balanceProblem(svg) == nil && Markup.nonFiniteAttributes(svg).isEmpty, "\(y) log \(logY) domain \(String(describing: domain)): \(svg)")
                }
            }
            let bars = SVG.logBarChart(title: "b", groups: y.map { ("g", [$0, nil]) }, seriesNames: ["a", "b"], yLabel: "y")
            let loglog = SVG.logLogPlot(title: "l", series: [SVG.Series(name: "s", x: x.map { $0 + 1 }, y: y)], xLabel: "x", yLabel: "y")
            let image = SVG.grayscaleImage(pixels: y, width: y.count, height: 1, range: (y.min() ?? 0, y.max() ?? 1), title: "i")
            for svg in [bars, loglog, image] {
                #expect(Markup.balanceProblem(svg) == nil && Markup.nonFiniteAttributes(svg).isEmpty, "\(y): \(svg)")
            }
        }
        #expect(SVG.lineChart(title: "none", series: [], xLabel: "x", yLabel: "y").contains("no finite values"))
        #expect(SVG.logBarChart(title: "none", groups: [], seriesNames: [], yLabel: "y").contains("no finite values"))
        #expect(SVG.grayscaleImage(pixels: [], width: 0, height: -3, range: (0, 1), title: "empty").contains("<path"))
        #expect(SVG.grayscaleImage(pixels: [1], width: .max, height: .max, range: (0, 1), scale: .max, title: "huge").contains("<path"))
        #expect(SVG.grayscaleImage(pixels: [1, 2], width: 2, height: 1, range: (-.infinity, .infinity), title: "r").contains("<rect width=\"2\" height=\"1\" fill=\"#fff\"/></svg>"))
        // Image sizes that overflow: no image, no trap.
        let huge = ReportData.Images(channels: .max, height: 2, width: .max, train: [0: [1]], test: [:])
        #expect(huge.gray(split: "train", index: 0) == nil && ReportData.Images.product([.max, 2]) == nil && ReportData.Images.product([3, 0]) == nil)
    }

    /// A 100 000-step series draws as a short polyline that keeps its spike.
    @Test func longSeriesAreThinned() {
        var y = (0..<100_000).map { 1 + 0.5 * sin(Double($0) / 5000) }
        y[61_234] = 9
        let svg = SVG.lineChart(title: "long", series: [SVG.Series(name: "loss", x: y.indices.map(Double.init), y: y)], xLabel: "step", yLabel: "loss")
        #expect(svg.utf8.count < 60_000, "\(svg.utf8.count) bytes")
        let thinned = SVG.thinned(y.indices.map { SVG.Point(x: Double($0), y: y[$0]) })
        #expect(thinned.count <= 1600 && thinned.contains { $0.y == 9 && $0.x == 61_234 })
        #expect(zip(thinned, thinned.dropFirst()).allSatisfy { $0.x < $1.x })
        #expect(SVG.thinned([SVG.Point(x: 0, y: 1)]) == [SVG.Point(x: 0, y: 1)])
    }

    /// Round ticks: 1, 2 or 5 times a power of ten, inside the range; log ticks are powers of ten.
    @Test func ticksAreRound() {
        #expect(SVG.linearTicks(0, 1, count: 5) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        #expect(SVG.linearTicks(0, 60, count: 6) == [0, 10, 20, 30, 40, 50, 60])
        #expect(SVG.linearTicks(-0.03, 0.02, count: 4).count >= 3)
        #expect(SVG.logTicks(1e-14, 0.08) == stride(from: -14, through: -2, by: 2).map { pow(10, Double($0)) })
        #expect(SVG.logTicks(2, 8) == [2, 5])
        #expect(SVG.logTicks(0.7, 3) == [1, 2])
        #expect(SVG.logTicks(3, 4) == [3, 4])
        #expect(SVG.tickLabel(10000) == "10000" && SVG.tickLabel(1e5) == "1e+05" && SVG.tickLabel(0.25) == "0.25" && SVG.tickLabel(-2e-4) == "-2e-04")
        #expect(SVG.linearTicks(.nan, 1).isEmpty && SVG.logTicks(0, 1).isEmpty)
    }
}

@Suite("HTML report")
struct HTMLReportTests {
    /// The moons result of the text goldens with per-step loss and learning rate.
    static func moonsPage() throws -> (AnalysisResult, ReportData) {
        let r = try Golden.result()
        let steps = Array(0..<r.run.steps)
        let data = ReportData(steps: steps, learningRates: steps.map { _ in 1.0 }, losses: steps.map { 0.7 * exp(-Double($0) / 30) })
        return (r, data)
    }

    /// A 10-class image result: contributions in output units and 4×4 two-channel images.
    static func imagePage() throws -> (AnalysisResult, ReportData) {
        var r = try Golden.result()
        r.run.name = "images"
        r.run.task = "multiclass"
        let c = { (i: Int, v: Double, y: Double) in AnalysisResult.Contribution(trainIndex: i, value: v, label: y) }
        r.attribution = [
            AnalysisResult.Attribution(split: "test", query: 3, output: (0..<10).map { Double($0) / 4 }, change: [], top: [], component: "class 7",
                                       componentChange: 1.5, examplesSum: 1.25, examples: 60,
                                       pushedUp: [c(1, 0.9, 7), c(2, 0.4, 7)], pushedDown: [c(3, -0.3, 2)]),
            AnalysisResult.Attribution(split: "train", query: 5, output: [0.1, 2.0], change: [], top: [], component: "class 1",
                                       componentChange: 0.5, examplesSum: 0.5, examples: 60, pushedUp: [c(5, 0.6, 1)], pushedDown: []),
        ]
        let pixel = { (i: Int) in (0..<32).map { Double(($0 + i) % 7) / 6 } }
        let images = ReportData.Images(channels: 2, height: 4, width: 4, train: [1: pixel(1), 2: pixel(2), 3: pixel(3), 5: pixel(5)], test: [3: pixel(9)])
        return (r, ReportData(steps: [0, 1, 2], learningRates: [0.5, 0.5, 0.25], losses: [2.3, 1.9, .nan], images: images))
    }

    static func ids(_ html: String, prefix: String) -> Set<String> {
        let re = try! NSRegularExpression(pattern: "<(section|figure) id=\"(\(prefix)[^\"]*)\"")
        let ns = html as NSString
        return Set(re.matches(in: html, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 2)) })
    }

    static func checkWellFormed(_ html: String) {
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
        #expect(Markup.balanceProblem(html) == nil, "\(Markup.balanceProblem(html) ?? "")")
        #expect(Markup.externalReferences(html).isEmpty, "\(Markup.externalReferences(html))")
        #expect(Markup.nonFiniteAttributes(html).isEmpty, "\(Markup.nonFiniteAttributes(html))")
    }

    @Test func moonsPageHasEverySection() throws {
        let (r, data) = try Self.moonsPage()
        let html = Report.html(r, data: data)
        Self.checkWellFormed(html)
        let sections = ["run", "reconstruction", "kernel-machines", "dynamics", "attribution", "summary"]
        #expect(Self.ids(html, prefix: "") == Set(sections + ["fig-kernel-machines", "fig-kernel-distance", "fig-alignment",
                                                              "fig-weight-travel", "fig-path-km-error", "fig-loss", "fig-learning-rate"]))
        // In the text report's order.
        let positions = sections.map { html.range(of: "<section id=\"\($0)\"")!.lowerBound }
        #expect(positions == positions.sorted())
        // Numbers as the text report prints them.
        for s in ["8.67%", "6.8e-15", "3.1e-16", "ρ = 1.0e-06", "88.5% train, 86.5% held out", "#55", "-24.8%"] {
            #expect(html.contains(s), "\(s)")
        }
        #expect(html.contains(SVG.escape(Report.paragraph(r))))
        // Legacy attribution without images: a table of shares.
        #expect(html.contains("share of f_T − f_0") && !html.contains("class=\"thumb"))
        // Same input, same bytes.
        #expect(html == Report.html(r, data: data))
        // No spectra given: no spectrum section; render(.html) is the page without the trace's data.
        #expect(!html.contains("id=\"spectrum\""))
        #expect(!Report.render(r, format: .html).contains("fig-loss"))
    }

    @Test func imagePageShowsThumbnails() throws {
        let (r, data) = try Self.imagePage()
        let html = Report.html(r, data: data)
        Self.checkWellFormed(html)
        // Query + 3 contributors, query + 1 contributor.
        #expect(html.components(separatedBy: "<figure class=\"thumb").count - 1 == 6)
        #expect(html.contains("class=\"thumb q\"") && html.contains("pushed up (sum +1.3)") && html.contains("pushed down (sum −0.3)"))
        #expect(html.contains("#1 y=7 +0.9") && html.contains("#3 y=2 −0.3"))
        #expect(html.contains("test #3: class 7 (predicted), output 1.750, change +1.5"))
        // 1.25 − 1.3 + 0.3 = +0.25 over the 57 others; 1.5 − 1.25 = +0.25 from no example.
        #expect(html.contains("the other 57 examples +0.25; not from examples +0.25"))
        // A missing image (query 3 without its train row) falls back to the table.
        var partial = data
        partial.images?.train[3] = nil
        let fallback = Report.html(r, data: partial)
        #expect(fallback.contains("<th>pushed up (sum +1.3)</th>") && fallback.contains("<th>pushed down (sum −0.3)</th>") && fallback.contains("<td>#3</td>"))
        // Spectra: the log-log figure.
        var withSpectra = data
        withSpectra.spectra = [ReportData.Spectrum(label: "NTK at step 0", eigenvalues: [3, 1, 0.5, 0, .nan]),
                               ReportData.Spectrum(label: "NTK at step 60", eigenvalues: [9, 2, 0.1])]
        let spectrum = Report.html(r, data: withSpectra)
        Self.checkWellFormed(spectrum)
        #expect(Self.ids(spectrum, prefix: "").isSuperset(of: ["spectrum", "fig-spectrum"]))
    }

    /// `--scope exact`: no dynamics, no training split; no steps data: no loss chart either.
    @Test func absentSectionsAreOmitted() throws {
        var r = try Golden.result()
        r.dynamics = []
        r.attribution = []
        for i in r.kernelMachines.indices { r.kernelMachines[i].train = nil }
        r.reconstruction.train = nil
        let html = Report.html(r)
        Self.checkWellFormed(html)
        #expect(Self.ids(html, prefix: "") == ["run", "reconstruction", "kernel-machines", "fig-kernel-machines", "summary"])
        #expect(!html.contains("train rel err") && !html.contains(">train<"))
        // The recorded loss and learning rate still draw, said to be all there is.
        let steps = ReportData(steps: [0, 1], learningRates: [0.1, 0.1], losses: [1, 0.5])
        let withSteps = Report.html(r, data: steps)
        #expect(Self.ids(withSteps, prefix: "") == ["run", "reconstruction", "kernel-machines", "fig-kernel-machines", "dynamics", "fig-loss", "fig-learning-rate", "summary"])
        #expect(withSteps.contains("computed no kernel figures along training"))
        r.kernelMachines = []
        #expect(!Report.html(r).contains("kernel-machines"))
    }

    /// Names and notes from a trace are text: markup in them is shown, never interpreted.
    @Test func textIsEscaped() throws {
        var (r, data) = try Self.imagePage()
        let evil = "<script>alert(\"x\")</script><img src=x onerror='y'>&"
        r.run.name = evil
        r.run.model = evil
        r.run.notes = [evil, "OUT OF DATE: " + evil]
        r.kernelMachines[0].name = evil
        r.kernelMachines[0].description = evil
        r.attribution[0].split = evil
        data.spectra = [ReportData.Spectrum(label: evil, eigenvalues: [1, 0.1])]
        let html = Report.html(r, data: data)
        // (Not `checkWellFormed`: the escaped text itself says "src=".)
        #expect(Markup.balanceProblem(html) == nil, "\(Markup.balanceProblem(html) ?? "")")
        #expect(!html.contains("<script") && !html.contains("<img"))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=&#39;y&#39;&gt;&amp;"))
        #expect(html.contains("<p class=\"warn\">OUT OF DATE: &lt;script&gt;"))
    }

    /// Non-finite numbers anywhere in the result draw and print without trapping.
    @Test func nonFiniteResultsRender() throws {
        var (r, data) = try Self.imagePage()
        for i in r.dynamics.indices where i % 3 == 0 {
            r.dynamics[i].kernelDistance = .nan
            r.dynamics[i].alignment = .infinity
            r.dynamics[i].pathKmError = -.infinity
        }
        r.kernelMachines[1].test?.relativeError = .nan
        r.reconstruction.test?.relativeResidual = .infinity
        r.attribution[0].output = []
        r.attribution[0].componentChange = .nan
        data.losses = [.infinity, -1, .nan]
        data.images?.train[1] = [Double](repeating: .nan, count: 32)
        let html = Report.html(r, data: data)
        Self.checkWellFormed(html)
        #expect(html.contains("inf") && html.contains("nan"))
    }
}
