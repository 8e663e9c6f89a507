import Foundation
import PKData
import PKNetworks
import PKNumerics
import PKOptim
import PKStep
import PKTrace

/// The training loop: (S)GD on the mean batch loss, emitting typed events.
///
/// Update `t`: `w_{t+1} = w_t − η_t (∇_w (1/|B_t|) Σ_{i∈B_t} ℓ(f(x_i; w_t), y_i) + λ w_t)`.
/// A diverging step (`Divergence`: a non-finite loss or weight, or a loss or weights that
/// exploded) stops the run with status `diverged`; the weights before that step are
/// checkpointed so the trace keeps everything up to that point.
public struct Trainer: Sendable {
    public let config: RunConfig
    public let data: DataSplit
    public let model: any Network
    /// `w_0` when it does not come from the seed (`train --init`: a sparse network `M ⊙ s`),
    /// else nil. With a mask (`config.optimizer.parameterMask`) its pruned entries must be 0.
    public let initialParameters: [Double]?

    public init(config: RunConfig, data: DataSplit, initialParameters: [Double]? = nil) throws {
        try config.validate()
        try config.validate(against: data)
        self.config = config
        self.data = data
        self.model = try Networks.make(config.model)
        if let w = initialParameters {
            guard w.count == model.parameterCount else {
                throw ConfigError("the initial parameters have \(w.count) entries, the model \(model.parameterCount); was the init file made for another network?")
            }
            guard w.allSatisfy(\.isFinite) else { throw ConfigError("the initial parameters are not all finite") }
            if let mask = config.optimizer.parameterMask,
               let k = mask.indices.first(where: { !mask[$0] && w[$0] != 0 }) {
                throw ConfigError("initial parameter \(k) is pruned by the mask but not 0")
            }
        }
        self.initialParameters = initialParameters
    }

    /// Loads the config's data and builds the trainer.
    public init(config: RunConfig, initialParameters: [Double]? = nil) throws {
        try config.validate()
        let split = try config.data.load(seed: config.seed)
        try self.init(config: config, data: split, initialParameters: initialParameters)
    }

    /// BLAS threads for this run. Small GEMMs (the presets): one; OpenBLAS's second thread spins
    /// more than it computes and the trace writer needs the other core. Large ones (batch ×
    /// width² ≥ 2²⁶, e.g. bench W2's 1000 × 512²): every core (Docs/benchmarks.md).
    var blasThreads: Int {
        let widest = model.spec.kind == "mlp" ? (model.spec.layers.max() ?? 1) : 1
        let batchRows = config.optimizer.kind == .gd ? data.train.count : min(config.training.batchSize ?? data.train.count, data.train.count)
        return batchRows * widest * widest >= 1 << 26 ? Parallel.threads : 1
    }

    /// Runs the loop. `shouldStop` is polled once per step (for example set by SIGINT); a stop
    /// ends the run with status `aborted`.
    @discardableResult
    public func run(observers: [TrainingObserver], shouldStop: () -> Bool = { false }) -> TrainingOutcome {
        // Held for the whole run (BLASThreads: no other count meanwhile, in this process).
        return BLASThreads.with(blasThreads) {
            let T = config.training.steps
            let k = config.training.checkpointEvery
            let train = data.train
            let loss = config.loss.kind
            // Validated with the config; the chain is the one the analyzer's replay builds.
            var w = initialParameters ?? model.initialParameters(seed: config.seed)
            // An anchored decay (`decayAnchor` "initial") pulls towards this run's w₀.
            var spec = config.optimizer
            if spec.decayAnchor == .initial { spec.decayAnchorWeights = w }
            let optimizer = try! spec.transformation(parameters: model.parameterTensors)
            var state = optimizer.initialState(parameterCount: model.parameterCount)
            let clips = config.optimizer.clipNorm != nil
            var batches = BatchSchedule(count: train.count, batchSize: config.training.batchSize,
                                        dropLast: config.training.dropLast,
                                        fullBatch: config.optimizer.kind == .gd, seed: config.seed)
            var divergence = Divergence(initial: w)
            var lastCheckpoint = 0
            var lastLoss: Double? = nil

            func emit(_ e: TrainingEvent) { for o in observers { o.observe(e) } }
            func finish(_ status: RunStatus, _ message: String?, _ done: Int) -> TrainingOutcome {
                let outcome = TrainingOutcome(status: status, message: message, stepsDone: done,
                                              finalParameters: w, lastLoss: lastLoss)
                emit(.finished(outcome))
                return outcome
            }

            emit(.started(TrainingStart(config: config, model: model, data: data, plannedSteps: T)))
            func checkpoint(_ step: Int) {
                emit(.checkpoint(step: step, parameters: w, optimizerState: state.buffers.isEmpty ? nil : state))
            }
            checkpoint(0)

            for t in 0..<T {
                if let reason = observers.lazy.compactMap({ $0.stopReason }).first {
                    if lastCheckpoint != t { checkpoint(t) }
                    return finish(.aborted, reason, t)
                }
                if shouldStop() {
                    if lastCheckpoint != t { checkpoint(t) }
                    return finish(.aborted, "stopped by the user at step \(t)", t)
                }
                let (epoch, batch) = batches.next()
                let eta = config.optimizer.schedule.learningRate(step: t, totalSteps: T, base: config.optimizer.learningRate)
                let xb = batches.fullBatch ? train.x : train.x.rows(at: batch)
                let yb = batches.fullBatch ? train.y : train.y.rows(at: batch)
                let result = optimizer.step(model: model, parameters: w, state: state, inputs: xb, targets: yb, loss: loss, learningRate: eta)
                emit(.step(StepInfo(step: t, epoch: epoch, learningRate: eta, batch: batch, loss: result.loss,
                                    clipScale: clips ? result.info?.clipScale : nil)))
                if let why = divergence.check(step: t, loss: result.loss, next: result.next) {
                    if lastCheckpoint != t { checkpoint(t) }
                    return finish(.diverged, why, t)
                }
                guard let next = result.next else { return finish(.diverged, "no update at step \(t)", t) }
                lastLoss = result.loss
                w = next
                state = result.state ?? state
                if (t + 1) % k == 0 || t + 1 == T {
                    checkpoint(t + 1)
                    lastCheckpoint = t + 1
                }
            }
            return finish(.finished, nil, T)
        }
    }
}
