import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis
import PKTraining

/// NeuralUCB's TrainNN runs of chosen rounds as traces (`pathkernel bandit --trace-rounds`): the
/// trace holds the network the policy used, bit for bit, its step check replays the policy's GD
/// as full-batch GD with decay towards w₀, and the path-kernel analysis reconstructs it at
/// round-off. Dense contexts and a disjoint bandit played on arm blocks; sum and mean objectives.
@Suite("NeuralUCB TrainNN runs as traces")
struct BanditTraceTests {
    /// The trace's replay against the policy's own arithmetic (another order of the same
    /// operations; on arm blocks also another rounding of the first layer's input): relative.
    static let replayTolerance = 1e-12
    /// The trace's outputs on round t + 1's arms, batched, against the policy's scores, one arm at
    /// a time (γ = 0: the scores are f̃): round-off of a forward pass, relative to max(1, |f̃|).
    static let outputTolerance = 1e-12
    /// Reconstruction of a relu MLP trained by GD, exact quadrature: round-off.
    static let roundOff = 1e-9

    enum Case: String, CaseIterable, Sendable { case denseSum, denseMean, blocksMean }

    static func bandit(_ c: Case) throws -> (NeuralUCB.Bandit, MLP) {
        if c == .blocksMean {
            // A 3-class disjoint bandit on 2-D points: contexts e_a ⊗ x in R⁶, played on arm blocks.
            var x = Matrix(rows: 20, cols: 2)
            for i in 0..<20 { x[i, 0] = cos(0.9 * Double(i)); x[i, 1] = sin(1.3 * Double(i) + 0.2) }
            let labels = (0..<20).map { $0 % 3 }
            let b = try BanditEnvironment.classificationBandit(x: x, labels: labels, classes: 3, rounds: 12, seed: 4)
            #expect(b.blockSize == 2)
            return (b, try MLP(spec: NeuralTangentRandomFeatures.modelSpec(inputDim: 6, depth: 2, width: 5)))
        }
        let rounds = try BanditEnvironment.synthetic(.cos, dim: 3, arms: 3, rounds: 12, noise: 0.1, seed: 4)
        return (NeuralUCB.Bandit(rounds), try MLP(spec: NeuralTangentRandomFeatures.modelSpec(inputDim: 3, depth: 2, width: 6)))
    }

    static func settings(_ c: Case) -> NeuralUCB.Settings {
        var s = NeuralUCB.Settings(algorithm: .neuralucb)
        s.lambda = 0.5; s.gamma = 0; s.steps = 4
        s.objective = c == .denseSum ? .sum : .mean
        s.eta = c == .denseSum ? 0.05 : 0.5
        return s
    }

    static func tempPath(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-bandit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    /// Writes the recorded training of `round` as a trace.
    static func write(_ training: NeuralUCB.Training, bandit: NeuralUCB.Bandit, run: NeuralUCB.Run, model: MLP,
                      w0: [Double]) throws -> String {
        let data = training.traceData(bandit: bandit, arms: run.playedArms, model: model, w0: w0)
        let path = try tempPath("round\(training.round).sqlite")
        try TraceRecorder.write(TraceRecorder.IterateRun(
            name: "round\(training.round)", seed: 4, model: model.spec, loss: .mse, optimizer: try training.traceOptimizer(),
            trainX: data.trainX, trainY: data.trainY, testX: data.testX, testY: data.testY, iterates: training.iterates,
            checkpointEvery: 1, source: "BanditTraceTests", origin: ("bandit", ["round": training.round])), to: path)
        return path
    }

    @Test(arguments: Case.allCases)
    func theTraceIsTheNetworkThePolicyUsed(_ c: Case) throws {
        let (bandit, model) = try Self.bandit(c)
        let w0 = model.initialParameters(seed: 4)
        let settings = Self.settings(c)
        let run = try NeuralUCB.run(settings, bandit: bandit, model: model, w0: w0, seed: 4, recordRounds: [5, 11])
        #expect(run.trainings.map(\.round) == [5, 11])
        // The policy played round by round: its network after round 5 is the recorded last iterate.
        var policy = try NeuralUCB.Policy(settings: settings, contextDim: bandit.contextDim, model: model, w0: w0, seed: 4,
                                          blockSize: bandit.blockSize)
        for t in 0..<5 { _ = try policy.play(bandit.round(t)) }
        #expect(policy.w.map(\.bitPattern) == run.trainings[0].iterates.last!.map(\.bitPattern))

        for training in run.trainings {
            let t = training.round
            #expect(training.played == t && training.iterates.count == settings.steps + 1)
            #expect(training.iterates[0] == w0)
            let path = try Self.write(training, bandit: bandit, run: run, model: model, w0: w0)
            let reader = try TraceReader.open(path)
            // The stored network is the policy's, bit for bit, at every step.
            for j in 0...settings.steps {
                #expect(try reader.checkpoint(step: j).map(\.bitPattern) == training.iterates[j].map(\.bitPattern))
            }
            // Its outputs on round t + 1's arms, centered, are the scores the policy gave them (γ = 0).
            let data = try reader.data()
            let testX = Matrix(rows: data.testX.shape[0], cols: data.testX.shape[1], data: data.testX.values)
            let f = model.forward(try reader.checkpoint(step: settings.steps), testX), f0 = model.forward(w0, testX)
            let scores = run.steps[t].scores
            #expect(scores.count == bandit.arms)
            for a in 0..<bandit.arms {
                let centered = f[a, 0] - f0[a, 0]
                #expect(abs(centered - scores[a]) <= Self.outputTolerance * max(1, abs(scores[a])), "round \(t + 1) arm \(a): \(centered) against \(scores[a])")
            }
            // The trace says what it is, and the analyzer replays it and rebuilds the network.
            #expect(reader.run.optimizerJSON.contains("\"decayAnchor\":\"initial\""))
            #expect(reader.run.configJSON.contains("\"kind\" : \"recorded\""))
            let r = try analyze(path)
            #expect(r.replay.inconsistent == false)
            #expect(r.replay.largestMismatch <= Self.replayTolerance, "replay mismatch \(r.replay.largestMismatch)")
            #expect((r.replay.checkedSteps ?? 0) == settings.steps)
            let rec = try #require(r.reconstruction.test)
            #expect(rec.relativeResidual < Self.roundOff)
            #expect(rec.kernelFormMaxAbs < Self.roundOff)
            #expect(r.run.notes.contains { $0.contains("towards w₀") })
        }
    }

    /// The trace's optimizer against TrainNN's step: rate η·s·t, decay λ/t.
    @Test func optimizerMapping() throws {
        let sum = NeuralUCB.Training(round: 8, played: 8, eta: 0.05, lambda: 0.4, scale: 1, iterates: [])
        let mean = NeuralUCB.Training(round: 8, played: 8, eta: 0.5, lambda: 0.4, scale: 1.0 / 8, iterates: [])
        let o = try sum.traceOptimizer(), m = try mean.traceOptimizer()
        #expect(o.kind == .gd && o.decayAnchor == .initial && o.momentum == 0)
        #expect(abs(o.learningRate - 0.4) <= 1e-15 && abs(o.weightDecay - 0.05) <= 1e-15)
        #expect(abs(m.learningRate - 0.5) <= 1e-15 && abs(m.weightDecay - 0.05) <= 1e-15)
        let idle = NeuralUCB.Training(round: 8, played: 8, eta: 0, lambda: 0.4, scale: 1, iterates: [])
        #expect(throws: OptimError.self) { try idle.traceOptimizer() }
    }
}
