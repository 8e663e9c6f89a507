import Foundation
import Testing
import PKNetworks
import PKNumerics
@testable import PKAnalysis

/// NeuralUCB and its baselines against the ntk-family contract §6: oracle 6 (jax/NumPy in
/// float64: scores, arms, log det, parameter distance, round-1 widths), Sherman–Morrison against
/// a direct inverse, γ = 0 / ε = 0 as the greedy policy, uniform play's regret, and
/// reproducibility from the seed.
@Suite("NeuralUCB bandits")
struct NeuralUCBTests {
    /// Contract §6: scores, log det, ‖w_t − w₀‖ and widths, relative to max(1, |expected|).
    static let oracleTolerance = 1e-10
    /// Sherman–Morrison's `Z⁻¹` against the inverse of the accumulated `Z` (Cholesky-free Gauss–
    /// Jordan here), relative to max |entry|: round-off of a well-conditioned 5 × 5 system.
    static let inverseTolerance = 1e-12

    static func close(_ a: Double, _ b: Double, _ tol: Double) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

    /// Oracle 6's network `[6, 8, 1]` relu ntk σ_w √2 no bias (P = 56) and its raw `w₀`.
    static func oracleNetwork() throws -> (MLP, [Double]) {
        let spec = ModelSpec(layers: [6, 8, 1], activation: .relu, parameterization: .ntk,
                             sigmaW: 2.0.squareRoot(), sigmaB: 0, bias: false)
        let model = try MLP(spec: spec)
        let w0 = (0..<model.parameterCount).map { 2.0.squareRoot() * sin(1.7 * Double($0) + 0.3) }
        return (model, w0)
    }

    /// Oracle 6's rounds: `x_t[j] = cos(1.1t + 0.2j) + 0.5 sin(0.7t(j+1))`, labels
    /// `⌊3·frac(0.618…·t)⌋`, disjoint encoding over K = 3 arms.
    static func oracleRounds() throws -> [NeuralUCB.Round] {
        var x = Matrix(rows: 6, cols: 2)
        for i in 0..<6 {
            for j in 0..<2 {
                let t = Double(i + 1), jj = Double(j)
                let a: Double = cos(1.1 * t + 0.2 * jj)
                let b: Double = 0.5 * sin(0.7 * t * (jj + 1))
                x[i, j] = a + b
            }
        }
        let labels = (1...6).map { t -> Int in
            let v = 0.6180339887498949 * Double(t)
            return Int(3 * (v - v.rounded(.down)))
        }
        #expect(labels == [1, 0, 2, 1, 0, 2])
        return (0..<6).map { i in
            let reward = (0..<3).map { $0 == labels[i] ? 1.0 : 0.0 }
            return NeuralUCB.Round(contexts: BanditEnvironment.disjointContexts(x.row(i), arms: 3),
                                   rewards: reward, expected: reward)
        }
    }

    static func oracleSettings(_ algorithm: NeuralUCB.Algorithm) -> NeuralUCB.Settings {
        var s = NeuralUCB.Settings(algorithm: algorithm)
        s.lambda = 1; s.gamma = 0.5; s.eta = 0.1; s.steps = 25; s.objective = .sum; s.alpha = 0.5
        return s
    }

    static func runOracle(_ algorithm: NeuralUCB.Algorithm) throws -> NeuralUCB.Run {
        let (model, w0) = try oracleNetwork()
        #expect(model.parameterCount == 56)
        return try NeuralUCB.run(oracleSettings(algorithm), rounds: oracleRounds(), model: model, w0: w0, seed: 0)
    }

    func expectScores(_ run: NeuralUCB.Run, round t: Int, _ expected: [Double], _ arm: Int) {
        let step = run.steps[t - 1]
        #expect(step.scores.count == expected.count)
        for (got, want) in zip(step.scores, expected) {
            #expect(Self.close(got, want, Self.oracleTolerance), "round \(t): score \(got), expected \(want)")
        }
        #expect(step.arm == arm, "round \(t)")
    }

    @Test("oracle 6: full Z — scores, arms, log det, ‖w_t − w₀‖, round-1 widths")
    func fullOracle() throws {
        let run = try Self.runOracle(.neuralucb)
        #expect(run.playedArms == [1, 0, 0, 2, 1, 1])
        expectScores(run, round: 1, [0.3916547607818, 0.4392609778837, 0.4206676359474], 1)
        expectScores(run, round: 2, [0.3293666770304, 0.2015704250863, 0.3018322272795], 0)
        expectScores(run, round: 3, [1.25403867998, 0.5051871593104, 0.9635646541933], 0)
        expectScores(run, round: 4, [0.2182034493861, 0.151743537308, 0.2505167028408], 2)
        expectScores(run, round: 5, [0.446930254459, 0.8983105882767, 0.497573605454], 1)
        expectScores(run, round: 6, [0.4920251440836, 0.6485392450369, 0.54406645922], 1)
        let logDets = [0.5719964456202, 0.7647004697447, 1.67558117885, 1.7905529432, 2.345810360199, 2.750175376266]
        for (t, want) in logDets.enumerated() {
            let got = try #require(run.steps[t].logDet)
            #expect(Self.close(got, want, Self.oracleTolerance), "log det after round \(t + 1): \(got), expected \(want)")
        }
        let d1 = try #require(run.steps[0].parameterDistance), d6 = try #require(run.steps[5].parameterDistance)
        #expect(Self.close(d1, 0.5101954796978, Self.oracleTolerance), "‖w_1 − w₀‖ = \(d1)")
        #expect(Self.close(d6, 0.4331674004406, Self.oracleTolerance), "‖w_6 − w₀‖ = \(d6)")
        // Round 1: f̃ = 0, so U = γ·width.
        for (got, want) in zip(run.steps[0].widths, [0.7833095215636, 0.8785219557674, 0.8413352718948]) {
            #expect(Self.close(got, want, Self.oracleTolerance), "round-1 width \(got), expected \(want)")
        }
    }

    @Test("oracle 6: diagonal Z")
    func diagonalOracle() throws {
        let run = try Self.runOracle(.neuralucbDiag)
        #expect(run.playedArms == [1, 0, 0, 0, 1, 1])
        expectScores(run, round: 2, [0.3328800128252, 0.200835998451, 0.3027087384875], 0)
        expectScores(run, round: 4, [0.273139330895, 0.1514530683609, 0.2514044240083], 0)
        expectScores(run, round: 6, [0.4934373997282, 0.7860219764058, 0.5439967232621], 1)
    }

    @Test("oracle 6: NeuralUCB₀ on the fixed features J(x; w₀)")
    func zeroOracle() throws {
        let run = try Self.runOracle(.neuralucb0)
        #expect(run.playedArms == [1, 0, 0, 2, 1, 1])
        expectScores(run, round: 2, [0.3114767712241, 0.1989041613087, 0.2887155365456], 0)
        expectScores(run, round: 6, [0.4919153863549, 0.6218504838347, 0.5573569429299], 1)
    }

    @Test("oracle 6: LinUCB, with the tie of round 1")
    func linearOracle() throws {
        let run = try Self.runOracle(.linucb)
        #expect(run.playedArms == [0, 1, 2, 2, 1, 0])
        expectScores(run, round: 1, [0.5430603689126, 0.5430603689126, 0.5430603689126], 0)
        expectScores(run, round: 5, [0.4648953122827, 0.5601966396669, -0.2097060200097], 1)
    }

    @Test("the tie rule: within 1e-12·max(1, |U_max|) the lowest index wins")
    func tieRule() {
        #expect(NeuralUCB.Policy.argmax([1, 1 + 5e-13, 0]) == 0)
        #expect(NeuralUCB.Policy.argmax([1, 1 + 5e-12, 0]) == 1)
        #expect(NeuralUCB.Policy.argmax([0, 3e9, 3e9 + 1e-3]) == 1)
        #expect(NeuralUCB.Policy.argmax([0, 3e9, 3e9 + 1e-2]) == 2)
    }

    /// Gauss–Jordan with partial pivoting (the test's independent inverse).
    static func inverse(_ a: [Double], _ n: Int) -> [Double] {
        var m = a, inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for c in 0..<n {
            let p = (c..<n).max { abs(m[$0 * n + c]) < abs(m[$1 * n + c]) }!
            for j in 0..<n { m.swapAt(c * n + j, p * n + j); inv.swapAt(c * n + j, p * n + j) }
            let d = m[c * n + c]
            for j in 0..<n { m[c * n + j] /= d; inv[c * n + j] /= d }
            for r in 0..<n where r != c {
                let f = m[r * n + c]
                for j in 0..<n { m[r * n + j] -= f * m[c * n + j]; inv[r * n + j] -= f * inv[c * n + j] }
            }
        }
        return inv
    }

    @Test("Sherman–Morrison Z⁻¹ and log det against the direct inverse and determinant")
    func shermanMorrison() throws {
        var settings = NeuralUCB.Settings(algorithm: .linucb)
        settings.lambda = 0.7
        let n = 5
        var policy = try NeuralUCB.Policy(settings: settings, contextDim: n, model: nil, w0: [], seed: 0)
        var z = [Double](repeating: 0, count: n * n)
        for i in 0..<n { z[i * n + i] = 0.7 }
        for s in 0..<9 {
            let phi = (0..<n).map { sin(0.9 * Double(s * n + $0) + 0.4) * 1.3 }
            policy.addOuterProduct(phi)
            for i in 0..<n { for j in 0..<n { z[i * n + j] += phi[i] * phi[j] } }
        }
        let direct = Self.inverse(z, n)
        let scale = direct.map(abs).max()!
        for k in 0..<(n * n) {
            #expect(abs(policy.zInverse[k] - direct[k]) <= Self.inverseTolerance * scale, "entry \(k)")
        }
        // log det(Z/λ) by elimination of Z/λ.
        var m = z.map { $0 / 0.7 }, logDet = 0.0
        for c in 0..<n {
            let d = m[c * n + c]
            logDet += log(d)
            for r in (c + 1)..<n {
                let f = m[r * n + c] / d
                for j in c..<n { m[r * n + j] -= f * m[c * n + j] }
            }
        }
        #expect(abs(policy.logDet - logDet) <= Self.inverseTolerance * max(1, abs(logDet)), "\(policy.logDet) vs \(logDet)")
    }

    /// A small synthetic bandit for the policy tests (debug builds: tiny).
    static func smallSynthetic(seed: UInt64, rounds: Int = 30) throws -> (MLP, [Double], [NeuralUCB.Round]) {
        let spec = ModelSpec(layers: [3, 6, 1], activation: .relu, parameterization: .ntk,
                             sigmaW: 2.0.squareRoot(), sigmaB: 0, bias: false)
        let model = try MLP(spec: spec)
        let rounds = try BanditEnvironment.synthetic(.cos, dim: 3, arms: 4, rounds: rounds, noise: 0.1, seed: seed)
        return (model, model.initialParameters(seed: seed), rounds)
    }

    @Test("γ = 0 NeuralUCB and ε = 0 ε-greedy are the greedy policy argmax f̃ (same arms, same networks)")
    func greedy() throws {
        let (model, w0, rounds) = try Self.smallSynthetic(seed: 3)
        var ucb = NeuralUCB.Settings(algorithm: .neuralucb)
        ucb.gamma = 0; ucb.lambda = 0.5; ucb.eta = 0.2; ucb.steps = 5; ucb.objective = .mean
        var diag = ucb
        diag.algorithm = .neuralucbDiag
        var greedy = ucb
        greedy.algorithm = .neuralEgreedy; greedy.epsilon = 0
        let a = try NeuralUCB.run(ucb, rounds: rounds, model: model, w0: w0, seed: 3)
        let b = try NeuralUCB.run(diag, rounds: rounds, model: model, w0: w0, seed: 3)
        let c = try NeuralUCB.run(greedy, rounds: rounds, model: model, w0: w0, seed: 3)
        #expect(a.playedArms == c.playedArms)
        #expect(b.playedArms == c.playedArms)
        #expect(a.steps.map(\.scores) == c.steps.map(\.scores))
        #expect(a.steps.map(\.parameterDistance) == c.steps.map(\.parameterDistance))
        // Not vacuous: the greedy policy does not play one arm throughout, and with γ > 0 the
        // exploration bonus changes some choice.
        #expect(Set(c.playedArms).count > 1)
        ucb.gamma = 1
        let explored = try NeuralUCB.run(ucb, rounds: rounds, model: model, w0: w0, seed: 3)
        #expect(explored.playedArms != c.playedArms)
    }

    @Test("uniform play on a classification bandit: regret (K − 1)/K per round on average")
    func uniformRegret() throws {
        // K = 4, T = 4000 rounds: the regret per round is Bernoulli(3/4), std √(3/16)/√T = 0.0068;
        // 5 standard deviations.
        let K = 4, T = 4000
        let x = Matrix((0..<50).map { i in [Double(i), 1] })
        let labels = (0..<50).map { $0 % K }
        let rounds = try BanditEnvironment.classification(x: x, labels: labels, classes: K, rounds: T, seed: 11)
        let run = try NeuralUCB.run(NeuralUCB.Settings(algorithm: .uniform), rounds: rounds, model: nil, w0: [], seed: 11)
        let perRound = run.finalRegret / Double(T)
        #expect(abs(perRound - 0.75) <= 5 * (3.0 / 16).squareRoot() / Double(T).squareRoot(), "\(perRound)")
        #expect(run.playCounts.allSatisfy { $0 > 900 && $0 < 1100 }, "\(run.playCounts)")
        // The stream shows every example once per pass.
        #expect(Set(rounds.prefix(50).map { $0.contexts.data }).count == 50)
    }

    @Test("a run is reproduced bit for bit from its seed; another seed differs")
    func reproducible() throws {
        var s = NeuralUCB.Settings(algorithm: .neuralEgreedy)
        s.epsilon = 0.3; s.steps = 3; s.eta = 0.1
        let (model, w0, rounds) = try Self.smallSynthetic(seed: 5, rounds: 20)
        let a = try NeuralUCB.run(s, rounds: rounds, model: model, w0: w0, seed: 5)
        let b = try NeuralUCB.run(s, rounds: rounds, model: model, w0: w0, seed: 5)
        #expect(a == b)
        let again = try BanditEnvironment.synthetic(.cos, dim: 3, arms: 4, rounds: 20, noise: 0.1, seed: 5)
        #expect(again == rounds)
        let other = try BanditEnvironment.synthetic(.cos, dim: 3, arms: 4, rounds: 20, noise: 0.1, seed: 6)
        #expect(other != rounds)
    }

    /// The mean objective with step η is the sum objective with step η/t (GD on `L/t`), to round-off.
    static let objectiveTolerance = 1e-12

    @Test("TrainNN: mean objective with η equals sum objective with η/t; warm start changes only later trainings")
    func trainingForms() throws {
        let (model, w0, rounds) = try Self.smallSynthetic(seed: 9, rounds: 10)
        var mean = NeuralUCB.Settings(algorithm: .neuralucb)
        mean.lambda = 0.3; mean.gamma = 0.2; mean.eta = 0.4; mean.steps = 7; mean.objective = .mean
        mean.trainEvery = 5                     // trains after rounds 5 and 10 only
        var sum = mean
        sum.objective = .sum; sum.eta = 0.4 / 5
        let a = try NeuralUCB.run(mean, rounds: Array(rounds.prefix(5)), model: model, w0: w0, seed: 9)
        let b = try NeuralUCB.run(sum, rounds: Array(rounds.prefix(5)), model: model, w0: w0, seed: 9)
        #expect(a.playedArms == b.playedArms)
        let da = try #require(a.steps[4].parameterDistance), db = try #require(b.steps[4].parameterDistance)
        #expect(da > 0 && a.steps[3].parameterDistance == 0, "no training before round 5")
        #expect(abs(da - db) <= Self.objectiveTolerance * da, "\(da) vs \(db)")
        // Warm start: the first training starts from w₀ either way; the second does not.
        var warm = mean
        warm.warmStart = true
        let cold = try NeuralUCB.run(mean, rounds: rounds, model: model, w0: w0, seed: 9)
        let hot = try NeuralUCB.run(warm, rounds: rounds, model: model, w0: w0, seed: 9)
        #expect(cold.steps[4].parameterDistance == hot.steps[4].parameterDistance)
        #expect(cold.steps[9].parameterDistance != hot.steps[9].parameterDistance)
        // The schedule: every round up to N, then multiples of k.
        var schedule = NeuralUCB.Settings(algorithm: .neuralucb)
        schedule.trainEvery = 25; schedule.trainEveryRoundUntil = 3
        #expect((1...60).filter(schedule.trains(after:)) == [1, 2, 3, 25, 50])
    }

    @Test("the classification bandit: K disjoint copies of each example, reward 1[a = y], each example once per pass")
    func classificationBandit() throws {
        let x = Matrix([[1.0, 2], [3, 4], [5, 6]])
        let labels = [2, 0, 1]
        let rounds = try BanditEnvironment.classification(x: x, labels: labels, classes: 3, rounds: 7, seed: 4)
        var seen: [Int] = []
        for r in rounds {
            #expect(r.contexts.rows == 3 && r.contexts.cols == 6)
            let i = try #require((0..<3).first { x.row($0) == Array(r.contexts.row(0)[0..<2]) })
            seen.append(i)
            for a in 0..<3 {
                for j in 0..<6 {
                    let want = j / 2 == a ? x[i, j % 2] : 0
                    #expect(r.contexts[a, j] == want)
                }
                #expect(r.rewards[a] == (a == labels[i] ? 1 : 0) && r.expected == r.rewards)
            }
            #expect(r.regret(labels[i]) == 0 && r.regret((labels[i] + 1) % 3) == 1)
        }
        #expect(Set(seen.prefix(3)) == [0, 1, 2] && Set(seen[3..<6]) == [0, 1, 2])
    }

    /// The block path against the dense one: the same numbers up to the rounding of the input
    /// scale `c = √(d/(dK))` (one rounding per input, carried through ≤ 30 rounds of training),
    /// relative to max(1, |dense|).
    static let blockTolerance = 1e-9

    @Test("oracle 6 through the arm blocks (block size 2): the same scores, arms, log det, distance")
    func blockOracle() throws {
        let (model, w0) = try Self.oracleNetwork()
        let rounds = try Self.oracleRounds()
        for algorithm in [NeuralUCB.Algorithm.neuralucb, .neuralucbDiag, .neuralucb0] {
            var bandit = NeuralUCB.Bandit(rounds)
            bandit.blockSize = 2
            let run = try NeuralUCB.run(Self.oracleSettings(algorithm), bandit: bandit, model: model, w0: w0, seed: 0)
            let dense = try Self.runOracle(algorithm)
            #expect(run.playedArms == dense.playedArms, "\(algorithm)")
            for (s, t) in zip(run.steps, dense.steps) {
                for (a, b) in zip(s.scores, t.scores) { #expect(Self.close(a, b, Self.oracleTolerance), "\(algorithm)") }
                #expect(Self.close(s.logDet ?? .nan, t.logDet ?? .nan, Self.oracleTolerance))
                #expect(Self.close(s.parameterDistance ?? .nan, t.parameterDistance ?? .nan, Self.oracleTolerance))
            }
        }
        let run = try NeuralUCB.run(Self.oracleSettings(.neuralucb), bandit: {
            var b = NeuralUCB.Bandit(rounds); b.blockSize = 2; return b }(), model: model, w0: w0, seed: 0)
        #expect(run.playedArms == [1, 0, 0, 2, 1, 1])
        expectScores(run, round: 5, [0.446930254459, 0.8983105882767, 0.497573605454], 1)
    }

    @Test("arm blocks: forward, Jacobian, diagonal Z and TrainNN equal the dense computation")
    func blockSparseMatchesDense() throws {
        // K = 5 arms of d = 7 features, net [35, 9, 6, 1] (depth 3) with biases: a block touches
        // 9·7 of the 9·35 first-layer weights; everything later is shared.
        let K = 5, d = 7
        let spec = ModelSpec(layers: [d * K, 9, 6, 1], activation: .relu, parameterization: .ntk,
                             sigmaW: 2.0.squareRoot(), sigmaB: 0.3, bias: true)
        let model = try MLP(spec: spec)
        let w0 = model.initialParameters(seed: 2)
        let x = Matrix((0..<40).map { i in (0..<d).map { j in sin(0.37 * Double(i * d + j) + 0.1) + 0.2 } })
        let labels = (0..<40).map { ($0 * 3 + $0 / 7) % K }
        let bandit = try BanditEnvironment.classificationBandit(x: x, labels: labels, classes: K, rounds: 30, seed: 6)
        #expect(bandit.blockSize == d)
        var dense = bandit
        dense.blockSize = nil
        // The pieces: f and J of every arm of one round at w₀.
        let blocks = try NeuralUCB.ArmBlocks(full: model, blockSize: d, arms: K)
        let round = bandit.round(0)
        let J = model.jacobians(w0, round.contexts), f = model.forward(w0, round.contexts)
        for a in 0..<K {
            let xa = Matrix(rows: 1, cols: d, data: blocks.input(round.contexts, arm: a))
            let sub = blocks.gather(w0, arm: a)
            let fa = blocks.sub.forward(sub, xa)[0, 0]
            #expect(abs(fa - f[a, 0]) <= Self.blockTolerance * max(1, abs(f[a, 0])))
            var full = [Double](repeating: 0, count: model.parameterCount)
            blocks.scatterAdd(blocks.sub.jacobians(sub, xa).data, arm: a, into: &full)
            let scale = J.row(a).map(abs).max()!
            for k in 0..<model.parameterCount {
                #expect(abs(full[k] - J[a, k]) <= Self.blockTolerance * scale, "arm \(a), parameter \(k)")
            }
        }
        // Whole runs: scores, arms, log det and ‖w_t − w₀‖, cold and warm, sum objective.
        for (algorithm, warm) in [(NeuralUCB.Algorithm.neuralucbDiag, false), (.neuralucbDiag, true), (.neuralucb, false),
                                  (.neuralEgreedy, true), (.neuralucb0, false)] {
            var s = NeuralUCB.Settings(algorithm: algorithm)
            s.lambda = 0.5; s.gamma = 0.3; s.eta = 0.05; s.steps = 6; s.warmStart = warm; s.epsilon = 0.2
            let a = try NeuralUCB.run(s, bandit: bandit, model: model, w0: w0, seed: 1)
            let b = try NeuralUCB.run(s, bandit: dense, model: model, w0: w0, seed: 1)
            #expect(a.playedArms == b.playedArms, "\(algorithm) warm \(warm)")
            for (p, q) in zip(a.steps, b.steps) {
                for (u, v) in zip(p.scores, q.scores) { #expect(abs(u - v) <= Self.blockTolerance * max(1, abs(v)), "\(algorithm)") }
                if let u = p.logDet, let v = q.logDet { #expect(abs(u - v) <= Self.blockTolerance * max(1, abs(v))) }
                if let u = p.parameterDistance, let v = q.parameterDistance { #expect(abs(u - v) <= Self.blockTolerance * max(1, v)) }
            }
            // Not vacuous: the network moved and more than one arm was played.
            #expect(Set(a.playedArms).count > 1)
            if algorithm != .neuralucb0 { #expect((a.steps.last?.parameterDistance ?? 0) > 0.01) }
        }
    }

    @Test("refusals: full Z above P = 4000, bad settings, mismatched network")
    func refusals() throws {
        let spec = ModelSpec(layers: [100, 50, 1], activation: .relu, parameterization: .ntk,
                             sigmaW: 2.0.squareRoot(), sigmaB: 0, bias: false)
        let model = try MLP(spec: spec)
        #expect(throws: AnalysisError.self) {
            _ = try NeuralUCB.Policy(settings: .init(algorithm: .neuralucb), contextDim: 100, model: model,
                                     w0: [Double](repeating: 0, count: model.parameterCount), seed: 0)
        }
        #expect(throws: AnalysisError.self) {
            _ = try NeuralUCB.Policy(settings: .init(algorithm: .neuralucbDiag), contextDim: 99, model: model,
                                     w0: [Double](repeating: 0, count: model.parameterCount), seed: 0)
        }
        var bad = NeuralUCB.Settings(algorithm: .linucb)
        bad.lambda = 0
        #expect(throws: AnalysisError.self) { try bad.validate() }
        bad.lambda = 1; bad.epsilon = 1.5
        #expect(throws: AnalysisError.self) { try bad.validate() }
        #expect(throws: AnalysisError.self) {
            _ = try BanditEnvironment.classification(x: Matrix([[1.0]]), labels: [3], classes: 2, rounds: 1, seed: 0)
        }
    }
}
