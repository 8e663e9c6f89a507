import Foundation

/// Inline SVG figures for the HTML report: small pure functions of their inputs (the same input
/// gives the same bytes; coordinates are printed with one decimal).
///
/// Every generator takes any numbers: NaN and ±infinity are left out of the drawing (a line breaks
/// there), as are values ≤ 0 on a log axis; an empty or all-left-out input draws the frame with
/// "no finite values"; a constant series gets a padded range. Nothing here traps.
///
/// Hover values need no script: each drawn point or bar carries an SVG `<title>`, which browsers
/// show as a tooltip. Colours are attributes (a figure reads the same outside the report's CSS).
public enum SVG {
    /// One line of a chart: points (x, y) in drawing order.
    public struct Series: Sendable, Equatable {
        public var name: String
        public var points: [Point]
        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
        public init(name: String, x: [Double], y: [Double]) {
            self.name = name
            self.points = zip(x, y).map { Point(x: $0, y: $1) }
        }
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) { self.x = x; self.y = y }
    }

    /// The series colours, in order (a colour-blind-safe set).
    static let palette = ["#1f6fb4", "#d2561d", "#2a9d5c", "#8a4fb8", "#b8860b"]

    /// Drawing size and margins of the charts.
    struct Frame {
        var width = 480.0, height = 210.0
        var left = 60.0, right = 12.0, top = 28.0, bottom = 38.0
        var plotWidth: Double { width - left - right }
        var plotHeight: Double { height - top - bottom }
    }

    // MARK: - Line chart

    /// A line chart of `series` against a shared x axis. `xDomain` fixes the x range (charts that
    /// share a step axis pass the same one); `logY` draws y on a log scale (values ≤ 0 left out).
    /// `format` writes the values in tooltips, `tickFormat` on the y ticks.
    public static func lineChart(title: String, series: [Series], xLabel: String, yLabel: String,
                                 xDomain: (Double, Double)? = nil, logY: Bool = false,
                                 format: (Double) -> String = { tickLabel($0) },
                                 tickFormat: (Double) -> String = { tickLabel($0) }) -> String {
        var f = Frame()
        if series.count > 1 { f.top += 14 }
        let kept = series.map { s in s.points.filter { $0.x.isFinite && usable($0.y, log: logY) } }
        let xs = kept.flatMap { $0.map(\.x) }, ys = kept.flatMap { $0.map(\.y) }
        var out = open(f, title: title)
        guard let xr = xDomain.flatMap({ $0.0.isFinite && $0.1.isFinite ? padded($0.0, $0.1, log: false) : nil }) ?? range(xs, log: false),
              let yr = range(ys, log: logY) else {
            out += empty(f)
            return out + axisLabels(f, x: xLabel, y: yLabel) + "</svg>"
        }
        let sx = Scale(lo: xr.0, hi: xr.1, from: f.left, to: f.left + f.plotWidth, log: false)
        let sy = Scale(lo: yr.0, hi: yr.1, from: f.top + f.plotHeight, to: f.top, log: logY)
        out += axes(f, sx: sx, sy: sy, xFormat: { tickLabel($0) }, yFormat: tickFormat)
        for (k, s) in series.enumerated() {
            let color = palette[k % palette.count]
            // Break the line at points that cannot be drawn.
            var runs: [[Point]] = [[]]
            for p in s.points {
                if p.x.isFinite && usable(p.y, log: logY) { runs[runs.count - 1].append(p) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs.map({ thinned($0) }) where !run.isEmpty {
                if run.count == 1 {
                    out += "<circle cx=\"\(c(sx(run[0].x)))\" cy=\"\(c(sy(run[0].y)))\" r=\"2\" fill=\"\(color)\"/>"
                } else {
                    let pts = run.map { "\(c(sx($0.x))),\(c(sy($0.y)))" }.joined(separator: " ")
                    out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts)\"/>"
                }
            }
            // Hover targets: at most 120 points per series.
            let drawable = s.points.filter { $0.x.isFinite && usable($0.y, log: logY) }
            let stride = max(1, (drawable.count + 119) / 120)
            for (i, p) in drawable.enumerated() where i % stride == 0 || i == drawable.count - 1 {
                out += "<circle class=\"hit\" cx=\"\(c(sx(p.x)))\" cy=\"\(c(sy(p.y)))\" r=\"4\" fill=\"\(color)\" fill-opacity=\"0\"><title>\(escape(s.name)) at \(escape(xLabel)) \(tickLabel(p.x)): \(escape(format(p.y)))</title></circle>"
            }
        }
        out += legend(f, names: series.count > 1 ? series.map(\.name) : [])
        return out + axisLabels(f, x: xLabel, y: yLabel) + "</svg>"
    }

    // MARK: - Band chart

    /// A curve with a band around it: `mean[i] ± spread[i]` at `x[i]` (the bandit's cumulative
    /// regret, mean ± std over runs).
    public struct Band: Sendable, Equatable {
        public var name: String
        public var x: [Double]
        public var mean: [Double]
        public var spread: [Double]
        public init(name: String, x: [Double], mean: [Double], spread: [Double]) {
            self.name = name; self.x = x; self.mean = mean; self.spread = spread
        }
    }

    /// Line charts of each band's mean over a translucent band `mean ± spread` (same colour), on a
    /// linear y axis that holds every band. A point whose mean or spread is not finite (or whose
    /// spread is negative) is left out and breaks the band and the line; at most `maxPoints`
    /// evenly spaced points (and the last) of a band are drawn.
    public static func bandChart(title: String, bands: [Band], xLabel: String, yLabel: String,
                                 format: (Double) -> String = { tickLabel($0) }, maxPoints: Int = 400) -> String {
        var f = Frame()
        if bands.count > 1 { f.top += 14 }
        func drawable(_ b: Band) -> [(x: Double, mean: Double, spread: Double)?] {
            let n = min(b.x.count, b.mean.count, b.spread.count)
            let stride = max(1, (n + maxPoints - 1) / max(1, maxPoints))
            return (0..<n).filter { $0 % stride == 0 || $0 == n - 1 }.map { i in
                let (x, m, s) = (b.x[i], b.mean[i], b.spread[i])
                return x.isFinite && m.isFinite && s.isFinite && s >= 0 && (m - s).isFinite && (m + s).isFinite ? (x, m, s) : nil
            }
        }
        let points = bands.map(drawable)
        let kept = points.flatMap { $0.compactMap { $0 } }
        var out = open(f, title: title)
        guard let xr = range(kept.map(\.x), log: false), let yr = range(kept.flatMap { [$0.mean - $0.spread, $0.mean + $0.spread] }, log: false) else {
            out += empty(f)
            return out + axisLabels(f, x: xLabel, y: yLabel) + "</svg>"
        }
        let sx = Scale(lo: xr.0, hi: xr.1, from: f.left, to: f.left + f.plotWidth, log: false)
        let sy = Scale(lo: yr.0, hi: yr.1, from: f.top + f.plotHeight, to: f.top, log: false)
        out += axes(f, sx: sx, sy: sy, xFormat: { tickLabel($0) }, yFormat: { tickLabel($0) })
        for (k, band) in bands.enumerated() {
            let color = palette[k % palette.count]
            var runs: [[(x: Double, mean: Double, spread: Double)]] = [[]]
            for p in points[k] {
                if let p { runs[runs.count - 1].append(p) } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs where !run.isEmpty {
                if run.count == 1 {
                    out += "<circle cx=\"\(c(sx(run[0].x)))\" cy=\"\(c(sy(run[0].mean)))\" r=\"2\" fill=\"\(color)\"/>"
                    continue
                }
                let upper = run.map { "\(c(sx($0.x))),\(c(sy($0.mean + $0.spread)))" }
                let lower = run.reversed().map { "\(c(sx($0.x))),\(c(sy($0.mean - $0.spread)))" }
                out += "<polygon class=\"band\" fill=\"\(color)\" fill-opacity=\"0.18\" stroke=\"none\" points=\"\((upper + lower).joined(separator: " "))\"/>"
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(run.map { "\(c(sx($0.x))),\(c(sy($0.mean)))" }.joined(separator: " "))\"/>"
            }
            // Hover targets: at most 60 points per band.
            let all = points[k].compactMap { $0 }
            let stride = max(1, (all.count + 59) / 60)
            for (i, p) in all.enumerated() where i % stride == 0 || i == all.count - 1 {
                out += "<circle class=\"hit\" cx=\"\(c(sx(p.x)))\" cy=\"\(c(sy(p.mean)))\" r=\"4\" fill=\"\(color)\" fill-opacity=\"0\"><title>\(escape(band.name)) at \(escape(xLabel)) \(tickLabel(p.x)): \(escape(format(p.mean))) ± \(escape(format(p.spread)))</title></circle>"
            }
        }
        out += legend(f, names: bands.count > 1 ? bands.map(\.name) : [])
        return out + axisLabels(f, x: xLabel, y: yLabel) + "</svg>"
    }

    // MARK: - Log bar chart

    /// Grouped bars on a log y axis: one group per label, one bar per series name in each (`nil`:
    /// no bar; a group of nils says "not measured"). Zero, negative and non-finite values get no bar but a mark and their value.
    /// `format` writes the values in tooltips and under the marks, `tickFormat` on the y ticks.
    public static func logBarChart(title: String, groups: [(label: String, values: [Double?])], seriesNames: [String],
                                   yLabel: String, format: (Double) -> String = { tickLabel($0) },
                                   tickFormat: (Double) -> String = { tickLabel($0) }) -> String {
        var f = Frame()
        f.width = 720
        f.bottom = 72
        f.height = 270
        if !seriesNames.isEmpty { f.top += 14 }
        let ys = groups.flatMap { $0.values.compactMap { $0 } }.filter { usable($0, log: true) }
        var out = open(f, title: title)
        guard !groups.isEmpty, let fit = range(ys, log: true) else {
            out += empty(f)
            return out + axisLabels(f, x: "", y: yLabel) + "</svg>"
        }
        // Bars start below the smallest value (half a decade or more, on a power of ten), so that
        // it gets a visible bar too.
        let bottom = pow(10, floor(log10(fit.0) - 0.5))
        let yr = (bottom.isFinite && bottom > 0 && bottom < fit.0 ? bottom : fit.0, fit.1)
        let sy = Scale(lo: yr.0, hi: yr.1, from: f.top + f.plotHeight, to: f.top, log: true)
        out += yAxis(f, sy: sy, format: tickFormat)
        let groupWidth = f.plotWidth / Double(groups.count)
        let nSeries = max(1, seriesNames.count)
        let barWidth = min(28, groupWidth * 0.8 / Double(nSeries))
        let base = f.top + f.plotHeight
        for (g, group) in groups.enumerated() {
            let center = f.left + (Double(g) + 0.5) * groupWidth
            let x0 = center - barWidth * Double(nSeries) / 2
            for (k, value) in group.values.prefix(nSeries).enumerated() {
                guard let v = value else { continue }
                let x = x0 + Double(k) * barWidth
                let name = k < seriesNames.count ? seriesNames[k] : ""
                let tip = "<title>\(escape(group.label)) \(escape(name)): \(escape(format(v)))</title>"
                if usable(v, log: true) {
                    let y = sy(v)
                    out += "<rect x=\"\(c(x + 1))\" y=\"\(c(y))\" width=\"\(c(barWidth - 2))\" height=\"\(c(max(0, base - y)))\" fill=\"\(palette[k % palette.count])\">\(tip)</rect>"
                } else {
                    // Not drawable on a log axis: a hollow mark at the bottom with the value.
                    out += "<rect x=\"\(c(x + 1))\" y=\"\(c(base - 3))\" width=\"\(c(barWidth - 2))\" height=\"3\" fill=\"none\" stroke=\"\(palette[k % palette.count])\">\(tip)</rect>"
                    out += "<text x=\"\(c(x + barWidth / 2))\" y=\"\(c(base - 6))\" font-size=\"9\" text-anchor=\"middle\" fill=\"#555\">\(escape(format(v)))</text>"
                }
            }
            if group.values.allSatisfy({ $0 == nil }) {
                out += "<text x=\"\(c(center))\" y=\"\(c(base - 6))\" font-size=\"9\" text-anchor=\"middle\" fill=\"#555\">not measured</text>"
            }
            out += "<text x=\"\(c(center))\" y=\"\(c(base + 14))\" font-size=\"11\" text-anchor=\"end\" transform=\"rotate(-30 \(c(center)) \(c(base + 14)))\" fill=\"#222\">\(escape(group.label))</text>"
        }
        out += "<line x1=\"\(c(f.left))\" y1=\"\(c(base))\" x2=\"\(c(f.left + f.plotWidth))\" y2=\"\(c(base))\" stroke=\"#444\"/>"
        out += legend(f, names: seriesNames)
        return out + axisLabels(f, x: "", y: yLabel) + "</svg>"
    }

    // MARK: - Log-log plot

    /// Points of `series` on log x and log y axes, joined by lines (values ≤ 0 left out); for
    /// spectra, x is the eigenvalue's rank 1, 2, ….
    public static func logLogPlot(title: String, series: [Series], xLabel: String, yLabel: String,
                                  format: (Double) -> String = { tickLabel($0) }) -> String {
        // Ticks are powers of ten: `tickLabel` writes them; `format` the tooltips.
        var f = Frame()
        if series.count > 1 { f.top += 14 }
        let kept = series.map { $0.points.filter { usable($0.x, log: true) && usable($0.y, log: true) } }
        var out = open(f, title: title)
        guard let xr = range(kept.flatMap { $0.map(\.x) }, log: true), let yr = range(kept.flatMap { $0.map(\.y) }, log: true) else {
            out += empty(f)
            return out + axisLabels(f, x: xLabel, y: yLabel) + "</svg>"
        }
        let sx = Scale(lo: xr.0, hi: xr.1, from: f.left, to: f.left + f.plotWidth, log: true)
        let sy = Scale(lo: yr.0, hi: yr.1, from: f.top + f.plotHeight, to: f.top, log: true)
        out += axes(f, sx: sx, sy: sy, xFormat: { tickLabel($0) }, yFormat: { tickLabel($0) })
        for (k, pts) in kept.enumerated() where !pts.isEmpty {
            let color = palette[k % palette.count]
            if pts.count > 1 {
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts.map { "\(c(sx($0.x))),\(c(sy($0.y)))" }.joined(separator: " "))\"/>"
            }
            let stride = max(1, (pts.count + 119) / 120)
            for (i, p) in pts.enumerated() where i % stride == 0 || i == pts.count - 1 {
                out += "<circle cx=\"\(c(sx(p.x)))\" cy=\"\(c(sy(p.y)))\" r=\"2\" fill=\"\(color)\"><title>\(escape(series[k].name)) \(tickLabel(p.x)): \(escape(format(p.y)))</title></circle>"
            }
        }
        out += legend(f, names: series.count > 1 ? series.map(\.name) : [])
        return out + axisLabels(f, x: xLabel, y: yLabel) + "</svg>"
    }

    // MARK: - Grayscale image

    /// An image of `height × width` pixels (row-major, `pixels.count` must be `height·width`, each
    /// side at most 4096; otherwise a crossed-out box) as rectangles, `scale` screen pixels per image pixel. Values map
    /// linearly from `range.lo` (white) to `range.hi` (black), clamped; non-finite pixels are white.
    /// Runs of equal grey in a row are one rectangle.
    public static func grayscaleImage(pixels: [Double], width: Int, height: Int, range: (lo: Double, hi: Double),
                                      scale: Int = 3, title: String) -> String {
        // Sizes clamped to what a page can show (no overflow on any input).
        let w = min(max(1, width), 4096), h = min(max(1, height), 4096), s = min(max(1, scale), 64)
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"thumb\" viewBox=\"0 0 \(w) \(h)\" width=\"\(w * s)\" height=\"\(h * s)\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
        out += "<rect width=\"\(w)\" height=\"\(h)\" fill=\"#fff\"/>"
        guard width == w, height == h, pixels.count == w * h else {
            return out + "<path d=\"M0 0L\(w) \(h)M\(w) 0L0 \(h)\" stroke=\"#c00\" stroke-width=\"\(c(Double(max(w, h)) / 40))\"/></svg>"
        }
        let span = range.hi - range.lo
        func level(_ v: Double) -> Int {
            guard v.isFinite, span.isFinite, span > 0 else { return 255 }
            let t = min(1, max(0, (v - range.lo) / span))
            return 255 - Int((t * 255).rounded())
        }
        for y in 0..<height {
            var x = 0
            while x < width {
                let g = level(pixels[y * width + x])
                var end = x + 1
                while end < width && level(pixels[y * width + end]) == g { end += 1 }
                if g != 255 {
                    let hex = String(format: "%02x", g)
                    out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(end - x)\" height=\"1\" fill=\"#\(hex)\(hex)\(hex)\"/>"
                }
                x = end
            }
        }
        return out + "</svg>"
    }

    // MARK: - Ticks and labels

    /// A compact tick label: `0`, `0.25`, `120`, `1e-05`, `3e+06`.
    public static func tickLabel(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        if x == 0 { return "0" }
        let a = abs(x)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.0e", x) }
        if x == x.rounded() { return String(format: "%.0f", x) }
        return String(format: "%.4g", x)
    }

    /// About `count` round linear ticks covering [lo, hi] (1, 2 or 5 times a power of ten apart).
    static func linearTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return lo.isFinite ? [lo] : [] }
        let raw = (hi - lo) / Double(max(1, count))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        guard step.isFinite, step > 0 else { return [lo, hi] }
        var ticks: [Double] = []
        var k = ceil(lo / step - 1e-9)
        while k * step <= hi + step * 1e-9 && ticks.count < 50 {
            let t = k * step
            ticks.append(abs(t) < step * 1e-9 ? 0 : t)
            k += 1
        }
        return ticks
    }

    /// Powers of ten in [lo, hi] (every second or more when there are many); 1, 2 and 5 times
    /// powers of ten when the range holds fewer than two powers; the two ends when it holds fewer
    /// than two of those.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        guard lo > 0, hi >= lo, lo.isFinite, hi.isFinite else { return [] }
        let a = Int(ceil(log10(lo) - 1e-9)), b = Int(floor(log10(hi) + 1e-9))
        if b - a < 1 {
            let k0 = Int(floor(log10(lo))), k1 = Int(ceil(log10(hi)))
            var fine: [Double] = []
            for k in k0...max(k0, k1) {
                let power: Double = pow(10, Double(k))
                for m: Double in [1, 2, 5] {
                    let t = m * power
                    if t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9) { fine.append(t) }
                }
            }
            return fine.count >= 2 ? fine : [lo, hi]
        }
        let every = max(1, (b - a + 7) / 8)
        return stride(from: a, through: b, by: every).map { pow(10, Double($0)) }
    }

    /// `s` with `&`, `<`, `>`, `"` and `'` escaped (text and attribute values).
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab and newline are not allowed in HTML text.
                if ch.value < 0x20 && ch != "\t" && ch != "\n" { out += "\u{FFFD}" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }

    /// At most about `2·buckets` points of a long line: in each of `buckets` consecutive slices,
    /// its lowest and its highest point in their order, so that spikes stay drawn (a 100 000-step
    /// loss draws as 1 600 points).
    static func thinned(_ points: [Point], buckets: Int = 800) -> [Point] {
        guard points.count > 2 * buckets, buckets > 0 else { return points }
        var out: [Point] = []
        out.reserveCapacity(2 * buckets)
        for b in 0..<buckets {
            let lo = b * points.count / buckets, hi = (b + 1) * points.count / buckets
            guard lo < hi else { continue }
            var iMin = lo, iMax = lo
            for i in lo..<hi {
                if points[i].y < points[iMin].y { iMin = i }
                if points[i].y > points[iMax].y { iMax = i }
            }
            out.append(points[min(iMin, iMax)])
            if iMin != iMax { out.append(points[max(iMin, iMax)]) }
        }
        return out
    }

    // MARK: - Pieces

    struct Scale {
        var lo: Double, hi: Double, from: Double, to: Double, log: Bool
        func callAsFunction(_ v: Double) -> Double {
            let (a, b, x) = log ? (log10(lo), log10(hi), log10(v)) : (lo, hi, v)
            guard b > a else { return (from + to) / 2 }
            return from + (x - a) / (b - a) * (to - from)
        }
    }

    static func usable(_ v: Double, log: Bool) -> Bool { v.isFinite && (!log || v > 0) }

    /// The range of `values` (nil when empty), padded when constant.
    static func range(_ values: [Double], log: Bool) -> (Double, Double)? {
        guard let lo = values.min(), let hi = values.max() else { return nil }
        return padded(lo, hi, log: log)
    }

    static func padded(_ lo: Double, _ hi: Double, log: Bool) -> (Double, Double)? {
        guard lo.isFinite, hi.isFinite, lo <= hi else { return nil }
        if log {
            guard lo > 0 else { return nil }
            return hi > lo ? (lo, hi) : (lo / pow(10, 0.5), hi * pow(10, 0.5))
        }
        if hi > lo { return (lo, hi) }
        let pad = lo == 0 ? 1 : abs(lo) * 0.05
        return (lo - pad, hi + pad)
    }

    /// A coordinate with one decimal.
    static func c(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let s = String(format: "%.1f", v)
        return s == "-0.0" ? "0.0" : s
    }

    static func open(_ f: Frame, title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 \(c(f.width)) \(c(f.height))\" width=\"\(c(f.width))\" height=\"\(c(f.height))\" font-family=\"sans-serif\" role=\"img\" aria-label=\"\(escape(title))\">"
            + "<title>\(escape(title))</title>"
            + "<text x=\"\(c(f.left))\" y=\"16\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">\(escape(title))</text>"
    }

    static func empty(_ f: Frame) -> String {
        "<rect x=\"\(c(f.left))\" y=\"\(c(f.top))\" width=\"\(c(f.plotWidth))\" height=\"\(c(f.plotHeight))\" fill=\"none\" stroke=\"#bbb\"/>"
            + "<text x=\"\(c(f.left + f.plotWidth / 2))\" y=\"\(c(f.top + f.plotHeight / 2))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#777\">no finite values</text>"
    }

    static func axes(_ f: Frame, sx: Scale, sy: Scale, xFormat: (Double) -> String, yFormat: (Double) -> String) -> String {
        var out = yAxis(f, sy: sy, format: yFormat)
        let base = f.top + f.plotHeight
        let ticks = sx.log ? logTicks(sx.lo, sx.hi) : linearTicks(sx.lo, sx.hi, count: 6)
        for t in ticks {
            let x = sx(t)
            out += "<line x1=\"\(c(x))\" y1=\"\(c(base))\" x2=\"\(c(x))\" y2=\"\(c(base + 4))\" stroke=\"#444\"/>"
            out += "<text x=\"\(c(x))\" y=\"\(c(base + 15))\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444\">\(escape(xFormat(t)))</text>"
        }
        out += "<line x1=\"\(c(f.left))\" y1=\"\(c(base))\" x2=\"\(c(f.left + f.plotWidth))\" y2=\"\(c(base))\" stroke=\"#444\"/>"
        return out
    }

    /// The y axis with ticks, labels and light grid lines.
    static func yAxis(_ f: Frame, sy: Scale, format: (Double) -> String) -> String {
        var out = ""
        let ticks = sy.log ? logTicks(sy.lo, sy.hi) : linearTicks(sy.lo, sy.hi, count: 4)
        for t in ticks {
            let y = sy(t)
            out += "<line x1=\"\(c(f.left))\" y1=\"\(c(y))\" x2=\"\(c(f.left + f.plotWidth))\" y2=\"\(c(y))\" stroke=\"#e4e4e4\"/>"
            out += "<line x1=\"\(c(f.left - 4))\" y1=\"\(c(y))\" x2=\"\(c(f.left))\" y2=\"\(c(y))\" stroke=\"#444\"/>"
            out += "<text x=\"\(c(f.left - 6))\" y=\"\(c(y + 3.5))\" font-size=\"10\" text-anchor=\"end\" fill=\"#444\">\(escape(format(t)))</text>"
        }
        out += "<line x1=\"\(c(f.left))\" y1=\"\(c(f.top))\" x2=\"\(c(f.left))\" y2=\"\(c(f.top + f.plotHeight))\" stroke=\"#444\"/>"
        return out
    }

    static func axisLabels(_ f: Frame, x: String, y: String) -> String {
        var out = ""
        if !x.isEmpty {
            out += "<text x=\"\(c(f.left + f.plotWidth / 2))\" y=\"\(c(f.height - 6))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#222\">\(escape(x))</text>"
        }
        if !y.isEmpty {
            out += "<text x=\"12\" y=\"\(c(f.top + f.plotHeight / 2))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#222\" transform=\"rotate(-90 12 \(c(f.top + f.plotHeight / 2)))\">\(escape(y))</text>"
        }
        return out
    }

    /// Colour keys in a row under the title (the frame's `top` leaves room when there are any).
    static func legend(_ f: Frame, names: [String]) -> String {
        var out = ""
        var x = f.left
        for (k, name) in names.enumerated() {
            out += "<rect x=\"\(c(x))\" y=\"24\" width=\"10\" height=\"10\" fill=\"\(palette[k % palette.count])\"/>"
            out += "<text x=\"\(c(x + 14))\" y=\"33\" font-size=\"11\" fill=\"#222\">\(escape(name))</text>"
            x += Double(name.count) * 6.5 + 26
        }
        return out
    }
}
