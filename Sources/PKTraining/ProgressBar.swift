import Foundation

/// A progress display on standard error: a bar with a status text and ETA, redrawn in place
/// when stderr is a terminal; plain lines about every 10% (or 5 s) when it is not.
public final class ProgressBar {
    private let interactive: Bool
    private let output: (String) -> Void
    private var total: Int
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var lastDecile = -1
    private var drewBar = false

    public init(total: Int, interactive: Bool = isatty(2) == 1,
                output: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.total = max(total, 1)
        self.interactive = interactive
        self.output = output
    }

    public func restart(total: Int) {
        self.total = max(total, 1)
        start = Date()
        lastDecile = -1
    }

    public var elapsed: Double { Date().timeIntervalSince(start) }

    /// Reports `done` of `total` with a status text (for example the loss).
    public func update(_ done: Int, _ status: String) {
        let now = Date()
        let percent = min(100, done * 100 / total)
        let elapsed = now.timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : .nan
        if interactive {
            guard now.timeIntervalSince(lastDraw) > 0.1 || done >= total else { return }
            lastDraw = now
            let width = 30
            let filled = width * min(done, total) / total
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            output("\r\(bar) \(String(format: "%3d%%", percent)) \(done)/\(total) \(status) ETA \(ProgressBar.duration(eta))  ")
            drewBar = true
        } else {
            guard percent / 10 != lastDecile / 10 || now.timeIntervalSince(lastDraw) > 5 || done >= total else { return }
            lastDecile = percent
            lastDraw = now
            output("\(done)/\(total) (\(percent)%) \(status) elapsed \(ProgressBar.duration(elapsed)) ETA \(ProgressBar.duration(eta))\n")
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
