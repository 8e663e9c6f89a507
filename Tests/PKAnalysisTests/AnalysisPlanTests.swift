import Foundation
import Testing
@testable import PKAnalysis
import PKNetworks
import PKOptim
import PKTrace
import PKTraining

/// `analyze --plan`: what the estimate counts, checked against counts written out by hand.
@Suite("Analysis plan")
struct AnalysisPlanTests {
    static func momentumTrace(outputs: Int = 3) throws -> String {
        let spec = OptimizerSpec(kind: .sgd, learningRate: 0.1, momentum: 0.9)
        let cfg = config(name: "plan", data: #"{"kind":"spirals","train":30,"test":12,"classes":3}"#,
                         model: #"{"layers":[2,6,5,3],"activation":"tanh"}"#, loss: .crossEntropy,
                         optimizer: spec, steps: 7, batchSize: 5, checkpointEvery: 1)
        return try recordTrace(cfg, name: "plan.sqlite")
    }

    /// The factored first layer: R holds `out` scalars per query and channel for it, so
    /// P_R = P − in·out + out (2·6 weights → 6) for SGD momentum, P for Adam.
    @Test func querySideScalarsFactorTheFirstLayerUnderMomentumOnly() throws {
        let spec = try JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[2,6,5,3],"activation":"tanh"}"#.utf8))
        let model = try MLP(spec: spec)
        let momentum = try #require(PreconditionedForm(KernelForm(.momentum(rho: 0.9, dampening: 0, nesterov: false)), recordedKind: .sgd))
        let adam = try #require(PreconditionedForm(KernelForm(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 0.1)), recordedKind: .adam))
        let P = model.parameterCount   // 2·6+6 + 6·5+5 + 5·3+3 = 71
        #expect(P == 71)
        #expect(PathAnalyzer.querySideScalars(model: model, form: momentum) == P - 2 * 6 + 6)
        #expect(PathAnalyzer.querySideScalars(model: model, form: adam) == P)
    }

    /// The plan's kernel flops are `2·C·n_q·P_R·n_b` per step, summed (n_q = 12 held out + 30
    /// training points, batches of 5); every phase has work and time; alternatives are cheaper;
    /// planning stores nothing in the trace.
    @Test func planCountsTheBackwardProductsAndStoresNothing() throws {
        let path = try Self.momentumTrace()
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10)
        let PR = 71 - 12 + 6
        #expect(plan.kernelFlops == 2 * 3 * 42 * Double(PR) * 5 * 7)
        #expect(plan.phases.map(\.name) == ["steps", "kernel (backwards)", "kernel machines"])
        #expect(plan.phases.allSatisfy { $0.work > 0 && $0.seconds > 0 })
        #expect(abs(plan.seconds - plan.phases.reduce(0) { $0 + $1.seconds }) <= 1e-12 * plan.seconds)
        #expect(plan.queries == 42 && plan.train == 30 && plan.steps == 7)
        #expect(plan.cheaper.allSatisfy { $0.seconds < plan.seconds })
        #expect(plan.cheaper.contains { $0.option == "--queries test --scope exact" })
        // At twice the GEMM rate, half the time (every phase scales with the rate).
        let faster = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 20)
        #expect(abs(faster.seconds * 2 - plan.seconds) <= 1e-9 * plan.seconds)
        #expect(try TraceReader.open(path).analysis(key: AnalysisStore.key(AnalysisSettings())) == nil)
    }

    /// Plain SGD has no backward pass: no kernel flops, no backward phase.
    @Test func plainSGDHasNoBackwardPhase() throws {
        let cfg = config(name: "plan-sgd", data: #"{"kind":"moons","train":20,"test":8}"#,
                         model: #"{"layers":[2,5,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1), steps: 4, batchSize: 5)
        let path = try recordTrace(cfg, name: "plan-sgd.sqlite")
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10)
        #expect(plan.kernelFlops == nil)
        #expect(!plan.phases.contains { $0.name.hasPrefix("kernel (") })
    }
}
