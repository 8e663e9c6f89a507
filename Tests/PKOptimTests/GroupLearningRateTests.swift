import Foundation
import Testing
import PKNumerics
@testable import PKOptim

/// Parameter groups with their own learning rates (`ParameterGroup.learningRate`, PyTorch's
/// param_group `lr`): each optimizer's update against PyTorch's formulas written out per
/// parameter, and against PyTorch's own numbers; the kernel form the chain declares; specs that
/// must be refused.
@Suite("Parameter-group learning rates")
struct GroupLearningRateTests {
    /// `|a − b| ≤ tol · max(1, |a|, |b|)` for every entry.
    static func near(_ a: [Double], _ b: [Double], _ tol: Double) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol * max(1, abs($0), abs($1)) }
    }

    /// Hand-written updates: round-off of a few dozen operations on O(1) numbers, and the group
    /// rate written two ways (ours `η_t · (lr_k/lr)`, PyTorch's `lr_k · (η_t/lr)`).
    static let handTolerance = 1e-14
    /// PyTorch's printed values (`Tools/reference/torch_group_rates.py`): the same, plus
    /// PyTorch's own order of operations (see TransformTests' `torchTolerance`).
    static let torchTolerance = 1e-14

    static let tensors: [(name: String, count: Int)] = [("0.weight", 3), ("0.bias", 2), ("1.weight", 2), ("1.bias", 1)]
    /// Layer 1 at 0.3 of the base rate, the other biases at 2.5 of it without decay; `1.bias`
    /// matches the first group (first match wins), so it takes 0.3 and the top-level decay.
    static let groups = #"[{"parameters":["1.*"],"learningRate":0.03},{"parameters":["*.bias"],"learningRate":0.25,"weightDecay":0}]"#
    /// Each parameter's group rate `lr_k` and whether it takes the top-level decay, written out.
    static let groupRate: [Double] = [0.1, 0.1, 0.1, 0.25, 0.25, 0.03, 0.03, 0.03]
    static let decays: [Bool] = [true, true, true, false, false, true, true, true]

    static func spec(_ json: String) throws -> OptimizerSpec {
        try JSONDecoder().decode(OptimizerSpec.self, from: Data(json.utf8))
    }

    /// PyTorch's update of every parameter with its own group's rate, written out per parameter
    /// (torch/optim/sgd.py, adam.py, rmsprop.py, single-tensor code paths): the group's rate at
    /// step t is `lr_k · η_t/lr` (an LRScheduler scales every group's initial rate by the same
    /// factor); the gradient clipped by the global norm first (pathkernel's exact `c/‖g‖`).
    static func handRun(_ s: OptimizerSpec, w0: [Double], gradients: [[Double]], rates: [Double]) -> [[Double]] {
        let P = w0.count
        var w = w0, buf = [Double](repeating: 0, count: P), m = buf, v = buf
        var out: [[Double]] = []
        for (t, g0) in gradients.enumerated() {
            var g = g0
            if let c = s.clipNorm {
                let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > c { g = g.map { $0 * (c / norm) } }
            }
            for k in 0..<P {
                let lr = groupRate[k] * (rates[t] / s.learningRate)
                let lambda = decays[k] ? s.weightDecay : 0
                var d = g[k]
                switch s.kind {
                case .gd, .sgd:
                    d += lambda * w[k]
                    if s.momentum > 0 {
                        buf[k] = t == 0 ? d : s.momentum * buf[k] + (1 - s.dampening) * d
                        d = s.nesterov ? d + s.momentum * buf[k] : buf[k]
                    }
                    w[k] -= lr * d
                case .adam, .adamw:
                    if s.kind == .adamw { w[k] *= 1 - lr * lambda } else { d += lambda * w[k] }
                    m[k] = s.beta1 * m[k] + (1 - s.beta1) * d
                    v[k] = s.beta2 * v[k] + (1 - s.beta2) * d * d
                    let bc1 = 1 - pow(s.beta1, Double(t + 1)), bc2 = 1 - pow(s.beta2, Double(t + 1))
                    let denom = v[k].squareRoot() / bc2.squareRoot() + s.eps
                    w[k] -= (lr / bc1) * (m[k] / denom)
                case .rmsprop:
                    d += lambda * w[k]
                    v[k] = s.alpha * v[k] + (1 - s.alpha) * d * d
                    let avg = v[k].squareRoot() + s.eps
                    if s.momentum > 0 {
                        buf[k] = s.momentum * buf[k] + d / avg
                        w[k] -= lr * buf[k]
                    } else {
                        w[k] -= lr * d / avg
                    }
                }
            }
            out.append(w)
        }
        return out
    }

    static let handCases = [
        #"{"kind":"sgd","learningRate":0.1}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01,"clipNorm":0.3}"#,
        #"{"kind":"adam","learningRate":0.1,"beta1":0.8,"beta2":0.95,"eps":1e-3,"weightDecay":0.01,"clipNorm":0.5}"#,
        #"{"kind":"adamw","learningRate":0.1,"beta1":0.8,"beta2":0.95,"eps":1e-3,"weightDecay":0.5}"#,
        #"{"kind":"rmsprop","learningRate":0.1,"alpha":0.9,"momentum":0.7,"weightDecay":0.01}"#,
        #"{"kind":"rmsprop","learningRate":0.1,"alpha":0.9}"#,
    ]

    /// The chain built from a spec with group rates steps every parameter as PyTorch does with
    /// that parameter's group rate (four steps, a schedule-like rate per step).
    @Test(arguments: handCases)
    func updatesFollowEachGroupsRate(json: String) throws {
        var s = try Self.spec(json)
        s.groups = try JSONDecoder().decode([ParameterGroup].self, from: Data(Self.groups.utf8))
        try s.validate()
        let chain = try s.transformation(parameters: Self.tensors)
        var rng = PortableRandom(seed: 21)
        let w0 = (0..<8).map { _ in rng.normal() }
        let gradients = (0..<4).map { _ in (0..<8).map { _ in 0.5 * rng.normal() } }
        let rates = [0.1, 0.05, 0.2, 0.08]
        let want = Self.handRun(s, w0: w0, gradients: gradients, rates: rates)
        var w = w0, state = chain.initialState(parameterCount: 8)
        for t in 0..<4 {
            let r = chain.update(gradients[t], state: state, parameters: w, learningRate: rates[t])
            Vec.axpy(1, r.updates, &w)
            state = r.state
            #expect(Self.near(w, want[t], Self.handTolerance), "\(json) step \(t): \(w) vs by hand \(want[t])")
        }
        // The groups change the rates: the same run without them ends elsewhere.
        var plain = s
        plain.groups = []
        var wp = w0, sp = try plain.transformation().initialState(parameterCount: 8)
        let plainChain = try plain.transformation()
        for t in 0..<4 {
            let r = plainChain.update(gradients[t], state: sp, parameters: wp, learningRate: rates[t])
            Vec.axpy(1, r.updates, &wp)
            sp = r.state
        }
        #expect(!Self.near(wp, w, 1e-6))
        // The state buffers are the ones without group rates (the rate is stateless).
        #expect(chain.bufferNames == (try s.transformation(parameters: []).bufferNames))
    }

    static let torchCases: [(String, String, Double)] = [
        ("sgd", #"{"kind":"sgd","learningRate":0.1}"#, 0),
        ("momentumL2", #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}"#, 0),
        ("momentumDampened", #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"dampening":0.1}"#, 0.02),
        ("nesterov", #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}"#, 0.05),
        ("adamL2", #"{"kind":"adam","learningRate":0.1,"beta1":0.8,"beta2":0.95,"eps":1e-3,"weightDecay":0.01}"#, 0),
        ("adamW", #"{"kind":"adamw","learningRate":0.1,"beta1":0.8,"beta2":0.95,"eps":1e-3,"weightDecay":0.5}"#, 0.1),
        ("rmspropMomentum", #"{"kind":"rmsprop","learningRate":0.1,"alpha":0.9,"momentum":0.9,"weightDecay":0.01}"#, 0),
    ]

    /// Printed by `Tools/reference/torch_group_rates.py` (torch 2.13.0+cpu, float64,
    /// foreach=False): tensors `a` (2 parameters, base rate) and `b` (1 parameter, lr 0.03 and its
    /// own decay), the parameters after each of three steps.
    static let torchReference: [String: [[Double]]] = [
        "sgd": [
            [0.49, -0.98, 1.991],
            [0.51, -1.005, 1.99025],
            [0.47000000000000003, -1.025, 2.00825],
        ],
        "momentumL2": [
            [0.4895, -0.979, 1.991],
            [0.50453025, -0.9940605, 1.9862000000000002],
            [0.5176300895, -1.0662901790000001, 1.9869200000000002],
        ],
        "momentumDampened": [
            [0.49, -0.98, 1.9898],
            [0.5035, -0.9934999999999999, 1.983997754],
            [0.5161, -1.0601, 1.97716695082568],
        ],
        "nesterov": [
            [0.48005, -0.9601, 1.9772],
            [0.5133414525, -0.998182905, 1.9680974900000001],
            [0.4841040739805, -1.081216447961, 1.9663487383070002],
        ],
        "adamL2": [
            [0.4009433962264151, -0.9004739336492891, 1.9700996677740863],
            [0.4304317851087418, -0.9239649145253094, 1.9587768858082921],
            [0.44437536749330386, -1.0155015266822272, 1.9655276263568198],
        ],
        "adamW": [
            [0.375990099009901, -0.8504975124378109, 1.9640996677740863],
            [0.396637918010922, -0.8537465174353089, 1.9498307363066312],
            [0.37420007307302217, -0.8647697834231646, 1.944882492437319],
        ],
        "rmspropMomentum": [
            [0.18377232922122858, -0.6837722816022024, 1.9051316801949476],
            [0.19485640938511836, -0.6880732268397244, 1.8542333023534088],
            [-0.05643039760902532, -0.8183350695142391, 1.8110652892013885],
        ],
    ]

    @Test(arguments: torchCases.map(\.0))
    func matchesPyTorch(name: String) throws {
        let (_, json, bDecay) = try #require(Self.torchCases.first { $0.0 == name })
        var s = try Self.spec(json)
        s.groups = [ParameterGroup(parameters: ["b"], weightDecay: bDecay, learningRate: 0.03)]
        let chain = try s.transformation(parameters: [("a", 2), ("b", 1)])
        let ref = try #require(Self.torchReference[name])
        let grads: [[Double]] = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.1, -0.3]]
        let rates = [0.1, 0.05, 0.2]
        var w: [Double] = [0.5, -1.0, 2.0], state = chain.initialState(parameterCount: 3)
        for t in 0..<3 {
            let r = chain.update(grads[t], state: state, parameters: w, learningRate: rates[t])
            Vec.axpy(1, r.updates, &w)
            state = r.state
            #expect(Self.near(w, ref[t], Self.torchTolerance), "\(name) step \(t + 1): \(w) vs PyTorch \(ref[t])")
        }
    }

    /// Groups whose rate is the optimizer's (m_k = 1 everywhere) give the chain without group
    /// rates: the same updates bit for bit and the same kernel form.
    @Test(arguments: handCases)
    func unitMultipliersChangeNothing(json: String) throws {
        var s = try Self.spec(json)
        s.groups = [ParameterGroup(parameters: ["*.bias"], weightDecay: 0)]
        var same = s
        same.groups = [ParameterGroup(parameters: ["*.bias"], weightDecay: 0, learningRate: 0.1)]
        let a = try s.transformation(parameters: Self.tensors), b = try same.transformation(parameters: Self.tensors)
        #expect(a.kernelForm == b.kernelForm && b.kernelForm?.learningRateScale == nil)
        var rng = PortableRandom(seed: 4)
        var w = (0..<8).map { _ in rng.normal() }
        var sa = a.initialState(parameterCount: 8), sb = b.initialState(parameterCount: 8)
        for t in 0..<3 {
            let g = (0..<8).map { _ in rng.normal() }
            let ra = a.update(g, state: sa, parameters: w, learningRate: 0.1 / Double(t + 1))
            let rb = b.update(g, state: sb, parameters: w, learningRate: 0.1 / Double(t + 1))
            #expect(zip(ra.updates, rb.updates).allSatisfy { $0.bitPattern == $1.bitPattern })
            Vec.axpy(1, ra.updates, &w)
            (sa, sb) = (ra.state, rb.state)
        }
    }

    /// The chain's kernel form carries M (`learningRateScale`) and the chain's preconditioner
    /// includes it; a decoupled decay's per-parameter rate is `m_k λ_k`.
    @Test func kernelFormCarriesTheMultipliers() throws {
        let m = Self.groupRate.map { $0 / 0.1 }
        var sgd = try Self.spec(#"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}"#)
        sgd.groups = try JSONDecoder().decode([ParameterGroup].self, from: Data(Self.groups.utf8))
        let chain = try sgd.transformation(parameters: Self.tensors)
        let form = try #require(chain.kernelForm)
        #expect(form.update == .preconditionedMomentum(rho: 0.9, dampening: 0, nesterov: false))
        #expect(Self.near(try #require(form.learningRateScale), m, 1e-15))
        #expect(form.decayByParameter == Self.decays.map { $0 ? 0.01 : 0 } && form.coupledDecay == 0.01)
        #expect(Self.near(try #require(chain.preconditioner(chain.initialState(parameterCount: 8))), m, 1e-15))
        #expect(form.description.contains("group learning rates"))

        var adamw = try Self.spec(#"{"kind":"adamw","learningRate":0.1,"weightDecay":0.5}"#)
        adamw.groups = sgd.groups
        let aw = try adamw.transformation(parameters: Self.tensors)
        let awForm = try #require(aw.kernelForm)
        #expect(Self.near(try #require(awForm.decayByParameter), (0..<8).map { m[$0] * (Self.decays[$0] ? 0.5 : 0) }, 1e-15))
        // After one update, D ⊙ M: Adam's D = 1/(√v̂ + ε) from the state, times m_k.
        let g = (0..<8).map { Double($0) - 3.5 }
        let r = aw.update(g, state: aw.initialState(parameterCount: 8), parameters: [Double](repeating: 1, count: 8), learningRate: 0.1)
        let d = try #require(aw.preconditioner(r.state))
        for k in 0..<8 {
            let v = (1 - 0.999) * g[k] * g[k], adamD = 1 / ((v / (1 - 0.999)).squareRoot() + 1e-8)
            #expect(abs(d[k] - adamD * m[k]) <= 1e-14 * abs(adamD * m[k]))
        }
        #expect(adamw.summary.contains("lr 0.03 on 1.*") && adamw.summary.contains("lr 0.25 and weight decay 0.0 on *.bias"), "\(adamw.summary)")
    }

    /// Bad group rates are refused with a message naming the group and what to do.
    @Test(arguments: [
        (#"{"parameters":["*.bias"],"learningRate":0}"#, "optimizer.groups[0].learningRate must be a positive number"),
        (#"{"parameters":["*.bias"],"learningRate":-0.1}"#, "optimizer.groups[0].learningRate must be a positive number"),
        (#"{"parameters":["*.bias"]}"#, "optimizer.groups[0] sets neither weightDecay nor learningRate"),
        (#"{"parameters":["*.bias"],"learningRate":1e999}"#, "learningRate must be a number within ±1.8e308"),
        (#"{"parameters":["*.bias"],"learningRate":"0.1"}"#, "learningRate must be a number"),
        (#"{"parameters":["*.bias"],"lr":0.1}"#, "did you mean 'learningRate'"),
        (#"{"parameters":["*.bias"],"learningRate":1e-320}"#, "is not a finite positive ratio"),
    ])
    func badGroupRatesAreRefused(group: String, message: String) throws {
        let json = #"{"kind":"sgd","learningRate":1e10,"groups":["# + group + "]}"
        do {
            let s = try Self.spec(json)
            try s.validate()
            Issue.record("\(group) was accepted")
        } catch {
            #expect("\(error)".contains(message), "\(group): \(error)")
        }
        // Non-finite rates set in code are refused too.
        for bad in [Double.nan, .infinity] {
            var s = OptimizerSpec(kind: .adam, learningRate: 0.1)
            s.groups = [ParameterGroup(parameters: ["*"], learningRate: bad)]
            #expect(throws: OptimError.self) { try s.validate() }
        }
    }

    /// JSON: a group with a rate only writes no decay (and reads back the same); a group with a
    /// decay only encodes as before group rates existed.
    @Test func json() throws {
        let text = #"{"kind":"adamw","learningRate":0.001,"weightDecay":0.05,"groups":[{"parameters":["*.bias"],"learningRate":0.01},{"parameters":["0.*"],"weightDecay":0}]}"#
        let s = try Self.spec(text)
        #expect(s.groups == [ParameterGroup(parameters: ["*.bias"], learningRate: 0.01), ParameterGroup(parameters: ["0.*"], weightDecay: 0)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let encoded = String(decoding: try encoder.encode(s.groups), as: UTF8.self)
        #expect(encoded == #"[{"learningRate":0.01,"parameters":["*.bias"]},{"parameters":["0.*"],"weightDecay":0}]"#, "\(encoded)")
        #expect(try JSONDecoder().decode(OptimizerSpec.self, from: JSONEncoder().encode(s)) == s)
        // Placement: first match wins, each setting falls back to the top level.
        let bias = s.settings(ofTensor: "0.bias")
        #expect(bias.weightDecay == 0.05 && abs(bias.rateMultiplier - 10) <= 1e-14 * 10)
        #expect(s.settings(ofTensor: "0.weight") == (0, 1))
        #expect(s.settings(ofTensor: "1.weight") == (0.05, 1))
    }
}
