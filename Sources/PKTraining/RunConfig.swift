import Foundation
import PKData
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

/// How long to train and what to record.
public struct TrainingSpec: Codable, Sendable, Equatable {
    /// Number of parameter updates T. The trace holds steps `0..<T` and checkpoints up to `T`.
    public var steps: Int
    /// Minibatch size, in 1…n (n training examples): required for `sgd`, optional for Adam,
    /// AdamW and RMSProp (nil = every example), refused for `gd` (always the full batch).
    public var batchSize: Int?
    /// `sgd`: drop the last, smaller batch of each epoch.
    public var dropLast: Bool
    /// A checkpoint every k steps (and always at 0 and at the end); `defaultCheckpointEvery`
    /// when the config does not say.
    public var checkpointEvery: Int
    /// Precision of the recorded checkpoints (training itself is in Double).
    public var precision: Precision

    public init(steps: Int, batchSize: Int? = nil, dropLast: Bool = false, checkpointEvery: Int = TrainingSpec.defaultCheckpointEvery,
                precision: Precision = .float64) {
        self.steps = steps
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.checkpointEvery = checkpointEvery
        self.precision = precision
    }

    private enum CodingKeys: String, CodingKey, CaseIterable { case steps, batchSize, dropLast, checkpointEvery, precision }

    /// The JSON keys of the `training` section; any other is refused (with the closest of these).
    public static let jsonKeys = CodingKeys.allCases.map(\.rawValue)
    /// The checkpoint interval of a config that gives none (and of the presets): a checkpoint
    /// every 50 steps, plus 0 and T. The analyzer recomputes every step anyway (the step check)
    /// and compares at each checkpoint, so the analysis is the same as with a checkpoint every
    /// step, while recording writes 50 times fewer weight vectors (Docs/benchmarks.md,
    /// "recording"). What it gives up: a killed run, or one analyzed while it trains, is
    /// analyzable up to its last checkpoint, so up to 49 steps fewer; an inconsistent step is
    /// found at the checkpoint after it rather than at the step itself.
    public static let defaultCheckpointEvery = 50
    /// `steps` and `checkpointEvery`.
    public static let stepsRange = 1...ConfigLimits.maxSteps
    /// `batchSize` (and at most the number of training examples).
    public static let batchSizeRange = 1...ConfigLimits.maxExamples

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decodeInteger(Int.self, forKey: .steps, in: TrainingSpec.stepsRange)
        batchSize = try c.decodeIntegerIfPresent(Int.self, forKey: .batchSize, in: TrainingSpec.batchSizeRange)
        dropLast = try c.decodeIfPresent(Bool.self, forKey: .dropLast) ?? false
        checkpointEvery = try c.decodeIntegerIfPresent(Int.self, forKey: .checkpointEvery, in: TrainingSpec.stepsRange) ?? TrainingSpec.defaultCheckpointEvery
        precision = try c.decodeChoiceIfPresent(Precision.self, forKey: .precision) ?? .float64
    }
}

/// A complete, self-describing training run: what `pathkernel train --config FILE.json` reads and
/// what the presets in `Traces/presets/` hold. The same config gives a bit-identical trace.
public struct RunConfig: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var seed: UInt64
    public var data: DataSpec
    public var model: ModelSpec
    public var loss: LossSpec
    public var optimizer: OptimizerSpec
    public var training: TrainingSpec

    enum CodingKeys: String, CodingKey, CaseIterable { case name, description, seed, data, model, loss, optimizer, training }

    /// The top-level JSON keys; any other is refused (with the closest of these).
    public static let jsonKeys = CodingKeys.allCases.map(\.rawValue)

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        seed = try c.decodeInteger(UInt64.self, forKey: .seed, in: 0...UInt64.max)
        data = try c.decode(DataSpec.self, forKey: .data)
        model = try c.decode(ModelSpec.self, forKey: .model)
        loss = try c.decode(LossSpec.self, forKey: .loss)
        optimizer = try c.decode(OptimizerSpec.self, forKey: .optimizer)
        // A setting of another optimizer (beta1 for sgd) would be ignored: refuse it.
        let given = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .optimizer).allKeys.map(\.stringValue)
        let applicable = OptimizerSpec.jsonKeys(for: optimizer.kind)
        if let key = given.sorted().first(where: { !applicable.contains($0) }) {
            throw ConfigProblem.decodingError(
                "optimizer.\(key) does not apply to kind \(optimizer.kind.rawValue) (its keys: \(applicable.joined(separator: ", "))); remove it",
                at: [CodingKeys.optimizer, AnyCodingKey(stringValue: key)])
        }
        training = try c.decode(TrainingSpec.self, forKey: .training)
    }

    public init(name: String, description: String? = nil, seed: UInt64, data: DataSpec, model: ModelSpec,
                loss: LossSpec, optimizer: OptimizerSpec, training: TrainingSpec) {
        self.name = name
        self.description = description
        self.seed = seed
        self.data = data
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.training = training
    }

    /// Decodes a config, turning decoding failures into one-line messages naming the source.
    /// Unknown keys anywhere in the config are refused (the message names the closest valid key),
    /// and so is a number that does not fit its field (the message names the field and its range).
    public static func decode(_ json: Data, source: String) throws -> RunConfig {
        do {
            let config = try JSONDecoder().decode(RunConfig.self, from: json)
            if let (key, location) = ConfigProblem.duplicateKey(in: json) {
                throw ConfigError("\(source): key '\(key)' appears twice \(location) (only one value would be used); keep one")
            }
            return config
        } catch let error as ConfigError {
            throw error
        } catch let error as DecodingError {
            throw ConfigError("\(source): \(ConfigError.describe(error, json: json))")
        } catch {
            throw ConfigError("\(source): \(error)")
        }
    }

    public static func load(path: String) throws -> RunConfig {
        guard let json = FileManager.default.contents(atPath: path) else {
            throw ConfigError("\(path): cannot read the config file (does it exist?)")
        }
        return try decode(json, source: path)
    }

    /// Pretty, key-sorted JSON (what the trace stores as `config_json`).
    public func encoded() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Checks the settings that do not need the data (ranges and limits in Docs/config.md).
    public func validate() throws {
        guard !name.isEmpty else {
            throw ConfigError("config: name must not be empty (it names the default output file NAME.sqlite)")
        }
        do {
            try model.validate()
            try optimizer.validate()
            try data.validate()
        } catch {
            throw ConfigError("config \(name): \(error)")
        }
        guard TrainingSpec.stepsRange.contains(training.steps) else {
            throw ConfigError("config \(name): training.steps must be \(ConfigLimits.describe(TrainingSpec.stepsRange)), got \(training.steps)")
        }
        guard TrainingSpec.stepsRange.contains(training.checkpointEvery) else {
            throw ConfigError("config \(name): training.checkpointEvery must be \(ConfigLimits.describe(TrainingSpec.stepsRange)), got \(training.checkpointEvery)")
        }
        if let b = training.batchSize, !TrainingSpec.batchSizeRange.contains(b) {
            throw ConfigError("config \(name): training.batchSize must be \(ConfigLimits.describe(TrainingSpec.batchSizeRange)) and at most the number of training examples, got \(b)")
        }
        switch optimizer.kind {
        case .gd:
            if let b = training.batchSize {
                throw ConfigError("config \(name): optimizer gd takes every training example at each step, so training.batchSize (\(b)) does not apply; remove it, or use kind sgd for minibatches")
            }
        case .sgd:
            guard training.batchSize != nil else {
                throw ConfigError("config \(name): optimizer sgd needs training.batchSize (\(ConfigLimits.describe(TrainingSpec.batchSizeRange)), at most the number of training examples); use kind gd for full batches")
            }
        case .adam, .adamw, .rmsprop:
            break
        }
    }

    /// Checks that the model, loss and data fit together.
    public func validate(against split: DataSplit) throws {
        let train = split.train
        let network = try Networks.make(model)
        guard network.inputDim == train.x.cols else {
            let shape = model.kind == "mlp" ? "\(network.inputDim)" : "\(network.inputDim) (\(model.input ?? []))"
            throw ConfigError("config \(name): model input width \(shape) does not match the data's \(train.x.cols) features")
        }
        guard network.outputDim == train.outputDim else {
            throw ConfigError("config \(name): model output width \(network.outputDim) does not match the task's \(train.outputDim) outputs (\(train.task.rawValue))")
        }
        switch (loss.kind, train.task) {
        case (.mse, .regression), (.logistic, .binary), (.crossEntropy, .multiclass): break
        default:
            throw ConfigError("config \(name): loss \(loss.kind.rawValue) does not fit a \(train.task.rawValue) task (use mse for regression, logistic for binary, cross-entropy for multiclass)")
        }
        guard train.count >= 1 else { throw ConfigError("config \(name): the training set is empty") }
        // Parameter groups placed on the model's tensors (a pattern matching none is named here,
        // before training; the trainer builds the same chain).
        // (An anchored decay's w₀ is the run's initialization, known to the trainer: any P
        // weights place it here.)
        var placed = optimizer
        if placed.decayAnchor == .initial && placed.decayAnchorWeights == nil {
            placed.decayAnchorWeights = [Double](repeating: 0, count: network.parameterCount)
        }
        do { _ = try placed.transformation(parameters: network.parameterTensors) } catch {
            throw ConfigError("config \(name): \(error)")
        }
        if let b = training.batchSize, b > train.count {
            throw ConfigError("config \(name): training.batchSize \(b) is larger than the \(train.count) training examples; use a batch size in 1…\(train.count)")
        }
        let rows = optimizer.kind == .gd ? train.count : min(training.batchSize ?? train.count, train.count)
        let perExample = network.activationsPerExample
        let activations = rows * perExample
        if activations > ConfigLimits.maxStepActivations {
            throw ConfigError("config \(name): a step on \(rows) examples of \(network.summary) holds \(rows) × \(perExample) = \(activations) activations, more than the limit of \(ConfigLimits.maxStepActivations) (400 MB); use minibatches (training.batchSize with sgd, adam, adamw or rmsprop) or fewer examples")
        }
    }
}

/// A bad config, in one line.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// One line for a decoding failure: the field's path, what is wrong and, where the decoder
    /// knows it, what is allowed.
    public static func describe(_ e: DecodingError, json: Data? = nil) -> String {
        func path(_ p: [CodingKey]) -> String { ConfigProblem.fieldName(p) }
        switch e {
        case .keyNotFound(let k, let ctx):
            let generic = ctx.debugDescription.hasPrefix("No value associated with key")
            return "missing key \(path(ctx.codingPath + [k]))" + (generic ? " (required; Docs/config.md lists every field)" : ": \(ctx.debugDescription)")
        case .typeMismatch(_, let ctx):
            return "wrong type at \(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .valueNotFound(_, let ctx):
            return "\(path(ctx.codingPath)) is null; give it a value (Docs/config.md)"
        case .dataCorrupted(let ctx):
            if let problem = ctx.underlyingError as? ConfigProblem { return problem.description }
            if ctx.codingPath.isEmpty, let json { return syntax(json) }
            return "invalid value at \(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }

    /// What is wrong with text the JSON decoder refused as a whole, with a line and column.
    static func syntax(_ json: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: json)
        } catch {
            var detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            // "… around character 23." → line and column.
            if let r = detail.range(of: #"around character (\d+)"#, options: .regularExpression),
               let offset = Int(detail[r].split(separator: " ").last ?? "") {
                let prefix = json.prefix(offset)
                let line = prefix.filter { $0 == UInt8(ascii: "\n") }.count + 1
                let column = offset - (prefix.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
                detail = detail.replacingCharacters(in: r, with: "at line \(line), column \(column)")
            }
            if detail.hasSuffix(".") { detail.removeLast() }
            return "not valid JSON: \(detail); fix the syntax (a JSON checker such as `python3 -m json.tool FILE` shows where)"
        }
        return "not valid JSON for a run config: a number does not fit its field (Docs/config.md gives each field's range)"
    }
}

/// The tool's version, written into every trace.
public enum ToolInfo {
    public static let version = "0.1.0"
}
