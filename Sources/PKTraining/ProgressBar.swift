import Foundation

/// A progress display on standard error: a bar with a status text and ETA, redrawn in place
/// when stderr is a terminal; plain lines about every 10% (or 5 s) when it is not.
public final class ProgressBar {
    private let interactive: Bool
    private let output: (String) -> Void
    private var total: Int
    private var start: Date
    private var lastDraw = Date.distantPast
    private var lastDecile = -1
    private var drewBar = false
    private let clock: () -> Date
    /// The current phase and its first report (time, done): the ETA uses the current phase's rate.
    private var phase = 0
    private var phaseStart: (time: Date, done: Int)?
    /// The run's first report: rates are measured from it, so that what came before it (reading
    /// the trace, setting up, the first step's allocations) is not taken for the pace of the rest.
    private var first: (time: Date, done: Int)?

    /// Whether lines show `done/total` (steps); off when `done` counts units of cost.
    private let counts: Bool

    /// `clock` exists for tests; leave the default.
    public init(total: Int, interactive: Bool = isatty(2) == 1, counts: Bool = true,
                output: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) },
                clock: @escaping () -> Date = Date.init) {
        self.total = max(total, 1)
        self.counts = counts
        self.interactive = interactive
        self.output = output
        self.clock = clock
        start = clock()
    }

    public func restart(total: Int) {
        self.total = max(total, 1)
        start = clock()
        phase = 0
        phaseStart = nil
        first = nil
        lastDecile = -1
    }

    public var elapsed: Double { clock().timeIntervalSince(start) }

    /// The estimated seconds left at `done` of `total`: `total − done` at the current phase's own
    /// rate (from the phase's first report), once the phase has advanced and has run at least a
    /// second or done as much work as everything before it; before that, at the whole run's rate
    /// from its first report (from the start while nothing has advanced since). `done` must be in
    /// units of cost (the analyzer's are), so that one rate holds for every phase. Rates start at
    /// a first report so that the set-up before it is not taken for the pace of the work; the
    /// phase's own rate takes over early after a short phase whose price was off (moons-momentum's
    /// 0.03-s steps phase took 0.09 s, and the whole run's rate put its ETA at 10 % of the work,
    /// 0.1 s into the backward pass, at +37 … +48 %; Docs/benchmarks.md, `plan`, Session 26).
    public func eta(done: Int, now: Date) -> Double {
        if let phaseStart {
            let inPhase = now.timeIntervalSince(phaseStart.time), phaseDone = done - phaseStart.done
            if phaseDone > 0, inPhase > 0, inPhase >= 1 || phaseDone >= phaseStart.done {
                return inPhase / Double(phaseDone) * Double(total - done)
            }
        }
        if let first, done > first.done, now > first.time {
            return now.timeIntervalSince(first.time) / Double(done - first.done) * Double(total - done)
        }
        let all = now.timeIntervalSince(start)
        return done > 0 ? all / Double(done) * Double(total - done) : .nan
    }

    /// Reports `done` of `total` with a status text (for example the loss). A new `phase` value
    /// starts a new rate for the ETA and is always shown (a phase that runs long without reports,
    /// as the kernel machines' eigendecompositions, then shows its own name, not the last one's).
    public func update(_ done: Int, _ status: String, phase: Int = 0) {
        let now = clock()
        let newPhase = phase != self.phase
        if newPhase || phaseStart == nil {
            self.phase = phase
            phaseStart = (now, done)
        }
        if first == nil { first = (now, done) }
        let percent = min(100, done * 100 / total)
        let elapsed = now.timeIntervalSince(start)
        let eta = eta(done: done, now: now)
        if interactive {
            guard now.timeIntervalSince(lastDraw) > 0.1 || done >= total || newPhase else { return }
            lastDraw = now
            let width = 30
            let filled = width * min(done, total) / total
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            output("\r\(bar) \(String(format: "%3d%%", percent)) \(counts ? "\(done)/\(total) " : "")\(status) ETA \(ProgressBar.duration(eta))  ")
            drewBar = true
        } else {
            guard percent / 10 != lastDecile / 10 || now.timeIntervalSince(lastDraw) > 5 || done >= total || newPhase else { return }
            lastDecile = percent
            lastDraw = now
            output("\(counts ? "\(done)/\(total) (\(percent)%)" : "\(percent)%") \(status) elapsed \(ProgressBar.duration(elapsed)) ETA \(ProgressBar.duration(eta))\n")
        }
    }

    /// Ends the bar's line (terminal mode) and prints `message` if any.
    public func finish(_ message: String? = nil) {
        if interactive && drewBar { output("\n"); drewBar = false }
        if let message { output(message + "\n") }
    }

    public static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        if s < 60 { return String(format: "%.1fs", s) }
        let m = Int(s) / 60
        return "\(m)m\(String(format: "%02d", Int(s) % 60))s"
    }
}
