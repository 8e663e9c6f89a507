import Foundation

/// Prints training progress to standard error: a one-line bar with loss and ETA, redrawn in place
/// when stderr is a terminal; plain periodic lines (about every 10% or 5 s) when it is not.
public final class ProgressPrinter: TrainingObserver {
    private let interactive: Bool
    private let label: String
    private var planned = 0
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var lastPercent = -1
    private let output: (String) -> Void

    public init(label: String, interactive: Bool = isatty(2) == 1,
                output: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.interactive = interactive
        self.output = output
    }

    public func observe(_ event: TrainingEvent) {
        switch event {
        case .started(let s):
            planned = s.plannedSteps
            start = Date()
            output("\(label): \(s.model.parameterCount) parameters, \(s.data.train.count) training and \(s.data.test.count) held-out examples, \(planned) steps\n")
        case .step(let s):
            let done = s.step + 1
            let now = Date()
            let percent = planned > 0 ? done * 100 / planned : 100
            let elapsed = now.timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(planned - done) : 0
            if interactive {
                guard now.timeIntervalSince(lastDraw) > 0.1 || done == planned else { return }
                lastDraw = now
                let width = 30
                let filled = planned > 0 ? width * done / planned : width
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                output("\r\(bar) \(String(format: "%3d%%", percent)) step \(done)/\(planned) loss \(ProgressPrinter.fmt(s.loss)) ETA \(ProgressPrinter.duration(eta))  ")
            } else {
                guard percent / 10 != lastPercent / 10 || now.timeIntervalSince(lastDraw) > 5 || done == planned else { return }
                lastPercent = percent
                lastDraw = now
                output("step \(done)/\(planned) (\(percent)%) loss \(ProgressPrinter.fmt(s.loss)) elapsed \(ProgressPrinter.duration(elapsed)) ETA \(ProgressPrinter.duration(eta))\n")
            }
        case .checkpoint:
            break
        case .finished(let o):
            let elapsed = Date().timeIntervalSince(start)
            if interactive { output("\n") }
            var line = "\(label): \(o.status.rawValue) after \(o.stepsDone) steps in \(ProgressPrinter.duration(elapsed))"
            if let l = o.lastLoss { line += ", last loss \(ProgressPrinter.fmt(l))" }
            if let m = o.message { line += " (\(m))" }
            output(line + "\n")
        }
    }

    static func fmt(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "\(x)" }

    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        if s < 60 { return String(format: "%.1fs", s) }
        let m = Int(s) / 60
        return "\(m)m\(String(format: "%02d", Int(s) % 60))s"
    }
}
