import Foundation
import PKData
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
import PKTraceCheck

/// What `pathkernel inspect` shows: a trace's run, model, data, optimizer, steps, checkpoints,
/// health, and the final network's fit on both splits.
public struct TraceSummary: Codable, Sendable {
    public struct Split: Codable, Sendable {
        public var count: Int
        public var features: Int
        /// The shape of one example when it is not a plain vector (`[C, H, W]` for images), else nil.
        public var exampleShape: [Int]? = nil
        public var initial: Evaluation?
        public var final: Evaluation?
    }
    public var path: String
    public var name: String
    public var status: String
    public var statusMessage: String?
    public var toolVersion: String
    public var schemaVersion: Int
    public var seed: UInt64
    public var createdAt: String
    public var finishedAt: String?
    public var model: String
    public var parameterCount: Int
    public var task: String
    public var loss: String
    public var optimizer: String
    public var precision: String
    public var plannedSteps: Int
    public var steps: Int
    public var checkpoints: Int
    public var checkpointEvery: Int
    public var firstCheckpoint: Int?
    public var lastCheckpoint: Int?
    public var firstLoss: Double?
    public var lastLoss: Double?
    public var sizeBytes: Int
    public var train: Split
    public var test: Split
    public var problems: [String]

    /// Reads and checks the whole trace (every checksum, every step row).
    public static func make(path: String) throws -> TraceSummary {
        let reader = try TraceReader.open(path)
        let run = reader.run
        let validation = try reader.validate()
        var problems = validation.problems
        // Unreadable step rows are among the validation's problems; the summary goes on without them.
        let steps = (try? reader.steps()) ?? []
        let checkpoints = try reader.checkpointSteps()
        // The contents' rules and the specs, decoded once (shared with `analyze`); the fit is
        // evaluated only on sound contents. Unreadable data is among the validation's problems.
        let data = try? reader.data()
        let check = TraceCheck.check(reader, data: data, steps: steps, checkpoints: checkpoints)
        problems += check.problems
        if let optimizer = check.optimizer {
            problems += TraceCheck.optimizerStateProblems(reader, optimizer: optimizer, checkpoints: checkpoints)
        }
        let spec = check.model?.spec, lossSpec = check.loss, opt = check.optimizer
        func split(_ x: DataArray?) -> Split {
            let example = Array((x?.shape ?? []).dropFirst())
            return Split(count: x?.shape.first ?? 0, features: example.isEmpty ? 0 : example.reduce(1, *),
                         exampleShape: example.count > 1 ? example : nil)
        }
        var train = split(data?.trainX)
        var test = split(data?.testX)
        if check.isSound, let data, let model = check.model, let lossSpec, let task = TaskKind(rawValue: run.task) {
            let trainSet = dataset(x: data.trainX, y: data.trainY, task: task, outputs: run.numOutputs, name: "train")
            let testSet = dataset(x: data.testX, y: data.testY, task: task, outputs: run.numOutputs, name: "test")
            if let first = checkpoints.first, let w0 = try? reader.checkpoint(step: first) {
                train.initial = Evaluation.evaluate(model: model, parameters: w0, data: trainSet, loss: lossSpec.kind)
                test.initial = Evaluation.evaluate(model: model, parameters: w0, data: testSet, loss: lossSpec.kind)
            }
            if let last = checkpoints.last, let wT = try? reader.checkpoint(step: last) {
                train.final = Evaluation.evaluate(model: model, parameters: wT, data: trainSet, loss: lossSpec.kind)
                test.final = Evaluation.evaluate(model: model, parameters: wT, data: testSet, loss: lossSpec.kind)
            }
        }
        let modelText = check.model.map { m -> String in
            let s = m.spec
            return s.kind == "mlp" ? "MLP \(s.layers.map(String.init).joined(separator: "-")), \(s.activation.rawValue), \(s.parameterization.rawValue) parameterization"
                                   : "\(m.summary), \(s.parameterization.rawValue) parameterization"
        } ?? run.modelJSON
        return TraceSummary(
            path: path, name: run.name, status: run.status.rawValue, statusMessage: run.statusMessage,
            toolVersion: run.toolVersion, schemaVersion: reader.schemaVersion, seed: run.seed,
            createdAt: run.createdAt, finishedAt: run.finishedAt, model: modelText,
            parameterCount: reader.parameterCount, task: run.task, loss: lossSpec?.kind.rawValue ?? run.lossJSON,
            optimizer: opt?.summary ?? run.optimizerJSON, precision: run.precision.rawValue,
            plannedSteps: run.plannedSteps, steps: steps.count, checkpoints: checkpoints.count,
            checkpointEvery: run.checkpointEvery, firstCheckpoint: checkpoints.first, lastCheckpoint: checkpoints.last,
            firstLoss: steps.first?.loss, lastLoss: steps.last?.loss, sizeBytes: reader.fileSizeBytes,
            train: train, test: test, problems: problems)
    }

    /// A split as a dataset (sound contents only: x and y have the same rows).
    static func dataset(x: DataArray, y: DataArray, task: TaskKind, outputs: Int, name: String) -> Dataset {
        Dataset(x: x.matrix, y: y.matrix, task: task, numClasses: task == .regression ? 0 : (task == .binary ? 2 : outputs), name: name)
    }

    public func json() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    public func text() -> String {
        func num(_ x: Double?) -> String { x.map { $0.isFinite ? String(format: "%.4g", $0) : "\($0)" } ?? "–" }
        func pct(_ x: Double?) -> String { x.map { String(format: "%.1f%%", 100 * $0) } ?? "–" }
        func fit(_ s: Split) -> String {
            guard let f = s.final else { return "–" }
            if let a = f.accuracy { return "accuracy \(pct(a)) (init \(pct(s.initial?.accuracy))), loss \(num(f.loss))" }
            return "RMSE \(num(f.rmse)) (init \(num(s.initial?.rmse))), loss \(num(f.loss))"
        }
        var lines: [String] = []
        lines.append("trace       \(path)")
        lines.append("run         \(name), seed \(seed), pathkernel \(toolVersion), schema v\(schemaVersion)")
        lines.append("status      \(status)\(statusMessage.map { " (\($0))" } ?? "")")
        lines.append("model       \(model), \(parameterCount) parameters")
        lines.append("task        \(task), loss \(loss)")
        lines.append("optimizer   \(optimizer)")
        let shape = train.exampleShape.map { " (examples \($0.map(String.init).joined(separator: "×")))" } ?? ""
        lines.append("data        \(train.count) train, \(test.count) held out, \(train.features) features\(shape)")
        lines.append("steps       \(steps) of \(plannedSteps) planned; loss \(num(firstLoss)) → \(num(lastLoss))")
        lines.append("checkpoints \(checkpoints) (every \(checkpointEvery), steps \(firstCheckpoint.map(String.init) ?? "–")…\(lastCheckpoint.map(String.init) ?? "–")), \(precision)")
        lines.append("size        \(TraceSummary.bytes(sizeBytes))")
        lines.append("train       \(fit(train))")
        lines.append("held out    \(fit(test))")
        if problems.isEmpty {
            lines.append("checks      all checksums and step rows OK")
        } else {
            lines.append("checks      \(problems.count) problem(s):")
            for p in problems { lines.append("  - \(p)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }
}
