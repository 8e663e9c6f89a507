import Foundation
import Testing
import PKNumerics
@testable import PKOptim

/// Every optimizer's chain declares the kernel form the analyzer reads (`KernelForm`), and that
/// form, evaluated with the recorded clip scales and preconditioners, is the update itself.
@Suite("Kernel forms of optimizer chains")
struct KernelFormTests {
    typealias Form = KernelForm

    /// `Transform.make` settings and the form each chain must declare.
    static let cases: [(String, @Sendable () throws -> Chain, Form)] = [
        ("sgd", { try Transform.make(kind: "sgd") }, Form(.plain)),
        ("gd, coupled decay", { try Transform.make(kind: "gd", weightDecay: 0.01) }, Form(.plain, coupledDecay: 0.01)),
        ("sgd, clipped", { try Transform.make(kind: "sgd", clipNorm: 0.3) }, Form(.plain, clipped: true)),
        ("sgd, decay, clipped", { try Transform.make(kind: "sgd", weightDecay: 1e-3, clipNorm: 0.3) },
         Form(.plain, coupledDecay: 1e-3, clipped: true)),
        ("sgdw", { try Transform.make(kind: "sgd", weightDecay: 0.02, decoupled: true) }, Form(.plain, decoupledDecay: 0.02)),
        ("momentum, dampening", { try Transform.make(kind: "sgd", momentum: 0.8, dampening: 0.3) },
         Form(.momentum(rho: 0.8, dampening: 0.3, nesterov: false))),
        ("momentum, decay, clipped", { try Transform.make(kind: "gd", momentum: 0.9, weightDecay: 0.01, clipNorm: 0.5) },
         Form(.momentum(rho: 0.9, dampening: 0, nesterov: false), coupledDecay: 0.01, clipped: true)),
        ("nesterov, decay", { try Transform.make(kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.01) },
         Form(.momentum(rho: 0.9, dampening: 0, nesterov: true), coupledDecay: 0.01)),
        ("sgdw momentum", { try Transform.make(kind: "sgd", momentum: 0.7, weightDecay: 0.02, decoupled: true) },
         Form(.momentum(rho: 0.7, dampening: 0, nesterov: false), decoupledDecay: 0.02)),
        ("adam", { try Transform.make(kind: "adam") },
         Form(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 1 - 0.9))),
        ("adam, decay, clipped", { try Transform.make(kind: "adam", beta1: 0.8, beta2: 0.99, weightDecay: 0.01, clipNorm: 0.5) },
         Form(.preconditioned(side: .query, rho: 0.8, biasCorrection: 0.8, b: 1 - 0.8), coupledDecay: 0.01, clipped: true)),
        ("adamw, clipped", { try Transform.make(kind: "adamw", weightDecay: 0.05, clipNorm: 1) },
         Form(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 1 - 0.9), decoupledDecay: 0.05, clipped: true)),
        ("adam decoupled", { try Transform.make(kind: "adam", weightDecay: 0.05, decoupled: true) },
         Form(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 1 - 0.9), decoupledDecay: 0.05)),
        ("adamw, no decay", { try Transform.make(kind: "adamw") },
         Form(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 1 - 0.9))),
        ("rmsprop", { try Transform.make(kind: "rmsprop", alpha: 0.9) },
         Form(.preconditioned(side: .training, rho: 0, biasCorrection: nil, b: 1))),
        ("rmsprop, momentum, decay, clipped", { try Transform.make(kind: "rmsprop", momentum: 0.7, weightDecay: 0.01, clipNorm: 0.5) },
         Form(.preconditioned(side: .training, rho: 0.7, biasCorrection: nil, b: 1), coupledDecay: 0.01, clipped: true)),
        // Parameter groups with their own learning rates (multipliers m, constant): Δw = −η M (…),
        // M joins D; plain SGD and momentum become preconditioned forms with D = M.
        ("sgd, group rates", { try Transform.make(kind: "sgd", learningRateByParameter: m) },
         grouped(Form(.preconditioned(side: .query, rho: 0, biasCorrection: nil, b: 1)))),
        ("sgd, decay, clipped, group rates", { try Transform.make(kind: "sgd", weightDecay: 1e-3, clipNorm: 0.3, learningRateByParameter: m) },
         grouped(Form(.preconditioned(side: .query, rho: 0, biasCorrection: nil, b: 1), coupledDecay: 1e-3, clipped: true))),
        ("sgdw, group rates", { try Transform.make(kind: "sgd", weightDecay: 0.02, decoupled: true, learningRateByParameter: m) },
         grouped(Form(.preconditioned(side: .query, rho: 0, biasCorrection: nil, b: 1), decoupledDecay: 0.02), decay: m.map { $0 * 0.02 })),
        ("momentum, dampening, group rates", { try Transform.make(kind: "sgd", momentum: 0.8, dampening: 0.3, learningRateByParameter: m) },
         grouped(Form(.preconditionedMomentum(rho: 0.8, dampening: 0.3, nesterov: false)))),
        ("nesterov, decay, group rates", { try Transform.make(kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.01, learningRateByParameter: m) },
         grouped(Form(.preconditionedMomentum(rho: 0.9, dampening: 0, nesterov: true), coupledDecay: 0.01))),
        ("adam, decay, clipped, group rates", { try Transform.make(kind: "adam", beta1: 0.8, beta2: 0.99, weightDecay: 0.01, clipNorm: 0.5, learningRateByParameter: m) },
         grouped(Form(.preconditioned(side: .query, rho: 0.8, biasCorrection: 0.8, b: 1 - 0.8), coupledDecay: 0.01, clipped: true))),
        ("adamw, group decays and rates", { try Transform.make(kind: "adamw", weightDecay: 0.05, decayByParameter: lambda, learningRateByParameter: m) },
         grouped(Form(.preconditioned(side: .query, rho: 0.9, biasCorrection: 0.9, b: 1 - 0.9), decoupledDecay: 0.05),
                 decay: zip(m, lambda).map { $0 * $1 })),
        ("rmsprop, momentum, decay, group rates", { try Transform.make(kind: "rmsprop", momentum: 0.7, weightDecay: 0.01, learningRateByParameter: m) },
         grouped(Form(.preconditioned(side: .training, rho: 0.7, biasCorrection: nil, b: 1), coupledDecay: 0.01))),
    ]

    /// Learning-rate multipliers and decays of four parameters in groups (the first in none).
    static let m: [Double] = [1, 0.3, 2.5, 0.3]
    static let lambda: [Double] = [0.05, 0.05, 0, 0.01]

    /// `form` with the group rates `m` (and, for a decoupled decay, its per-parameter `m_k λ_k`).
    static func grouped(_ form: Form, decay: [Double]? = nil) -> Form {
        var f = form
        f.learningRateScale = m
        f.decayByParameter = decay
        return f
    }

    @Test(arguments: 0..<KernelFormTests.cases.count)
    func makeDeclaresItsForm(index: Int) throws {
        let (name, make, want) = Self.cases[index]
        let form = try make().kernelForm
        #expect(form == want, "\(name): \(form?.description ?? "nil"), expected \(want)")
    }

    /// The run configs' optimizers (what a trace stores) declare the same forms.
    @Test(arguments: [
        (#"{"kind":"gd","learningRate":0.2}"#, "plain"),
        (#"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"clipNorm":0.3}"#, "plain, coupled decay 0.01, clipped"),
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3}"#, "momentum(ρ 0.8, dampening 0.3)"),
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}"#,
         "momentum(ρ 0.9, dampening 0.0, Nesterov), coupled decay 0.01"),
        (#"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}"#,
         "preconditioned(D with the query side, ρ 0.9, bias correction β 0.9, b 0.09999999999999998), coupled decay 0.01, clipped"),
        (#"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}"#,
         "preconditioned(D with the query side, ρ 0.9, bias correction β 0.9, b 0.09999999999999998), decoupled decay 0.05"),
        (#"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}"#,
         "preconditioned(D with the training side, ρ 0.5, bias correction none, b 1.0), coupled decay 0.01"),
        (#"{"kind":"rmsprop","learningRate":0.005}"#, "preconditioned(D with the training side, ρ 0.0, bias correction none, b 1.0)"),
    ])
    func specsDeclareTheirForms(json: String, want: String) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(json.utf8))
        #expect(try spec.transformation().kernelForm?.description == want)
    }

    @Test func namesFollowTheForm() throws {
        let names = try ["sgd", "sgd|m", "sgd|n", "adam", "adamw", "rmsprop", "rmsprop|m"].map { k -> String in
            let kind = String(k.split(separator: "|")[0])
            let mu = k.hasSuffix("|m") || k.hasSuffix("|n") ? 0.9 : 0
            return try Transform.make(kind: kind, momentum: mu, nesterov: k.hasSuffix("|n"), weightDecay: kind == "adamw" ? 0.01 : 0)
                .kernelForm!.name
        }
        #expect(names == ["SGD", "SGD momentum", "SGD Nesterov", "Adam", "AdamW", "RMSProp", "RMSProp"])
        // Group learning rates keep the names.
        let grouped = try ["sgd", "sgd|m", "sgd|n", "adam", "adamw", "rmsprop"].map { k -> String in
            let kind = String(k.split(separator: "|")[0])
            let mu = k.hasSuffix("|m") || k.hasSuffix("|n") ? 0.9 : 0
            return try Transform.make(kind: kind, momentum: mu, nesterov: k.hasSuffix("|n"), weightDecay: kind == "adamw" ? 0.01 : 0,
                                      learningRateByParameter: Self.m).kernelForm!.name
        }
        #expect(grouped == ["SGD", "SGD momentum", "SGD Nesterov", "Adam", "AdamW", "RMSProp"])
        // Plain SGD with group rates is not the forward route's `.plain`, momentum not `.momentum`.
        let sgd = try #require(try Transform.make(kind: "sgd", learningRateByParameter: Self.m).kernelForm)
        #expect(sgd.update != .plain && sgd.momentum == nil)
        #expect(try Transform.make(kind: "sgd", momentum: 0.9, learningRateByParameter: Self.m).kernelForm?.momentum == nil)
    }

    /// Chains the kernel forms cannot express, and partial chains, have none.
    @Test func unknownCombinationsHaveNoForm() {
        struct Custom: GradientTransformation {
            var bufferNames: [String] { [] }
            var description: String { "custom" }
            func update(_ u: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
                UpdateResult(updates: u, state: advanced(state))
            }
        }
        let none: [(String, Chain)] = [
            ("no learning rate", Transform.chain(Transform.scaleByAdam())),
            ("decay before the clip", Transform.chain(Transform.addDecayedWeights(0.1), Transform.clipByGlobalNorm(1),
                                                      Transform.scaleByLearningRate())),
            ("clip after a core", Transform.chain(Transform.scaleByMomentum(0.9), Transform.clipByGlobalNorm(1),
                                                  Transform.scaleByLearningRate())),
            ("momentum after Adam", Transform.chain(Transform.scaleByAdam(), Transform.scaleByMomentum(0.9),
                                                    Transform.scaleByLearningRate())),
            ("two moment estimators", Transform.chain(Transform.scaleByRMS(), Transform.scaleByAdam(), Transform.scaleByLearningRate())),
            ("RMSProp after momentum", Transform.chain(Transform.scaleByMomentum(0.9), Transform.scaleByRMS(),
                                                       Transform.scaleByLearningRate())),
            ("RMSProp, dampened momentum", Transform.chain(Transform.scaleByRMS(), Transform.scaleByMomentum(0.9, dampening: 0.1),
                                                           Transform.scaleByLearningRate())),
            ("RMSProp, Nesterov", Transform.chain(Transform.scaleByRMS(), Transform.scaleByMomentum(0.9, nesterov: true),
                                                  Transform.scaleByLearningRate())),
            ("RMSProp, decay, momentum", Transform.chain(Transform.scaleByRMS(), Transform.addDecayedWeights(0.1),
                                                         Transform.scaleByMomentum(0.9), Transform.scaleByLearningRate())),
            ("two learning rates", Transform.chain(Transform.scaleByLearningRate(), Transform.scaleByLearningRate())),
            ("decay after the learning rate", Transform.chain(Transform.scaleByLearningRate(), Transform.addDecayedWeights(0.1))),
            ("decoupled decay first", Transform.chain(Transform.addDecoupledWeightDecay(0.1), Transform.scaleByLearningRate())),
            ("a core after the learning rate", Transform.chain(Transform.scaleByLearningRate(), Transform.scaleByMomentum(0.9))),
            ("an unknown component", Transform.chain(Custom(), Transform.scaleByLearningRate())),
        ]
        for (name, chain) in none {
            #expect(chain.kernelForm == nil, "\(name): \(chain.kernelForm?.description ?? "")")
        }
        #expect(Transform.scaleByLearningRate().kernelForm == Form(.plain))   // one component is an optimizer too
    }

    /// Nested chains fold like flat ones; decay between a core and the learning rate (optax's
    /// `adamw`) is the decoupled term.
    @Test func compositionsFold() throws {
        let nested = Transform.chain(Transform.clipByGlobalNorm(1),
                                     Transform.chain(Transform.addDecayedWeights(0.01), Transform.scaleByMomentum(0.9)),
                                     Transform.scaleByLearningRate())
        #expect(nested.kernelForm == (try Transform.make(kind: "sgd", momentum: 0.9, weightDecay: 0.01, clipNorm: 1).kernelForm))
        let optaxAdamW = Transform.chain(Transform.scaleByAdam(), Transform.addDecayedWeights(0.01), Transform.scaleByLearningRate())
        #expect(optaxAdamW.kernelForm == (try Transform.make(kind: "adamw", weightDecay: 0.01).kernelForm))
    }

    /// The form is the update: with the clip scales `info.clipScale` and the preconditioners
    /// `preconditioner(state_{t+1})` a run records, the declared sum rebuilds each `Δw_t` (every
    /// case above, plus optax's AdamW order).
    @Test(arguments: 0...KernelFormTests.cases.count)
    func theFormRebuildsTheUpdates(index: Int) throws {
        let opt = index < Self.cases.count
            ? try Self.cases[index].1()
            : Transform.chain(Transform.scaleByAdam(), Transform.addDecayedWeights(0.03), Transform.scaleByLearningRate())
        let form = try #require(opt.kernelForm)
        var rng = PortableRandom(seed: UInt64(11 + index))
        let P = 4, T = 5
        var w = (0..<P).map { _ in rng.normal() }
        var state = opt.initialState(parameterCount: P)
        var us: [[Double]] = [], ds: [[Double]] = []
        for t in 0..<T {
            let g = (0..<P).map { _ in 0.6 * rng.normal() }
            let eta = 0.05 * Double(t + 1)
            let r = opt.update(g, state: state, parameters: w, learningRate: eta)
            state = r.state
            #expect(form.clipped || r.info.clipScale == 1)
            let coupled = form.coupledDecay > 0 ? form.decay(of: w, times: 1, lambda: form.coupledDecay) : [Double](repeating: 0, count: P)
            us.append((0..<P).map { r.info.clipScale * g[$0] + coupled[$0] })
            ds.append(opt.preconditioner(state) ?? [Double](repeating: 1, count: P))
            var want = [Double](repeating: 0, count: P)
            for k in 0..<P {
                var sum = 0.0
                switch form.update {
                case .plain:
                    sum = us[t][k]
                case let .momentum(rho, dampening, nesterov), let .preconditionedMomentum(rho, dampening, nesterov):
                    for s in 0...t { sum += pow(rho, Double(t - s)) * (s == 0 ? 1 : 1 - dampening) * us[s][k] }
                    if nesterov { sum = us[t][k] + rho * sum }
                    sum *= ds[t][k]   // 1 for `.momentum` (no preconditioner), M with group rates
                case let .preconditioned(side, rho, beta, b):
                    let a = beta.map { 1 / (1 - pow($0, Double(t + 1))) } ?? 1
                    for s in 0...t { sum += b * pow(rho, Double(t - s)) * (side == .training ? ds[s][k] : 1) * us[s][k] }
                    sum *= a * (side == .query ? ds[t][k] : 1)
                }
                want[k] = -eta * sum + (form.decoupledDecay > 0 ? form.decay(of: w, times: -eta, lambda: form.decoupledDecay)[k] : 0)
            }
            let err = zip(want, r.updates).map { abs($0 - $1) }.max()!
            let scale = r.updates.map(abs).max()!
            #expect(err <= 1e-12 * max(scale, 1e-300), "case \(index), step \(t): \(err) off (largest \(scale)), form \(form)")
            Vec.axpy(1, r.updates, &w)
        }
    }
}
