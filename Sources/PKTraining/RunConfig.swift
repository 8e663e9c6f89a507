import Foundation
import PKData
import PKNetworks
import PKOptim
import PKTrace

/// How long to train and what to record.
public struct TrainingSpec: Codable, Sendable, Equatable {
    /// Number of parameter updates T. The trace holds steps `0..<T` and checkpoints up to `T`.
    public var steps: Int
    /// Minibatch size for `sgd`; ignored (full batch) for `gd`.
    public var batchSize: Int?
    /// `sgd`: drop the last, smaller batch of each epoch.
    public var dropLast: Bool
    /// A checkpoint every k steps (and always at 0 and at the end).
    public var checkpointEvery: Int
    /// Precision of the recorded checkpoints (training itself is in Double).
    public var precision: Precision

    public init(steps: Int, batchSize: Int? = nil, dropLast: Bool = false, checkpointEvery: Int = 1,
                precision: Precision = .float64) {
        self.steps = steps
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.checkpointEvery = checkpointEvery
        self.precision = precision
    }

    private enum CodingKeys: String, CodingKey { case steps, batchSize, dropLast, checkpointEvery, precision }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decode(Int.self, forKey: .steps)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
        dropLast = try c.decodeIfPresent(Bool.self, forKey: .dropLast) ?? false
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 1
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .float64
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
    public static func decode(_ json: Data, source: String) throws -> RunConfig {
        do {
            return try JSONDecoder().decode(RunConfig.self, from: json)
        } catch let error as DecodingError {
            throw ConfigError("\(source): \(ConfigError.describe(error))")
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

    /// Checks the settings that do not need the data.
    public func validate() throws {
        do {
            try model.validate()
            try optimizer.validate()
        } catch {
            throw ConfigError("config \(name): \(error)")
        }
        guard training.steps >= 1 else { throw ConfigError("config \(name): training.steps must be ≥ 1") }
        guard training.checkpointEvery >= 1 else {
            throw ConfigError("config \(name): training.checkpointEvery must be ≥ 1")
        }
        if optimizer.kind == .sgd {
            guard let b = training.batchSize, b >= 1 else {
                throw ConfigError("config \(name): optimizer sgd needs training.batchSize ≥ 1")
            }
        }
    }

    /// Checks that the model, loss and data fit together.
    public func validate(against split: DataSplit) throws {
        let train = split.train
        guard model.layers.first == train.x.cols else {
            throw ConfigError("config \(name): model input width \(model.layers.first ?? 0) does not match the data's \(train.x.cols) features")
        }
        guard model.layers.last == train.outputDim else {
            throw ConfigError("config \(name): model output width \(model.layers.last ?? 0) does not match the task's \(train.outputDim) outputs (\(train.task.rawValue))")
        }
        switch (loss.kind, train.task) {
        case (.mse, .regression), (.logistic, .binary), (.crossEntropy, .multiclass): break
        default:
            throw ConfigError("config \(name): loss \(loss.kind.rawValue) does not fit a \(train.task.rawValue) task (use mse for regression, logistic for binary, cross-entropy for multiclass)")
        }
        guard train.count >= 1 else { throw ConfigError("config \(name): the training set is empty") }
        if optimizer.kind == .sgd, let b = training.batchSize, training.dropLast, b > train.count {
            throw ConfigError("config \(name): batchSize \(b) with dropLast leaves no batch of \(train.count) examples")
        }
    }
}

/// A bad config, in one line.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func describe(_ e: DecodingError) -> String {
        func path(_ p: [CodingKey]) -> String {
            p.isEmpty ? "top level" : p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing key \(path(ctx.codingPath + [k]))"
        case .typeMismatch(_, let ctx): return "wrong type at \(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .valueNotFound(_, let ctx): return "missing value at \(path(ctx.codingPath))"
        case .dataCorrupted(let ctx): return "invalid value at \(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}

/// The tool's version, written into every trace.
public enum ToolInfo {
    public static let version = "0.1.0"
}
