import Foundation
import Testing
import PKData
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis
import PKTraining

/// Runs whose weight decay pulls towards their initial weights (`decayAnchor` "initial",
/// NeuralUCB's ridge): the step check replays them, the exact decomposition and the kernel form
/// (whose decay term is `R_wd = Σ_t J̄_t(−η_tλ(w_t − w₀))`) rebuild the network at round-off on
/// every route, and the anchor matters (the same trace read as a decay towards 0 is refused).
/// The kernel itself against its double sum: PreconditionedKernelTests' anchored cases.
@Suite("Anchored weight decay in the analysis")
struct AnchoredDecayAnalysisTests {
    /// The tolerances the unanchored runs are held to (AnalysisTests.everyOptimizerReconstructsAndReplays):
    /// reconstruction at round-off for a smooth network, relative and absolute.
    static let roundOff = 1e-9
    /// Replay from sparse checkpoints reaches each one to round-off (relative).
    static let replayTolerance = 1e-12

    static func spec(_ json: String) -> OptimizerSpec {
        try! JSONDecoder().decode(OptimizerSpec.self, from: Data(json.utf8))
    }

    static func run(_ optimizer: String, steps: Int = 24, checkpointEvery: Int = 1) -> RunConfig {
        config(name: "anchor", data: #"{"kind":"moons","train":40,"test":20,"noise":0.1}"#,
               model: #"{"layers":[2,16,16,1],"activation":"tanh"}"#, loss: .logistic,
               optimizer: spec(optimizer), steps: steps, batchSize: 10, checkpointEvery: checkpointEvery)
    }

    /// Every route that treats decay: plain SGD (the forward path-kernel route), momentum (the
    /// exact two-time kernel, and the windowed one), Adam (coupled), AdamW (decoupled), RMSProp
    /// with momentum, SGD with parameter groups (the preconditioned form with D = M).
    static let anchored = [
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.05,"decayAnchor":"initial"}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.05,"decayAnchor":"initial"}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.05,"decayAnchor":"initial"}"#,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.05,"decayAnchor":"initial"}"#,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.5,"decayAnchor":"initial"}"#,
        #"{"kind":"rmsprop","learningRate":0.003,"momentum":0.5,"weightDecay":0.05,"decayAnchor":"initial"}"#,
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.05,"decayAnchor":"initial","groups":[{"parameters":["layers.1.*"],"learningRate":0.5},{"parameters":["*.bias"],"learningRate":0.02,"weightDecay":0}]}"#,
    ]

    @Test(arguments: anchored)
    func reconstructsOnEveryRoute(optimizer: String) throws {
        var cfg = Self.run(optimizer)
        let path = try recordTrace(cfg)
        let r = try analyze(path, AnalysisSettings(nodes: 3))
        #expect(r.replay.inconsistent == false)
        #expect(r.reconstruction.test!.relativeResidual < Self.roundOff)
        #expect(r.kernelMachines.contains { $0.name == "path-km" })
        #expect(r.reconstruction.test!.kernelFormMaxAbs < Self.roundOff, "kernel form off by \(r.reconstruction.test!.kernelFormMaxAbs)")
        #expect(r.run.notes.contains { $0.contains("towards w₀") && $0.contains("R_wd = Σ_t J̄_t(−η_tλ·(w − w₀))") },
                "\(r.run.notes)")
        // The decay term is not negligible here (else the test could not fail).
        let share = try #require(r.run.notes.first { $0.contains("R_wd") })
        let value = Double(share.split(separator: "=").last!.split(separator: " ").first!)!
        #expect(value > 1e-3, "R_wd is only \(value) of the change: \(share)")
        // Momentum also through the windowed two-time kernel (every step kept: tail 1e-300).
        if cfg.optimizer.momentum > 0 && cfg.optimizer.kind == .sgd && cfg.optimizer.groups.isEmpty {
            var windowed = AnalysisSettings(nodes: 3)
            windowed.momentumTolerance = 1e-300
            let w = try analyze(path, windowed)
            #expect(w.settings.pathKernel?.contains("tail <") == true)
            #expect(w.reconstruction.test!.kernelFormMaxAbs < Self.roundOff, "windowed kernel form off by \(w.reconstruction.test!.kernelFormMaxAbs)")
        }
        // Sparse checkpoints: the replay (from w₀'s anchor and the stored state) reaches each one.
        cfg.training.checkpointEvery = 5
        let sparse = try analyze(try recordTrace(cfg, name: "sparse.sqlite"), AnalysisSettings(nodes: 3))
        #expect(sparse.replay.largestMismatch <= Self.replayTolerance)
        #expect(abs(sparse.reconstruction.test!.relativeResidual - r.reconstruction.test!.relativeResidual) < Self.roundOff)
    }

    /// Plain SGD's stored weights against the rule written out here (an oracle independent of
    /// the optimizer chain): w_{t+1} = w_t − η(ḡ_t + λ(w_t − w₀)), ḡ_t the mean batch gradient.
    @Test func storedWeightsFollowTheHandRule() throws {
        let cfg = Self.run(Self.anchored[0], steps: 6)
        let path = try recordTrace(cfg)
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let w = try (0...6).map { try reader.checkpoint(step: $0) }
        for t in 0..<6 {
            let b = run.stepRecords[t].batch.map(Int.init)
            let xs = run.trainX.rows(at: b)
            let g = run.loss.evaluate(outputs: run.model.forward(w[t], xs), targets: run.trainY.rows(at: b)).perExampleGradient
            let grad = run.model.vjp(w[t], xs, cotangent: (1 / Double(b.count)) * g)
            var next = w[t]
            for k in next.indices {
                let decay: Double = 0.05 * (w[t][k] - w[0][k])
                next[k] -= 0.1 * (grad[k] + decay)
            }
            let err = zip(next, w[t + 1]).map { abs($0 - $1) }.max()!
            #expect(err < 1e-13, "step \(t): \(err) off the hand rule")
        }
    }

    /// The option bites: anchored and plain decay end at different weights, and the anchored
    /// trace read as a decay towards 0 (the key removed from optimizer_json) fails the step check.
    @Test func theAnchorMatters() throws {
        let anchored = try recordTrace(Self.run(Self.anchored[0], steps: 10))
        let plain = try recordTrace(Self.run(#"{"kind":"sgd","learningRate":0.1,"weightDecay":0.05}"#, steps: 10))
        let a = try TraceReader.open(anchored).checkpoint(step: 10), p = try TraceReader.open(plain).checkpoint(step: 10)
        let apart = zip(a, p).map { abs($0 - $1) }.max()!
        #expect(apart > 1e-3, "anchored and plain decay differ by only \(apart)")
        try sqlite(anchored, "UPDATE run SET optimizer_json = replace(optimizer_json, '\"decayAnchor\":\"initial\",', '')")
        #expect(!(try TraceReader.open(anchored).run.optimizerJSON.contains("decayAnchor")))
        #expect { try analyze(anchored) } throws: { "\($0)".contains("is not a step of the recorded loss and optimizer") }
    }

    /// A pathkernel that does not know an optimizer key refuses the trace, pointing to a newer
    /// pathkernel (what a build from before `decayAnchor` does with one that has it), and a value
    /// this build does not know is refused the same way.
    @Test func unknownOptionsAreRefused() throws {
        for (from, to) in [("\"decayAnchor\"", "\"decayAnchorFromTheFuture\""), ("\"initial\"", "\"median\"")] {
            let path = try recordTrace(Self.run(Self.anchored[0], steps: 3))
            try sqlite(path, "UPDATE run SET optimizer_json = replace(optimizer_json, '\(from)', '\(to)')")
            #expect { try analyze(path) } throws: { e in
                "\(e)".contains("optimizer_json") && "\(e)".contains("newer pathkernel")
            }
        }
    }
}
