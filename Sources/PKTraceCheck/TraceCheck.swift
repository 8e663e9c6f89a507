import Foundation
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

/// The rules of a trace's *contents* that need the model, loss and optimizer to state
/// (Docs/trace-format.md, "Rules"): the one place where `inspect` and `analyze` check every
/// value read from a trace before anything computes with it.
///
/// The store (`TraceReader`) checks what needs no model: blob lengths, checksums, shapes without
/// overflow, finite data and checkpoints, checkpoint dtype, optimizer-state integrity. This adds:
/// the model, loss and optimizer specs decode and build; the stored parameter layout is the
/// model's, name by name (shapes, offsets, order); `num_outputs`, task and loss agree; the inputs
/// have the model's width on both splits; targets have their task's shape and values (binary
/// 0/1, class indices integer in 0..<K); every step row's batch is non-empty with indices in
/// 0..<n, its learning rate finite and ≥ 0, its loss finite, its clip scale in (0, 1] and present
/// exactly when the optimizer clips (rows at or after the last checkpoint — a diverging step,
/// a killed run's tail — are not used and not held to the last three rules).
///
/// Does not hold: the checkpoints' own values are checked when read (the store), not here.
public struct TraceCheck: Sendable {
    /// The model, loss and optimizer when their specs decode and build (nil otherwise; a problem says why).
    public let model: (any Network)?
    public let loss: LossSpec?
    public let optimizer: OptimizerSpec?
    /// One line per problem, naming the row, split or field; empty when the trace's contents are sound.
    public let problems: [String]

    /// At most this many problems of one kind are listed (then "… and N more").
    public static let listed = 5

    public var isSound: Bool { problems.isEmpty }

    /// Checks `reader`'s run row, layout, `data` and `steps` (as read from it). With `data` nil
    /// (unreadable: the store says why) the specs, layout and step rows are still checked, the
    /// batch indices against nothing.
    public static func check(_ reader: TraceReader, data: TraceData?, steps: [StepRecord], checkpoints: [Int]) -> TraceCheck {
        var problems: [String] = []
        let run = reader.run
        func decode<T: Decodable>(_ t: T.Type, _ json: String, _ what: String) -> T? {
            do { return try JSONDecoder().decode(t, from: Data(json.utf8)) } catch {
                problems.append("\(what): cannot be read (\(TraceCheck.describe(error))); was it written by a newer pathkernel?")
                return nil
            }
        }
        var model: (any Network)? = nil
        if let spec = decode(ModelSpec.self, run.modelJSON, "model_json") {
            do { model = try Networks.make(spec) } catch { problems.append("model_json: \(error)") }
        }
        let loss = decode(LossSpec.self, run.lossJSON, "loss_json")
        var optimizer = decode(OptimizerSpec.self, run.optimizerJSON, "optimizer_json")
        // The fixed parameter mask (schema v4, `train --init`) is part of the update rule.
        do { optimizer?.parameterMask = try reader.parameterMask() } catch {
            problems.append("parameter_mask: \(TraceCheck.describe(error))")
        }
        // An anchored decay (`decayAnchor` "initial") pulls towards w₀: the step-0 checkpoint.
        if optimizer?.decayAnchor == .initial {
            if checkpoints.first == 0 {
                do { optimizer?.decayAnchorWeights = try reader.checkpoint(step: 0) } catch {
                    problems.append("optimizer_json: decayAnchor \"initial\" needs the step-0 checkpoint (w₀), which cannot be read (\(TraceCheck.describe(error)))")
                    optimizer = nil
                }
            } else {
                problems.append("optimizer_json: decayAnchor \"initial\" needs the step-0 checkpoint (w₀, the decay's anchor), and the trace has none")
                optimizer = nil
            }
        }
        if let o = optimizer {
            do { _ = try o.transformation(parameters: model?.parameterTensors ?? (o.groups.isEmpty ? nil : [])) } catch { problems.append("optimizer_json: \(error)"); optimizer = nil }
            if !(o.learningRate.isFinite && o.learningRate >= 0) { problems.append("optimizer_json: learningRate \(o.learningRate) must be finite and ≥ 0") }
        }

        // Layout: exactly the model's, in order.
        if let model {
            let want = model.layout
            if want.count != reader.layout.count {
                problems.append("parameter_layout: \(reader.layout.count) tensors, the model has \(want.count) (\(want.map(\.name).joined(separator: ", ")))")
            } else {
                for (have, w) in zip(reader.layout, want) where have.name != w.name || have.shape != w.shape || have.offset != w.offset {
                    problems.append("parameter_layout: \(have.name) \(have.shape) at offset \(have.offset), the model's tensor there is \(w.name) \(w.shape) at offset \(w.offset)")
                    break
                }
            }
        }

        // Task, outputs and loss.
        let C = run.numOutputs
        if let model, model.outputDim != C {
            problems.append("run: num_outputs is \(C) but the model's last layer has \(model.outputDim) outputs")
        }
        switch run.task {
        case "binary" where C != 1: problems.append("run: a binary task has 1 output, num_outputs is \(C)")
        case "multiclass" where C < 2: problems.append("run: a multiclass task has at least 2 outputs, num_outputs is \(C)")
        default: break
        }
        if let loss {
            let fits: Bool
            switch loss.kind {
            case .mse: fits = run.task == "regression"
            case .logistic: fits = run.task == "binary"
            case .crossEntropy: fits = run.task == "multiclass"
            }
            if !fits { problems.append("loss_json: loss \(loss.kind.rawValue) does not fit a \(run.task) task (mse for regression, logistic for binary, cross-entropy for multiclass)") }
        }

        // Data shapes and values (finiteness is the store's).
        let splits = data.map { [("train", $0.trainX, $0.trainY), ("test", $0.testX, $0.testY)] } ?? []
        for (split, x, y) in splits {
            let n = x.shape.first ?? 0
            // [n, d], or [n, C, H, W] (any [n, …]) whose example shape is a layer network's input shape.
            let example = Array(x.shape.dropFirst())
            if x.shape.count < 2 {
                problems.append("data \(split) x: shape \(x.shape) must be [n, d] or [n, C, H, W]")
            } else if let model, example.reduce(1, *) != model.inputDim {
                problems.append("data \(split) x: \(example.reduce(1, *)) features per row (\(example)), the model takes \(model.inputDim)")
            } else if let model, example.count > 1, model.spec.input != example {
                problems.append("data \(split) x: examples of shape \(example), the model's input is \(model.spec.input.map { "\($0)" } ?? "[\(model.inputDim)] (an MLP)")")
            }
            if split == "train" && n < 1 { problems.append("data train x: no training points") }
            if (y.shape.first ?? 0) != n { problems.append("data \(split) y: \(y.shape.first ?? 0) rows, x has \(n)") ; continue }
            let width = y.shape.count > 1 ? y.shape[1...].reduce(1, *) : 1
            if run.task == "regression" {
                if width != C || y.shape.count > 2 { problems.append("data \(split) y: shape \(y.shape), a regression target is [n, \(C)]") }
                continue
            }
            if width != 1 || y.shape.count > 2 { problems.append("data \(split) y: shape \(y.shape), a \(run.task) target is [n] (or [n, 1])"); continue }
            var bad: [String] = []
            var badCount = 0
            for (i, v) in y.values.enumerated() {
                let ok = run.task == "binary" ? (v == 0 || v == 1) : (v == v.rounded() && v >= 0 && v < Double(C))
                if !ok {
                    badCount += 1
                    if bad.count < listed { bad.append("row \(i): \(v)") }
                }
            }
            if badCount > 0 {
                let rule = run.task == "binary" ? "0 or 1" : "a class index, an integer in 0..<\(C)"
                problems.append("data \(split) y: \(badCount) label\(badCount == 1 ? "" : "s") not \(rule) (\(bad.joined(separator: ", "))\(badCount > bad.count ? ", …" : ""))")
            }
        }

        // Step rows.
        let n = data?.trainX.shape.first ?? Int.max   // unreadable data: no index range to check
        let used = checkpoints.last ?? 0      // rows 0..<used are analyzed
        let clips = optimizer?.clipNorm != nil
        var stepProblems: [String] = []
        var stepCount = 0
        func stepProblem(_ s: String) {
            stepCount += 1
            if stepProblems.count < listed { stepProblems.append(s) }
        }
        for s in steps {
            if s.step < 0 { stepProblem("step \(s.step): a negative step number"); continue }
            if s.batch.isEmpty { stepProblem("step \(s.step): an empty batch") }
            if let i = s.batch.first(where: { $0 < 0 || Int($0) >= n }) {
                stepProblem("step \(s.step): batch index \(i) is outside the \(n) training points (0..<\(n))")
            }
            if !(s.learningRate.isFinite && s.learningRate >= 0) { stepProblem("step \(s.step): learning rate \(s.learningRate) must be finite and ≥ 0") }
            guard s.step < used else { continue }
            if !s.loss.isFinite { stepProblem("step \(s.step): loss \(s.loss) is not finite, yet a checkpoint follows it") }
            if let c = s.clipScale {
                if !(c > 0 && c <= 1) { stepProblem("step \(s.step): clip scale \(c) must be in (0, 1]") }
                if !clips && optimizer != nil { stepProblem("step \(s.step): a clip scale is stored but the optimizer does not clip (no clipNorm)") }
            } else if clips && reader.schemaVersion >= 2 {
                stepProblem("step \(s.step): the optimizer clips (clipNorm) but the row stores no clip scale")
            }
        }
        problems += stepProblems
        if stepCount > stepProblems.count { problems.append("… and \(stepCount - stepProblems.count) more step-row problems") }
        return TraceCheck(model: model, loss: loss, optimizer: optimizer, problems: problems)
    }

    /// Problems of the stored optimizer states: each at a checkpoint, with the buffers the
    /// recorded optimizer keeps (names in order), their update counts `count(s) = count(0) + s`.
    /// Reads every state (`inspect`; `analyze` checks each as it restores it).
    public static func optimizerStateProblems(_ reader: TraceReader, optimizer: OptimizerSpec, checkpoints: [Int]) -> [String] {
        guard let chain = try? optimizer.transformation(parameters: optimizer.groups.isEmpty ? nil : []) else { return [] }
        var problems: [String] = []
        var first: Int? = nil
        for step in checkpoints {
            guard let stored = try? reader.optimizerState(step: step) else { continue }   // unreadable: the store lists it
            if stored.names != chain.bufferNames {
                problems.append("optimizer state at step \(step) holds buffers \(stored.names), but the recorded optimizer keeps \(chain.bufferNames)")
            }
            if let f = first, stored.count != f + step {
                problems.append("optimizer state at step \(step) counts \(stored.count) updates; with \(f) at step 0 it should count \(f + step)")
            }
            if step == 0 { first = stored.count }
            if problems.count >= listed { break }
        }
        return problems
    }

    /// A decoding error in one line (Foundation's are multi-line structs).
    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "the key \"\(k.stringValue)\" is missing"
        case DecodingError.typeMismatch(_, let c): return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        case DecodingError.valueNotFound(_, let c): return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}
