import ArgumentParser
import Foundation
import PKAnalysis
import PKData
import PKNetworks
import PKNumerics
import PKTraining

/// `pathkernel bandit`: NeuralUCB and its baselines on a contextual bandit (Docs/bandits.md;
/// contract §6). Thin: the policies and bandits are `NeuralUCB` and `BanditEnvironment`.
struct BanditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandit",
        abstract: "NeuralUCB and baselines on a contextual bandit: regret, play counts.",
        usage: """
        pathkernel bandit --data <spec> --algo <A,…> [--rounds <T>] [--runs <R>]
                          [--lambda <λ>] [--gamma <γ>] [--eta <η>] [--steps <J>]
                          [--objective sum|mean] [--train-every <k>]
                          [--warm-start] [--epsilon <ε>] [--alpha <α>]
                          [--width <m>] [--json]
        """,
        discussion: """
        Plays T rounds of a K-armed contextual bandit with each algorithm, R runs with the \
        seeds s, s+1, …, s+R−1 (each run a fresh shuffle or draw of the bandit and a fresh \
        network; within a run every algorithm sees the same rounds). Prints the cumulative \
        regret (mean ± std over runs) at a few rounds, the final regret and the play counts \
        of each arm. Docs/bandits.md.

        Algorithms: neuralucb (Algorithm 1: full Z, Sherman–Morrison; P ≤ 4000), \
        neuralucb-diag (diagonal Z), neuralucb0 (LinUCB on J(x; w₀)), linucb (raw contexts, \
        --alpha), neural-egreedy (--epsilon), uniform. The network is the MLP \
        [D, m, …, m, 1] relu, ntk, σ_w √2, no bias, centered: f̃ = f(·; w) − f(·; w₀). \
        TrainNN: J GD steps of step η from w₀ (--warm-start: from the last network) on \
        Σ ½(f̃ − r)² + (λ/2)‖w − w₀‖² (--objective mean: divided by t).

        --data is a data set (a preset name, a run config or data-section file, inline JSON; \
        Docs/datasets.md): its training examples as the disjoint classification bandit \
        (K = classes, contexts e_a ⊗ x, reward 1[a = y]); or synthetic:quadratic, \
        synthetic:quadform, synthetic:cos, the paper's h = 10(xᵀa)², xᵀAᵀAx, cos(3xᵀa) on \
        the unit ball (--dim, --arms, --noise).

        Example:  pathkernel bandit --data synthetic:cos --algo neuralucb,linucb,uniform
                      --rounds 500 --runs 3 --lambda 0.01 --eta 5 --objective mean
        """)

    @Option(help: ArgumentHelp("A data set (preset, file, inline JSON) or synthetic:<h>.", valueName: "spec"))
    var data: String

    @Option(help: ArgumentHelp("Algorithms, comma-separated (see below).", valueName: "A,…"))
    var algo: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Rounds T per run.", valueName: "T"),
            transform: OptionValue.integer(in: 1...10_000_000))
    var rounds: Int = 1000

    @Option(parsing: .unconditional, help: ArgumentHelp("Runs R (seeds s … s+R−1).", valueName: "R"),
            transform: OptionValue.integer(in: 1...10_000))
    var runs: Int = 3

    @Option(parsing: .unconditional, help: ArgumentHelp("First seed s (default: the config's, else 0).", valueName: "s"),
            transform: OptionValue.integer(in: 0...UInt64.max))
    var seed: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("λ: Z₀ = λI and the ridge towards w₀.", valueName: "λ"),
            transform: OptionValue.number(in: NeuralUCB.lambdaRange))
    var lambda: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("γ, the exploration factor of NeuralUCB.", valueName: "γ"),
            transform: OptionValue.number(in: NeuralUCB.widthFactorRange))
    var gamma: Double = 0.1

    @Option(parsing: .unconditional, help: ArgumentHelp("η, the GD step of TrainNN.", valueName: "η"),
            transform: OptionValue.number(in: NeuralUCB.etaRange))
    var eta: Double = 0.1

    @Option(parsing: .unconditional, help: ArgumentHelp("J, GD steps per training.", valueName: "J"),
            transform: OptionValue.integer(in: NeuralUCB.stepsRange))
    var steps: Int = 25

    @Option(help: ArgumentHelp("TrainNN's objective: sum or mean (sum / t).", valueName: "sum|mean"))
    var objective: String = "sum"

    @Option(parsing: .unconditional, help: ArgumentHelp("Train after rounds that are multiples of k.", valueName: "k"),
            transform: OptionValue.integer(in: NeuralUCB.trainEveryRange))
    var trainEvery: Int = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("But train every round up to round N.", valueName: "N"),
            transform: OptionValue.integer(in: 0...10_000_000))
    var trainEveryRoundUntil: Int = 0

    @Flag(help: "TrainNN continues from the last network instead of w₀.")
    var warmStart = false

    @Option(parsing: .unconditional, help: ArgumentHelp("ε of neural-egreedy.", valueName: "ε"),
            transform: OptionValue.number(in: NeuralUCB.epsilonRange))
    var epsilon: Double = 0.05

    @Option(parsing: .unconditional, help: ArgumentHelp("α of linucb.", valueName: "α"),
            transform: OptionValue.number(in: NeuralUCB.widthFactorRange))
    var alpha: Double = 0.1

    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden width m of the network.", valueName: "m"),
            transform: OptionValue.integer(in: 1...ConfigLimits.maxWidth))
    var width: Int = 32

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight matrices L of the network (2…8).", valueName: "L"),
            transform: OptionValue.integer(in: 2...8))
    var depth: Int = 2

    @Option(parsing: .unconditional, help: ArgumentHelp("Synthetic: context dimension d.", valueName: "d"),
            transform: OptionValue.integer(in: 1...10_000))
    var dim: Int = 20

    @Option(parsing: .unconditional, help: ArgumentHelp("Synthetic: arms K.", valueName: "K"),
            transform: OptionValue.integer(in: 2...1_000))
    var arms: Int = 4

    @Option(parsing: .unconditional, help: ArgumentHelp("Synthetic: reward noise std.", valueName: "σ"),
            transform: OptionValue.number(in: NumberRange("a number in [0, 1e6]") { $0 >= 0 && $0 <= 1e6 }))
    var noise: Double = 1

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        try checkThreadsEnvironment()
        _ = try algorithms()
        guard NeuralUCB.Objective(rawValue: objective) != nil else {
            throw ValidationError("--objective \(objective): give sum or mean")
        }
    }

    private func algorithms() throws -> [NeuralUCB.Algorithm] {
        let names = NeuralUCB.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
        let parts = algo.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var out: [NeuralUCB.Algorithm] = []
        for p in parts {
            guard let a = NeuralUCB.Algorithm(rawValue: p) else {
                throw ValidationError("--algo \(algo): '\(p)' is not an algorithm; give one or more of \(names), comma-separated")
            }
            guard !out.contains(a) else { throw ValidationError("--algo \(algo): \(p) is named twice") }
            out.append(a)
        }
        return out
    }

    private func settings(_ a: NeuralUCB.Algorithm) -> NeuralUCB.Settings {
        var s = NeuralUCB.Settings(algorithm: a)
        s.lambda = lambda; s.gamma = gamma; s.eta = eta; s.steps = steps
        s.objective = NeuralUCB.Objective(rawValue: objective) ?? .sum
        s.trainEvery = trainEvery; s.trainEveryRoundUntil = trainEveryRoundUntil; s.warmStart = warmStart
        s.epsilon = epsilon; s.alpha = alpha
        return s
    }

    /// The bandit `--data` names: a round generator of a run's seed, and its description.
    private func bandit() throws -> (name: String, contextDim: Int, arms: Int, baseSeed: UInt64,
                                     rounds: (UInt64) throws -> NeuralUCB.Bandit) {
        let rounds = self.rounds
        if data.hasPrefix("synthetic:") {
            let name = String(data.dropFirst("synthetic:".count))
            guard let h = BanditEnvironment.Function(rawValue: name) else {
                throw ConfigError("--data \(data): give synthetic:quadratic, synthetic:quadform or synthetic:cos")
            }
            let (dim, arms, noise) = (self.dim, self.arms, self.noise)
            let formula = ["quadratic": "10(xᵀa)²", "quadform": "xᵀAᵀAx", "cos": "cos(3xᵀa)"][name] ?? name
            return ("synthetic \(formula) + \(noise)·N(0,1), d = \(dim), unit ball", dim, arms, seed ?? 0, { s in
                NeuralUCB.Bandit(try BanditEnvironment.synthetic(h, dim: dim, arms: arms, rounds: rounds, noise: noise, seed: s))
            })
        }
        let (spec, configSeed) = try NTRFCommand.dataSpec(data)
        let base = seed ?? configSeed ?? 0
        let train = try spec.load(seed: base).train
        guard train.task != .regression else {
            throw ConfigError("--data \(data): \(train.name) is a regression data set; the classification bandit needs class labels (or use synthetic:cos)")
        }
        guard train.count > 0 else { throw ConfigError("--data \(data): no training examples") }
        let K = train.numClasses
        guard train.inputDim.multipliedReportingOverflow(by: K).partialValue <= 10_000_000 else {
            throw ConfigError("--data \(data): contexts of d·K = \(train.inputDim)·\(K) features are too many")
        }
        let (x, labels) = (train.x, train.labels)
        return ("\(train.name): \(train.count) examples, d = \(train.inputDim), disjoint arms", train.inputDim * K, K, base, { s in
            try BanditEnvironment.classificationBandit(x: x, labels: labels, classes: K, rounds: rounds, seed: s)
        })
    }

    func run() throws {
        do {
            let algorithms = try algorithms()
            let b = try bandit()
            let model = algorithms.contains { $0.usesNetwork }
                ? try MLP(spec: NeuralTangentRandomFeatures.modelSpec(inputDim: b.contextDim, depth: depth, width: width)) : nil
            if let model, algorithms.contains(where: { $0.fullMatrix && $0 != .linucb }), model.parameterCount > NeuralUCB.maxFullDimension {
                throw ConfigError("the network has P = \(model.parameterCount) parameters and a full Z is P × P, refused above \(NeuralUCB.maxFullDimension): use --algo neuralucb-diag or a smaller --width")
            }
            if algorithms.contains(.linucb), b.contextDim > NeuralUCB.maxFullDimension {
                throw ConfigError("linucb keeps a \(b.contextDim) × \(b.contextDim) matrix, refused above \(NeuralUCB.maxFullDimension)")
            }
            var runsByAlgorithm = [[NeuralUCB.Run]](repeating: [], count: algorithms.count)
            for r in 0..<runs {
                let runSeed = b.baseSeed &+ UInt64(r)
                let rounds = try b.rounds(runSeed)
                let w0 = model?.initialParameters(seed: runSeed) ?? []
                for (i, a) in algorithms.enumerated() {
                    runsByAlgorithm[i].append(try NeuralUCB.run(settings(a), bandit: rounds, model: model, w0: w0, seed: runSeed))
                }
            }
            let summaries = zip(algorithms, runsByAlgorithm).map { NeuralUCB.Summary(settings: settings($0.0), runs: $0.1) }
            print(json ? jsonText(summaries, bandit: b.name, arms: b.arms, seed: b.baseSeed, model: model)
                       : text(summaries, bandit: b.name, arms: b.arms, seed: b.baseSeed, model: model), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    // MARK: - Output

    private func parameters(_ a: NeuralUCB.Algorithm) -> String {
        let train = "η \(eta), J \(steps), \(objective)\(warmStart ? ", warm" : "")"
        switch a {
        case .neuralucb, .neuralucbDiag: return "λ \(lambda), γ \(gamma), \(train)"
        case .neuralucb0: return "λ \(lambda), γ \(gamma)"
        case .linucb: return "λ \(lambda), α \(alpha)"
        case .neuralEgreedy: return "ε \(epsilon), λ \(lambda), \(train)"
        case .uniform: return ""
        }
    }

    private func text(_ s: [NeuralUCB.Summary], bandit: String, arms K: Int, seed: UInt64, model: MLP?) -> String {
        var out = "bandit     \(bandit)\n"
        out += "           K = \(K) arms, T = \(rounds) rounds, \(runs) run\(runs == 1 ? "" : "s") (seeds \(seed)…\(seed &+ UInt64(runs - 1)))\n"
        if let model {
            let layers = model.spec.layers.map(String.init).joined(separator: "-")
            out += "net        MLP \(layers) relu, ntk, σ_w √2, no bias, P = \(model.parameterCount)\n"
            out += "           centered f̃ = f(·; w) − f(·; w₀); trained every "
            out += trainEveryRoundUntil > 0 ? "round to \(trainEveryRoundUntil), then every \(trainEvery)\n" : (trainEvery == 1 ? "round\n" : "\(trainEvery) rounds\n")
        }
        out += "\ncumulative regret R_t, mean ± std over runs\n"
        let checkpoints = Array(Set([rounds / 4, rounds / 2, 3 * rounds / 4, rounds].filter { $0 >= 1 })).sorted()
        out += "algorithm".rightPadded(16) + checkpoints.map { "t = \($0)".leftPadded(16) }.joined() + "\n"
        for summary in s {
            var line = summary.settings.algorithm.rawValue.rightPadded(16)
            for t in checkpoints {
                line += String(format: "%.1f ± %.1f", summary.meanCumulativeRegret[t - 1], summary.stdCumulativeRegret[t - 1]).leftPadded(16)
            }
            out += line + "\n"
        }
        out += "\nfinal regret R_T per run, and per-round mean R_T/T\n"
        for summary in s {
            let finals = summary.runs.map { String(format: "%.1f", $0.finalRegret) }.joined(separator: " ")
            out += summary.settings.algorithm.rawValue.rightPadded(16) + finals
                + String(format: "   (R_T/T %.4f)", summary.finalRegretMean / Double(rounds)) + "\n"
        }
        out += "\nplay counts per arm, summed over runs\n"
        for summary in s {
            var counts = [Int](repeating: 0, count: K)
            for run in summary.runs { for (a, c) in run.playCounts.enumerated() { counts[a] += c } }
            let shown = K <= 10 ? counts.map(String.init).joined(separator: " ") : counts.prefix(10).map(String.init).joined(separator: " ") + " … (--json: all)"
            out += summary.settings.algorithm.rawValue.rightPadded(16) + shown + "\n"
        }
        out += "\nsettings\n"
        for summary in s where !parameters(summary.settings.algorithm).isEmpty {
            out += summary.settings.algorithm.rawValue.rightPadded(16) + parameters(summary.settings.algorithm) + "\n"
        }
        if s.contains(where: { $0.settings.algorithm.fullMatrix || $0.settings.algorithm == .neuralucbDiag }) {
            out += "\nlog det(Z_T/λ), mean over runs (diag: of the diagonal)\n"
            for summary in s {
                let values = summary.runs.compactMap { $0.steps.last?.logDet }
                guard !values.isEmpty else { continue }
                out += summary.settings.algorithm.rawValue.rightPadded(16) + String(format: "%.6g", values.reduce(0, +) / Double(values.count)) + "\n"
            }
        }
        return out
    }

    private func jsonText(_ s: [NeuralUCB.Summary], bandit: String, arms K: Int, seed: UInt64, model: MLP?) -> String {
        func number(_ v: Double?) -> String { v.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        func string(_ v: String) -> String {
            String(decoding: (try? JSONEncoder().encode(v)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        var fields = ["\"bandit\": \(string(bandit))", "\"arms\": \(K)", "\"rounds\": \(rounds)", "\"runs\": \(runs)",
                      "\"seed\": \(seed)"]
        if let model {
            fields.append("\"network\": {\"layers\": \(model.spec.layers), \"parameters\": \(model.parameterCount)}")
        }
        let algorithms = s.map { summary -> String in
            let st = summary.settings
            let runs = summary.runs.map { run in
                "{\"seed\": \(run.seed), \"finalRegret\": \(number(run.finalRegret)), \"playCounts\": \(run.playCounts), "
                    + "\"logDet\": \(number(run.steps.last?.logDet)), \"parameterDistance\": \(number(run.steps.last?.parameterDistance)), "
                    + "\"arms\": \(run.playedArms), "
                    + "\"cumulativeRegret\": [\(run.cumulativeRegret.map { number($0) }.joined(separator: ", "))]}"
            }
            return "{\"algorithm\": \(string(st.algorithm.rawValue)), \"lambda\": \(st.lambda), \"gamma\": \(st.gamma), "
                + "\"eta\": \(st.eta), \"steps\": \(st.steps), \"objective\": \(string(st.objective.rawValue)), "
                + "\"trainEvery\": \(st.trainEvery), \"trainEveryRoundUntil\": \(st.trainEveryRoundUntil), "
                + "\"warmStart\": \(st.warmStart), \"epsilon\": \(st.epsilon), \"alpha\": \(st.alpha), "
                + "\"finalRegretMean\": \(number(summary.finalRegretMean)), \"finalRegretStd\": \(number(summary.finalRegretStd)), "
                + "\"meanCumulativeRegret\": [\(summary.meanCumulativeRegret.map { number($0) }.joined(separator: ", "))], "
                + "\"stdCumulativeRegret\": [\(summary.stdCumulativeRegret.map { number($0) }.joined(separator: ", "))], "
                + "\"runs\": [\n    " + runs.joined(separator: ",\n    ") + "]}"
        }
        fields.append("\"algorithms\": [\n  " + algorithms.joined(separator: ",\n  ") + "]")
        return "{\n" + fields.joined(separator: ",\n") + "\n}\n"
    }
}
