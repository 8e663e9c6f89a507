import Foundation
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace

extension TraceRecorder {
    /// A full-batch run whose weights were computed elsewhere (NeuralUCB's TrainNN,
    /// `pathkernel bandit --trace-rounds`), to be stored as a trace: the iterates `w_0 … w_J` are
    /// written as they are (bit for bit), step `j` with the given constant learning rate, the whole
    /// training set as its batch and its mean loss at `w_j`. Nothing here checks that the iterates
    /// are the optimizer's steps: the analyzer's step check does (Docs/trace-format.md).
    public struct IterateRun {
        public var name: String
        public var seed: UInt64
        public var model: ModelSpec
        public var loss: LossKind
        /// The update rule the iterates follow (its `learningRate` is every step's rate).
        public var optimizer: OptimizerSpec
        /// Inputs `[n, d]` and regression targets `[n, C]` (held out: `[m, d]`, `[m, C]`, m ≥ 0).
        public var trainX: Matrix, trainY: Matrix, testX: Matrix, testY: Matrix
        /// `w_0 … w_J` (J + 1 vectors of P).
        public var iterates: [[Double]]
        /// Checkpoints every this many steps (and at J).
        public var checkpointEvery: Int
        /// `config_json`'s `data.source`, and an extra top-level section (name, JSON object) saying
        /// where the run came from (e.g. `bandit`), both informational.
        public var source: String
        public var origin: (name: String, fields: [String: Any])?

        public init(name: String, seed: UInt64, model: ModelSpec, loss: LossKind, optimizer: OptimizerSpec,
                    trainX: Matrix, trainY: Matrix, testX: Matrix, testY: Matrix, iterates: [[Double]],
                    checkpointEvery: Int, source: String, origin: (name: String, fields: [String: Any])? = nil) {
            self.name = name; self.seed = seed; self.model = model; self.loss = loss; self.optimizer = optimizer
            self.trainX = trainX; self.trainY = trainY; self.testX = testX; self.testY = testY
            self.iterates = iterates; self.checkpointEvery = checkpointEvery; self.source = source; self.origin = origin
        }
    }

    /// Writes `run` as a new trace at `path` (status finished). Throws for a bad shape, a
    /// non-finite value, a loss other than MSE, an existing file (never overwritten), or what the
    /// store refuses.
    public static func write(_ run: IterateRun, to path: String) throws {
        let model = try Networks.make(run.model)
        let P = model.parameterCount, n = run.trainX.rows, J = run.iterates.count - 1
        guard run.loss == .mse else { throw ConfigError("\(path): an iterate run is a regression (MSE) run, not \(run.loss.rawValue)") }
        guard J >= 0, run.iterates.allSatisfy({ $0.count == P }) else {
            throw ConfigError("\(path): the iterates must be at least w_0, each of the model's \(P) parameters")
        }
        guard n >= 1, run.trainX.cols == model.inputDim, run.testX.cols == model.inputDim,
              run.trainY.rows == n, run.trainY.cols == model.outputDim, run.testY.rows == run.testX.rows,
              run.testY.cols == model.outputDim else {
            throw ConfigError("\(path): data of shapes train \(run.trainX.rows)×\(run.trainX.cols) → \(run.trainY.rows)×\(run.trainY.cols), test \(run.testX.rows)×\(run.testX.cols) → \(run.testY.rows)×\(run.testY.cols) do not fit the model \(model.inputDim) → \(model.outputDim)")
        }
        guard run.optimizer.kind == .gd, run.optimizer.momentum == 0, run.optimizer.clipNorm == nil else {
            throw ConfigError("\(path): an iterate run is plain full-batch GD (kind gd, no momentum, no clipping): its steps keep no optimizer state")
        }
        guard run.checkpointEvery >= 1 else { throw ConfigError("\(path): checkpointEvery must be ≥ 1") }
        try run.optimizer.validate()
        let eta = run.optimizer.learningRate

        func json(_ v: some Encodable) throws -> Any {
            try JSONSerialization.jsonObject(with: try JSONEncoder().encode(v))
        }
        var config: [String: Any] = [
            "name": run.name, "seed": run.seed,
            "data": ["kind": "recorded", "train": n, "test": run.testX.rows, "features": model.inputDim,
                     "task": "regression", "source": run.source] as [String: Any],
            "model": try json(run.model), "loss": try json(LossSpec(kind: run.loss)), "optimizer": try json(run.optimizer),
            "training": ["steps": J, "batchSize": NSNull(), "dropLast": false, "checkpointEvery": run.checkpointEvery,
                         "precision": Precision.float64.rawValue] as [String: Any],
        ]
        if let origin = run.origin { config[origin.name] = origin.fields }
        let configJSON = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]),
                                as: UTF8.self)
        func compact(_ v: some Encodable) -> String {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            return String(decoding: (try? enc.encode(v)) ?? Data(), as: UTF8.self)
        }
        let now = ISO8601DateFormatter().string(from: Date())
        let info = RunInfo(toolVersion: ToolInfo.version, name: run.name, seed: run.seed, status: .running, statusMessage: nil,
                           createdAt: now, updatedAt: now, finishedAt: nil, task: "regression", numOutputs: model.outputDim,
                           modelJSON: compact(run.model), lossJSON: compact(LossSpec(kind: run.loss)),
                           optimizerJSON: compact(run.optimizer), configJSON: configJSON, precision: .float64,
                           checkpointEvery: run.checkpointEvery, plannedSteps: J)
        let data = TraceData(trainX: DataArray(shape: [n, run.trainX.cols], values: run.trainX.data),
                             trainY: DataArray(shape: [n, run.trainY.cols], values: run.trainY.data),
                             testX: DataArray(shape: [run.testX.rows, run.testX.cols], values: run.testX.data),
                             testY: DataArray(shape: [run.testY.rows, run.testY.cols], values: run.testY.data))
        let writer = try TraceWriter.create(at: path, run: info, data: data, layout: model.layout.map {
            TensorLayout(name: $0.name, shape: $0.shape, offset: $0.offset, count: $0.count)
        }, mask: run.optimizer.parameterMask)
        defer { writer.close() }
        let batch = (0..<n).map { Int32($0) }
        for j in 0...J {
            if j % run.checkpointEvery == 0 || j == J {
                try writer.appendCheckpoint(step: j, parameters: run.iterates[j])
            }
            guard j < J else { break }
            let loss = run.loss.evaluate(outputs: model.forward(run.iterates[j], run.trainX), targets: run.trainY).loss
            try writer.appendStep(StepRecord(step: j, epoch: j, learningRate: eta, batch: batch, loss: loss))
        }
        try writer.setStatus(.finished, message: nil)
    }
}
