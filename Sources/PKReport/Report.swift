import Foundation
import PKAnalysis

/// Reports are pure functions of an `AnalysisResult` (and, for HTML, the `ReportData` read from
/// the trace): the same inputs give the same bytes.
/// `html` is one self-contained page (`html(_:data:)`); `render` gives it without the trace's data.
public enum ReportFormat: String, CaseIterable, Sendable { case text, markdown, json, html }

public enum Report {
    public static func render(_ r: AnalysisResult, format: ReportFormat) -> String {
        switch format {
        case .json: return json(r)
        case .text: return text(r, markdown: false)
        case .markdown: return text(r, markdown: true)
        case .html: return html(r)
        }
    }

    /// The JSON form: the analysis result with snake_case keys; non-finite numbers become null.
    public static func json(_ r: AnalysisResult) -> String {
        AnalysisStore.encode(r, pretty: true) + "\n"
    }

    // MARK: Number formatting

    static func sci(_ x: Double?) -> String {
        guard let x else { return "–" }
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        if x == 0 { return "0" }
        return String(format: "%.1e", x)
    }

    static func pct(_ x: Double?) -> String {
        guard let x else { return "–" }
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        let p = 100 * x, a = abs(p)
        if a == 0 { return "0%" }
        if a < 0.01 { return String(format: "%.0e%%", p) }
        if a < 10 { return String(format: "%.2f%%", p) }
        if a < 1000 { return String(format: "%.1f%%", p) }
        return String(format: "%.0f%%", p)
    }

    /// A signed number with 3 significant digits (`+0.412`, `−2.36`, `+1.2e-05`), the minus sign
    /// written as U+2212.
    static func signed(_ x: Double?) -> String {
        guard let x else { return "–" }
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "+inf" : "−inf") }
        if x == 0 { return "0" }
        return String(format: "%+.3g", x).replacingOccurrences(of: "-", with: "−").replacingOccurrences(of: "e−", with: "e-")
    }

    static func num(_ x: Double?, _ digits: Int = 3) -> String {
        guard let x else { return "–" }
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        return String(format: "%.\(digits)f", x)
    }

    /// A sparkline of `values` scaled to their own range, with the range printed.
    static func sparkline(_ values: [Double], width: Int = 40) -> String {
        let bars = Array("▁▂▃▄▅▆▇█")
        let v = values.filter { $0.isFinite }
        guard let lo = v.min(), let hi = v.max(), !values.isEmpty else { return "" }
        // Resample to `width` points.
        let m = min(width, values.count)
        let sampled = (0..<m).map { values[$0 * values.count / m] }
        return String(sampled.map { x -> Character in
            guard x.isFinite else { return " " }
            let f = hi > lo ? (x - lo) / (hi - lo) : 0
            return bars[min(bars.count - 1, Int(f * Double(bars.count - 1) + 0.5))]
        })
    }
}
