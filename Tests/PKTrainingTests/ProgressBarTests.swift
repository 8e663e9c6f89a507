import Foundation
import Testing
@testable import PKTraining

/// The bar's ETA: the current phase's own rate, once measured.
@Suite("Progress bar ETA")
struct ProgressBarTests {
    /// A run of two phases whose true rates differ by 4× (a cost model off by that much): a cheap
    /// first phase (5% of the units) then a slow one. After the first 10% of the work every ETA
    /// must be within ±30% of the true time left (the trust issue's bound).
    @Test func etaFollowsTheCurrentPhasesRate() {
        var now = Date(timeIntervalSince1970: 0)
        var lines: [String] = []
        let bar = ProgressBar(total: 1000, interactive: false, counts: false, output: { lines.append($0) }, clock: { now })
        // Phase 0: 50 units at 20 units/s; phase 1: 950 units at 5 units/s.
        var done = 0
        func advance(_ units: Int, rate: Double, phase: Int) -> [(eta: Double, truth: Double)] {
            var out: [(Double, Double)] = []
            for _ in 0..<units {
                now += 1 / rate
                done += 1
                bar.update(done, "x", phase: phase)
                let truth = Double(1000 - done) / 5
                out.append((bar.eta(done: done, now: now), truth))
            }
            return out
        }
        _ = advance(50, rate: 20, phase: 0)
        let second = advance(950, rate: 5, phase: 1)
        for (i, p) in second.enumerated() where done > 0 && 50 + i + 1 >= 100 && p.truth > 0 {
            #expect(abs(p.eta - p.truth) <= 0.3 * p.truth, "at \(50 + i + 1)/1000: ETA \(p.eta) s, truth \(p.truth) s")
        }
        #expect(!lines.isEmpty && lines.allSatisfy { !$0.contains("/1000") }, "units are not printed as counts")
    }

    /// A new phase is shown at once, even within the redraw interval of the last report, in
    /// either mode (the machines phase reports nothing more until it ends).
    @Test func aNewPhaseIsAlwaysShown() {
        for interactive in [true, false] {
            var now = Date(timeIntervalSince1970: 0)
            var lines: [String] = []
            let bar = ProgressBar(total: 100, interactive: interactive, counts: false, output: { lines.append($0) }, clock: { now })
            now += 1
            bar.update(50, "backwards", phase: 1)
            now += 0.01
            bar.update(51, "backwards", phase: 1)
            bar.update(51, "machines", phase: 2)
            #expect(lines.count == 2, "interactive \(interactive): \(lines)")
            #expect(lines.last?.contains("machines") == true, "interactive \(interactive): \(lines)")
        }
    }

    /// Without phases (training): the whole run's rate, and `done/total` printed.
    @Test func onePhaseUsesTheOverallRate() {
        var now = Date(timeIntervalSince1970: 0)
        var lines: [String] = []
        let bar = ProgressBar(total: 10, interactive: false, output: { lines.append($0) }, clock: { now })
        now += 2
        bar.update(4, "loss 1")
        #expect(abs(bar.eta(done: 4, now: now) - 3) < 1e-9)
        #expect(lines.first?.hasPrefix("4/10 (40%) loss 1") == true)
    }
}
