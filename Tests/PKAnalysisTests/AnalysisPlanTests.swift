import Foundation
import Testing
@testable import PKAnalysis
import PKNetworks
import PKNumerics
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
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10, threads: 2)
        let PR = 71 - 12 + 6
        #expect(plan.kernelFlops == 2 * 3 * 42 * Double(PR) * 5 * 7)
        #expect(plan.phases.map(\.name) == ["steps", "kernel (backwards)", "kernel machines"])
        #expect(plan.phases.allSatisfy { $0.work > 0 && $0.seconds > 0 })
        #expect(abs(plan.seconds - plan.phases.reduce(0) { $0 + $1.seconds }) <= 1e-12 * plan.seconds)
        #expect(plan.queries == 42 && plan.train == 30 && plan.steps == 7)
        #expect(plan.cheaper.allSatisfy { $0.seconds < plan.seconds })
        #expect(plan.cheaper.contains { $0.option == "--queries test --scope exact" })
        // At twice the GEMM rate the GEMM work takes half the time, the tanh evaluations (timed
        // on their own) the same: more than half the time in all (relu: exactly half, below).
        let faster = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 20, threads: 2)
        #expect(faster.seconds < plan.seconds && faster.seconds * 2 > plan.seconds * (1 + 1e-6))
        #expect(try TraceReader.open(path).analysis(key: AnalysisStore.key(AnalysisSettings())) == nil)
    }

    /// The plan names the activation times it priced with: tanh for a tanh MLP (positive and
    /// finite), none for a relu one.
    @Test func planReportsItsActivationTimes() throws {
        let path = try Self.momentumTrace()
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10, threads: 2)
        #expect(Array(plan.activationSeconds.keys) == ["tanh"])
        let s = try #require(plan.activationSeconds["tanh"])
        #expect(s > 0 && s.isFinite)
        let relu = try recordTrace(config(name: "plan-relu", data: #"{"kind":"spirals","train":20,"test":6,"classes":2}"#,
                                          model: #"{"layers":[2,5,1],"activation":"relu"}"#, loss: .logistic,
                                          optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1), steps: 3, batchSize: 5, checkpointEvery: 1),
                                   name: "plan-relu.sqlite")
        #expect(try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(relu), gemmRate: 10, threads: 2).activationSeconds.isEmpty)
    }

    /// `concurrentMedianSeconds` runs its body on every thread with that thread's index, and
    /// returns one call's time: a call that sleeps 2 ms takes at least that (and, on a machine
    /// that is not stalled, well under 200 ms: a bound that only a timer counting every thread's
    /// calls together, or none, would break).
    @Test func concurrentTimerTimesOneCallPerThread() {
        let hold = Parallel.holdThreadCount()
        defer { hold.release() }
        Parallel.threads = 2
        let seen = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        seen.initialize(repeating: 0, count: 2)
        defer { seen.deallocate() }
        let s = PathAnalyzer.concurrentMedianSeconds(runs: 3) { t in
            seen[t] += 1
            usleep(2_000)
            return 0
        }
        #expect(seen[0] == 4 && seen[1] == 4)   // one untimed call and 3 timed ones each
        #expect(s >= 2e-3 && s < 0.2)
    }

    /// An MLP's backward phase by hand (session 14): its GEMM work at `backwardGemmEfficiency`
    /// (the features of q shared nodes, at their width's rate `gemmWidthFactor` since session 23,
    /// with `queryFeatureHalfWidth` since session 25,
    /// and `2·C·Q·P_R·(q + n_b)`), plus `querySideScalarCost`
    /// per R scalar, `C·Q·(P_R + rowScalars·rows)` of them. In a plan the memory-bound part's
    /// seconds do not depend on the GEMM rate: at twice the rate the backward phase takes more
    /// than half the time, by exactly that part.
    @Test func mlpBackwardPhaseByHand() throws {
        let tolerance = 1e-12   // the same sums in another order
        let net = try Self.mlp([3, 7, 5, 2], "tanh")
        let Q = 20.0, nb = 8.0, q = 4.0, PR = 60.0, perScalar = 2.5
        let C = Double(net.outputDim), f = net.featureCostPerExample, rows = 7.0 + 5 + 2
        func cost(_ scalarCost: Double) -> AnalysisCostModel {
            AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: Int(q), blocks: 1, kernelForm: true,
                              backward: true, querySide: PR, windowSides: 1, machines: nil, querySideScalarCost: scalarCost)
        }
        let width = (6.0 + AnalysisCostModel.queryFeatureHalfWidth) / 6   // hidden widths 7 and 5
        #expect(AnalysisCostModel.gemmWidthFactor(net, halfWidth: AnalysisCostModel.queryFeatureHalfWidth) == width)
        #expect(AnalysisCostModel.queryFeatureHalfWidth != AnalysisCostModel.gemmHalfWidth)   // so that this test tells them apart
        let gemm = (q * Q * width * f + 2 * C * Q * PR * (q + nb)) * PathAnalyzer.efficiency.backward / AnalysisCostModel.backwardGemmEfficiency
        let memory = perScalar * C * Q * (PR + AnalysisCostModel.rowScalars * rows)
        #expect(abs(cost(perScalar).backwardPerStep - (gemm + memory)) <= tolerance * (gemm + memory))
        #expect(abs(cost(0).backwardPerStep - gemm) <= tolerance * gemm)
        // The kernel sums: per layer each (query, channel) row's n_b values into N's block and
        // C·n_b into the full-mode block, then Q·C·C·n_b values scattered into K^p.
        let perValue = 0.7
        let sums = AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: Int(q), blocks: Int(C), kernelForm: true,
                                     backward: true, querySide: PR, windowSides: 1, machines: nil, kernelValueCost: perValue)
        let sumsPart = perValue * (AnalysisCostModel.kernelAddFactor * Q * C * 3 * nb * (1 + C) + AnalysisCostModel.kernelScatterFactor * Q * C * C * nb)
        #expect(abs(sums.backwardPerStep - (gemm + sumsPart)) <= tolerance * (gemm + sumsPart))
        // A compact first layer: R's update over all of P_R at the plain kernel's price, the
        // products over its `c` scalars at the compact kernel's, the rest at the plain one's.
        let p = 1.5, c = 20.0, pc = 2.5
        let compact = AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: Int(q), blocks: 1, kernelForm: true,
                                        backward: true, querySide: PR, windowSides: 1, machines: nil, productFlopCost: p,
                                        compactQuerySide: c, compactProductFlopCost: pc)
        let compactGemm = (q * Q * width * f + p * 2 * C * Q * (PR * q + (PR - c) * nb) + pc * 2 * C * Q * c * nb)
            * PathAnalyzer.efficiency.backward / AnalysisCostModel.backwardGemmEfficiency
        #expect(abs(compact.backwardPerStep - compactGemm) <= tolerance * compactGemm)
        #expect(compact.backwardPerStep > AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: Int(q), blocks: 1,
                                                            kernelForm: true, backward: true, querySide: PR, windowSides: 1, machines: nil,
                                                            productFlopCost: p).backwardPerStep)

        let measured = PathAnalyzer.measuredQuerySideSeconds(.f64)
        #expect(measured.isFinite && measured > 0 && measured < 1e-6, "seconds per scalar: \(measured)")
        // relu: no smooth activation, whose timed evaluations would be a second fixed part.
        let cfg = config(name: "plan-relu-momentum", data: #"{"kind":"spirals","train":30,"test":12,"classes":3}"#,
                         model: #"{"layers":[2,6,5,3],"activation":"relu"}"#, loss: .crossEntropy,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1, momentum: 0.9), steps: 7, batchSize: 5, checkpointEvery: 1)
        let path = try recordTrace(cfg, name: "plan-relu-momentum.sqlite")
        func backwardSeconds(_ rate: Double) throws -> Double {
            let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: rate, threads: 2)
            return try #require(plan.phases.first { $0.name == "kernel (backwards)" }).seconds
        }
        let slow = try backwardSeconds(10), fast = try backwardSeconds(20)
        #expect(fast < slow && 2 * fast > slow * (1 + 1e-6))
        // slow = g + m and fast = g/2 + m: the fixed part m (R's memory-bound passes, R's own
        // kernels, which do not use OpenBLAS, and the kernel sums) is what the measured speeds predict.
        let fixed = 2 * fast - slow
        let trace = try TraceRun.load(TraceReader.open(path))
        let mlp = try #require(trace.model as? MLP)
        let layerRows = Double(mlp.layers.reduce(0) { $0 + $1.outputs })
        let scalars = 3 * 42 * (Double(71 - 12 + 6) + AnalysisCostModel.rowScalars * layerRows) * 7
        let memoryPart = AnalysisCostModel.querySideFactor * measured * scalars / 2
        // R's update and products: relu with momentum takes exact quadrature, depth 3: q = 2 shared
        // nodes, 0.75·2 + 0.25·(1 + 1.2)·2 = 2.6 rows per query and step; batches of 5.
        let productRate = PathAnalyzer.measuredProductRate(.f64, batch: 5)
        #expect(productRate.isFinite && productRate > 0.1 && productRate < 1e4, "product kernel: \(productRate) GFLOP/s")
        let productPart = 2 * 3 * 42 * Double(71 - 12 + 6) * (2.6 + 5) * 7 / (productRate * 1e9 * 2 * AnalysisCostModel.productKernelEfficiency)
        // The kernel sums, full mode (3 outputs, 42 queries, 3 layers, batches of 5), at `dsymv`'s speed.
        let sumsSeconds = PathAnalyzer.measuredSymvSeconds() * 7 / 2
            * (AnalysisCostModel.kernelAddFactor * 42 * 3 * 3 * 5 * (1 + 3) + AnalysisCostModel.kernelScatterFactor * 42 * 3 * 3 * 5)
        let predicted = memoryPart + productPart + sumsSeconds
        #expect(abs(fixed - predicted) <= 1e-9 * predicted, "fixed part \(fixed) s against \(memoryPart) + \(productPart) s")
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10, threads: 2)
        #expect(plan.productRate == productRate)
    }

    /// Plain SGD has no backward pass: no kernel flops, no backward phase.
    @Test func plainSGDHasNoBackwardPhase() throws {
        let cfg = config(name: "plan-sgd", data: #"{"kind":"moons","train":20,"test":8}"#,
                         model: #"{"layers":[2,5,1],"activation":"tanh"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1), steps: 4, batchSize: 5)
        let path = try recordTrace(cfg, name: "plan-sgd.sqlite")
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10, threads: 2)
        #expect(plan.kernelFlops == nil)
        #expect(!plan.phases.contains { $0.name.hasPrefix("kernel (") })
    }

    /// A relu network has no smooth activation to time: its plan scales exactly with the GEMM
    /// rate (the tanh one above does not), but for the ridge machines' eigendecompositions'
    /// memory-bound half, `eigenSymvFactor·m³/6` element reads at the measured `dsymv` speed
    /// (the two fits side by side on the two threads: one fit's time).
    @Test func reluPlanScalesWithTheGemmRate() throws {
        let cfg = config(name: "plan-relu", data: #"{"kind":"moons","train":20,"test":8}"#,
                         model: #"{"layers":[2,5,1],"activation":"relu"}"#, loss: .logistic,
                         optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1), steps: 4, batchSize: 5)
        let path = try recordTrace(cfg, name: "plan-relu.sqlite")
        let slow = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 10, threads: 2)
        let fast = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: 20, threads: 2)
        let symv = try #require(slow.symvSeconds)
        #expect(symv.isFinite && symv > 0 && symv < 1e-6, "dsymv: \(symv) s per element")
        // And ntkinf-km's training on one thread: 4 steps gather and read 28 queries × 5 batch points twice.
        let m = 20.0, fixed = AnalysisCostModel.eigenSymvFactor * m * m * m / 6 * symv + 4 * 2 * 28 * 5 * symv
        #expect(abs((slow.seconds - fast.seconds * 2) + fixed) <= 1e-9 * slow.seconds, "fixed part \(2 * fast.seconds - slow.seconds) s against \(fixed) s")
    }

    /// From `eigenProbeFrom` rows on, each ridge fit is the measured probe's time scaled by the
    /// cube of the rows (the two fits side by side on the two threads: one fit's time), fixed
    /// whatever the GEMM rate; one row fewer and the probe is neither measured nor used.
    @Test func largeRidgeSystemsScaleTheEigenProbe() throws {
        let tolerance = 1e-9   // the same sums in another order
        func plan(train: Int, rate: Double) throws -> AnalysisPlan {
            let cfg = config(name: "plan-eigen-\(train)", data: #"{"kind":"moons","train":"# + String(train) + #","test":4}"#,
                             model: #"{"layers":[2,3,1],"activation":"relu"}"#, loss: .logistic,
                             optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.1), steps: 2, batchSize: 5)
            let path = try recordTrace(cfg, name: "plan-eigen-\(train).sqlite")
            return try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(path), gemmRate: rate, threads: 2)
        }
        let from = PathAnalyzer.eigenProbeFrom
        let slow = try plan(train: from, rate: 10), fast = try plan(train: from, rate: 20)
        let probe = try #require(slow.eigenSeconds)
        #expect(probe.isFinite && probe > 0 && probe < 60, "probe: \(probe) s")
        let cube = pow(Double(from) / Double(PathAnalyzer.eigenProbeRows), 3)
        // ntkinf-km's training: 2 steps gather and read (train + 4) queries × 5 batch points twice.
        func training(_ train: Int, _ plan: AnalysisPlan) throws -> Double { 2 * 2 * Double(train + 4) * 5 * (try #require(plan.symvSeconds)) }
        let fixed = probe * cube + (try training(from, slow))
        #expect(abs((slow.seconds - fast.seconds * 2) + fixed) <= tolerance * slow.seconds,
                "fixed part \(2 * fast.seconds - slow.seconds) s against \(fixed) s")
        let below = try plan(train: from - 1, rate: 10)
        #expect(below.eigenSeconds == nil)
        // Below the threshold the fitted formula: the fixed part is its dsymv half.
        let belowFast = try plan(train: from - 1, rate: 20)
        let symv = try #require(below.symvSeconds), m = Double(from - 1)
        let symvPart = AnalysisCostModel.eigenSymvFactor * m * m * m / 6 * symv + (try training(from - 1, below))
        #expect(abs((below.seconds - belowFast.seconds * 2) + symvPart) <= tolerance * below.seconds)
    }

    /// The probe itself: one eigendecomposition of a kernel matrix, LAPACK succeeding, on one
    /// thread and on two side by side.
    @Test func eigenProbeTimesADecomposition() {
        for threads in [1, 2] {
            let s = EigenSpeed.measure(m: 64, threads: threads)
            #expect(s.isFinite && s > 0 && s < 10, "\(threads) threads: \(s) s")
        }
    }

    static func mlp(_ layers: [Int], _ activation: String = "relu") throws -> MLP {
        let json = #"{"layers":["# + layers.map(String.init).joined(separator: ",") + #"],"activation":""# + activation + #""}"#
        return try MLP(spec: JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)))
    }

    /// An MLP's feature GEMMs as `featureRows` runs them, counted by hand: 2-6-5-3 has F = 12 +
    /// 30 + 15 = 57, F_0 = 12 and one inner layer (30): forward 2·57, C = 3 backward passes
    /// 2·3·30, one JVP 2·(2·57 − 12); 784-16-10 has no inner layer, so no backward GEMM.
    @Test func mlpFeatureCostCountsTheGemmsFeatureRowsRuns() throws {
        let countTolerance = 1e-12   // sums of integers
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= countTolerance * b }
        let small = try Self.mlp([2, 6, 5, 3])
        let F: Double = 57, F0: Double = 12, inner: Double = 30, C: Double = 3
        let smallPasses: Double = 2 * F + 2 * C * inner
        let smallJVP: Double = 2 * (2 * F - F0)
        #expect(close(small.featureCostWithoutTangents, smallPasses))
        #expect(close(small.featureCostPerExample, smallPasses + smallJVP))
        let shallow = try Self.mlp([784, 16, 10])
        let shallowF: Double = 784 * 16 + 16 * 10, shallowF0: Double = 784 * 16
        let shallowJVP: Double = 2 * (2 * shallowF - shallowF0)
        #expect(close(shallow.featureCostWithoutTangents, 2 * shallowF))
        #expect(close(shallow.featureCostPerExample, 2 * shallowF + shallowJVP))
    }

    /// Small GEMMs cost more per flop: the width factor `(k + h)/k` falls strictly with the mean
    /// hidden width k towards 1, is that hand formula (2-64-128-1: k = 96), and is 1 for a layer
    /// network.
    @Test func gemmWidthFactorFallsWithTheWidth() throws {
        let h = AnalysisCostModel.gemmHalfWidth
        let tolerance = 1e-12   // one division
        let factors = try [8, 16, 64, 128, 256, 1024, 4096].map { k in try AnalysisCostModel.gemmWidthFactor(Self.mlp([2, k, k, 1])) }
        #expect(zip(factors, factors.dropFirst()).allSatisfy { $0 > $1 } && factors.allSatisfy { $0 > 1 })
        #expect(abs(factors[2] - (64 + h) / 64) <= tolerance * factors[2])
        let mixed = try AnalysisCostModel.gemmWidthFactor(Self.mlp([2, 64, 128, 1]))
        #expect(abs(mixed - (96 + h) / 96) <= tolerance * mixed)
        let json = #"{"kind":"sequential","input":[3],"layers":[{"kind":"dense","out":4},{"kind":"relu"},{"kind":"dense","out":2}]}"#
        let net = try LayerNetwork(spec: JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)))
        #expect(AnalysisCostModel.gemmWidthFactor(net) == 1)
    }

    /// A layer network's steps phase on the backward route, by hand: `layerStepsFactor` times
    /// the step check and update `10·n_b·P` and the batch's and the dynamics' features; its
    /// backward phase the shared nodes' features and the products, with no row cost.
    @Test func layerNetworkStepsPhaseByHand() throws {
        let tolerance = 1e-12   // the same sums in another order
        let json = #"{"kind":"sequential","input":[1,6,6],"layers":[{"kind":"conv2d","out":2,"kernel":3,"padding":"same"},{"kind":"relu"},{"kind":"maxpool2d","kernel":2},{"kind":"flatten"},{"kind":"dense","out":3}]}"#
        let net = try LayerNetwork(spec: JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)))
        let Q = 20.0, nb = 8.0, q = 4.0, dyn = 5.0
        let cost = AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: Int(q), blocks: 1, kernelForm: true,
                                     backward: true, windowSides: 1, machines: nil, dynamicsPerStep: dyn)
        let P = Double(net.parameterCount), C = Double(net.outputDim), f = net.featureCostPerExample
        let steps = AnalysisCostModel.layerStepsFactor * (10 * nb * P + (nb + dyn) * f)
        #expect(abs(cost.forwardPerStep - steps) <= tolerance * steps)
        let backward = q * Q * f + 2 * C * Q * P * (q + nb)
        #expect(abs(cost.backwardPerStep - backward) <= tolerance * backward)
        // A feature cost given (the plan's `layerFeatureCost` at the machine's rate) replaces the formula everywhere.
        let given = 3.7 * f
        let priced = AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: Int(q), blocks: 1, kernelForm: true,
                                       backward: true, windowSides: 1, machines: 30, dynamicsPerStep: dyn, featureCost: given)
        let pricedSteps = AnalysisCostModel.layerStepsFactor * (10 * nb * P + (nb + dyn) * given)
        #expect(abs(priced.forwardPerStep - pricedSteps) <= tolerance * pricedSteps)
        let pricedBackward = q * Q * given + 2 * C * Q * P * (q + nb)
        #expect(abs(priced.backwardPerStep - pricedBackward) <= tolerance * pricedBackward)
        let widths = Double(net.featureScalarsPerExample)
        // The two ridge fits' eigendecompositions without their memory-bound part (not given here).
        let machines = 2 * AnalysisCostModel.eigenGemmFactor * PathAnalyzer.efficiency.machines * 30.0 * 30 * 30
            + (Q + 30) * given + 2 * Q * 30 * widths
        #expect(abs(priced.machines - machines) <= tolerance * machines)
        // The machine's rates: the formula at the reference rate, its fixed share scaled with the rate elsewhere.
        let share = AnalysisCostModel.layerGemmShare
        for (precision, reference) in [(AnalysisSettings.Precision.f64, AnalysisCostModel.layerReferenceRate.f64),
                                       (.f32, AnalysisCostModel.layerReferenceRate.f32)] {
            let atReference = AnalysisCostModel.layerFeatureCost(net, gemmRate: reference, precision: precision)
            #expect(abs(atReference - f) <= tolerance * f)
            let atTwice = AnalysisCostModel.layerFeatureCost(net, gemmRate: 2 * reference, precision: precision)
            #expect(abs(atTwice - (share + 2 * (1 - share)) * f) <= tolerance * f)
            // The layer probe: at its reference time the formula; 1.5 times slower, the fixed share
            // 1.5 times the work; clamped to [0.25, 4]; a failed probe (0, NaN) leaves the formula.
            let probe = precision == .f32 ? AnalysisCostModel.layerProbeReference.f32 : AnalysisCostModel.layerProbeReference.f64
            let atProbe = AnalysisCostModel.layerFeatureCost(net, gemmRate: reference, precision: precision, probeSeconds: probe)
            #expect(abs(atProbe - f) <= tolerance * f)
            let slower = AnalysisCostModel.layerFeatureCost(net, gemmRate: 2 * reference, precision: precision, probeSeconds: 1.5 * probe)
            #expect(abs(slower - (share + 2 * 1.5 * (1 - share)) * f) <= tolerance * f)
            let clamped = AnalysisCostModel.layerFeatureCost(net, gemmRate: reference, precision: precision, probeSeconds: 100 * probe)
            #expect(abs(clamped - (share + 4 * (1 - share)) * f) <= tolerance * f)
            for bad in [0.0, .nan, .infinity] {
                let unmeasured = AnalysisCostModel.layerFeatureCost(net, gemmRate: reference, precision: precision, probeSeconds: bad)
                #expect(abs(unmeasured - f) <= tolerance * f)
            }
        }
        // The probe itself: a positive, finite time in either precision.
        for precision in [AnalysisSettings.Precision.f64, .f32] {
            let s = PathAnalyzer.measuredLayerProbeSeconds(precision)
            #expect(s > 0 && s.isFinite)
        }
    }

    /// The steps phase of plain SGD by hand, with the fitted constants: per step `(k + h)/k` times
    /// the GEMMs (step check and update `10·n_b·P`, the training side's features without JVP, the
    /// dynamics' and the queries' features at q nodes, their kernels `2·Q·n_b·Σ(in + C·out)` per
    /// node), plus the activations unscaled; exact quadrature's node counts and breakpoint
    /// search. A narrow network's work per GEMM flop is larger than a wide one's.
    @Test func stepsPhaseReproducesTheHandCount() throws {
        let tolerance = 1e-12   // the same sums in another order
        let Q = 40.0, nb = 10.0, q = 4.0, dyn = 2.5, smooth = 1_000.0
        func model(_ net: MLP, exact: Bool = false) -> AnalysisCostModel {
            AnalysisCostModel(model: net, queries: Int(Q), train: 30, meanBatch: nb, nodes: exact ? 2 : Int(q), exact: exact, blocks: 1,
                              kernelForm: true, backward: false, windowSides: 1, machines: nil, dynamicsPerStep: dyn, smoothPerExample: smooth)
        }
        func gemms(_ net: MLP, qd: Double, qf: Double) -> Double {
            let P = Double(net.parameterCount), widths = Double(net.featureScalarsPerExample)
            let stepCheck: Double = 10 * nb * P, trainingSide: Double = nb * net.featureCostWithoutTangents
            let features: Double = (dyn + qf * Q) * net.featureCostPerExample
            let kernels: Double = qd * 2 * Q * nb * widths
            return stepCheck + trainingSide + features + kernels
        }
        var perFlop: [Double] = []
        for k in [16, 256] {
            let net = try Self.mlp([3, k, k, 2])
            let factor = (Double(k) + AnalysisCostModel.gemmHalfWidth) / Double(k)
            let smoothPart: Double = (3 * nb + dyn + q * Q) * smooth
            let expected: Double = factor * gemms(net, qd: q, qf: q) + smoothPart
            let got = model(net).forwardPerStep
            #expect(abs(got - expected) <= tolerance * expected, "width \(k)")
            #expect(model(net).backwardPerStep == 0)
            perFlop.append((got - smoothPart) / gemms(net, qd: q, qf: q))
        }
        #expect(perFlop[0] > 2 * perFlop[1])
        // Exact quadrature, depth 3: 2 shared nodes, a share 0.25 with 1.2 breakpoints → node
        // evaluations 0.75·2 + 0.25·4.4 = 2.6, features 0.75·2 + 2·0.25·4.4 = 3.7; the search: per
        // query two GEMMs of the first layer (3·64) and four of the second and third (64·64 + 64·2)
        // on 1 + 0.25·1.2 = 1.3 pieces.
        let net = try Self.mlp([3, 64, 64, 2])
        let first: Double = 3 * 64, later: Double = 64 * 64 + 64 * 2, pieces = 1.3
        let search: Double = Q * 2 * (2 * first + 4 * pieces * later)
        let factor: Double = (64 + AnalysisCostModel.gemmHalfWidth) / 64
        let exactSmooth: Double = (3 * nb + dyn + 3.7 * Q) * smooth
        let expected: Double = factor * (gemms(net, qd: 2.6, qf: 3.7) + search) + exactSmooth
        let got = model(net, exact: true).forwardPerStep
        #expect(abs(got - expected) <= tolerance * expected)
    }

    /// The smooth units one forward pass evaluates: every hidden unit of a tanh MLP, none of a
    /// relu one; a layer network's smooth activation layers, inside residual blocks too.
    @Test func smoothActivationUnitsCountTheHiddenUnits() throws {
        func mlp(_ json: String) throws -> MLP { try MLP(spec: JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8))) }
        #expect(try mlp(#"{"layers":[2,6,5,3],"activation":"tanh"}"#).smoothActivationUnits == [.tanh: 11])
        #expect(try mlp(#"{"layers":[2,6,5,3],"activation":"gelu"}"#).smoothActivationUnits == [.gelu: 11])
        #expect(try mlp(#"{"layers":[2,6,5,3],"activation":"relu"}"#).smoothActivationUnits.isEmpty)
        let dense = try Dense(inputs: 4, outputs: 4)
        let block = try Sequential([dense, ActivationLayer(.tanh, shape: [4])])
        let net = try Sequential([Dense(inputs: 3, outputs: 4), ActivationLayer(.sigmoid, shape: [4]), Residual(block: block),
                                  ActivationLayer(.relu, shape: [4]), Dense(inputs: 4, outputs: 2)])
        #expect(LayerNetwork.smoothUnits(in: net) == [Activation.sigmoid: 4, .tanh: 4])
    }

    /// `quadratureEvaluations` against the plainest count: every pair of every hidden layer
    /// costs `M²` of its larger self variance (`M` for a point with itself, in a Gram matrix, and
    /// for each point's own 1-D sum between two sets), with the self variances carried by
    /// `GaussianExpectation.pair` point by point.
    @Test func quadratureEvaluationsCountEveryPair() throws {
        let spec = try JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[3,8,8,8,1],"activation":"tanh","sigmaW":1.5,"sigmaB":0.1}"#.utf8))
        let kernel = try InfiniteWidthKernel(spec: spec)
        var rng = PortableRandom(seed: 5)
        let x1 = Matrix(rows: 7, cols: 3, data: (0..<21).map { _ in 4 * rng.normal() })
        let x2 = Matrix(rows: 5, cols: 3, data: (0..<15).map { _ in rng.normal() })
        func plain(_ a: Matrix, _ b: Matrix?) -> Double {
            let sw2 = 2.25, sb2 = 0.01
            func variance(_ x: Matrix, _ r: Int) -> Double { (0..<3).reduce(0.0) { $0 + x[r, $1] * x[r, $1] } / 3 }
            var ka = (0..<a.rows).map { variance(a, $0) }, kb = b.map { m in (0..<m.rows).map { variance(m, $0) } } ?? ka
            var total = 0.0
            for _ in 0..<3 {   // hidden layers
                let qa = ka.map { sw2 * $0 + sb2 }, qb = kb.map { sw2 * $0 + sb2 }
                for i in 0..<qa.count {
                    for j in 0..<qb.count {
                        let m = Double(GaussianExpectation.nodeCount(maxVariance: max(qa[i], qb[j])))
                        if b == nil { if j > i { total += m * m } else if j == i { total += m } } else { total += m * m }
                    }
                }
                if b != nil {
                    total += qa.reduce(0) { $0 + Double(GaussianExpectation.nodeCount(maxVariance: $1)) }
                    total += qb.reduce(0) { $0 + Double(GaussianExpectation.nodeCount(maxVariance: $1)) }
                }
                ka = qa.map { GaussianExpectation.pair(.tanh, leakySlope: 0, q1: $0, q2: $0, c: $0).value }
                kb = b == nil ? ka : qb.map { GaussianExpectation.pair(.tanh, leakySlope: 0, q1: $0, q2: $0, c: $0).value }
            }
            return total
        }
        // Counts of integers: equal up to the sums' rounding (named: relative 1e-12).
        let countTolerance = 1e-12
        for (a, b) in [(x1, Optional(x2)), (x1, nil), (x2, Optional(x1))] {
            let expected = plain(a, b)
            #expect(expected > 3 * 97 * 97)
            #expect(abs(kernel.quadratureEvaluations(a, b) - expected) <= countTolerance * expected)
        }
        // Closed forms evaluate nothing.
        let relu = try InfiniteWidthKernel(spec: JSONDecoder().decode(ModelSpec.self, from: Data(#"{"layers":[3,8,1],"activation":"relu"}"#.utf8)))
        #expect(relu.quadratureEvaluations(x1, x2) == 0)
    }

    /// A long plan's rates (`refineMeasurements`): each rate is the median of its measurements
    /// (the middle one, or the mean of the two middle ones); the first is taken once and kept;
    /// the budget is 1 % of the first estimate, at most 2 s, none below half a second; rounds
    /// run while the next fits, at least one.
    @Test func longPlansMeasureTheirRatesAgainAndTakeTheMedian() {
        let m = Measurements<String>()
        var calls = 0
        #expect(m.value("a") { calls += 1; return 30 } == 30)
        #expect(m.value("a") { calls += 1; return 99 } == 30)
        #expect(calls == 1)
        m.add("a") { 20 }
        #expect(m.value("a") { 0 } == 25)   // 20, 30: the mean of the middle two (exact in binary)
        m.add("a") { 50 }
        #expect(m.value("a") { 0 } == 30)   // 20, 30, 50
        #expect(m.count("a") == 3 && m.count("b") == 0)
        m.forget()
        #expect(m.count("a") == 0)

        #expect(PathAnalyzer.refinementSeconds(estimate: 30) == nil)
        #expect(PathAnalyzer.refinementSeconds(estimate: 49) == nil)
        #expect(PathAnalyzer.refinementSeconds(estimate: 100) == 1.0)
        #expect(PathAnalyzer.refinementSeconds(estimate: 600) == 2.0)
        #expect(PathAnalyzer.refinementSeconds(estimate: .nan) == nil)
        #expect(PathAnalyzer.refinementSeconds(estimate: .infinity) == nil)

        // A microbenchmark with no time to spend: a warm-up and the minimum of timed runs.
        var runs = 0
        let median = PathAnalyzer.medianSeconds(budget: 0) { runs += 1 }
        #expect(runs == PathAnalyzer.microbenchmarkRuns.minimum + 1)
        #expect(median >= 0 && median.isFinite)

        // Rounds: one with no time to spend; with time, more while the next fits (each round
        // here takes at least 20 ms, so at most 0.1 s holds 4 of them: 4 × 20 + 20 > 0.1 for the
        // next). (Not `refineMeasurements` itself: it changes this process's rates under other
        // tests that compare a plan with an analysis.)
        var one = 0
        #expect(PathAnalyzer.rounds(seconds: 0) { one += 1 } == 1 && one == 1)
        let some = PathAnalyzer.rounds(seconds: 0.1) { Thread.sleep(forTimeInterval: 0.02) }
        #expect(some >= 1 && some <= 4, "\(some) rounds of 20 ms in 0.1 s")
    }

    /// ntkinf-km's training in Θ's values passed over, counted by hand: full-batch GD in order
    /// reads Θ itself (T·n_q·n); minibatches are gathered first (2·n_q·|B| per step); momentum,
    /// scope exact and a layer network skip the machine (0).
    @Test func analyticTrainingCountsThetasBatchColumns() throws {
        func elements(_ optimizer: OptimizerSpec, batch: Int?, scope: AnalysisSettings.Scope = .full,
                      model: String = #"{"layers":[2,5,1],"activation":"relu"}"#) throws -> Double {
            let cfg = config(name: "ntkinf", data: #"{"kind":"moons","train":12,"test":6}"#, model: model,
                             loss: .logistic, optimizer: optimizer, steps: 5, batchSize: batch)
            let reader = try TraceReader.open(try recordTrace(cfg, name: "ntkinf.sqlite"))
            defer { reader.close() }
            var settings = AnalysisSettings()
            settings.scope = scope
            return AnalysisCostModel.analyticTrainingElements(context: try AnalysisContext(settings: settings, run: try TraceRun.load(reader)))
        }
        let gd = OptimizerSpec(kind: .gd, learningRate: 0.1)
        #expect(try elements(gd, batch: nil) == 5 * 18 * 12)
        #expect(try elements(OptimizerSpec(kind: .sgd, learningRate: 0.1), batch: 4) == 5 * 2 * 18 * 4)
        #expect(try elements(OptimizerSpec(kind: .sgd, learningRate: 0.1, momentum: 0.9), batch: 4) == 0)
        #expect(try elements(gd, batch: nil, scope: .exact) == 0)
        #expect(try elements(gd, batch: nil, model: #"{"kind":"sequential","input":[2],"layers":[{"kind":"dense","out":4},{"kind":"relu"},{"kind":"dense","out":1}]}"#) == 0)
    }
}
