import Foundation
import Testing
import PKNumerics
@testable import PKOptim

/// `|a − b| ≤ tol · max(1, |a|, |b|)`.
private func near(_ a: Double, _ b: Double, _ tol: Double) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }
private func near(_ a: [Double], _ b: [Double], _ tol: Double) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { near($0, $1, tol) }
}
/// Bit-for-bit equality (what replay and the GradientDescent equivalence promise).
private func identical(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// Hand computations of a few steps: round-off of a few dozen operations on O(1) numbers.
private let handTolerance = 1e-14
/// PyTorch's printed values: same formulas, but PyTorch orders some operations differently
/// (lerp for Adam's m, `w(1 − ηλ)` for AdamW, `(η/bc₁)·(m/denom)`), so an ulp or two apart
/// (at most 3.4e-16 measured with torch 2.15).
private let torchTolerance = 1e-14
/// Identities that hold exactly in real arithmetic but are evaluated in a different order.
private let identityTolerance = 1e-13

// The tiny problem (also in Tools/reference/torch_optimizers.py): P = 3, three updates with
// fixed gradients and per-step learning rates.
private let w0: [Double] = [0.5, -1.0, 2.0]
private let grads: [[Double]] = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.1, -0.3]]
private let rates: [Double] = [0.1, 0.05, 0.2]

// Elementwise helpers for the hand computations (file-private: `+` on two [Double] adds,
// it does not concatenate, in this file only).
private func + (a: [Double], b: [Double]) -> [Double] { zip(a, b).map { $0 + $1 } }
private func - (a: [Double], b: [Double]) -> [Double] { zip(a, b).map { $0 - $1 } }
private func * (s: Double, a: [Double]) -> [Double] { a.map { s * $0 } }
private func * (a: [Double], b: [Double]) -> [Double] { zip(a, b).map { $0 * $1 } }
private func / (a: [Double], b: [Double]) -> [Double] { zip(a, b).map { $0 / $1 } }
private func sqrt(_ a: [Double]) -> [Double] { a.map { $0.squareRoot() } }
private func + (a: [Double], s: Double) -> [Double] { a.map { $0 + s } }

/// Runs `opt` over the tiny problem and returns `w_1, …, w_k` and the final state.
private func run(_ opt: any GradientTransformation, steps k: Int = 3) -> (weights: [[Double]], state: OptimizerState) {
    var w = w0
    var state = opt.initialState(parameterCount: w0.count)
    var out = [[Double]]()
    for t in 0..<k {
        let r = opt.update(grads[t], state: state, parameters: w, learningRate: rates[t])
        w = w + r.updates
        state = r.state
        out.append(w)
    }
    return (out, state)
}

/// PyTorch's parameters after each of the three steps and its state buffers after the last.
private struct TorchCase: Sendable {
    let weights: [[Double]]
    let buffers: [String: [Double]]
}

/// Printed by `Tools/reference/torch_optimizers.py` (torch 2.15.0, float64, foreach=False).
private let torchReference: [String: TorchCase] = [
    "sgd": TorchCase(weights: [
        [0.49, -0.98, 1.97],
        [0.51, -1.005, 1.9675],
        [0.47000000000000003, -1.025, 2.0275],
    ], buffers: [:]),
    "sgdL2": TorchCase(weights: [
        [0.4895, -0.979, 1.968],
        [0.50925525, -1.0035105, 1.964516],
        [0.46823673950000005, -1.021503479, 2.020586968],
    ], buffers: [:]),
    "momentum": TorchCase(weights: [
        [0.4895, -0.979, 1.968],
        [0.50453025, -0.9940605, 1.950116],
        [0.5176300895, -1.0662901790000001, 1.941833368],
    ], buffers: [
        "momentum_buffer": [-0.06549919750000002, 0.36114839499999996, 0.04141316000000006],
    ]),
    "momentumDampened": TorchCase(weights: [
        [0.49, -0.98, 1.97],
        [0.5035, -0.9934999999999999, 1.95425],
        [0.5161, -1.0601, 1.9515500000000001],
    ], buffers: [
        "momentum_buffer": [-0.063, 0.333, 0.013500000000000033],
    ]),
    "nesterov": TorchCase(weights: [
        [0.48005, -0.9601, 1.9392],
        [0.5133414525, -0.998182905, 1.91964776],
        [0.4841040739805, -1.081216447961, 1.968455594512],
    ], buffers: [
        "momentum_buffer": [-0.065496135475, 0.36127727094999995, 0.04084927760000007],
    ]),
    "adam": TorchCase(weights: [
        [0.400000009999999, -0.9000000049999998, 1.9000000033333333],
        [0.4279751837425637, -0.9221107676086163, 1.8608336377419696],
        [0.45000991570084226, -1.0126661351632642, 1.8644242713493842],
    ], buffers: [
        "exp_avg": [-0.0079, 0.038799999999999994, -0.0011999999999999951],
        "exp_avg_sq": [0.00020982001000000022, 0.00029967004000000026, 0.00018231759000000015],
    ]),
    "adamL2": TorchCase(weights: [
        [0.4009433962264151, -0.9004739336492891, 1.9003115264797508],
        [0.4304317851087418, -0.9239649145253094, 1.861018119497531],
        [0.44437536749330386, -1.0155015266822272, 1.868044980572618],
    ], buffers: [
        "exp_avg": [-0.009057626995820247, 0.0698313118771105, -0.004277465318637329],
        "exp_avg_sq": [0.010032920938197024, 0.013853010999080052, 0.008805979427377968],
    ]),
    "adamW": TorchCase(weights: [
        [0.399500009999999, -0.8990000049999998, 1.8980000033333333],
        [0.4272754337375637, -0.9206612676061163, 1.857884637740303],
        [0.44845561482836716, -1.009375312625552, 1.857759502072237],
    ], buffers: [
        "exp_avg": [-0.0079, 0.038799999999999994, -0.0011999999999999951],
        "exp_avg_sq": [0.00020982001000000022, 0.00029967004000000026, 0.00018231759000000015],
    ]),
    "adamWStrong": TorchCase(weights: [
        [0.375990099009901, -0.8504975124378109, 1.8003322259136212],
        [0.396637918010922, -0.8537465174353089, 1.7175813137131335],
        [0.37420007307302217, -0.8647697834231646, 1.5683256508369126],
    ], buffers: [
        "exp_avg": [-0.011199999999999996, 0.0744, -0.013599999999999992],
        "exp_avg_sq": [0.01005125000000001, 0.014180000000000012, 0.008680000000000007],
    ]),
    "rmsprop": TorchCase(weights: [
        [-0.4999990000009996, -4.999997503807307e-07, 1.0000003333332228],
        [-0.014785136657240794, -0.4645592550782783, 0.917398035568904],
        [-0.8914194999053043, -0.8317301223248221, 2.3289318938986763],
    ], buffers: [
        "square_avg": [0.0020820100000000018, 0.002967040000000003, 0.0018068400000000016],
    ]),
    "rmspropMomentum": TorchCase(weights: [
        [0.18377232922122858, -0.6837722816022024, 1.6837722652331588],
        [0.19485640938511836, -0.6880732268397244, 1.5074726962216567],
        [-0.05643039760902532, -0.8183350695142391, 1.3122512813618101],
    ], buffers: [
        "momentum_buffer": [1.2564340349707184, 0.6513092133725736, 0.9761070742992333],
        "square_avg": [0.019239335127338438, 0.026328032649642792, 0.01681469642680704],
    ]),
]

/// The same settings as the script's `CASES`, built with this module.
private let torchCases: [(String, Chain)] = [
    ("sgd", Transform.sgd()),
    ("sgdL2", Transform.sgd(weightDecay: 0.01)),
    ("momentum", Transform.sgd(weightDecay: 0.01, momentum: 0.9)),
    ("momentumDampened", Transform.sgd(momentum: 0.9, dampening: 0.1)),
    ("nesterov", Transform.sgd(weightDecay: 0.01, momentum: 0.9, nesterov: true)),
    ("adam", Transform.adam()),
    ("adamL2", Transform.adam(beta1: 0.8, beta2: 0.95, eps: 1e-3, weightDecay: 0.01)),
    ("adamW", Transform.adamW()),
    ("adamWStrong", Transform.adamW(beta1: 0.8, beta2: 0.95, eps: 1e-3, weightDecay: 0.5)),
    ("rmsprop", Transform.rmsprop()),
    ("rmspropMomentum", Transform.rmsprop(alpha: 0.9, weightDecay: 0.01, momentum: 0.9)),
]

@Suite("Optimizers as value transformations")
struct TransformTests {
    // MARK: Hand-computed steps

    @Test func sgdWithL2ByHand() {
        let λ = 0.01
        let (w, _) = run(Transform.sgd(weightDecay: λ))
        // w_{t+1} = w_t − η_t (g_t + λ w_t)
        let w1 = w0 - rates[0] * (grads[0] + λ * w0)
        let w2 = w1 - rates[1] * (grads[1] + λ * w1)
        let w3 = w2 - rates[2] * (grads[2] + λ * w2)
        // First coordinate of the first step by hand: 0.5 − 0.1 (0.1 + 0.005) = 0.4895.
        #expect(near(w[0][0], 0.4895, handTolerance))
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
    }

    @Test func heavyBallByHand() {
        let μ = 0.9, λ = 0.01
        let (w, state) = run(Transform.sgd(weightDecay: λ, momentum: μ))
        // d_t = g_t + λ w_t;  b_0 = d_0,  b_t = μ b_{t−1} + d_t;  w_{t+1} = w_t − η_t b_t
        let b0 = grads[0] + λ * w0
        let w1 = w0 - rates[0] * b0
        let b1 = μ * b0 + (grads[1] + λ * w1)
        let w2 = w1 - rates[1] * b1
        let b2 = μ * b1 + (grads[2] + λ * w2)
        let w3 = w2 - rates[2] * b2
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
        #expect(near(state["1.momentum_buffer"] ?? [], b2, handTolerance))
    }

    @Test func dampenedMomentumByHand() {
        let μ = 0.9, τ = 0.1
        let (w, _) = run(Transform.sgd(momentum: μ, dampening: τ))
        // The first step takes the gradient undamped: b_0 = g_0, b_t = μ b_{t−1} + (1 − τ) g_t.
        let b0 = grads[0]
        let w1 = w0 - rates[0] * b0
        let b1 = μ * b0 + (1 - τ) * grads[1]
        let w2 = w1 - rates[1] * b1
        let b2 = μ * b1 + (1 - τ) * grads[2]
        let w3 = w2 - rates[2] * b2
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
    }

    @Test func nesterovByHand() {
        let μ = 0.9, λ = 0.01
        let (w, _) = run(Transform.sgd(weightDecay: λ, momentum: μ, nesterov: true))
        // d_t = g_t + λ w_t;  b_t as heavy ball;  w_{t+1} = w_t − η_t (d_t + μ b_t)
        let d0 = grads[0] + λ * w0
        let b0 = d0
        let w1 = w0 - rates[0] * (d0 + μ * b0)
        let d1 = grads[1] + λ * w1
        let b1 = μ * b0 + d1
        let w2 = w1 - rates[1] * (d1 + μ * b1)
        let d2 = grads[2] + λ * w2
        let b2 = μ * b1 + d2
        let w3 = w2 - rates[2] * (d2 + μ * b2)
        // First step: 0.5 − 0.1 · 1.9 · (0.1 + 0.005) = 0.48005.
        #expect(near(w[0][0], 0.48005, handTolerance))
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
    }

    @Test func adamByHand() {
        let β1 = 0.9, β2 = 0.999, ε = 1e-8
        let (w, state) = run(Transform.adam())
        // m_t = β1 m + (1−β1) g,  v_t = β2 v + (1−β2) g²,  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)  (t = 1, 2, 3)
        // w ← w − η m̂/(√v̂ + ε)
        let m1 = (1 - β1) * grads[0], v1 = (1 - β2) * (grads[0] * grads[0])
        let w1 = w0 - rates[0] * ((1 / (1 - β1)) * m1 / (sqrt((1 / (1 - β2)) * v1) + ε))
        let m2 = β1 * m1 + (1 - β1) * grads[1], v2 = β2 * v1 + (1 - β2) * (grads[1] * grads[1])
        let w2 = w1 - rates[1] * ((1 / (1 - β1 * β1)) * m2 / (sqrt((1 / (1 - β2 * β2)) * v2) + ε))
        let m3 = β1 * m2 + (1 - β1) * grads[2], v3 = β2 * v2 + (1 - β2) * (grads[2] * grads[2])
        let w3 = w2 - rates[2] * ((1 / (1 - β1 * β1 * β1)) * m3 / (sqrt((1 / (1 - β2 * β2 * β2)) * v3) + ε))
        // First step: m̂ = g, √v̂ = |g|, so w_1 = w_0 − η g/(|g| + ε): 0.5 − 0.1 · 0.1/(0.1 + 1e-8).
        #expect(near(w[0][0], 0.5 - 0.1 * 0.1 / (0.1 + 1e-8), handTolerance))
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
        #expect(near(state["0.exp_avg"] ?? [], m3, handTolerance) && near(state["0.exp_avg_sq"] ?? [], v3, handTolerance))
    }

    @Test func adamWByHand() {
        let β1 = 0.8, β2 = 0.95, ε = 1e-3, λ = 0.5
        let (w, _) = run(Transform.adamW(beta1: β1, beta2: β2, eps: ε, weightDecay: λ))
        // w ← w − η λ w − η m̂/(√v̂ + ε)   (the decay uses the weights before the step)
        let m1 = (1 - β1) * grads[0], v1 = (1 - β2) * (grads[0] * grads[0])
        let w1 = w0 - (rates[0] * λ) * w0 - rates[0] * ((1 / (1 - β1)) * m1 / (sqrt((1 / (1 - β2)) * v1) + ε))
        let m2 = β1 * m1 + (1 - β1) * grads[1], v2 = β2 * v1 + (1 - β2) * (grads[1] * grads[1])
        let w2 = w1 - (rates[1] * λ) * w1 - rates[1] * ((1 / (1 - β1 * β1)) * m2 / (sqrt((1 / (1 - β2 * β2)) * v2) + ε))
        let m3 = β1 * m2 + (1 - β1) * grads[2], v3 = β2 * v2 + (1 - β2) * (grads[2] * grads[2])
        let w3 = w2 - (rates[2] * λ) * w2
            - rates[2] * ((1 / (1 - β1 * β1 * β1)) * m3 / (sqrt((1 / (1 - β2 * β2 * β2)) * v3) + ε))
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
    }

    @Test func rmspropByHand() {
        let α = 0.99, ε = 1e-8
        let (w, state) = run(Transform.rmsprop())
        // v_t = α v + (1−α) g² (v starts at 0, no bias correction);  w ← w − η g/(√v + ε)
        let v1 = (1 - α) * (grads[0] * grads[0])
        let w1 = w0 - rates[0] * (grads[0] / (sqrt(v1) + ε))
        let v2 = α * v1 + (1 - α) * (grads[1] * grads[1])
        let w2 = w1 - rates[1] * (grads[1] / (sqrt(v2) + ε))
        let v3 = α * v2 + (1 - α) * (grads[2] * grads[2])
        let w3 = w2 - rates[2] * (grads[2] / (sqrt(v3) + ε))
        // First step: √v = 0.1|g|, so w_1 ≈ w_0 − 10 η sign(g): 0.5 − 1 = −0.5 (up to ε).
        #expect(near(w[0][0], -0.5, 1e-5))
        #expect(near(w[0], w1, handTolerance) && near(w[1], w2, handTolerance) && near(w[2], w3, handTolerance), "\(w)")
        #expect(near(state["0.square_avg"] ?? [], v3, handTolerance))
    }

    // MARK: PyTorch's own numbers

    @Test(arguments: torchCases.map(\.0))
    func matchesPyTorch(_ name: String) throws {
        let opt = try #require(torchCases.first { $0.0 == name }?.1)
        let ref = try #require(torchReference[name])
        let (w, state) = run(opt)
        for t in 0..<3 {
            #expect(near(w[t], ref.weights[t], torchTolerance), "\(name) step \(t + 1): \(w[t]) vs PyTorch \(ref.weights[t])")
        }
        // Same buffers under the same (unprefixed) names.
        let ours = Dictionary(uniqueKeysWithValues: zip(state.names, state.buffers).map { name, b in
            (String(name.split(separator: ".").last!), b)
        })
        #expect(Set(ours.keys) == Set(ref.buffers.keys), "\(name): buffers \(state.names)")
        for (key, b) in ref.buffers {
            #expect(near(ours[key] ?? [], b, torchTolerance), "\(name) buffer \(key): \(ours[key] ?? []) vs PyTorch \(b)")
        }
    }

    // MARK: GradientDescent equivalence

    @Test(arguments: [0.0, 1e-4, 0.3])
    func plainSGDIsGradientDescentBitForBit(_ λ: Double) throws {
        var rng = PortableRandom(seed: 7)
        let P = 57
        let gd = GradientDescent(weightDecay: λ)
        let opts: [Chain] = [Transform.sgd(weightDecay: λ), try Transform.make(kind: "gd", weightDecay: λ),
                             try Transform.make(kind: "sgd", weightDecay: λ)]
        for opt in opts {
            var state = opt.initialState(parameterCount: P)
            var w = (0..<P).map { _ in rng.normal() }
            for eta in [0.1, 0.37, 1e-3, 2.5] {
                var g = (0..<P).map { _ in 3 * rng.normal() }
                g[0] = -0.0  // signed zeros too
                let r = opt.update(g, state: state, parameters: w, learningRate: eta)
                let expected = gd.delta(gradient: g, parameters: w, learningRate: eta)
                #expect(identical(r.updates, expected), "\(opt) λ \(λ) η \(eta)")
                state = r.state
                Vec.axpy(1, r.updates, &w)
            }
            #expect(state.count == 4 && state.names.isEmpty)
        }
    }

    // MARK: Clipping and chains

    @Test func clipScalesToMaxNormAboveAndNotBelow() {
        let clip = Transform.clipByGlobalNorm(1)
        let g: [Double] = [3, 4, 0]                       // ‖g‖ = 5
        let w: [Double] = [0, 0, 0]
        let above = clip.update(g, state: clip.initialState(parameterCount: 3), parameters: w, learningRate: 0.1)
        #expect(above.info.clipScale.bitPattern == (1.0 / 5.0).bitPattern)
        #expect(near(above.info.gradientNorm ?? 0, 5, handTolerance))
        #expect(identical(above.updates, g.map { $0 * (1.0 / 5.0) }))
        #expect(near(ClipByGlobalNorm.globalNorm(above.updates), 1, handTolerance))

        let loose = Transform.clipByGlobalNorm(10)
        let below = loose.update(g, state: loose.initialState(parameterCount: 3), parameters: w, learningRate: 0.1)
        #expect(below.info.clipScale.bitPattern == (1.0).bitPattern)
        #expect(identical(below.updates, g))

        // Overflowing sum of squares still gives the norm; a NaN leaves the updates alone.
        #expect(near(ClipByGlobalNorm.globalNorm([3e200, 4e200]), 5e200, handTolerance))
        let nan = clip.update([.nan, 1, 1], state: clip.initialState(parameterCount: 3), parameters: w, learningRate: 0.1)
        #expect(nan.info.clipScale.bitPattern == (1.0).bitPattern && nan.updates[0].isNaN)
    }

    @Test func clipInAChainScalesTheGradientBeforeTheOptimizer() throws {
        let opt = try Transform.make(kind: "sgd", momentum: 0.9, clipNorm: 0.1)
        #expect(opt.description == "chain(clipByGlobalNorm(0.1), scaleByMomentum(0.9, dampening: 0.0, nesterov: false), scaleByLearningRate())")
        let g: [Double] = [0.3, 0, -0.4]                  // ‖g‖ = 0.5 → κ = 0.2
        let r = opt.update(g, state: opt.initialState(parameterCount: 3), parameters: w0, learningRate: 0.5)
        #expect(near(r.info.clipScale, 0.2, handTolerance))
        #expect(near(r.updates, [-0.5 * 0.2 * 0.3, 0, 0.5 * 0.2 * 0.4], handTolerance))
        #expect(r.state.names == ["1.momentum_buffer"])
        // Without clipping the reported scale is exactly 1.
        let plain = Transform.adam().update(g, state: Transform.adam().initialState(parameterCount: 3), parameters: w0, learningRate: 0.5)
        #expect(plain.info.clipScale.bitPattern == (1.0).bitPattern && plain.info.gradientNorm == nil)
    }

    @Test func chainKeepsComponentStatesApart() {
        let a = Transform.scaleByMomentum(0.5), b = Transform.scaleByMomentum(0.25)
        let opt = Transform.chain(a, Transform.chain(Transform.scaleByAdam(), b), Transform.scaleByLearningRate())
        #expect(opt.bufferNames == ["0.momentum_buffer", "1.0.exp_avg", "1.0.exp_avg_sq", "1.1.momentum_buffer"])
        var state = opt.initialState(parameterCount: 3)
        var w = w0
        for t in 0..<3 {
            let r = opt.update(grads[t], state: state, parameters: w, learningRate: rates[t])
            state = r.state
            w = w + r.updates
        }
        // Component 0's buffer is its own heavy ball on the raw gradients.
        let b0 = 0.5 * (0.5 * grads[0] + grads[1]) + grads[2]
        #expect(near(state["0.momentum_buffer"] ?? [], b0, handTolerance))
        #expect(state.count == 3)
        // Component states are readable through the chain.
        #expect(opt.componentState(1, of: state).names == ["0.exp_avg", "0.exp_avg_sq", "1.momentum_buffer"])
        #expect(near(opt.first(ScaleByMomentum.self)?.momentum ?? 0, 0.5, handTolerance))
        #expect(opt.first(ScaleByAdam.self) != nil)
    }

    // MARK: State storage and replay

    @Test func flattenedStateRoundTripsBitForBit() throws {
        let opt = try Transform.make(kind: "rmsprop", momentum: 0.9, weightDecay: 0.01, clipNorm: 0.3)
        let (_, state) = run(opt)
        let (names, values) = state.flattened()
        // clip (0) and coupled decay (1) keep no buffers.
        #expect(names == ["2.square_avg", "3.momentum_buffer"])
        #expect(values.count == 2 * 3)
        #expect(identical(Array(values[3..<6]), state["3.momentum_buffer"] ?? []))
        let restored = try OptimizerState(count: state.count, names: names, values: values, parameterCount: 3)
        #expect(restored == state)
        #expect(identical(restored.flattened().values, values))
        // JSON (Codable) too.
        let decoded = try JSONDecoder().decode(OptimizerState.self, from: JSONEncoder().encode(state))
        #expect(decoded == state && identical(decoded.flattened().values, values))
        // A stateless optimizer flattens to nothing and restores with its P.
        let empty = try OptimizerState(count: 5, names: [], values: [], parameterCount: 3)
        #expect(empty == OptimizerState(count: 5, parameterCount: 3))
    }

    @Test func restoringRejectsInconsistentBlobs() {
        #expect(throws: OptimError.self) { try OptimizerState(count: 1, names: ["a"], values: [1, 2], parameterCount: 3) }
        #expect(throws: OptimError.self) { try OptimizerState(count: 1, names: ["a", "a"], values: [1, 2], parameterCount: 1) }
        #expect(throws: OptimError.self) { try OptimizerState(count: -1, names: [], values: [], parameterCount: 1) }
        // A state written by other settings does not restore into this optimizer.
        let adam = Transform.adam(), momentum = Transform.sgd(momentum: 0.9)
        let f = adam.initialState(parameterCount: 2).flattened()
        #expect(throws: OptimError.self) { try momentum.restoreState(count: 1, names: f.names, values: f.values, parameterCount: 2) }
        #expect(throws: Never.self) { try adam.restoreState(count: 1, names: f.names, values: f.values, parameterCount: 2) }
    }

    static let replayKinds: [(String, Chain)] = [
        ("momentum", try! Transform.make(kind: "sgd", momentum: 0.9, weightDecay: 1e-3)),
        ("nesterov+clip", try! Transform.make(kind: "sgd", momentum: 0.8, nesterov: true, clipNorm: 0.5)),
        ("adam+clip", try! Transform.make(kind: "adam", weightDecay: 1e-2, clipNorm: 0.5)),
        ("adamw", try! Transform.make(kind: "adamw", weightDecay: 0.1)),
        ("rmsprop", try! Transform.make(kind: "rmsprop", momentum: 0.5)),
    ]

    @Test(arguments: 0..<TransformTests.replayKinds.count)
    func replayFromStoredStateIsBitIdentical(_ index: Int) throws {
        let (name, opt) = Self.replayKinds[index]
        var rng = PortableRandom(seed: 11)
        let P = 20, T = 8, k = 3
        let gradients = (0..<T).map { _ in (0..<P).map { _ in rng.normal() } }
        let etas = (0..<T).map { 0.05 * Double($0 + 1) }
        // Gradients depend on w in a real run; w enters here through the decay terms.
        var w = (0..<P).map { _ in rng.normal() }
        var state = opt.initialState(parameterCount: P)
        var checkpoint: (w: [Double], names: [String], values: [Double], count: Int)?
        var trajectory = [[Double]]()
        for t in 0..<T {
            if t == k { let f = state.flattened(); checkpoint = (w, f.names, f.values, state.count) }
            let r = opt.update(gradients[t], state: state, parameters: w, learningRate: etas[t])
            Vec.axpy(1, r.updates, &w)
            state = r.state
            trajectory.append(w)
        }
        let c = try #require(checkpoint)
        var w2 = c.w
        var s2 = try opt.restoreState(count: c.count, names: c.names, values: c.values, parameterCount: P)
        for t in k..<T {
            let r = opt.update(gradients[t], state: s2, parameters: w2, learningRate: etas[t])
            Vec.axpy(1, r.updates, &w2)
            s2 = r.state
            #expect(identical(w2, trajectory[t]), "\(name) step \(t)")
        }
        #expect(identical(s2.flattened().values, state.flattened().values) && s2.count == state.count)
    }

    // MARK: What the kernel analysis reads

    @Test func adamUpdateIsPreconditionedFirstMoment() throws {
        let opt = Transform.adam(beta1: 0.8, beta2: 0.95, eps: 1e-3)
        let adam = try #require(opt.first(ScaleByAdam.self))
        var state = opt.initialState(parameterCount: 3)
        var w = w0
        for t in 0..<3 {
            let r = opt.update(grads[t], state: state, parameters: w, learningRate: rates[t])
            let d = try #require(opt.preconditioner(r.state))
            let m = try #require(r.state["0.exp_avg"])
            let s = try #require(r.info.firstMomentScale)
            #expect(near(s, 1 / (1 - pow(0.8, Double(t + 1))), handTolerance))
            // Δw = −η · (1/(1−β1^t)) · D_t ⊙ m_t
            #expect(near(r.updates, (-rates[t] * s) * (d * m), identityTolerance), "step \(t)")
            // m̂_t = Σ_s c_s g_s with the published weights (summing to 1).
            let c = adam.firstMomentWeights(step: t)
            #expect(near(c.reduce(0, +), 1, handTolerance))
            let mhat = (0...t).reduce([0.0, 0, 0]) { $0 + c[$1] * grads[$1] }
            #expect(near(mhat, s * m, identityTolerance))
            state = r.state
            w = w + r.updates
        }
    }

    @Test func rmspropUpdateIsPreconditionedGradient() throws {
        let opt = Transform.rmsprop(alpha: 0.9)
        var state = opt.initialState(parameterCount: 3)
        for t in 0..<3 {
            let r = opt.update(grads[t], state: state, parameters: w0, learningRate: rates[t])
            let d = try #require(opt.preconditioner(r.state))
            #expect(near(r.updates, -rates[t] * (d * grads[t]), identityTolerance))
            #expect(r.info.firstMomentScale == nil)
            state = r.state
        }
        let heavyBall = Transform.sgd(momentum: 0.9)
        #expect(heavyBall.preconditioner(heavyBall.initialState(parameterCount: 3)) == nil)
    }

    /// (μ, dampening, Nesterov)
    static let momentumSettings: [(Double, Double, Bool)] = [(0.9, 0, false), (0.9, 0.1, false), (0.8, 0, true)]

    @Test(arguments: 0..<TransformTests.momentumSettings.count)
    func momentumWeightsRebuildTheDirection(_ index: Int) {
        let (μ, τ, nesterov) = Self.momentumSettings[index]
        let m = Transform.scaleByMomentum(μ, dampening: τ, nesterov: nesterov)
        var state = m.initialState(parameterCount: 3)
        for t in 0..<3 {
            let r = m.update(grads[t], state: state, parameters: w0, learningRate: 1)
            let c = m.weights(step: t)
            #expect(c.count == t + 1)
            let rebuilt = (0...t).reduce([0.0, 0, 0]) { $0 + c[$1] * grads[$1] }
            #expect(near(r.updates, rebuilt, identityTolerance), "μ \(μ) τ \(τ) nesterov \(nesterov) step \(t)")
            state = r.state
        }
    }

    @Test func adamWReportsItsDecoupledDecay() throws {
        let λ = 0.1
        let decayed = Transform.adamW(weightDecay: λ), bare = Transform.adamW(weightDecay: 0)
        var s1 = decayed.initialState(parameterCount: 3), s2 = bare.initialState(parameterCount: 3)
        var w = w0
        for t in 0..<3 {
            let r = decayed.update(grads[t], state: s1, parameters: w, learningRate: rates[t])
            let plain = bare.update(grads[t], state: s2, parameters: w, learningRate: rates[t])
            let decay = try #require(r.info.decoupledDecay)
            #expect(identical(decay, w.map { -(rates[t] * λ) * $0 }))
            // The rest of the update is Adam's step alone (the decay does not enter the moments).
            #expect(near(r.updates - decay, plain.updates, identityTolerance))
            #expect(plain.info.decoupledDecay == nil)
            s1 = r.state; s2 = plain.state
            w = w + r.updates
        }
    }

    // MARK: Factory

    @Test func factoryBuildsTheDocumentedChains() throws {
        #expect(try Transform.make(kind: "gd").description == "chain(scaleByLearningRate())")
        #expect(try Transform.make(kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.1).description
            == "chain(addDecayedWeights(0.1), scaleByMomentum(0.9, dampening: 0.0, nesterov: true), scaleByLearningRate())")
        #expect(try Transform.make(kind: "sgd", weightDecay: 0.1, decoupled: true).description
            == "chain(scaleByLearningRate(), addDecoupledWeightDecay(0.1))")
        #expect(try Transform.make(kind: "adam", eps: 1e-6, weightDecay: 0.1).description
            == "chain(addDecayedWeights(0.1), scaleByAdam(beta1: 0.9, beta2: 0.999, eps: 1e-06), scaleByLearningRate())")
        let adamw = "chain(scaleByAdam(beta1: 0.9, beta2: 0.999, eps: 1e-08), scaleByLearningRate(), addDecoupledWeightDecay(0.1))"
        #expect(try Transform.make(kind: "adamw", weightDecay: 0.1).description == adamw)
        #expect(try Transform.make(kind: "adam", weightDecay: 0.1, decoupled: true).description == adamw)
        #expect(try Transform.make(kind: "rmsprop", momentum: 0.5, alpha: 0.9, clipNorm: 2).description
            == "chain(clipByGlobalNorm(2.0), scaleByRMS(alpha: 0.9, eps: 1e-08), scaleByMomentum(0.5, dampening: 0.0, nesterov: false), scaleByLearningRate())")
    }

    @Test(arguments: [
        ("lbfgs", "unknown kind"),
        ("adam-momentum", "momentum applies"),
        ("nesterov-no-momentum", "nesterov needs"),
        ("nesterov-dampening", "nesterov needs"),
        ("adamw-coupled", "always decouples"),
        ("negative-decay", "weightDecay"),
        ("beta", "beta1"),
        ("clip", "clipNorm"),
    ])
    func factoryRejectsBadSettings(_ which: String, _ message: String) {
        do {
            switch which {
            case "lbfgs": _ = try Transform.make(kind: "lbfgs")
            case "adam-momentum": _ = try Transform.make(kind: "adam", momentum: 0.9)
            case "nesterov-no-momentum": _ = try Transform.make(kind: "sgd", nesterov: true)
            case "nesterov-dampening": _ = try Transform.make(kind: "sgd", momentum: 0.9, dampening: 0.1, nesterov: true)
            case "adamw-coupled": _ = try Transform.make(kind: "adamw", decoupled: false)
            case "negative-decay": _ = try Transform.make(kind: "sgd", weightDecay: -1)
            case "beta": _ = try Transform.make(kind: "adam", beta1: 1)
            default: _ = try Transform.make(kind: "sgd", clipNorm: 0)
            }
            Issue.record("\(which) was accepted")
        } catch {
            #expect("\(error)".contains(message), "\(which): \(error)")
        }
    }
}

/// Parameter groups (`OptimizerSpec.groups`): each tensor's weight decay from its group.
@Suite("Optimizer parameter groups")
struct ParameterGroupTests {
    static let tensors: [(name: String, count: Int)] = [("0.weight", 3), ("0.bias", 2), ("1.block.0.weight", 2), ("2.weight", 1)]

    @Test func patternsMatchNames() {
        #expect(ParameterGroup.matches("*.bias", "0.bias"))
        #expect(ParameterGroup.matches("*.bias", "1.block.3.bias"))
        #expect(!ParameterGroup.matches("*.bias", "0.weight"))
        #expect(ParameterGroup.matches("1.block.0.*", "1.block.0.weight"))
        #expect(!ParameterGroup.matches("1.block.0.*", "1.block.01.weight"))
        #expect(ParameterGroup.matches("0.weight", "0.weight") && !ParameterGroup.matches("0.weight", "10.weight"))
        #expect(ParameterGroup.matches("*", "x") && ParameterGroup.matches("a*b*c", "aXbYbc") && !ParameterGroup.matches("a*b*c", "aXc"))
    }

    /// Coupled (SGD) and decoupled (AdamW) decay per parameter, by hand: λ_k from the first group
    /// whose pattern matches, the spec's λ elsewhere; bit for bit the scalar rule where λ_k = λ.
    @Test func decayFollowsTheGroups() throws {
        let w: [Double] = [1, -2, 3, 0.5, -0.25, 2, -1, 4], g: [Double] = [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8]
        let lambda: [Double] = [0.1, 0.1, 0.1, 0, 0, 0.02, 0.02, 0.1]
        let groups = [ParameterGroup(parameters: ["*.bias"], weightDecay: 0), ParameterGroup(parameters: ["1.block.*"], weightDecay: 0.02)]
        var sgd = OptimizerSpec(kind: .sgd, learningRate: 0.5, weightDecay: 0.1)
        sgd.groups = groups
        let chain = try sgd.transformation(parameters: Self.tensors)
        let u = chain.update(g, state: chain.initialState(parameterCount: 8), parameters: w, learningRate: 0.5).updates
        for k in 0..<8 { #expect(u[k] == -0.5 * (g[k] + lambda[k] * w[k])) }
        #expect(chain.kernelForm?.decayByParameter == lambda && chain.kernelForm?.coupledDecay == 0.1)
        // The kernel form's decay term.
        #expect(chain.kernelForm!.decay(of: w, times: -0.5, lambda: 0.1) == (0..<8).map { (-0.5 * lambda[$0]) * w[$0] })
        var adamw = OptimizerSpec(kind: .adamw, learningRate: 0.1, weightDecay: 0.1)
        adamw.groups = groups
        let aw = try adamw.transformation(parameters: Self.tensors)
        let plain = try OptimizerSpec(kind: .adamw, learningRate: 0.1, weightDecay: 0.1).transformation()
        let ua = aw.update(g, state: aw.initialState(parameterCount: 8), parameters: w, learningRate: 0.1).updates
        let up = plain.update(g, state: plain.initialState(parameterCount: 8), parameters: w, learningRate: 0.1).updates
        for k in 0..<8 {
            // Adam's part is the same; the decoupled part is −ηλ_k w_k.
            let adamPart = up[k] - (-(0.1 * 0.1) * w[k])
            if lambda[k] == 0.1 { #expect(ua[k].bitPattern == up[k].bitPattern) }
            #expect(abs(ua[k] - (adamPart - (0.1 * lambda[k]) * w[k])) <= 1e-15)
        }
        #expect(aw.kernelForm?.decayByParameter == lambda && aw.kernelForm?.decoupledDecay == 0.1)
    }

    @Test func groupsNeedTheLayoutAndMatchingPatterns() throws {
        var spec = OptimizerSpec(kind: .adamw, learningRate: 0.1)
        spec.groups = [ParameterGroup(parameters: ["*.norm.*"], weightDecay: 0)]
        #expect(throws: OptimError.self) { try spec.transformation() }
        do {
            _ = try spec.transformation(parameters: Self.tensors)
            Issue.record("a pattern matching nothing was accepted")
        } catch {
            #expect("\(error)".contains("\"*.norm.*\" matches no parameter tensor"), "\(error)")
        }
        try spec.validate()   // the settings alone are fine
        spec.groups = [ParameterGroup(parameters: [], weightDecay: 0)]
        #expect(throws: OptimError.self) { try spec.validate() }
        spec.groups = [ParameterGroup(parameters: ["*"], weightDecay: -1)]
        #expect(throws: OptimError.self) { try spec.validate() }
    }

    /// JSON: `groups` round-trips, is written only when present (older configs and traces encode
    /// as before), and refuses unknown keys.
    @Test func json() throws {
        let text = #"{"kind":"adamw","learningRate":0.001,"weightDecay":0.05,"groups":[{"parameters":["*.bias","1.block.0.*"],"weightDecay":0}]}"#
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(text.utf8))
        #expect(spec.groups == [ParameterGroup(parameters: ["*.bias", "1.block.0.*"], weightDecay: 0)])
        #expect(try JSONDecoder().decode(OptimizerSpec.self, from: JSONEncoder().encode(spec)) == spec)
        let plain = String(decoding: try JSONEncoder().encode(OptimizerSpec(kind: .sgd, learningRate: 0.1)), as: UTF8.self)
        #expect(!plain.contains("groups"))
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(OptimizerSpec.self, from: Data(#"{"kind":"sgd","learningRate":0.1,"groups":[{"parameters":["*"],"weightDecay":0,"lr":1}]}"#.utf8))
        }
        #expect(spec.summary.contains("weight decay 0.0 on *.bias 1.block.0.*"))
    }
}
