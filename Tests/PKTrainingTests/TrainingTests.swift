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
        // Caught as it explodes (Divergence: weights past 1e8 × their initial scale), before ±∞.
        #expect(r.run.statusMessage?.contains("exploded") == true, "\(r.run.statusMessage ?? "")")
        let last = try #require(try r.checkpointSteps().last)
        #expect(try r.checkpoint(step: last).allSatisfy { $0.isFinite })
        #expect(try r.validate().problems.isEmpty)
    }

    @Test func fullDiskAbortsAndKeepsTheCommittedPrefix() throws {
        let config = smallConfig(steps: 2000, checkpointEvery: 1)
        let path = try tempPath("full.sqlite")
        // 13 pages: the 64 KiB pages of a fresh trace's tables (v4 added parameter_mask's) and room for a few steps.
        let trainer = try Trainer(config: config)
        let recorder = TraceRecorder(path: path)
        recorder.maxPageCount = 13
        let outcome = trainer.run(observers: [recorder])
        // The writer runs on its own thread: the loop stops with `aborted` at its next step once a
        // write has failed, or, when it ran ahead of the writer to the end (a fast loop on a busy
        // machine: session 24's CI), finishes; either way `finish()` throws the error, which is
        // what `pathkernel train` reports.
        var finishError: Error? = nil
        do { try recorder.finish() } catch { finishError = error }
        let thrown = finishError.map { "\($0)".lowercased() } ?? ""
        #expect(thrown.contains("full"), "finish() must throw the full disk, threw: \(thrown)")
        #expect(outcome.status == .aborted || outcome.status == .finished, "\(outcome.status)")
        if outcome.status == .aborted {
            #expect(outcome.message?.lowercased().contains("full") == true, "\(outcome.message ?? "")")
        }
        let r = try TraceReader.open(path)
        let cps = try r.checkpointSteps()
        #expect(!cps.isEmpty && cps.count < 2001)
        for s in cps { _ = try r.checkpoint(step: s) }
    }

    /// The default checkpoint policy (a config without `checkpointEvery`): a checkpoint every
    /// `defaultCheckpointEvery` steps plus the last, the optimizer's state with each, and a run
    /// recorded that way ends at the very weights of the same run without a recorder (what
    /// `train --no-record` does).
    @Test func defaultPolicyIsSparseAndRecordingChangesNothing() throws {
        let k = TrainingSpec.defaultCheckpointEvery
        let json = """
            {"name": "d", "seed": 4, "data": {"kind": "moons", "train": 30, "test": 10},
             "model": {"kind": "mlp", "layers": [2, 6, 1], "activation": "tanh"}, "loss": {"kind": "logistic"},
             "optimizer": {"kind": "sgd", "learningRate": 0.2, "momentum": 0.9}, "training": {"steps": \(2 * k + 3), "batchSize": 10}}
            """
        let config = try RunConfig.decode(Data(json.utf8), source: "test")
        #expect(config.training.checkpointEvery == k)
        #expect(TrainingSpec(steps: 5).checkpointEvery == k)
        let path = try tempPath("d.sqlite")
        let recorded = try record(config, to: path)
        let plain = try Trainer(config: config).run(observers: [])
        #expect(recorded.status == .finished && plain.status == .finished)
        #expect(recorded.finalParameters.map(\.bitPattern) == plain.finalParameters.map(\.bitPattern))
        let r = try TraceReader.open(path)
        #expect(r.run.checkpointEvery == k)
        #expect(try r.checkpointSteps() == [0, k, 2 * k, 2 * k + 3])
        #expect(try r.steps().count == 2 * k + 3)
        for s in [k, 2 * k] { #expect(try r.optimizerState(step: s) != nil, "no optimizer state at \(s)") }
        #expect(try r.checkpoint(step: 2 * k + 3).map(\.bitPattern) == plain.finalParameters.map(\.bitPattern))
        #expect(try r.validate().problems.isEmpty)
    }

    /// A trace that cannot be created (a file is in the way) stops the run within a few steps
    /// (the file is created on the writer's thread) and `finish` throws why; the file is kept.
    @Test func recorderThatCannotCreateItsTraceStopsTheRun() throws {
        let path = try tempPath("taken.sqlite")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: path))
        let trainer = try Trainer(config: smallConfig(steps: 100_000))
        let recorder = TraceRecorder(path: path)
        let outcome = trainer.run(observers: [recorder])
        #expect(outcome.status == .aborted && outcome.stepsDone < 100_000)
        #expect(outcome.message?.contains("taken.sqlite") == true, "\(outcome.message ?? "")")
        #expect { try recorder.finish() } throws: { "\($0)".contains("taken.sqlite") }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "mine")
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
        #expect(Set(["moons-mlp", "sine-tanh", "teacher-relu", "fmnist-mlp", "moons-momentum", "teacher-adam", "fmnist-adamw", "beyond-kernels"]).isSubset(of: Set(names)))
        for n in names {
            let c = try Presets.load(n)
            try c.validate()
            #expect(c.name == n)
            #expect(c.description?.isEmpty == false)
        }
    }
}

/// Run configs are strict: an unknown key anywhere, a number that does not fit its field or a size
/// over the limits is a one-line error naming the field, the range and what to do.
@Suite("run config strictness")
struct RunConfigStrictnessTests {
    static let base = """
    {"name": "strict", "seed": 3,
     "data": {"kind": "moons", "train": 40, "test": 10, "noise": 0.1},
     "model": {"kind": "mlp", "layers": [2, 8, 1], "activation": "tanh"},
     "loss": {"kind": "logistic"},
     "optimizer": {"kind": "sgd", "learningRate": 0.5, "schedule": {"kind": "constant", "warmupSteps": 0}},
     "training": {"steps": 3, "batchSize": 8, "checkpointEvery": 1}}
    """

    /// `base` with `old` replaced by `new` (which must occur).
    static func variant(_ old: String, _ new: String) -> String {
        precondition(base.contains(old), old)
        return base.replacingOccurrences(of: old, with: new)
    }

    static func message(_ json: String) -> String? {
        do {
            let c = try RunConfig.decode(Data(json.utf8), source: "cfg.json")
            try c.validate()
            _ = try Trainer(config: c)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func baseIsValid() {
        #expect(Self.message(Self.base) == nil)
    }

    /// An unknown key in every object of a config: named, with where it was and the closest valid key.
    @Test(arguments: [
        (variant(#""seed": 3"#, #""sed": 3"#), ["unknown key 'sed' at the top level", "did you mean 'seed'?"]),
        (variant(#""noise": 0.1"#, #""nosie": 0.1"#), ["unknown key 'nosie' in data", "did you mean 'noise'?"]),
        (variant(#""activation": "tanh""#, #""activation": "tanh", "sigma_w": 1"#), ["unknown key 'sigma_w' in model", "did you mean 'sigmaW'?"]),
        (variant(#""kind": "logistic""#, #""kind": "logistic", "weights": 1"#), ["unknown key 'weights' in loss", "kind"]),
        (variant(#""learningRate": 0.5"#, #""lr": 0.5"#), ["unknown key 'lr' in optimizer", "did you mean 'learningRate'?"]),
        (variant(#""warmupSteps": 0"#, #""warmup": 0"#), ["unknown key 'warmup' in optimizer.schedule", "did you mean 'warmupSteps'?"]),
        (variant(#""batchSize": 8"#, #""batch_size": 8"#), ["unknown key 'batch_size' in training", "did you mean 'batchSize'?"]),
        (variant(#""checkpointEvery": 1"#, #""checkpointEvery": 1, "epochs": 2"#), ["unknown key 'epochs' in training", "remove it or use one of: steps, batchSize"]),
        (variant(#""learningRate": 0.5"#, #""learningRate": 0.5, "groups": [{"parameters": ["*.bias"], "lr": 0.1}]"#),
         ["unknown key 'lr' in optimizer.groups[0]", "did you mean 'learningRate'?"]),
    ])
    func unknownKeysAreRefused(json: String, phrases: [String]) throws {
        let m = try #require(Self.message(json))
        for p in phrases { #expect(m.contains(p), "\(m)") }
        #expect(m.hasPrefix("cfg.json: ") && !m.contains("\n"), "\(m)")
    }

    /// Numbers that JSONDecoder alone reports as "not valid JSON", non-integers and out-of-range
    /// sizes: the message names the field and its range.
    @Test(arguments: [
        (variant(#""seed": 3"#, #""seed": -1"#), "seed must be an integer in 0…18446744073709551615, got -1"),
        (variant(#""seed": 3"#, #""seed": 18446744073709551616"#), "seed must be an integer in 0…18446744073709551615"),
        (variant(#""steps": 3"#, #""steps": 1e30"#), "training.steps must be an integer in 1…100000000, got 1e+30"),
        (variant(#""steps": 3"#, #""steps": 2.5"#), "training.steps must be an integer in 1…100000000, got 2.5"),
        (variant(#""steps": 3"#, #""steps": "3""#), "training.steps must be an integer in 1…100000000, got the string \"3\""),
        (variant(#""steps": 3"#, #""steps": 0"#), "training.steps must be an integer in 1…100000000, got 0"),
        (variant(#""checkpointEvery": 1"#, #""checkpointEvery": -2"#), "training.checkpointEvery must be an integer in 1…100000000, got -2"),
        (variant(#""batchSize": 8"#, #""batchSize": 0"#), "training.batchSize must be an integer in 1…10000000, got 0"),
        (variant(#""batchSize": 8"#, #""batchSize": 41"#), "training.batchSize 41 is larger than the 40 training examples; use a batch size in 1…40"),
        (variant(#""warmupSteps": 0"#, #""warmupSteps": -1"#), "optimizer.schedule.warmupSteps must be an integer in 0…100000000, got -1"),
        (variant(#""layers": [2, 8, 1]"#, #""layers": [2, 8.5, 1]"#), "model.layers[1] must be an integer in 1…1000000, got 8.5"),
        (variant(#""layers": [2, 8, 1]"#, #""layers": [2, 0, 1]"#), "model.layers[1] must be an integer in 1…1000000, got 0"),
        (variant(#""layers": [2, 8, 1]"#, #""layers": [2, 100000, 100000, 1]"#), "more than the limit of 100000000"),
        (variant(#""learningRate": 0.5"#, #""learningRate": 1e400"#), "optimizer.learningRate must be a number"),
        (variant(#""train": 40"#, #""train": 1e9"#), "data.train must be an integer in 1…10000000, got 1000000000"),
        (variant(#""test": 10"#, #""test": -5"#), "data.test must be an integer in 0…10000000, got -5"),
        (variant(#""kind": "sgd""#, #""kind": "sdg""#), "optimizer.kind must be one of gd, sgd, adam, adamw, rmsprop, got 'sdg' (did you mean 'sgd'?)"),
        (variant(#""kind": "sgd""#, #""kind": "gd""#), "training.batchSize (8) does not apply"),
        (variant(#""learningRate": 0.5"#, #""learningRate": 0.5, "beta1": 0.8"#), "optimizer.beta1 does not apply to kind sgd"),
        (variant(#""kind": "sgd""#, #""kind": "adam""#).replacingOccurrences(of: #""learningRate": 0.5"#, with: #""learningRate": 0.5, "alpha": 0.9"#),
         "optimizer.alpha does not apply to kind adam (its keys: kind, learningRate, weightDecay, schedule, beta1, beta2, eps, clipNorm, groups, decayAnchor)"),
        (variant(#""train": 40"#, #""train": 400000"#).replacingOccurrences(of: #""kind": "sgd""#, with: #""kind": "gd""#)
            .replacingOccurrences(of: #", "batchSize": 8"#, with: "").replacingOccurrences(of: "[2, 8, 1]", with: "[2, 200, 1]"),
         "more than the limit of 50000000"),
        (variant(#""seed": 3,"#, #""seed": 3,,"#), "not valid JSON"),
        // Parameter groups: rates, and patterns placed on the model's tensors before training.
        (variant(#""learningRate": 0.5"#, #""learningRate": 0.5, "groups": [{"parameters": ["*.bias"], "learningRate": -0.1}]"#),
         "optimizer.groups[0].learningRate must be a positive number (the group's own base rate, as PyTorch's param_group lr), got -0.1"),
        (variant(#""learningRate": 0.5"#, #""learningRate": 0.5, "groups": [{"parameters": ["*.bias"]}]"#),
         "optimizer.groups[0] sets neither weightDecay nor learningRate"),
        (variant(#""learningRate": 0.5"#, #""learningRate": 0.5, "groups": [{"parameters": ["*.norm.*"], "learningRate": 0.1}]"#),
         #"optimizer.groups[0]: "*.norm.*" matches no parameter tensor (the model's: layers.0.weight, layers.0.bias, layers.1.weight, layers.1.bias)"#),
    ])
    func badNumbersNameTheFieldAndRange(json: String, phrase: String) throws {
        let m = try #require(Self.message(json))
        #expect(m.contains(phrase), "\(m)")
        #expect(!m.contains("\n"), "\(m)")
    }

    /// JSON decoders keep one of two equal keys silently: a config refuses them.
    @Test(arguments: [
        (variant(#""seed": 3,"#, #""seed": 3, "seed": 4,"#), "key 'seed' appears twice at the top level"),
        (variant(#""learningRate": 0.5"#, #""learningRate": 0.5, "learningRate": 5"#), "key 'learningRate' appears twice in optimizer"),
        (variant(#""warmupSteps": 0"#, #""warmupSteps": 0, "warmupSteps": 1"#), "key 'warmupSteps' appears twice in optimizer.schedule"),
    ])
    func duplicateKeysAreRefused(json: String, phrase: String) throws {
        let m = try #require(Self.message(json))
        #expect(m.contains(phrase), "\(m)")
    }

    @Test func syntaxErrorsGiveALineAndColumn() throws {
        let m = try #require(Self.message("{\n  \"name\": \"x\",\n  \"seed\": 1,,\n}"))
        #expect(m.contains("not valid JSON") && m.contains("line 3"), "\(m)")
    }

    /// What `encoded()` writes (and traces store) decodes again under the strict rules.
    @Test func encodedConfigsDecodeAgain() throws {
        var configs = try Presets.names().map { try Presets.load($0) }
        var c = try RunConfig.decode(Data(Self.base.utf8), source: "base")
        c.optimizer = OptimizerSpec(kind: .adamw, learningRate: 0.01, weightDecay: 0.1,
                                    schedule: ScheduleSpec(kind: .step, warmupSteps: 2, every: 5, gamma: 0.5),
                                    beta1: 0.8, beta2: 0.99, eps: 1e-6, clipNorm: 1)
        c.training.precision = .float32
        configs.append(c)
        for config in configs {
            let again = try RunConfig.decode(Data(config.encoded().utf8), source: config.name)
            #expect(again == config)
        }
    }
}

/// The accepted keys come from each type's `CodingKeys`; the docs must name every one.
@Suite("config keys are documented")
struct ConfigKeysDocumentedTests {
    static func doc(_ name: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("Docs/\(name)"), encoding: .utf8)
    }

    @Test func everyKeyIsInTheDocs() throws {
        let config = try Self.doc("config.md"), networks = try Self.doc("networks.md")
        func documented(_ key: String, in text: String) -> Bool { text.contains("`\(key)`") || text.contains(".\(key)`") }
        for key in RunConfig.jsonKeys + TrainingSpec.jsonKeys + OptimizerSpec.jsonKeys + ScheduleSpec.jsonKeys + LossSpec.jsonKeys {
            #expect(documented(key, in: config), "Docs/config.md does not name '\(key)'")
        }
        for key in ModelSpec.jsonKeys { #expect(documented(key, in: networks), "Docs/networks.md does not name '\(key)'") }
    }
}
