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

    /// What comes before the first report (reading the trace, setting up, the first step's
    /// allocations) is not taken for the pace of the rest: after 0.5 s of it, 100 units at
    /// 100 units/s have their ETA from the reports' own rate, in the whole run's rate (the phase's
    /// first second) and in the phase's (after it). Tolerance: `Date` holds seconds since 2001 in
    /// a Double, 9.8e8 s from this 1970 clock, so each 0.01-s step rounds by up to 6e-8 s and the
    /// ETA (a ratio of such differences times up to 100) by about 1e-6 s.
    @Test func setupBeforeTheFirstReportIsNotExtrapolated() {
        let tolerance = 1e-5
        var now = Date(timeIntervalSince1970: 0)
        let bar = ProgressBar(total: 100, interactive: false, counts: false, output: { _ in }, clock: { now })
        now += 0.5
        for done in 1...100 {
            now += 0.01
            bar.update(done, "x")
            let truth = Double(100 - done) * 0.01
            // (At the first report nothing has advanced since it: the rate from the start.)
            if done >= 2 { #expect(abs(bar.eta(done: done, now: now) - truth) <= tolerance, "at \(done): \(bar.eta(done: done, now: now)) for \(truth)") }
        }
        // A later phase is timed from its own first report, as before.
        let two = ProgressBar(total: 100, interactive: false, counts: false, output: { _ in }, clock: { now })
        for done in 1...50 { now += 0.01; two.update(done, "a", phase: 0) }
        now += 3   // a phase whose first report comes late
        for done in 51...100 {
            now += 0.1
            two.update(done, "b", phase: 1)
            if done > 70 { #expect(abs(two.eta(done: done, now: now) - Double(100 - done) * 0.1) <= tolerance) }
        }
    }

    /// A short first phase three times slower than its price, then a long one: within the long
    /// phase's first second its own rate takes over once it has done as much work as the short
    /// one (the whole run's rate until then).
    @Test func aLongPhaseAfterAShortOneTakesItsOwnRateEarly() {
        let tolerance = 1e-4   // as above, with 1-ms steps: up to 6e-8 s each over 30 of them, times 940/30
        var now = Date(timeIntervalSince1970: 0)
        let bar = ProgressBar(total: 1000, interactive: false, counts: false, output: { _ in }, clock: { now })
        for done in 1...30 { now += 0.03; bar.update(done, "steps", phase: 0) }
        bar.update(30, "kernel", phase: 1)
        for done in 31...100 {
            now += 0.001
            bar.update(done, "kernel", phase: 1)
            let truth = Double(1000 - done) * 0.001
            if done >= 60 { #expect(abs(bar.eta(done: done, now: now) - truth) <= tolerance, "at \(done): \(bar.eta(done: done, now: now)) for \(truth)") }
            if done == 45 { #expect(bar.eta(done: done, now: now) > 2 * truth, "the whole run's rate before") }
        }
    }
}
