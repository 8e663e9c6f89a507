import Foundation

/// The training observer that shows progress on standard error (see `ProgressBar`).
public final class ProgressPrinter: TrainingObserver {
    private let label: String
    private let bar: ProgressBar
    private let output: (String) -> Void

    public init(label: String, interactive: Bool = isatty(2) == 1,
                output: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.output = output
        bar = ProgressBar(total: 1, interactive: interactive, output: output)
    }

    public func observe(_ event: TrainingEvent) {
        switch event {
        case .started(let s):
            bar.restart(total: s.plannedSteps)
            output("\(label): \(s.model.parameterCount) parameters, \(s.data.train.count) training and \(s.data.test.count) held-out examples, \(s.plannedSteps) steps\n")
        case .step(let s):
            bar.update(s.step + 1, "loss \(ProgressPrinter.fmt(s.loss))")
        case .checkpoint:
            break
        case .finished(let o):
            var line = "\(label): \(o.status.rawValue) after \(o.stepsDone) steps in \(ProgressBar.duration(bar.elapsed))"
            if let l = o.lastLoss { line += ", last loss \(ProgressPrinter.fmt(l))" }
            if let m = o.message { line += " (\(m))" }
            bar.finish(line)
        }
    }

    static func fmt(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "\(x)" }
}
