import Foundation
import Testing
@testable import PKOptim

/// Weight decay towards the run's initial weights (`decayAnchor` "initial"): the update of every
/// optimizer against its rule written out by hand with `w − w₀` in place of `w`, its kernel form,
/// and the JSON option with its refusals.
@Suite("Anchored weight decay")
struct AnchoredDecayTests {
    /// Hand arithmetic against the chain: the same operations in another order may differ in the
    /// last bits, a few ulps of the largest term.
    static let handTolerance = 1e-14

    static func spec(_ json: String) throws -> OptimizerSpec {
        try JSONDecoder().decode(OptimizerSpec.self, from: Data(json.utf8))
    }

    /// Three updates from w₀ of SGD, momentum, Adam (coupled), AdamW (decoupled) and RMSProp, with
    /// the anchor w₀, against the rule written out: u = g + λ(w − w₀) (AdamW: −ηλ(w − w₀) after the rate).
    @Test(arguments: [
        #"{"kind":"gd","learningRate":0.3,"weightDecay":0.5,"decayAnchor":"initial"}"#,
        #"{"kind":"sgd","learningRate":0.3,"weightDecay":0.5,"momentum":0.8,"dampening":0.2,"decayAnchor":"initial"}"#,
        #"{"kind":"adam","learningRate":0.1,"weightDecay":0.5,"decayAnchor":"initial"}"#,
        #"{"kind":"adamw","learningRate":0.1,"weightDecay":0.5,"decayAnchor":"initial"}"#,
        #"{"kind":"rmsprop","learningRate":0.1,"weightDecay":0.5,"alpha":0.9,"decayAnchor":"initial"}"#,
    ])
    func updatesAgainstTheHandRule(json: String) throws {
        var spec = try Self.spec(json)
        let w0 = [0.7, -1.3, 2.1, 0.05]
        spec.decayAnchorWeights = w0
        let chain = try spec.transformation(parameters: [("w", 4)])
        var state = chain.initialState(parameterCount: 4)
        var w = w0, hand = w0
        var m = [Double](repeating: 0, count: 4), v = m
        let lam = spec.weightDecay, eta = spec.learningRate
        // Gradients that do not vanish at w₀, so that the weights leave it and the decay acts.
        func g(_ w: [Double]) -> [Double] { w.enumerated().map { sin(Double($0.offset) + 2 * $0.element) } }
        for t in 0..<3 {
            let r = chain.update(g(w), state: state, parameters: w, learningRate: eta)
            state = r.state
            for k in 0..<4 { w[k] += r.updates[k] }
            // The hand rule.
            var u = g(hand)
            if spec.kind != .adamw { for k in 0..<4 { u[k] += lam * (hand[k] - w0[k]) } }
            for k in 0..<4 {
                switch spec.kind {
                case .gd:
                    hand[k] -= eta * u[k]
                case .sgd:
                    m[k] = t == 0 ? u[k] : spec.momentum * m[k] + (1 - spec.dampening) * u[k]
                    hand[k] -= eta * m[k]
                case .adam, .adamw:
                    m[k] = spec.beta1 * m[k] + (1 - spec.beta1) * u[k]
                    v[k] = spec.beta2 * v[k] + (1 - spec.beta2) * u[k] * u[k]
                    let mh = m[k] / (1 - pow(spec.beta1, Double(t + 1))), vh = v[k] / (1 - pow(spec.beta2, Double(t + 1)))
                    let decay = spec.kind == .adamw ? eta * lam * (hand[k] - w0[k]) : 0
                    hand[k] -= eta * mh / (vh.squareRoot() + spec.eps) + decay
                case .rmsprop:
                    v[k] = spec.alpha * v[k] + (1 - spec.alpha) * u[k] * u[k]
                    hand[k] -= eta * u[k] / (v[k].squareRoot() + spec.eps)
                }
            }
            for k in 0..<4 {
                #expect(abs(w[k] - hand[k]) <= Self.handTolerance * max(1, abs(hand[k])), "\(json) step \(t) parameter \(k): \(w[k]) against \(hand[k])")
            }
        }
        // The option bites: the same run decaying towards 0 ends elsewhere.
        var zero = spec
        zero.decayAnchor = .zero
        let plain = try zero.transformation(parameters: [("w", 4)])
        var s0 = plain.initialState(parameterCount: 4), w2 = w0
        for _ in 0..<3 {
            let r = plain.update(g(w2), state: s0, parameters: w2, learningRate: eta)
            s0 = r.state
            for k in 0..<4 { w2[k] += r.updates[k] }
        }
        let apart = zip(w, w2).map { abs($0 - $1) }.max()!
        #expect(apart > 1e-2, "\(json): anchored and unanchored runs differ by only \(apart)")
        // The kernel form carries the anchor, and its decay term is λ(w − w₀).
        let form = try #require(chain.kernelForm)
        #expect(form.decayAnchor == w0)
        #expect(form.description.contains("towards w₀"))
        let d = form.decay(of: [1, 1, 1, 1], times: 2, lambda: lam)
        for k in 0..<4 { #expect(abs(d[k] - 2 * lam * (1 - w0[k])) <= 1e-15 * max(1, abs(d[k]))) }
        #expect(form.decay(ofDisplacement: [1, 1, 1, 1], times: 2, lambda: lam) == [2 * lam, 2 * lam, 2 * lam, 2 * lam])
        #expect(try #require(plain.kernelForm).decayAnchor == nil)
    }

    /// Without an anchor the chain is the one from before the option, bit for bit (the same
    /// arithmetic: the displacement is the weights themselves).
    @Test func noAnchorIsTheOldArithmetic() throws {
        let w = [0.3, -0.2, 1.7], g = [0.1, 0.4, -0.9]
        for json in [#"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"momentum":0.9}"#,
                     #"{"kind":"adamw","learningRate":0.1,"weightDecay":0.01}"#] {
            let spec = try Self.spec(json)
            let a = try spec.transformation(parameters: [("w", 3)])
            let b = try Transform.make(kind: spec.kind.rawValue, momentum: spec.momentum, weightDecay: spec.weightDecay)
            let ra = a.update(g, state: a.initialState(parameterCount: 3), parameters: w, learningRate: 0.1)
            let rb = b.update(g, state: b.initialState(parameterCount: 3), parameters: w, learningRate: 0.1)
            #expect(ra.updates == rb.updates)
            #expect(try Self.spec(json) == spec)
            // Not written to JSON when off: configs and traces without it read as before.
            let text = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
            #expect(!text.contains("decayAnchor"))
        }
    }

    @Test func jsonAndRefusals() throws {
        let spec = try Self.spec(#"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"decayAnchor":"initial"}"#)
        #expect(spec.decayAnchor == .initial)
        let again = try JSONDecoder().decode(OptimizerSpec.self, from: JSONEncoder().encode(spec))
        #expect(again == spec)
        #expect(spec.summary.contains("weight decay 0.01 towards w₀"))
        #expect(OptimizerSpec.jsonKeys(for: .adam).contains("decayAnchor"))
        // A value that is not an anchor: refused, naming the choices.
        #expect(throws: (any Error).self) {
            try Self.spec(#"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"decayAnchor":"origin"}"#)
        }
        // An anchor without decay anchors nothing.
        let idle = try Self.spec(#"{"kind":"sgd","learningRate":0.1,"decayAnchor":"initial"}"#)
        #expect(throws: OptimError.self) { try idle.validate() }
        // Settings only (no model): fine; for a model, the weights must be given and fit.
        try spec.validate()
        #expect(throws: OptimError.self) { try spec.transformation(parameters: [("w", 3)]) }
        var wrong = spec
        wrong.decayAnchorWeights = [1, 2]
        #expect(throws: OptimError.self) { try wrong.transformation(parameters: [("w", 3)]) }
        var notFinite = spec
        notFinite.decayAnchorWeights = [1, .nan, 2]
        #expect(throws: OptimError.self) { try notFinite.transformation(parameters: [("w", 3)]) }
        // Group decays: the anchor is fine when a group decays.
        var grouped = try Self.spec(#"{"kind":"sgd","learningRate":0.1,"decayAnchor":"initial","groups":[{"parameters":["w"],"weightDecay":0.1}]}"#)
        try grouped.validate()
        grouped.decayAnchorWeights = [1, 2, 3]
        let chain = try grouped.transformation(parameters: [("w", 3)])
        let r = chain.update([0, 0, 0], state: chain.initialState(parameterCount: 3), parameters: [2, 2, 2], learningRate: 1)
        #expect(r.updates == [-0.1, 0, 0.1])
    }
}
