import Foundation
import PKAnalysis

extension Report {
    /// The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched),
    /// a pure function of the result and `data` (the same inputs give the same bytes). Sections in
    /// the text report's order, each left out when it has nothing to show (Docs/cli.md, "The HTML
    /// report"). Every string from the result or the data is escaped.
    public static func html(_ r: AnalysisResult, data: ReportData = ReportData()) -> String {
        let e = SVG.escape
        let run = r.run
        let classification = run.task != "regression"
        var body: [String] = []

        // Warnings first: a failed step check or an out-of-date analysis changes what everything below means.
        var warnings = run.notes.filter { $0.hasPrefix("OUT OF DATE") }
        if r.replay.inconsistent == true, let check = stepCheck(r.replay) { warnings.append("INCONSISTENT: the stored weights are " + check) }
        for w in warnings { body.append("<p class=\"warn\">\(e(w))</p>") }

        // MARK: Run card
        body.append(section("run", "Run", "<dl class=\"card\">" + runCard(r).map { "<dt>\(e($0.label))</dt><dd>\(e($0.value))</dd>" }.joined() + "</dl>"))

        // MARK: Reconstruction and step check
        do {
            var tiles: [String] = []
            if let res = r.reconstruction.test ?? r.reconstruction.train {
                let split = r.reconstruction.test != nil ? "held-out" : "training"
                let ok = res.relativeResidual < 1e-6
                let meaning = ok ? "round-off level: the weight path rebuilds the network exactly"
                    : (r.settings.quadrature == "exact" ? "above round-off with exact quadrature (float32 compute, or steps that do not close)" : "quadrature error: raise --nodes or use --adaptive")
                tiles.append(tile("reconstruction", sci(res.relativeResidual), "relative residual of f_T − f_0 − Σ_t J̄_t Δw_t on \(split) outputs: \(meaning)", bad: !ok))
            }
            if let checked = r.replay.checkedSteps {
                if checked > 0 {
                    let bad = r.replay.inconsistent == true
                    let meaning = bad ? "the stored weights are NOT the recorded loss's and optimizer's steps; the kernel form describes the recorded loss, not this run"
                        : "largest relative mismatch of \(checked) recomputed \(r.replay.checkpointEvery > 1 ? "checkpoint\(checked == 1 ? "" : "s")" : "step\(checked == 1 ? "" : "s")") (tolerance \(sci(r.replay.tolerance))): the stored weights are updates of the recorded loss and optimizer"
                    tiles.append(tile("step check", sci(r.replay.largestMismatch), meaning, bad: bad))
                } else {
                    tiles.append(tile("step check", "none", "no step could be recomputed (checkpoint resolution): nothing checks that the stored weights are updates of the recorded loss", bad: false))
                }
            }
            var rows: [[String]] = []
            for (name, res) in [("train", r.reconstruction.train), ("held out", r.reconstruction.test)] {
                guard let res else { continue }
                rows.append([name, sci(res.relativeResidual), sci(res.maxAbsResidual), sci(res.kernelFormMaxAbs)])
            }
            var html = tiles.isEmpty ? "" : "<div class=\"tiles\">" + tiles.joined() + "</div>"
            if !rows.isEmpty { html += table(["split", "relative", "max abs", "kernel form max abs"], rows) }
            if let x = r.reconstruction.exact {
                if let events = x.sweepEventsPerQueryStep {
                    html += "<p>Exact quadrature by the event sweep: \(e(pct(x.kinkedShare))) of (query, step) pairs cross a kink (\(e(num(x.breakpointsPerKinkedPair, 1))) breakpoints each), \(e(num(events, 2))) events that change J and \(e(num(x.sweepSilentPerQueryStep ?? 0, 2))) silent ones per query and step.</p>"
                } else {
                    html += "<p>Exact quadrature: \(x.nodesPerPiece) Gauss–Legendre node\(x.nodesPerPiece == 1 ? "" : "s") per piece between kinks; \(e(pct(x.kinkedShare))) of (query, step) pairs cross a kink (\(e(num(x.breakpointsPerKinkedPair, 1))) breakpoints each), \(e(num(x.nodesPerQueryStep, 2))) node evaluations per query and step.</p>"
                }
            } else if !rows.isEmpty {
                html += "<p>Mean nodes per step \(e(num(r.reconstruction.meanNodesPerStep, 1)))\(r.reconstruction.maxDepth > 0 ? ", deepest split \(r.reconstruction.maxDepth)" : "").</p>"
            }
            if !html.isEmpty { body.append(section("reconstruction", "Reconstruction and step check", html)) }
        }

        // MARK: Kernel machines
        let splits: [(name: String, pick: (AnalysisResult.KernelMachine) -> AnalysisResult.Fidelity?)] =
            [("held out", { $0.test }), ("train", { $0.train })].filter { split in r.kernelMachines.contains { split.pick($0) != nil } }
        if !splits.isEmpty {
            let chart = SVG.logBarChart(title: "Relative error against the network (log scale)",
                                        groups: r.kernelMachines.map { km in (km.name, splits.map { $0.pick(km)?.relativeError }) },
                                        seriesNames: splits.map(\.name), yLabel: "rel err (1 = 100%)", format: { pct($0) })
            var header = ["machine"]
            for s in splits { header += (classification ? ["rel err", "R²", "agree"] : ["rel err", "R²"]).map { "\(s.name) \($0)" } }
            header.append("what it is")
            let rows: [[String]] = r.kernelMachines.map { km in
                var row = [km.name]
                for s in splits {
                    let f = s.pick(km)
                    row += [pct(f?.relativeError), num(f?.r2)]
                    if classification { row.append(pct(f?.argmaxAgreement)) }
                }
                return row + [km.description]
            }
            var html = figure("fig-kernel-machines", chart, caption: "Each machine's relative error ‖KM − f_T‖/‖f_T − f_0‖ on each split: 0 is the network itself, 1 (100%) no better than the untrained network.")
            html += table(header, rows, textColumns: [0, header.count - 1], wideLast: true)
            let ridge = r.kernelMachines.compactMap(ridgeLine)
            if !ridge.isEmpty { html += "<ul>" + ridge.map { "<li>\(e($0))</li>" }.joined() + "</ul>" }
            if classification { html += "<p class=\"meaning\">agree = same predicted class as the network.</p>" }
            body.append(section("kernel-machines", "Kernel machines against the network", html))
        }

        // MARK: Along training
        do {
            let d = r.dynamics
            let stepsX = d.map { Double($0.step) } + data.steps.map(Double.init)
            let domain = stepsX.min().flatMap { lo in stepsX.max().map { (lo, $0) } }
            var figs: [String] = []
            func chart(_ id: String, _ title: String, _ series: [SVG.Series], logY: Bool = false, yLabel: String, format: @escaping (Double) -> String,
                       ticks: @escaping (Double) -> String = { SVG.tickLabel($0) }) {
                figs.append(figure(id, SVG.lineChart(title: title, series: series, xLabel: "step", yLabel: yLabel, xDomain: domain, logY: logY,
                                                     format: format, tickFormat: ticks)))
            }
            let steps = d.map { Double($0.step) }
            if !d.isEmpty {
                chart("fig-kernel-distance", "Kernel distance from the initial NTK", [SVG.Series(name: "kernel distance", x: steps, y: d.map(\.kernelDistance))], yLabel: "distance", format: { num($0) })
                chart("fig-alignment", "Kernel–target alignment", [SVG.Series(name: "alignment", x: steps, y: d.map(\.alignment))], yLabel: "alignment", format: { num($0) })
                chart("fig-weight-travel", "Weight travel ‖w_t − w_0‖/‖w_0‖", [SVG.Series(name: "weight travel", x: steps, y: d.map(\.weightTravel))], yLabel: "travel", format: { num($0) })
                let km = d.compactMap { p in p.pathKmError.map { (Double(p.step), $0) } }
                if !km.isEmpty {
                    chart("fig-path-km-error", "path-km relative error (log scale)", [SVG.Series(name: "path-km rel err", x: km.map(\.0), y: km.map(\.1))], logY: true, yLabel: "rel err (1 = 100%)", format: { pct($0) })
                }
            }
            let n = min(data.steps.count, data.losses.count, data.learningRates.count)
            if n > 0 {
                let x = data.steps.prefix(n).map(Double.init)
                let losses = Array(data.losses.prefix(n))
                let positive = losses.allSatisfy { !$0.isFinite || $0 > 0 }
                chart("fig-loss", "Batch loss\(positive ? " (log scale)" : "")", [SVG.Series(name: "loss", x: x, y: losses)], logY: positive, yLabel: "loss", format: { sci($0) })
                chart("fig-learning-rate", "Learning rate", [SVG.Series(name: "learning rate", x: x, y: Array(data.learningRates.prefix(n)))], yLabel: "lr", format: { sci($0) })
            }
            if !figs.isEmpty {
                var intro = "All charts share the step axis"
                if d.isEmpty { intro += "; this analysis computed no kernel figures along training (scope exact)" }
                if let first = d.first, let last = d.last {
                    intro += "; the kernel figures are \(d.count) points from step \(first.step) to \(last.step) on \(r.dynamicsSubset) training points (kernel distance 1 − ⟨Θ_0, Θ_t⟩/(‖Θ_0‖‖Θ_t‖), alignment ⟨Θ_t, YYᵀ⟩/(‖Θ_t‖‖YYᵀ‖), path-km built from steps before t against the network at w_t)"
                }
                if n > 0 { intro += "; loss and learning rate are the recorded ones at every step" }
                body.append(section("dynamics", "Along training", "<p class=\"meaning\">\(e(intro)).</p><div class=\"grid\">" + figs.joined() + "</div>"))
            }
        }

        // MARK: Over-parameterization (the text report's block, its travel table and notes)
        if let diag = r.diagnostics {
            var content = "<pre class=\"block\">" + overParameterization(diag, outputs: run.outputs).map(e).joined(separator: "\n") + "</pre>"
            if !diag.travel.isEmpty {
                content += table(["parameters", "‖ΔW‖/‖W_0‖", "‖ΔW‖"],
                                 diag.travel.map { [$0.tensor, $0.relative.map { pct($0) } ?? "– (W_0 = 0)", g3($0.change)] })
            }
            let notes = diagnosticNotes(diag)
            if !notes.isEmpty { content += "<ul>" + notes.map { "<li>\(e($0))</li>" }.joined() + "</ul>" }
            body.append(section("diagnostics", "Over-parameterization", "<p class=\"meaning\">Where the run sits between the lazy (kernel) regime and feature learning (Docs/ntk-family.md).</p>" + content))
        }

        // MARK: Spectrum
        let spectra = data.spectra.filter { !$0.eigenvalues.isEmpty }
        if !spectra.isEmpty {
            let series = spectra.map { s in
                let sorted = s.eigenvalues.filter { !$0.isNaN }.sorted(by: >)
                return SVG.Series(name: s.label, x: sorted.indices.map { Double($0 + 1) }, y: sorted)
            }
            let plot = SVG.logLogPlot(title: "Eigenvalues, largest first", series: series, xLabel: "rank", yLabel: "eigenvalue", format: { sci($0) })
            body.append(section("spectrum", "NTK eigenvalue spectrum", figure("fig-spectrum", plot, caption: "Eigenvalues ≤ 0 are left out of the log axes.")))
        }

        // MARK: Attribution
        if !r.attribution.isEmpty {
            body.append(section("attribution", "Training examples behind predictions", attribution(r, data: data)))
        }

        // MARK: Summary and notes
        body.append(section("summary", "What the numbers say", "<p>\(e(paragraph(r)))</p>"))
        if !run.notes.isEmpty {
            body.append(section("notes", "Notes", "<ul>" + run.notes.map { "<li>\(e($0))</li>" }.joined() + "</ul>"))
        }
        body.append("<footer>pathkernel \(e(r.toolVersion)); analysis took \(e(num(r.seconds, 1))) s. Definitions: Docs/path-kernel.md.</footer>")

        return page(title: "pathkernel report: \(run.name)", body: body)
    }

    /// A self-contained page: the title as `<title>` and `<h1>` (escaped here), the project's
    /// style sheet, the sections of `body` one after another.
    static func page(title: String, body: [String]) -> String {
        let e = SVG.escape
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(e(title))</title>
        <style>\(css)</style>
        </head>
        <body>
        <main>
        <h1>\(e(title))</h1>
        \(body.joined(separator: "\n"))
        </main>
        </body>
        </html>

        """
    }

    // MARK: - Attribution

    static func attribution(_ r: AnalysisResult, data: ReportData) -> String {
        let e = SVG.escape
        let classification = r.run.task != "regression"
        let label = { (y: Double) in num(y, classification ? 0 : 2) }
        let images = data.images
        // One grey range for every thumbnail, so that they compare.
        var lo = Double.infinity, hi = -Double.infinity
        if let images {
            for a in r.attribution {
                let indices = (a.pushedUp ?? []).map(\.trainIndex) + (a.pushedDown ?? []).map(\.trainIndex) + a.top.map(\.trainIndex)
                let pics = [images.gray(split: a.split, index: a.query)] + indices.map { images.gray(split: "train", index: $0) }
                for p in pics.compactMap({ $0 }) { for v in p where v.isFinite { lo = min(lo, v); hi = max(hi, v) } }
            }
        }
        func thumb(_ split: String, _ index: Int, _ caption: String, cls: String) -> String? {
            guard let images, let px = images.gray(split: split, index: index) else { return nil }
            let svg = SVG.grayscaleImage(pixels: px, width: images.width, height: images.height, range: (lo, hi), scale: 3, title: "\(split) #\(index): \(caption)")
            return "<figure class=\"thumb \(cls)\">\(svg)<figcaption>\(e(caption))</figcaption></figure>"
        }
        var html = ""
        if r.attribution.contains(where: { $0.pushedUp != nil }) {
            html += "<p class=\"meaning\">Contributions: what each training example added to f_T(x) − f_0(x), in output units (−N(x, i), Docs/path-kernel.md §4); all examples' sum plus what no example carries is the change.\(images != nil ? " Thumbnails: dark is a high input value; one grey scale for all." : "")</p>"
        }
        for a in r.attribution {
            let outStr = a.output.count == 1 ? num(a.output[0]) : "[\(a.output.prefix(4).map { num($0, 2) }.joined(separator: ", "))\(a.output.count > 4 ? ", …" : "")]"
            html += "<div class=\"query\">"
            guard let up = a.pushedUp, let down = a.pushedDown, let change = a.componentChange, let component = a.component else {
                // Results from before contributions in output units: the shares of the change.
                html += "<h3>\(e(a.split)) #\(a.query): output \(e(outStr))</h3>"
                let thumbs = a.top.compactMap { thumb("train", $0.trainIndex, "#\($0.trainIndex) y=\(label($0.label)) \(pct($0.share))", cls: $0.share >= 0 ? "up" : "down") }
                if let q = thumb(a.split, a.query, "query, output \(outStr)", cls: "q"), thumbs.count == a.top.count {
                    html += "<div class=\"strip\">" + q + thumbs.joined() + "</div>"
                } else {
                    html += table(["training example", "label", "share of f_T − f_0"], a.top.map { ["#\($0.trainIndex)", label($0.label), pct($0.share)] })
                }
                html += "</div>"
                continue
            }
            let componentIndex = Int(component.dropFirst(6)) ?? 0
            let what = component == "output" ? "output \(outStr)" : component == "change direction"
                ? "outputs \(outStr), along f_T − f_0"
                : "\(component) (predicted), output \(componentIndex >= 0 && componentIndex < a.output.count ? num(a.output[componentIndex]) : "–")"
            html += "<h3>\(e(a.split)) #\(a.query): \(e(what)), change \(e(signed(change)))</h3>"
            let listed = up.reduce(0) { $0 + $1.value } + down.reduce(0) { $0 + $1.value }
            let rest = "the other \((a.examples ?? 0) - up.count - down.count) examples \(signed(a.rest)); not from examples \(signed(a.notFromExamples)); listed \(signed(listed))"
            let query = thumb(a.split, a.query, "query: \(what)", cls: "q")
            let upThumbs = up.compactMap { thumb("train", $0.trainIndex, "#\($0.trainIndex) y=\(label($0.label)) \(signed($0.value))", cls: "up") }
            let downThumbs = down.compactMap { thumb("train", $0.trainIndex, "#\($0.trainIndex) y=\(label($0.label)) \(signed($0.value))", cls: "down") }
            if let query, upThumbs.count == up.count, downThumbs.count == down.count {
                html += "<div class=\"strip\">" + query
                if !up.isEmpty { html += "<div class=\"side\"><div class=\"side-label up\">pushed up (sum \(e(signed(up.reduce(0) { $0 + $1.value }))))</div>" + upThumbs.joined() + "</div>" }
                if !down.isEmpty { html += "<div class=\"side\"><div class=\"side-label down\">pushed down (sum \(e(signed(down.reduce(0) { $0 + $1.value }))))</div>" + downThumbs.joined() + "</div>" }
                html += "</div>"
            } else {
                // The two sides next to each other, each with its sum.
                html += "<div class=\"strip\">"
                for (name, side) in [("pushed up", up), ("pushed down", down)] where !side.isEmpty {
                    let sum = side.reduce(0) { $0 + $1.value }
                    html += table(["\(name) (sum \(signed(sum)))", "label", "contribution"],
                                  side.map { ["#\($0.trainIndex)", label($0.label), signed($0.value)] })
                }
                html += "</div>"
            }
            html += "<p class=\"meaning\">\(e(rest)).</p></div>"
        }
        return html
    }

    // MARK: - Pieces

    static func section(_ id: String, _ title: String, _ content: String) -> String {
        "<section id=\"\(id)\"><h2>\(SVG.escape(title))</h2>\n\(content)\n</section>"
    }

    static func figure(_ id: String, _ svg: String, caption: String? = nil) -> String {
        "<figure id=\"\(id)\" class=\"fig\">\(svg)\(caption.map { "<figcaption>\(SVG.escape($0))</figcaption>" } ?? "")</figure>"
    }

    static func tile(_ name: String, _ value: String, _ meaning: String, bad: Bool) -> String {
        "<div class=\"tile\(bad ? " bad" : "")\"><div class=\"tile-name\">\(SVG.escape(name))</div><div class=\"tile-value\">\(SVG.escape(value))</div><div class=\"tile-meaning\">\(SVG.escape(meaning))</div></div>"
    }

    /// A table; columns not in `textColumns` (default: the first) are numbers, right-aligned.
    /// `wideLast`: the last column is prose (kept readable instead of squeezed).
    static func table(_ header: [String], _ rows: [[String]], textColumns: Set<Int> = [0], wideLast: Bool = false) -> String {
        func cls(_ i: Int) -> String { wideLast && i == header.count - 1 ? " class=\"prose\"" : textColumns.contains(i) ? "" : " class=\"n\"" }
        var out = "<div class=\"tablewrap\"><table><thead><tr>" + header.enumerated().map { "<th\(cls($0.offset))>\(SVG.escape($0.element))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { out += "<tr>" + row.enumerated().map { "<td\(cls($0.offset))>\(SVG.escape($0.element))</td>" }.joined() + "</tr>" }
        return out + "</tbody></table></div>"
    }

    static let css = """
    body{margin:0;background:#fff;color:#1d1d1f;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
    main{max-width:1000px;margin:0 auto;padding:16px 24px 40px}
    h1{font-size:24px;margin:8px 0 16px}h2{font-size:19px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #ddd}
    h3{font-size:15px;margin:18px 0 6px}
    dl.card{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
    dl.card dt{color:#666}dl.card dd{margin:0}
    .warn{background:#fde8e6;border:1px solid #c0392b;color:#7b1d12;padding:8px 12px;font-weight:600}
    .tiles{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 12px}
    .tile{flex:1 1 280px;border:1px solid #cfd8e3;border-radius:6px;padding:10px 14px;background:#f6f9fc}
    .tile.bad{border-color:#c0392b;background:#fdf0ee}
    .tile-name{color:#555;font-size:13px;text-transform:uppercase;letter-spacing:.04em}
    .tile-value{font-size:28px;font-weight:600;font-variant-numeric:tabular-nums}
    .tile-meaning{font-size:13px;color:#333}
    table{border-collapse:collapse;margin:8px 0;font-size:14px}
    th,td{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
    th{border-bottom:2px solid #bbb;font-weight:600}
    td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
    figure{margin:8px 0}figure.fig svg{max-width:100%;height:auto}.grid figure.fig svg{width:100%}
    td.prose{min-width:14em;font-size:13px;color:#444}.tablewrap{overflow-x:auto}
    figcaption{font-size:13px;color:#555}
    .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:4px 16px}
    .meaning{font-size:13px;color:#444}
    pre.block{font-size:13px;line-height:1.4;overflow-x:auto;margin:8px 0}
    .strip{display:flex;flex-wrap:wrap;align-items:flex-start;gap:10px}
    .side{display:flex;flex-wrap:wrap;gap:6px;padding:6px;border-radius:6px}
    .side-label{flex-basis:100%;font-size:12px;font-weight:600}
    .side-label.up{color:#1f6fb4}.side-label.down{color:#b23a12}
    figure.thumb{margin:0;text-align:center;width:92px}
    figure.thumb svg{border:1px solid #ccc;display:block;margin:0 auto}
    figure.thumb.q svg{border:2px solid #222}
    figure.thumb.up figcaption{color:#1f6fb4}figure.thumb.down figcaption{color:#b23a12}
    figure.thumb figcaption{font-size:11px;line-height:1.2;font-variant-numeric:tabular-nums}
    circle.hit:hover{fill-opacity:1}
    footer{margin-top:32px;font-size:12px;color:#777}
    @media print{main{max-width:none;padding:0}section{break-inside:avoid-page}.grid{grid-template-columns:1fr 1fr}figure,table,.query{break-inside:avoid}.tablewrap{overflow:visible}}
    """
}
