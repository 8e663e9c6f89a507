import Foundation
import PKAnalysis

/// `pathkernel sweep`'s output (Docs/ntk-family.md, "The width sweep"): pure functions of a
/// `WidthSweep`, like the analysis reports.
extension Report {
    /// Widths per block of the table: label 14 + 5 × 11 + slope 9 = 78 columns.
    static let sweepWidthsPerBlock = 5

    /// The text: what was swept, then the table of seed means (a `±` line under each row with the
    /// relative standard deviation over the seeds) and the log–log slopes, then the notes; every
    /// line within 80 columns (wider sweeps are split into blocks of `sweepWidthsPerBlock` widths,
    /// the slopes in the last).
    public static func sweepText(_ s: WidthSweep) -> String {
        var out: [String] = []
        out.append("sweep      \(s.config): \(s.model), \(s.parameterization)")
        out.append("training   \(s.optimizer), \(s.steps) steps, loss \(s.loss)")
        out.append("data       \(s.data): \(s.train) training, \(s.heldOut) held out (the same for every run)")
        let seeds = s.seeds.count == 1 ? "seed \(s.seeds[0])" : "seeds \(s.seeds.first!)…\(s.seeds.last!)"
        out.append("traces     \(s.directory)/m<m>-seed<s>.sqlite")
        out.append("           (pathkernel analyze on a trace: its full analysis)")
        out.append("runs       \(s.widths.count) widths × \(s.seeds.count) seed\(s.seeds.count == 1 ? "" : "s") (\(seeds)), \(ProgressBarFree.duration(s.seconds))")
        out.append("")
        out.append(s.seeds.count > 1 ? "Seed means (± standard deviation over the seeds, relative to the mean) and"
                                     : "Values (one seed) and")
        out.append("slopes of ln(mean) against ln(m), least squares over the widths")
        out.append(String(repeating: "─", count: 73))
        let blocks = stride(from: 0, to: s.widths.count, by: sweepWidthsPerBlock).map { $0..<min($0 + sweepWidthsPerBlock, s.widths.count) }
        for (b, block) in blocks.enumerated() {
            let last = b == blocks.count - 1
            if b > 0 { out.append("") }
            var header = "quantity".sweepPadded(right: 14)
            for (k, i) in block.enumerated() { header += ((k == 0 ? "m = " : "") + "\(s.widths[i])").sweepPadded(left: 11) }
            if last { header += "slope".sweepPadded(left: 9) }
            out.append(header)
            for q in s.quantities {
                var line = q.label.sweepPadded(right: 14)
                for i in block { line += g3(q.means[i]).sweepPadded(left: 11) }
                if last { line += (q.scaling ? slope(q.slope) : "").sweepPadded(left: 9) }
                out.append(line)
                if s.seeds.count > 1 {
                    var spread = String(repeating: " ", count: 14)
                    for i in block { spread += relativeSpread(q.means[i], q.stds[i]).sweepPadded(left: 11) }
                    out.append(spread)
                }
            }
        }
        out.append("")
        out.append("τ_l = ‖W_l,T − W_l,0‖/‖W_l,0‖ (layer l's weights); flips: share of (example,")
        out.append("unit) pairs whose pre-activation sign changed; λ̂₀ = λ_min(Θ̂ at w_0), λ of the")
        out.append("analytic Θ. The theory under ntk: τ of the first and last layers ∝ m^−1/2,")
        out.append("hidden-to-hidden ∝ m^−1, flips ∝ m^−1/2, kernel change → 0 (Docs/ntk-family.md).")
        if !s.notes.isEmpty {
            out.append("")
            for n in s.notes { out.append(contentsOf: wrap("note: " + n, width: 78)) }
        }
        return out.map { String($0.reversed().drop { $0 == " " }.reversed()) }.joined(separator: "\n") + "\n"
    }

    /// The JSON form: the `WidthSweep` with camelCase keys, sorted; non-finite numbers (none are
    /// stored: absent figures are null) as strings.
    public static func sweepJSON(_ s: WidthSweep) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? enc.encode(s)) ?? Data(), as: UTF8.self) + "\n"
    }

    /// A slope with two decimals, the minus sign as U+2212; "–" when there is none.
    static func slope(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "–" }
        return String(format: "%+.2f", x).replacingOccurrences(of: "-", with: "−")
    }

    /// `±12%` (std relative to |mean|), `±0` for no spread; the absolute std when the mean is 0.
    static func relativeSpread(_ mean: Double?, _ std: Double?) -> String {
        guard let mean, let std, mean.isFinite, std.isFinite else { return "" }
        if std == 0 { return "±0" }
        guard mean != 0 else { return "±" + g3(std) }
        let p = 100 * std / abs(mean)
        return p < 1 ? String(format: "±%.1f%%", p) : String(format: "±%.0f%%", p)
    }
}

extension String {
    /// Padded with spaces to `n` characters on the right (`right:`) or the left (`left:`).
    func sweepPadded(right n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
    func sweepPadded(left n: Int) -> String { count >= n ? " " + self : String(repeating: " ", count: n - count) + self }
}

/// Durations without PKTraining's progress bar (PKReport depends on PKAnalysis alone).
enum ProgressBarFree {
    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "–" }
        if s < 60 { return String(format: "%.1f s", s) }
        let m = Int(s / 60), r = Int(s) % 60
        return m < 60 ? "\(m) min \(r) s" : "\(m / 60) h \(m % 60) min"
    }
}
