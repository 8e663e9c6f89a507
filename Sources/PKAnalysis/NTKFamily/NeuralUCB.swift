import Foundation
import PKNetworks
import PKNumerics

/// NeuralUCB contextual bandits (ntk-family contract §6; Zhou, Li, Gu 2020, Algorithm 1) and the
/// baselines the paper compares against, in the project form:
///
///     φ(x; w) = J(x; w)          f̃(x; w) = f(x; w) − f(x; w₀)   (centered: f̃(·; w₀) = 0)
///     U_{t,a} = f̃(x_{t,a}; w_{t−1}) + γ √(φ_{t,a}ᵀ Z_{t−1}⁻¹ φ_{t,a}),  φ_{t,a} = φ(x_{t,a}; w_{t−1})
///     a_t = argmax_a U_{t,a}   (ties within 1e-12·max(1, |U_max|): the lowest index)
///     Z_t = Z_{t−1} + φ_{t,a_t} φ_{t,a_t}ᵀ,   Z₀ = λ I           (Z⁻¹ by Sherman–Morrison)
///     w_t = J GD steps from w₀ on Σ_{i≤t} ½(f̃(x_i; w) − r_i)² + (λ/2)‖w − w₀‖²
///
/// The training is plain full-batch gradient descent on the network's own pullback (no optimizer,
/// no trainer): PKAnalysis never links the training loop. Everything is single-threaded and
/// draws its randomness from `PortableRandom` streams of the run's seed, so a run is reproduced
/// bit for bit from its seed.
public enum NeuralUCB {
    /// The policies.
    public enum Algorithm: String, CaseIterable, Sendable, Codable {
        /// Algorithm 1: full `Z` (P × P), Sherman–Morrison.
        case neuralucb
        /// `Z` replaced by its diagonal (the paper's real-data runs and the official code).
        case neuralucbDiag = "neuralucb-diag"
        /// LinUCB on the fixed features `φ₀ = J(x; w₀)` (Appendix E), no `f₀` term.
        case neuralucb0
        /// LinUCB on the raw arm contexts (`α`, `λ`).
        case linucb
        /// `argmax f̃`, or with probability `ε` a uniform arm; the network trained as NeuralUCB's.
        case neuralEgreedy = "neural-egreedy"
        /// A uniform arm every round.
        case uniform

        /// Whether the policy trains a network.
        public var trainsNetwork: Bool { self == .neuralucb || self == .neuralucbDiag || self == .neuralEgreedy }
        /// Whether the policy uses the network's features at all.
        public var usesNetwork: Bool { trainsNetwork || self == .neuralucb0 }
        /// Whether the policy keeps a full `P × P` (or `D × D`) matrix.
        public var fullMatrix: Bool { self == .neuralucb || self == .neuralucb0 || self == .linucb }
    }

    /// TrainNN's objective: the sum over the history (the paper's and the oracle's) or the sum
    /// divided by `t` (whose curvature does not grow with `t`).
    public enum Objective: String, CaseIterable, Sendable, Codable { case sum, mean }

    /// Most parameters (or context features, for LinUCB) of a full `Z`: 4000² doubles = 128 MB.
    public static let maxFullDimension = 4_000
    /// Ties of `argmax U`: `|U_a − U_max| ≤ tieTolerance · max(1, |U_max|)`, lowest index wins.
    public static let tieTolerance = 1e-12
    /// Ranges of the settings (validated by `Settings.validate`).
    public static let lambdaRange = NumberRange("a number in (0, 1e12]") { $0 > 0 && $0 <= 1e12 }
    public static let widthFactorRange = NumberRange("a number in [0, 1e6]") { $0 >= 0 && $0 <= 1e6 }
    public static let etaRange = NumberRange("a number in [0, 1e6]") { $0 >= 0 && $0 <= 1e6 }
    public static let epsilonRange = NumberRange("a number in [0, 1]") { $0 >= 0 && $0 <= 1 }
    public static let stepsRange = 0...1_000_000
    public static let trainEveryRange = 1...1_000_000_000

    /// Random streams of a run (labels of `PortableRandom.stream`).
    static let policyStreamLabel: UInt64 = 0xBA4D_0001

    /// The settings of one policy.
    public struct Settings: Sendable, Equatable {
        public var algorithm: Algorithm
        /// `λ`: `Z₀ = λI` and the ridge towards `w₀` (LinUCB: `A₀ = λI`).
        public var lambda: Double = 1
        /// `γ`, the constant exploration factor of the NeuralUCB policies.
        public var gamma: Double = 0.1
        /// `η`, the GD step of TrainNN.
        public var eta: Double = 0.1
        /// `J`, GD steps per training.
        public var steps: Int = 25
        public var objective: Objective = .sum
        /// Train after round `t` when `t` is a multiple of this (1: every round).
        public var trainEvery: Int = 1
        /// Train every round up to this round, then every `trainEvery` (0: `trainEvery` throughout).
        public var trainEveryRoundUntil: Int = 0
        /// Continue GD from `w_{t−1}` instead of restarting from `w₀`.
        public var warmStart: Bool = false
        /// `ε` of neural ε-greedy.
        public var epsilon: Double = 0.05
        /// `α` of LinUCB.
        public var alpha: Double = 0.1

        public init(algorithm: Algorithm) { self.algorithm = algorithm }

        public func validate() throws {
            func check(_ v: Double, _ range: NumberRange, _ name: String) throws {
                guard range.contains(v) else { throw AnalysisError("\(name) \(v) is not \(range)") }
            }
            try check(lambda, NeuralUCB.lambdaRange, "λ (--lambda)")
            try check(gamma, NeuralUCB.widthFactorRange, "γ (--gamma)")
            try check(alpha, NeuralUCB.widthFactorRange, "α (--alpha)")
            try check(eta, NeuralUCB.etaRange, "η (--eta)")
            try check(epsilon, NeuralUCB.epsilonRange, "ε (--epsilon)")
            guard NeuralUCB.stepsRange.contains(steps) else { throw AnalysisError("J (--steps) \(steps) is not in \(NeuralUCB.stepsRange)") }
            guard NeuralUCB.trainEveryRange.contains(trainEvery) else {
                throw AnalysisError("--train-every \(trainEvery) is not in \(NeuralUCB.trainEveryRange)")
            }
            guard trainEveryRoundUntil >= 0 else { throw AnalysisError("--train-every-round-until must be ≥ 0") }
        }

        /// Whether TrainNN runs after round `t` (1-based).
        public func trains(after t: Int) -> Bool { t <= trainEveryRoundUntil || t % trainEvery == 0 }
    }

    /// One round of a bandit: `K` arm contexts (`K × D`), the observed rewards of every arm (only
    /// the played one is shown to the policy) and the expected (noise-free) rewards, for regret.
    public struct Round: Sendable, Equatable {
        public var contexts: Matrix
        public var rewards: [Double]
        public var expected: [Double]
        public init(contexts: Matrix, rewards: [Double], expected: [Double]) {
            self.contexts = contexts; self.rewards = rewards; self.expected = expected
        }
        public var arms: Int { contexts.rows }
        /// `max_a E r_a − E r_{played}`.
        public func regret(_ arm: Int) -> Double { (expected.max() ?? 0) - expected[arm] }
    }

    /// What one round of a policy did.
    public struct Step: Sendable, Equatable {
        /// `U_{t,a}` (ε-greedy: `f̃`; uniform: empty).
        public var scores: [Double]
        /// The exploration widths `√(φᵀZ⁻¹φ)` (without `γ`/`α`; empty for ε-greedy and uniform).
        public var widths: [Double]
        public var arm: Int
        public var reward: Double
        public var regret: Double
        /// `log det(Z_t/λ)` after the round (diagonal `Z`: of the diagonal; nil: no `Z`).
        public var logDet: Double?
        /// `‖w_t − w₀‖` after the round (nil: no network).
        public var parameterDistance: Double?

        public init(scores: [Double], widths: [Double], arm: Int, reward: Double, regret: Double,
                    logDet: Double?, parameterDistance: Double?) {
            self.scores = scores; self.widths = widths; self.arm = arm; self.reward = reward
            self.regret = regret; self.logDet = logDet; self.parameterDistance = parameterDistance
        }
    }

    /// One TrainNN run, recorded for a trace (`Policy.recordRounds`, `pathkernel bandit
    /// --trace-rounds`): after round `round`, with `played` = t contexts in the history, GD
    ///
    ///     v_{j+1} = v_j − η s (Σ_{i≤t} ∇½(f̃(x_i; v_j) − r_i)² + λ (v_j − w₀)),   v_0 = w₀,
    ///
    /// `s = 1` (sum) or `1/t` (mean). `iterates` are `v_0 … v_J`, bit for bit the weights the
    /// policy computed (the last is `w_t`). As a trace (mean loss over the t contexts, targets
    /// `r_i + f(x_i; w₀)`) this is full-batch GD with rate `η s t` and decay `λ/t` towards `w₀`.
    public struct Training: Sendable, Equatable {
        public var round: Int
        public var played: Int
        public var eta: Double
        public var lambda: Double
        /// `s`: 1 (sum objective) or `1/t` (mean).
        public var scale: Double
        public var iterates: [[Double]]
        /// The trace's learning rate `η s t`.
        public var traceLearningRate: Double { eta * scale * Double(played) }
        /// The trace's weight decay towards `w₀`: `λ/t`.
        public var traceWeightDecay: Double { lambda / Double(played) }
    }

    /// One run of a policy.
    public struct Run: Sendable, Equatable {
        public var seed: UInt64
        public var steps: [Step]
        public var arms: Int
        /// The TrainNN runs of the rounds asked for (`recordRounds`), in round order.
        public var trainings: [Training] = []
        public init(seed: UInt64, steps: [Step], arms: Int, trainings: [Training] = []) {
            self.seed = seed; self.steps = steps; self.arms = arms; self.trainings = trainings
        }
        public var cumulativeRegret: [Double] {
            var s = 0.0
            return steps.map { s += $0.regret; return s }
        }
        public var finalRegret: Double { steps.reduce(0) { $0 + $1.regret } }
        public var playCounts: [Int] {
            var c = [Int](repeating: 0, count: arms)
            for s in steps { c[s.arm] += 1 }
            return c
        }
        /// The played arms.
        public var playedArms: [Int] { steps.map(\.arm) }
    }

    /// Several runs of one policy: the cumulative regret mean ± sample std per round.
    public struct Summary: Sendable, Equatable {
        public var settings: Settings
        public var runs: [Run]
        public var meanCumulativeRegret: [Double]
        public var stdCumulativeRegret: [Double]
        public var finalRegretMean: Double { meanCumulativeRegret.last ?? 0 }
        public var finalRegretStd: Double { stdCumulativeRegret.last ?? 0 }

        public init(settings: Settings, runs: [Run]) {
            self.settings = settings
            self.runs = runs
            let curves = runs.map(\.cumulativeRegret)
            let T = curves.map(\.count).min() ?? 0
            var mean = [Double](repeating: 0, count: T), std = [Double](repeating: 0, count: T)
            let n = Double(curves.count)
            for t in 0..<T {
                let m = curves.reduce(0) { $0 + $1[t] } / n
                mean[t] = m
                if curves.count > 1 {
                    std[t] = (curves.reduce(0) { $0 + ($1[t] - m) * ($1[t] - m) } / (n - 1)).squareRoot()
                }
            }
            meanCumulativeRegret = mean
            stdCumulativeRegret = std
        }
    }

    // MARK: - Features

    /// A feature vector `φ` of length `dimension`: dense (`indices` nil) or supported on the
    /// increasing `indices` only (a disjoint arm's block, `ArmBlocks`).
    struct Feature {
        var indices: [Int]?
        var values: [Double]
    }

    /// The disjoint encoding's structure (contract §6 (a), `bandit-fmnist`): arm `a`'s context
    /// `e_a ⊗ x` touches columns `a·d ..< (a+1)·d` of the first layer only, so its forward pass,
    /// Jacobian and `Z` update need the network restricted to that block: the sub-network
    /// `[d, m, …, 1]` with the weights `W¹[:, block a]` and every later parameter, fed `c·x` with
    /// `c = s_W(full) / s_W(sub)` (`√(d/(dK))` under `ntk`, 1 under `standard`) so that its first
    /// pre-activation is the full network's. `K` times less work than the dense `dK` columns; the
    /// result equals the dense computation up to round-off (the scaling `c` rounds;
    /// NeuralUCBTests.blockSparseMatchesDense).
    public struct ArmBlocks: Sendable {
        public let full: MLP
        public let sub: MLP
        /// `d`, the columns of one arm's block.
        public let blockSize: Int
        public let arms: Int
        /// `c`, applied to `x` before the sub-network.
        public let inputScale: Double
        /// `indices[a][i]`: the full parameter index of the sub-network's parameter `i` for arm `a`
        /// (increasing in `i`).
        public let indices: [[Int]]

        /// The structure of `full` on `arms` blocks of `blockSize` columns (`arms·blockSize` inputs).
        public init(full: MLP, blockSize d: Int, arms K: Int) throws {
            guard d >= 1, K >= 1, d * K == full.inputDim else {
                throw AnalysisError("arm blocks: \(K) blocks of \(d) columns do not make the network's \(full.inputDim) inputs")
            }
            var spec = full.spec
            spec.layers[0] = d
            let sub = try MLP(spec: spec)
            self.full = full
            self.sub = sub
            self.blockSize = d
            self.arms = K
            self.inputScale = full.layers[0].weightScale / sub.layers[0].weightScale
            let m = full.layers[0].outputs, D = full.inputDim
            let firstCount = m * d
            let restCount = full.parameterCount - m * D
            precondition(sub.parameterCount == firstCount + restCount, "arm blocks: sub-network layout")
            indices = (0..<K).map { a in
                var idx = [Int](repeating: 0, count: sub.parameterCount)
                for r in 0..<m { for c in 0..<d { idx[r * d + c] = r * D + a * d + c } }
                for i in 0..<restCount { idx[firstCount + i] = m * D + i }
                return idx
            }
        }

        /// The sub-network's parameters for arm `a`.
        /// (Row `r` of the block is `d` consecutive entries of `w`; the rest is one run.)
        public func gather(_ w: [Double], arm a: Int) -> [Double] {
            let d = blockSize, m = full.layers[0].outputs, D = full.inputDim
            let n = sub.parameterCount, rest = n - m * d
            precondition(w.count == full.parameterCount, "gather: \(w.count) parameters, the network has \(full.parameterCount)")
            return [Double](unsafeUninitializedCapacity: n) { out, count in
                w.withUnsafeBufferPointer { wp in
                    let base = out.baseAddress!, src = wp.baseAddress!
                    for r in 0..<m { (base + r * d).initialize(from: src + r * D + a * d, count: d) }
                    (base + m * d).initialize(from: src + m * D, count: rest)
                }
                count = n
            }
        }

        /// `g[indices[a][i]] += s[i]`.
        public func scatterAdd(_ s: [Double], arm a: Int, into g: inout [Double]) {
            let idx = indices[a]
            precondition(s.count == idx.count, "scatterAdd: \(s.count) values for \(idx.count) indices")
            g.withUnsafeMutableBufferPointer { gp in s.withUnsafeBufferPointer { sp in idx.withUnsafeBufferPointer { ip in
                for i in 0..<ip.count { gp[ip[i]] += sp[i] }
            } } }
        }

        /// Arm `a`'s block of its context row (`dK` features), scaled by `c`: the sub-network's input.
        public func input(_ contexts: Matrix, arm a: Int) -> [Double] {
            let d = blockSize
            return (0..<d).map { inputScale * contexts[a, a * d + $0] }
        }
    }

    // MARK: - The policy

    /// The state of a policy during a run.
    public struct Policy {
        public let settings: Settings
        public let model: MLP?
        public let w0: [Double]
        public private(set) var w: [Double]
        /// `Z⁻¹` (full, row-major, `dim × dim`) or `Z`'s diagonal (`neuralucb-diag`).
        public private(set) var zInverse: [Double]
        public private(set) var zDiagonal: [Double]
        public let dimension: Int
        public private(set) var logDet = 0.0
        /// The disjoint arms' block structure, when the policy uses it (network policies on a
        /// bandit that declares `blockSize`): every network computation on the arm's block only.
        public let blocks: ArmBlocks?
        /// LinUCB / NeuralUCB₀: `b = Σ r φ`.
        private var b: [Double]
        /// The played contexts, their `f(x; w₀)` and rewards (dense path).
        private var history: [Double] = []
        private var historyF0: [Double] = []
        private var historyRewards: [Double] = []
        /// The same per played arm, the contexts as the sub-network's scaled inputs (block path).
        private var blockHistory: [[Double]] = []
        private var blockF0: [[Double]] = []
        private var blockRewards: [[Double]] = []
        /// `w₀` restricted to each arm's block (block path).
        private var w0Blocks: [[Double]] = []
        private var played = 0
        /// `‖w − w₀‖`, updated by each training.
        private var currentDistance = 0.0
        private var random: PortableRandom
        private var round = 0
        private let contextDim: Int
        /// Rounds whose TrainNN run is kept in `recordedTrainings` (every iterate: J + 1 vectors of P).
        public var recordRounds: Set<Int> = []
        public private(set) var recordedTrainings: [Training] = []

        /// A policy on contexts of `contextDim` features; `model` and `w0` for the network policies
        /// (the model has one output and `contextDim` inputs). `blockSize` `d`: the contexts are
        /// the disjoint encoding `e_a ⊗ x` (row `a` zero outside columns `a·d ..< (a+1)·d`), and the
        /// network policies compute on arm blocks (`ArmBlocks`); nil: dense.
        public init(settings: Settings, contextDim: Int, model: MLP?, w0: [Double], seed: UInt64, blockSize: Int? = nil) throws {
            try settings.validate()
            self.settings = settings
            self.contextDim = contextDim
            self.random = PortableRandom.stream(seed: seed, label: NeuralUCB.policyStreamLabel)
            if settings.algorithm.usesNetwork {
                guard let model else { throw AnalysisError("\(settings.algorithm.rawValue) needs a network") }
                guard model.outputDim == 1 else { throw AnalysisError("the bandit network must have one output, not \(model.outputDim)") }
                guard model.inputDim == contextDim else {
                    throw AnalysisError("the bandit network takes \(model.inputDim) inputs; the arm contexts have \(contextDim) features")
                }
                guard w0.count == model.parameterCount, w0.allSatisfy(\.isFinite) else {
                    throw AnalysisError("the initial parameters must be \(model.parameterCount) finite numbers")
                }
                self.model = model
                self.dimension = model.parameterCount
                if let d = blockSize {
                    guard d >= 1, contextDim % d == 0 else {
                        throw AnalysisError("arm blocks of \(d) columns do not divide the \(contextDim) context features")
                    }
                    let blocks = try ArmBlocks(full: model, blockSize: d, arms: contextDim / d)
                    self.blocks = blocks
                    w0Blocks = (0..<blocks.arms).map { blocks.gather(w0, arm: $0) }
                    blockHistory = [[Double]](repeating: [], count: blocks.arms)
                    blockF0 = blockHistory
                    blockRewards = blockHistory
                } else {
                    self.blocks = nil
                }
            } else {
                self.model = nil
                self.blocks = nil
                self.dimension = settings.algorithm == .linucb ? contextDim : 0
            }
            self.w0 = w0
            self.w = w0
            let n = dimension
            if settings.algorithm.fullMatrix {
                guard n <= NeuralUCB.maxFullDimension else {
                    let what = settings.algorithm == .linucb ? "arm contexts have \(n) features" : "network has P = \(n) parameters"
                    throw AnalysisError("\(settings.algorithm.rawValue) keeps a full \(n) × \(n) matrix Z and the \(what), more than \(NeuralUCB.maxFullDimension); use --algo neuralucb-diag (diagonal Z) or a smaller network")
                }
                var inv = [Double](repeating: 0, count: n * n)
                for i in 0..<n { inv[i * n + i] = 1 / settings.lambda }
                zInverse = inv
                zDiagonal = []
            } else {
                zInverse = []
                zDiagonal = [Double](repeating: settings.lambda, count: n)
            }
            b = [Double](repeating: 0, count: settings.algorithm == .linucb || settings.algorithm == .neuralucb0 ? n : 0)
        }

        /// `Z⁻¹φ` (full matrix; `Z⁻¹` is symmetric, so a sparse `φ` sums the rows of its support).
        private func zInverseTimes(_ phi: Feature) -> [Double] {
            let n = dimension
            var out = [Double](repeating: 0, count: n)
            zInverse.withUnsafeBufferPointer { zp in
                phi.values.withUnsafeBufferPointer { vp in
                    if let idx = phi.indices {
                        for (k, j) in idx.enumerated() {
                            let v = vp[k]
                            let row = j * n
                            for i in 0..<n { out[i] += zp[row + i] * v }
                        }
                    } else {
                        for i in 0..<n {
                            var s = 0.0
                            let row = i * n
                            for j in 0..<n { s += zp[row + j] * vp[j] }
                            out[i] = s
                        }
                    }
                }
            }
            return out
        }

        private func zInverseTimes(_ v: [Double]) -> [Double] { zInverseTimes(Feature(indices: nil, values: v)) }

        private static func dot(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for i in 0..<a.count { s += a[i] * b[i] }
            return s
        }

        /// `φᵀv` for a dense `v` of length `dimension`.
        private static func dot(_ phi: Feature, _ v: [Double]) -> Double {
            guard let idx = phi.indices else { return dot(phi.values, v) }
            var s = 0.0
            for (k, j) in idx.enumerated() { s += phi.values[k] * v[j] }
            return s
        }

        /// `φᵀZ⁻¹φ`.
        private func quadratic(_ phi: Feature) -> Double {
            if settings.algorithm.fullMatrix { return Self.dot(phi, zInverseTimes(phi)) }
            var s = 0.0
            if let idx = phi.indices {
                // A zero entry adds exactly 0: skipping it changes no bit (dead relu units and zero
                // pixels make most of a block's entries zero).
                phi.values.withUnsafeBufferPointer { vp in idx.withUnsafeBufferPointer { ip in zDiagonal.withUnsafeBufferPointer { zp in
                    for k in 0..<vp.count where vp[k] != 0 { s += vp[k] * vp[k] / zp[ip[k]] }
                } } }
            } else {
                for k in 0..<phi.values.count { s += phi.values[k] * phi.values[k] / zDiagonal[k] }
            }
            return s
        }

        /// `Z ← Z + φφᵀ`: Sherman–Morrison on `Z⁻¹` (or the diagonal), and `log det(Z/λ)`.
        mutating func addOuterProduct(_ phi: [Double]) { addOuterProduct(Feature(indices: nil, values: phi)) }

        private mutating func addOuterProduct(_ phi: Feature) {
            if settings.algorithm.fullMatrix {
                let u = zInverseTimes(phi)
                let q = Self.dot(phi, u)
                let denominator = 1 + q
                logDet += Foundation.log1p(q)
                let n = dimension
                zInverse.withUnsafeMutableBufferPointer { zp in
                    for i in 0..<n {
                        let ui = u[i] / denominator
                        let row = i * n
                        for j in 0..<n { zp[row + j] -= ui * u[j] }
                    }
                }
            } else {
                // Off the support φ_k = 0 adds log(1) = 0: the sparse sum is the dense one.
                // (A zero entry leaves Z_jj and log det unchanged: skipped.)
                let count = phi.values.count
                for k in 0..<count where phi.values[k] != 0 {
                    let j = phi.indices?[k] ?? k
                    let before = zDiagonal[j]
                    zDiagonal[j] += phi.values[k] * phi.values[k]
                    logDet += Foundation.log(zDiagonal[j] / before)
                }
            }
        }

        /// The argmax of the scores with the contract's tie rule.
        public static func argmax(_ scores: [Double]) -> Int {
            guard let top = scores.max() else { return 0 }
            let tol = NeuralUCB.tieTolerance * max(1, abs(top))
            return scores.firstIndex { abs($0 - top) <= tol } ?? 0
        }

        /// `f̃(x_a; v)` (`v` nil: not needed, 0) and `φ(x_a; at)` of every arm of `r`, dense or on
        /// the arms' blocks.
        private func armFeatures(_ r: Round, model: MLP, at weights: [Double], centered: Bool) -> (f: [Double], features: [Feature]) {
            let K = r.arms
            if let blocks {
                var f: [Double] = [], features: [Feature] = []
                for a in 0..<K {
                    let x = Matrix(rows: 1, cols: blocks.blockSize, data: blocks.input(r.contexts, arm: a))
                    let sub = blocks.gather(weights, arm: a)
                    let J = blocks.sub.jacobians(sub, x)
                    features.append(Feature(indices: blocks.indices[a], values: J.data))
                    f.append(centered ? blocks.sub.forward(sub, x)[0, 0] - blocks.sub.forward(w0Blocks[a], x)[0, 0] : 0)
                }
                return (f, features)
            }
            let J = model.jacobians(weights, r.contexts)
            var f = [Double](repeating: 0, count: K)
            if centered {
                let now = model.forward(weights, r.contexts)
                let initial = model.forward(w0, r.contexts)
                for a in 0..<K { f[a] = now[a, 0] - initial[a, 0] }
            }
            return (f, (0..<K).map { Feature(indices: nil, values: J.row($0)) })
        }

        /// Plays round `t` (1-based, in order): scores, the arm, then the update with its reward.
        public mutating func play(_ r: Round) throws -> Step {
            round += 1
            let K = r.arms
            guard K >= 1, r.rewards.count == K, r.expected.count == K else {
                throw AnalysisError("round \(round) has \(K) contexts, \(r.rewards.count) rewards and \(r.expected.count) expected rewards; they must agree")
            }
            guard r.contexts.cols == contextDim else {
                throw AnalysisError("round \(round) has contexts of \(r.contexts.cols) features, the policy \(contextDim)")
            }
            if let blocks, K != blocks.arms {
                throw AnalysisError("round \(round) has \(K) arms, the arm blocks \(blocks.arms)")
            }
            var scores: [Double] = [], widths: [Double] = []
            var chosenFeature: Feature? = nil
            var arm: Int
            switch settings.algorithm {
            case .uniform:
                arm = random.index(below: K)
            case .linucb:
                let theta = zInverseTimes(b)
                for a in 0..<K {
                    let x = Feature(indices: nil, values: r.contexts.row(a))
                    let width = quadratic(x).squareRoot()
                    widths.append(width)
                    scores.append(Self.dot(x, theta) + settings.alpha * width)
                }
                arm = Self.argmax(scores)
                chosenFeature = Feature(indices: nil, values: r.contexts.row(arm))
            case .neuralucb0:
                let (_, features) = armFeatures(r, model: self.model!, at: w0, centered: false)
                let theta = zInverseTimes(b)
                for a in 0..<K {
                    let width = quadratic(features[a]).squareRoot()
                    widths.append(width)
                    scores.append(Self.dot(features[a], theta) + settings.gamma * width)
                }
                arm = Self.argmax(scores)
                chosenFeature = features[arm]
            case .neuralucb, .neuralucbDiag, .neuralEgreedy:
                let (f, features) = armFeatures(r, model: self.model!, at: w, centered: true)
                for a in 0..<K {
                    if settings.algorithm == .neuralEgreedy {
                        scores.append(f[a])
                    } else {
                        let width = quadratic(features[a]).squareRoot()
                        widths.append(width)
                        scores.append(f[a] + settings.gamma * width)
                    }
                }
                if settings.algorithm == .neuralEgreedy {
                    // One uniform draw per round, and an arm draw only when exploring.
                    let explore = random.uniform() < settings.epsilon
                    arm = explore ? random.index(below: K) : Self.argmax(scores)
                } else {
                    arm = Self.argmax(scores)
                }
                chosenFeature = features[arm]
            }
            guard scores.allSatisfy(\.isFinite) else {
                throw AnalysisError("round \(round): a score is not finite (\(scores)); lower --eta or --gamma, or raise --lambda")
            }
            let reward = r.rewards[arm]
            guard reward.isFinite else { throw AnalysisError("round \(round): the reward of arm \(arm) is \(reward)") }
            // Update: Z (and b), then the network.
            if let chosenFeature, settings.algorithm != .neuralEgreedy { addOuterProduct(chosenFeature) }
            if let phi = chosenFeature, settings.algorithm == .linucb || settings.algorithm == .neuralucb0 {
                for k in 0..<phi.values.count { b[phi.indices?[k] ?? k] += reward * phi.values[k] }
            }
            var distance: Double? = nil
            if settings.algorithm.trainsNetwork, let model {
                if let blocks {
                    let x = blocks.input(r.contexts, arm: arm)
                    blockHistory[arm].append(contentsOf: x)
                    blockF0[arm].append(blocks.sub.forward(w0Blocks[arm], Matrix(rows: 1, cols: blocks.blockSize, data: x))[0, 0])
                    blockRewards[arm].append(reward)
                } else {
                    history.append(contentsOf: r.contexts.row(arm))
                    historyF0.append(model.forward(w0, r.contexts.rows(at: [arm]))[0, 0])
                    historyRewards.append(reward)
                }
                played += 1
                if settings.trains(after: round) { try train(model) }
                distance = currentDistance
            } else if settings.algorithm == .neuralucb0 {
                distance = 0
            }
            let hasZ = settings.algorithm != .uniform && settings.algorithm != .neuralEgreedy
            return Step(scores: scores, widths: widths, arm: arm, reward: reward, regret: r.regret(arm),
                        logDet: hasZ ? logDet : nil, parameterDistance: distance)
        }

        /// The gradient of `Σ_i ½(f̃(x_i; v) − r_i)²·scale` (no ridge), dense or per arm block.
        private func dataGradient(_ model: MLP, at v: [Double], scale: Double) -> [Double] {
            if let blocks {
                var g = [Double](repeating: 0, count: v.count)
                for a in 0..<blocks.arms where !blockRewards[a].isEmpty {
                    let n = blockRewards[a].count
                    let X = Matrix(rows: n, cols: blocks.blockSize, data: blockHistory[a])
                    let cache = blocks.sub.forwardCache(blocks.gather(v, arm: a), X)
                    var residual = Matrix(rows: n, cols: 1)
                    for i in 0..<n { residual[i, 0] = (cache.output[i, 0] - blockF0[a][i] - blockRewards[a][i]) * scale }
                    blocks.scatterAdd(cache.pullback(residual), arm: a, into: &g)
                }
                return g
            }
            let t = historyRewards.count
            let X = Matrix(rows: t, cols: contextDim, data: history)
            let cache = model.forwardCache(v, X)   // one forward pass for f and the pullback
            var residual = Matrix(rows: t, cols: 1)
            for i in 0..<t { residual[i, 0] = (cache.output[i, 0] - historyF0[i] - historyRewards[i]) * scale }
            return cache.pullback(residual)
        }

        /// TrainNN: `J` GD steps (from `w₀`, or from `w` under warm start) on
        /// `Σ_i ½(f̃(x_i; w) − r_i)² + (λ/2)‖w − w₀‖²` (divided by `t` for the mean objective).
        private mutating func train(_ model: MLP) throws {
            let t = played
            var v = settings.warmStart ? w : w0
            let scale = settings.objective == .mean ? 1 / Double(t) : 1
            let record = recordRounds.contains(round)
            var iterates: [[Double]] = record ? [v] : []
            for _ in 0..<settings.steps {
                let g = dataGradient(model, at: v, scale: scale)
                for k in 0..<v.count { v[k] -= settings.eta * (g[k] + scale * settings.lambda * (v[k] - w0[k])) }
                if record { iterates.append(v) }
            }
            if record {
                recordedTrainings.append(Training(round: round, played: t, eta: settings.eta, lambda: settings.lambda,
                                                  scale: scale, iterates: iterates))
            }
            guard v.allSatisfy(\.isFinite) else {
                throw AnalysisError("TrainNN diverged after round \(round) (the network's parameters are no longer finite): lower --eta, or use --objective mean (the sum's curvature grows with the rounds)")
            }
            w = v
            var s = 0.0
            for k in 0..<w.count { s += (w[k] - w0[k]) * (w[k] - w0[k]) }
            currentDistance = s.squareRoot()
        }
    }

    /// A bandit's rounds, made one at a time (a classification bandit's `K × dK` contexts are
    /// built when played, never all `T` at once).
    public struct Bandit: Sendable {
        public let rounds: Int
        public let arms: Int
        public let contextDim: Int
        public let round: @Sendable (Int) -> Round
        /// `d` when the contexts are the disjoint encoding `e_a ⊗ x` with `x ∈ R^d` (arm `a`'s row
        /// zero outside its block): the network policies then compute on arm blocks
        /// (`ArmBlocks`). nil: dense contexts.
        public var blockSize: Int?
        public init(rounds: Int, arms: Int, contextDim: Int, blockSize: Int? = nil, round: @escaping @Sendable (Int) -> Round) {
            self.rounds = rounds; self.arms = arms; self.contextDim = contextDim; self.blockSize = blockSize; self.round = round
        }
        /// The given rounds.
        public init(_ list: [Round]) {
            self.init(rounds: list.count, arms: list.first?.arms ?? 0, contextDim: list.first?.contexts.cols ?? 0) { list[$0] }
        }
        /// Every round (for small bandits and tests).
        public var all: [Round] { (0..<rounds).map(round) }
    }

    /// One run of `settings` on `rounds`: the network policies start from `w0`.
    public static func run(_ settings: Settings, rounds: [Round], model: MLP?, w0: [Double], seed: UInt64) throws -> Run {
        try run(settings, bandit: Bandit(rounds), model: model, w0: w0, seed: seed)
    }

    /// One run of `settings` on the rounds of `bandit`, in order; the TrainNN runs of
    /// `recordRounds` (1-based rounds after which the policy trains) come back in `Run.trainings`.
    public static func run(_ settings: Settings, bandit: Bandit, model: MLP?, w0: [Double], seed: UInt64,
                           recordRounds: Set<Int> = []) throws -> Run {
        guard bandit.rounds >= 1 else { throw AnalysisError("the bandit has no rounds; give --rounds ≥ 1") }
        var policy = try Policy(settings: settings, contextDim: bandit.contextDim, model: model, w0: w0, seed: seed,
                                blockSize: bandit.blockSize)
        policy.recordRounds = settings.algorithm.trainsNetwork ? recordRounds : []
        var steps: [Step] = []
        steps.reserveCapacity(bandit.rounds)
        for t in 0..<bandit.rounds { steps.append(try policy.play(bandit.round(t))) }
        return Run(seed: seed, steps: steps, arms: bandit.arms, trainings: policy.recordedTrainings)
    }
}

// MARK: - Bandits

/// The bandits of contract §6: a classification data set as a disjoint `K`-armed bandit, and the
/// paper's synthetic bandits on the unit ball.
public enum BanditEnvironment {
    /// Streams of a bandit's randomness.
    static let orderStreamLabel: UInt64 = 0xBA4D_1001
    static let syntheticStreamLabel: UInt64 = 0xBA4D_1002
    static let noiseStreamLabel: UInt64 = 0xBA4D_1003

    /// The disjoint encoding `e_a ⊗ x ∈ R^{dK}`: `K` rows, `x` in block `a` of row `a`.
    public static func disjointContexts(_ x: [Double], arms K: Int) -> Matrix {
        let d = x.count
        var m = Matrix(rows: K, cols: d * K)
        for a in 0..<K { for j in 0..<d { m[a, a * d + j] = x[j] } }
        return m
    }

    /// Classification → `K` arms (paper §7.2): round `t` shows the `K` disjoint copies of one
    /// example; reward `1[a = y]`, regret `1 − r`. The stream is the examples in a fresh
    /// shuffle of `seed` (reshuffled after each pass when `rounds > n`).
    public static func classification(x: Matrix, labels: [Int], classes K: Int, rounds T: Int, seed: UInt64) throws -> [NeuralUCB.Round] {
        try classificationBandit(x: x, labels: labels, classes: K, rounds: T, seed: seed).all
    }

    /// The classification bandit with its rounds made when played (`classification`'s rounds).
    public static func classificationBandit(x: Matrix, labels: [Int], classes K: Int, rounds T: Int, seed: UInt64) throws -> NeuralUCB.Bandit {
        guard K >= 2 else { throw AnalysisError("a classification bandit needs at least 2 classes, not \(K)") }
        guard x.rows == labels.count, x.rows > 0 else { throw AnalysisError("the data set has no examples") }
        guard T >= 1 else { throw AnalysisError("give --rounds ≥ 1") }
        for (i, y) in labels.enumerated() where !(0..<K).contains(y) {
            throw AnalysisError("example \(i + 1) has label \(y), not in 0…\(K - 1)")
        }
        guard x.data.allSatisfy(\.isFinite) else { throw AnalysisError("the data set has a non-finite feature") }
        var random = PortableRandom.stream(seed: seed, label: orderStreamLabel)
        var pass: [Int] = []
        var stream: [Int] = []
        stream.reserveCapacity(T)
        for _ in 0..<T {
            if pass.isEmpty { pass = random.permutation(x.rows).reversed() }
            stream.append(pass.removeLast())
        }
        return NeuralUCB.Bandit(rounds: T, arms: K, contextDim: x.cols * K, blockSize: x.cols) { [stream] t in
            let i = stream[t]
            let reward = (0..<K).map { $0 == labels[i] ? 1.0 : 0.0 }
            return NeuralUCB.Round(contexts: disjointContexts(x.row(i), arms: K), rewards: reward, expected: reward)
        }
    }

    /// The paper's synthetic reward functions (§7.1).
    public enum Function: String, CaseIterable, Sendable, Codable {
        /// `h₁ = 10(xᵀa)²`.
        case quadratic
        /// `h₂ = xᵀAᵀAx`, `A_ij ~ N(0, 1)`.
        case quadform
        /// `h₃ = cos(3xᵀa)`.
        case cos
    }

    /// A point uniform in the unit ball of `R^d`.
    static func unitBall(_ d: Int, _ random: inout PortableRandom) -> [Double] {
        var g = (0..<d).map { _ in random.normal() }
        let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let radius = Foundation.pow(random.uniform(), 1 / Double(d))
        for j in 0..<d { g[j] *= radius / max(norm, .leastNormalMagnitude) }
        return g
    }

    /// The synthetic bandit: `K` contexts uniform in the unit ball of `R^d` per round, reward
    /// `h(x) + noise·N(0,1)`, regret `max_a h(x_a) − h(x_played)` (noise-free). `a` (uniform in
    /// the unit ball) or `A` are drawn from `seed`, as are the contexts and the noise.
    public static func synthetic(_ h: Function, dim d: Int, arms K: Int, rounds T: Int, noise: Double, seed: UInt64) throws -> [NeuralUCB.Round] {
        guard d >= 1, K >= 2, T >= 1 else { throw AnalysisError("a synthetic bandit needs d ≥ 1, K ≥ 2 arms and T ≥ 1 rounds") }
        guard noise.isFinite, noise >= 0 else { throw AnalysisError("the noise must be a number ≥ 0") }
        var random = PortableRandom.stream(seed: seed, label: syntheticStreamLabel)
        var noiseRandom = PortableRandom.stream(seed: seed, label: noiseStreamLabel)
        let a = unitBall(d, &random)
        let A: [Double] = h == .quadform ? (0..<(d * d)).map { _ in random.normal() } : []
        func value(_ x: [Double]) -> Double {
            switch h {
            case .quadratic:
                let s = zip(x, a).reduce(0) { $0 + $1.0 * $1.1 }
                return 10 * s * s
            case .cos:
                return Foundation.cos(3 * zip(x, a).reduce(0) { $0 + $1.0 * $1.1 })
            case .quadform:
                var s = 0.0
                for i in 0..<d {
                    var ax = 0.0
                    for j in 0..<d { ax += A[i * d + j] * x[j] }
                    s += ax * ax
                }
                return s
            }
        }
        var rounds: [NeuralUCB.Round] = []
        rounds.reserveCapacity(T)
        for _ in 0..<T {
            var contexts = Matrix(rows: K, cols: d)
            var expected: [Double] = []
            for arm in 0..<K {
                let x = unitBall(d, &random)
                for j in 0..<d { contexts[arm, j] = x[j] }
                expected.append(value(x))
            }
            let rewards = expected.map { $0 + noise * noiseRandom.normal() }
            rounds.append(NeuralUCB.Round(contexts: contexts, rewards: rewards, expected: expected))
        }
        return rounds
    }
}
