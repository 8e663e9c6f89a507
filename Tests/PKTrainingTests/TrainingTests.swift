import Foundation
import Testing
import PKData
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKTraining

private func close(_ a: Double, _ b: Double, tol: Double) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }

private func tempPath(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-train-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// A small, fast config for tests (moons, 2-8-8-1).
private func smallConfig(steps: Int = 12, optimizer: OptimizerSpec = OptimizerSpec(kind: .gd, learningRate: 0.5),
                         batchSize: Int? = nil, checkpointEvery: Int = 1, precision: Precision = .float64) -> RunConfig {
    RunConfig(name: "small", seed: 11,
              data: try! JSONDecoder().decode(DataSpec.self, from: Data(#"{"kind":"moons","train":40,"test":20,"noise":0.1}"#.utf8)),
              model: try! JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[2,8,8,1],"activation":"tanh"}"#.utf8)),
              loss: LossSpec(kind: .logistic), optimizer: optimizer,
              training: TrainingSpec(steps: steps, batchSize: batchSize, checkpointEvery: checkpointEvery, precision: precision))
}

private func record(_ config: RunConfig, to path: String, maxPageCount: Int? = nil) throws -> TrainingOutcome {
    let trainer = try Trainer(config: config)
    let recorder = TraceRecorder(path: path)
    recorder.maxPageCount = maxPageCount
    let outcome = trainer.run(observers: [recorder])
    try? recorder.finish()
    return outcome
}

@Suite("Batch schedule")
struct BatchScheduleTests {
    @Test func fullBatchIsEveryIndexInOrder() {
        var b = BatchSchedule(count: 7, batchSize: nil, dropLast: false, fullBatch: true, seed: 1)
        for e in 0..<3 {
            let (epoch, idx) = b.next()
            #expect(epoch == e && idx == Array(0..<7))
        }
    }

    @Test(arguments: [false, true])
    func minibatchesCoverEachEpochOnce(dropLast: Bool) {
        var b = BatchSchedule(count: 10, batchSize: 4, dropLast: dropLast, fullBatch: false, seed: 3)
        var epochs: [Int: [Int]] = [:]
        let perEpoch = dropLast ? 2 : 3
        for _ in 0..<(perEpoch * 4) {
            let (e, idx) = b.next()
            #expect(idx.count == 4 || (!dropLast && idx.count == 2))
            epochs[e, default: []] += idx
        }
        #expect(epochs.count == 4)
        for (_, seen) in epochs {
            #expect(Set(seen).count == seen.count)
            #expect(seen.count == (dropLast ? 8 : 10))
        }
        #expect(epochs[0] != epochs[1])   // reshuffled each epoch
    }
}

@Suite("Training loop and recorder", .serialized)
struct TrainingTests {
    /// One GD step of a linear model (one dense layer, identity output, MSE) against the closed
    /// form Δw = −η ∇L, with ∇_W L = (1/n) Σ (f_i − y_i) (σ_w/√d) x_iᵀ and ∇_b L = (1/n) Σ (f_i − y_i) σ_b.
    @Test func firstStepMatchesClosedFormForLinearModel() throws {
        let data = try JSONDecoder().decode(DataSpec.self, from: Data(#"{"kind":"teacher","train":16,"test":4,"inputDim":3}"#.utf8))
        let model = try JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[3,1],"activation":"identity","parameterization":"ntk","sigmaW":1.3,"sigmaB":0.7}"#.utf8))
        let config = RunConfig(name: "lin", seed: 5, data: data, model: model, loss: LossSpec(kind: .mse),
                               optimizer: OptimizerSpec(kind: .gd, learningRate: 0.2),
                               training: TrainingSpec(steps: 1))
        let trainer = try Trainer(config: config)
        let outcome = trainer.run(observers: [])
        let w0 = trainer.model.initialParameters(seed: 5)
        let x = trainer.data.train.x, y = trainer.data.train.y
        let n = Double(x.rows), sw = 1.3 / 3.0.squareRoot(), sb = 0.7
        var gW = [0.0, 0.0, 0.0], gb = 0.0
        for i in 0..<x.rows {
            let f = sw * (w0[0] * x[i, 0] + w0[1] * x[i, 1] + w0[2] * x[i, 2]) + sb * w0[3]
            let r = f - y[i, 0]
            for j in 0..<3 { gW[j] += r * sw * x[i, j] / n }
            gb += r * sb / n
        }
        let expected = [w0[0] - 0.2 * gW[0], w0[1] - 0.2 * gW[1], w0[2] - 0.2 * gW[2], w0[3] - 0.2 * gb]
        for (a, b) in zip(outcome.finalParameters, expected) { #expect(close(a, b, tol: 1e-13)) }
        #expect(outcome.status == .finished)
    }

    @Test func sameConfigGivesIdenticalParameterBlobs() throws {
        let config = smallConfig(optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.3), batchSize: 8)
        let a = try tempPath("a.sqlite"), b = try tempPath("b.sqlite")
        _ = try record(config, to: a)
        _ = try record(config, to: b)
        let ra = try TraceReader.open(a), rb = try TraceReader.open(b)
        let steps = try ra.checkpointSteps()
        #expect(steps == (try rb.checkpointSteps()))
        #expect(steps.count == 13)
        for s in steps {
            let pa = try ra.checkpoint(step: s), pb = try rb.checkpoint(step: s)
            #expect(pa.map(\.bitPattern) == pb.map(\.bitPattern), "checkpoint \(s) differs")
        }
        #expect(try ra.steps() == rb.steps())
        // A different seed gives a different run (so the check above can fail).
        var other = config
        other.seed = 12
        let c = try tempPath("c.sqlite")
        _ = try record(other, to: c)
        #expect(try TraceReader.open(c).checkpoint(step: 0).map(\.bitPattern) != ra.checkpoint(step: 0).map(\.bitPattern))
    }

    /// Everything the loop emitted is what the trace holds.
    @Test(arguments: [Precision.float64, .float32])
    func recorderRoundTrip(precision: Precision) throws {
        let config = smallConfig(steps: 10, optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.3), batchSize: 16,
                                 checkpointEvery: 4, precision: precision)
        let trainer = try Trainer(config: config)
        final class Collector: TrainingObserver {
            var steps: [StepInfo] = []
            var checkpoints: [(Int, [Double])] = []
            func observe(_ e: TrainingEvent) {
                if case .step(let s) = e { steps.append(s) }
                if case .checkpoint(let k, let p, _) = e { checkpoints.append((k, p)) }
            }
        }
        let collector = Collector()
        let path = try tempPath("rt.sqlite")
        let recorder = TraceRecorder(path: path)
        trainer.run(observers: [recorder, collector])
        try recorder.finish()
        let r = try TraceReader.open(path)
        #expect(r.run.status == .finished)
        #expect(r.run.seed == 11 && r.run.precision == precision && r.run.checkpointEvery == 4 && r.run.plannedSteps == 10)
        #expect(r.run.task == "binary" && r.run.numOutputs == 1)
        #expect(try RunConfig.decode(Data(r.run.configJSON.utf8), source: "trace") == config)
        #expect(r.layout.map(\.name) == trainer.model.layout.map(\.name))
        #expect(r.parameterCount == trainer.model.parameterCount)
        let data = try r.data()
        #expect(data.trainX.shape == [40, 2] && data.trainY.shape == [40] && data.testX.shape == [20, 2])
        #expect(data.trainX.values.map(\.bitPattern) == trainer.data.train.x.data.map(\.bitPattern))
        #expect(data.testY.values.map(\.bitPattern) == trainer.data.test.y.data.map(\.bitPattern))
        let steps = try r.steps()
        #expect(steps.count == collector.steps.count)
        for (a, b) in zip(steps, collector.steps) {
            #expect(a.step == b.step && a.epoch == b.epoch && a.batch.map(Int.init) == b.batch, "\(a) vs \(b)")
            #expect(a.learningRate.bitPattern == b.learningRate.bitPattern && a.loss.bitPattern == b.loss.bitPattern)
        }
        #expect(try r.checkpointSteps() == [0, 4, 8, 10])
        for (k, p) in collector.checkpoints {
            let stored = try r.checkpoint(step: k)
            let expected = precision == .float64 ? p : p.map { Double(Float($0)) }
            #expect(stored.map(\.bitPattern) == expected.map(\.bitPattern), "checkpoint \(k)")
        }
    }

    @Test func divergedRunKeepsEverythingUpToIt() throws {
        // A linear regression with a learning rate far beyond 2/λ_max: the weights grow geometrically to ±∞.
        let config = RunConfig(name: "div", seed: 3,
                               data: try JSONDecoder().decode(DataSpec.self, from: Data(#"{"kind":"sine","train":16,"test":4}"#.utf8)),
                               model: try JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[1,4,1],"activation":"identity"}"#.utf8)),
                               loss: LossSpec(kind: .mse), optimizer: OptimizerSpec(kind: .gd, learningRate: 1e3),
                               training: TrainingSpec(steps: 500, checkpointEvery: 50))
        let path = try tempPath("div.sqlite")
        let outcome = try record(config, to: path)
        #expect(outcome.status == .diverged)
        let r = try TraceReader.open(path)
        #expect(r.run.status == .diverged)
        #expect(r.run.statusMessage?.contains("non-finite") == true)
        let last = try #require(try r.checkpointSteps().last)
        #expect(try r.checkpoint(step: last).allSatisfy { $0.isFinite })
        #expect(try r.validate().problems.isEmpty)
    }

    @Test func fullDiskAbortsAndKeepsTheCommittedPrefix() throws {
        let config = smallConfig(steps: 2000, checkpointEvery: 1)
        let path = try tempPath("full.sqlite")
        let outcome = try record(config, to: path, maxPageCount: 12)
        #expect(outcome.status == .aborted)
        #expect(outcome.message?.lowercased().contains("disk full") == true || outcome.message?.lowercased().contains("full") == true,
                "\(outcome.message ?? "")")
        let r = try TraceReader.open(path)
        let cps = try r.checkpointSteps()
        #expect(!cps.isEmpty && cps.count < 2001)
        for s in cps { _ = try r.checkpoint(step: s) }
    }

    @Test func mismatchedModelAndDataIsAClearError() throws {
        var config = smallConfig()
        config.model.layers = [3, 8, 1]
        #expect { try Trainer(config: config) } throws: { "\($0)".contains("input width 3") }
        config = smallConfig()
        config.loss = LossSpec(kind: .mse)
        #expect { try Trainer(config: config) } throws: { "\($0)".contains("does not fit") }
    }

    @Test func everyPresetDecodesAndValidates() throws {
        let names = try Presets.names()
        #expect(Set(["moons-mlp", "sine-tanh", "teacher-relu", "fmnist-mlp", "moons-momentum", "teacher-adam", "fmnist-adamw"]).isSubset(of: Set(names)))
        for n in names {
            let c = try Presets.load(n)
            try c.validate()
            #expect(c.name == n)
            #expect(c.description?.isEmpty == false)
        }
    }
}
