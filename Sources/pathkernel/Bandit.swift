import ArgumentParser
import Foundation
import PKAnalysis
import PKData
import PKNetworks
import PKNumerics
import PKReport
import PKTraining

/// `pathkernel bandit`: NeuralUCB and its baselines on a contextual bandit (Docs/bandits-and-pruning.md;
/// contract §6). Thin: the policies and bandits are `NeuralUCB` and `BanditEnvironment`.
struct BanditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandit",
        abstract: "NeuralUCB and baselines on a contextual bandit: regret, play counts.",
        usage: """
        pathkernel bandit (--preset <name> | --data <spec> --algo <A,…>)
                          [--rounds <T>] [--runs <R>] [--lambda <λ>]
                          [--gamma <γ>] [--eta <η>] [--steps <J>]
                          [--objective sum|mean] [--train-every <k>]
                          [--[no-]warm-start] [--epsilon <ε>] [--alpha <α>]
                          [--width <m>] [--json] [--html <file.html>]
                          [--traces <dir> --trace-rounds <t,…>]
        """,
        discussion: """
        Plays T rounds of a K-armed contextual bandit with each algorithm, R runs with the \
        seeds s, s+1, …, s+R−1 (each run a fresh shuffle or draw of the bandit and a fresh \
        network; within a run every algorithm sees the same rounds). Prints the cumulative \
        regret (mean ± std over runs) at a few rounds, the final regret and the play counts \
        of each arm. Docs/bandits-and-pruning.md.

        Presets (contract §6; any option given overrides the preset's): bandit-quadratic \
        (synthetic:quadratic, d = 20, K = 4, T = 2000, 3 runs, neuralucb, linucb, \
        neural-egreedy, uniform; net 20-32-1, λ 0.01, γ 0.1, η 5 mean, J 20, trained every \
        round to 500 then every 25, warm) and bandit-fmnist (Fashion-MNIST, K = 10, \
        dK = 7840, net 7840-100-1, neuralucb-diag and uniform, T = 5000, 3 runs; TrainNN \
        reduced to J = 10 steps every 250 rounds to fit 5 minutes).

        Algorithms: neuralucb (Algorithm 1: full Z, Sherman–Morrison; P ≤ 4000), \
        neuralucb-diag (diagonal Z), neuralucb0 (LinUCB on J(x; w₀)), linucb (raw contexts, \
        --alpha), neural-egreedy (--epsilon), uniform. The network is the MLP \
        [D, m, …, m, 1] relu, ntk, σ_w √2, no bias, centered: f̃ = f(·; w) − f(·; w₀). \
        TrainNN: J GD steps of step η from w₀ (--warm-start: from the last network) on \
        Σ ½(f̃ − r)² + (λ/2)‖w − w₀‖² (--objective mean: divided by t).

        --data is a data set, \(DataArgument.forms): its training examples as the disjoint \
        classification bandit (K = classes, contexts e_a ⊗ x, reward 1[a = y]); or synthetic:quadratic, \
        synthetic:quadform, synthetic:cos, the paper's h = 10(xᵀa)², xᵀAᵀAx, cos(3xᵀa) on \
        the unit ball (--dim, --arms, --noise).

        --traces DIR --trace-rounds t,… writes the TrainNN run after each round t (each \
        network-training algorithm, each run) as a trace, DIR/<algo>-seed<s>-round<t>.sqlite: \
        full-batch GD from w₀ on the t played contexts, decay towards w₀ (needs TrainNN from \
        w₀, not --warm-start). `pathkernel analyze` reads it.

        Example:  pathkernel bandit --data synthetic:cos --algo neuralucb,linucb,uniform
                      --rounds 500 --runs 3 --lambda 0.01 --eta 5 --objective mean
        """)

    @Option(help: ArgumentHelp("A bandit preset: bandit-quadratic or bandit-fmnist.", valueName: "name"))
    var preset: String?

    @Option(help: ArgumentHelp(DataArgument.optionHelp + " Or synthetic:<h> (quadratic, quadform, cos).", valueName: "spec"))
    var data: String?

    @Option(help: ArgumentHelp("Algorithms, comma-separated (see below).", valueName: "A,…"))
    var algo: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Rounds T per run (default 1000).", valueName: "T"),
            transform: OptionValue.integer(in: 1...10_000_000))
    var rounds: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Runs R, seeds s … s+R−1 (default 3).", valueName: "R"),
            transform: OptionValue.integer(in: 1...10_000))
    var runs: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("First seed s (default: the config's, else 0).", valueName: "s"),
            transform: OptionValue.integer(in: 0...UInt64.max))
    var seed: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("λ: Z₀ = λI and the ridge to w₀ (default 1).", valueName: "λ"),
            transform: OptionValue.number(in: NeuralUCB.lambdaRange))
    var lambda: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("γ, NeuralUCB's exploration (default 0.1).", valueName: "γ"),
            transform: OptionValue.number(in: NeuralUCB.widthFactorRange))
    var gamma: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("η, the GD step of TrainNN (default 0.1).", valueName: "η"),
            transform: OptionValue.number(in: NeuralUCB.etaRange))
    var eta: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("J, GD steps per training (default 25).", valueName: "J"),
            transform: OptionValue.integer(in: NeuralUCB.stepsRange))
    var steps: Int?

    @Option(help: ArgumentHelp("TrainNN's objective: sum (default) or mean.", valueName: "sum|mean"))
    var objective: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Train after multiples of k (default 1).", valueName: "k"),
            transform: OptionValue.integer(in: NeuralUCB.trainEveryRange))
    var trainEvery: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("But train every round up to round N.", valueName: "N"),
            transform: OptionValue.integer(in: 0...10_000_000))
    var trainEveryRoundUntil: Int?

    @Flag(inversion: .prefixedNo, help: "TrainNN continues from the last network (default: from w₀).")
    var warmStart: Bool?

    @Option(parsing: .unconditional, help: ArgumentHelp("ε of neural-egreedy (default 0.05).", valueName: "ε"),
            transform: OptionValue.number(in: NeuralUCB.epsilonRange))
    var epsilon: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("α of linucb (default 0.1).", valueName: "α"),
            transform: OptionValue.number(in: NeuralUCB.widthFactorRange))
    var alpha: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden width m of the network (default 32).", valueName: "m"),
            transform: OptionValue.integer(in: 1...ConfigLimits.maxWidth))
    var width: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight matrices L of the network (2…8).", valueName: "L"),
            transform: OptionValue.integer(in: 2...8))
    var depth: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Synthetic: context dimension d (default 20).", valueName: "d"),
            transform: OptionValue.integer(in: 1...10_000))
    var dim: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Synthetic: arms K (default 4).", valueName: "K"),
            transform: OptionValue.integer(in: 2...1_000))
    var arms: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Synthetic: reward noise std (default 1).", valueName: "σ"),
            transform: OptionValue.number(in: NumberRange("a number in [0, 1e6]") { $0 >= 0 && $0 <= 1e6 }))
    var noise: Double?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Also write an HTML page with the regret curves.", valueName: "file.html"))
    var html: String?

    @Option(help: ArgumentHelp("Folder for the traces of --trace-rounds (made if absent).", valueName: "dir"))
    var traces: String?

    @Option(help: ArgumentHelp("Rounds whose TrainNN run is written as a trace.", valueName: "t,…"))
    var traceRounds: String?

    /// Every setting of a bandit run: the defaults, a preset's, then the options given.
    struct Values {
        var data: String? = nil
        var algo: String? = nil
        var rounds = 1000, runs = 3
        var lambda = 1.0, gamma = 0.1, eta = 0.1
        var steps = 25
        var objective = "sum"
        var trainEvery = 1, trainEveryRoundUntil = 0
        var warmStart = false
        var epsilon = 0.05, alpha = 0.1
        var width = 32, depth = 2
        var dim = 20, arms = 4
        var noise = 1.0
        /// What the preset changed from the contract's settings (printed), if anything.
        var presetNote: String? = nil
        var presetName: String? = nil
    }

    /// The bandit presets (contract §6 "Presets and expected outcome"; Docs/bandits-and-pruning.md).
    static let presets: [String: Values] = {
        var quadratic = Values()
        quadratic.presetName = "bandit-quadratic"
        quadratic.data = "synthetic:quadratic"
        quadratic.algo = "neuralucb,linucb,neural-egreedy,uniform"
        quadratic.rounds = 2000; quadratic.runs = 3
        quadratic.lambda = 0.01; quadratic.gamma = 0.1; quadratic.eta = 5; quadratic.steps = 20
        quadratic.objective = "mean"; quadratic.trainEveryRoundUntil = 500; quadratic.trainEvery = 25
        quadratic.warmStart = true; quadratic.alpha = 0.1; quadratic.epsilon = 0.05
        quadratic.width = 32; quadratic.depth = 2; quadratic.dim = 20; quadratic.arms = 4; quadratic.noise = 1
        var fmnist = Values()
        fmnist.presetName = "bandit-fmnist"
        fmnist.data = #"{"kind": "idx", "train": 10000, "test": 1}"#
        fmnist.algo = "neuralucb-diag,uniform"
        fmnist.rounds = 5000; fmnist.runs = 3
        fmnist.lambda = 0.001; fmnist.gamma = 0.1; fmnist.eta = 5; fmnist.steps = 10
        fmnist.objective = "mean"; fmnist.trainEveryRoundUntil = 100; fmnist.trainEvery = 250
        fmnist.warmStart = true; fmnist.epsilon = 0.05
        fmnist.width = 100; fmnist.depth = 2
        fmnist.presetNote = "reduced to fit 5 minutes on 2 cores: TrainNN is J = 10 full-batch GD steps (warm, mean objective) every round to 100, then every 250 rounds (the paper: 1000 SGD steps of batch 500 every 100 rounds from round 2000)"
        return ["bandit-quadratic": quadratic, "bandit-fmnist": fmnist]
    }()

    /// The settings in force: `--preset`'s (or the defaults), overridden by every option given.
    func values() throws -> Values {
        var v = Values()
        if let preset {
            guard let p = Self.presets[preset] else {
                throw ValidationError("--preset \(preset): give bandit-quadratic or bandit-fmnist")
            }
            v = p
        }
        if let data { v.data = data }
        if let algo { v.algo = algo }
        if let rounds { v.rounds = rounds }
        if let runs { v.runs = runs }
        if let lambda { v.lambda = lambda }
        if let gamma { v.gamma = gamma }
        if let eta { v.eta = eta }
        if let steps { v.steps = steps }
        if let objective { v.objective = objective }
        if let trainEvery { v.trainEvery = trainEvery }
        if let trainEveryRoundUntil { v.trainEveryRoundUntil = trainEveryRoundUntil }
        if let warmStart { v.warmStart = warmStart }
        if let epsilon { v.epsilon = epsilon }
        if let alpha { v.alpha = alpha }
        if let width { v.width = width }
        if let depth { v.depth = depth }
        if let dim { v.dim = dim }
        if let arms { v.arms = arms }
        if let noise { v.noise = noise }
        guard v.data != nil else { throw ValidationError("give --data SPEC (or --preset bandit-quadratic | bandit-fmnist)") }
        guard v.algo != nil else { throw ValidationError("give --algo A,… (or --preset bandit-quadratic | bandit-fmnist)") }
        return v
    }

    func validate() throws {
        try checkThreadsEnvironment()
        let v = try values()
        _ = try algorithms(v)
        guard NeuralUCB.Objective(rawValue: v.objective) != nil else {
            throw ValidationError("--objective \(v.objective): give sum or mean")
        }
        _ = try tracedRounds(v)
    }

    /// The rounds of `--trace-rounds` (ascending), checked against the run's settings; empty
    /// without the option.
    func tracedRounds(_ v: Values) throws -> [Int] {
        guard let spec = traceRounds else {
            if traces != nil { throw ValidationError("--traces \(traces ?? ""): give --trace-rounds t,… (the rounds whose TrainNN run to write)") }
            return []
        }
        guard let dir = traces, !dir.isEmpty else { throw ValidationError("--trace-rounds \(spec): give --traces DIR (where to write the traces)") }
        var rounds: [Int] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let t = Int(text), t >= 1, t <= v.rounds else {
                throw ValidationError("--trace-rounds \(spec): '\(text)' is not a round in 1…\(v.rounds) (--rounds)")
            }
            guard !rounds.contains(t) else { throw ValidationError("--trace-rounds \(spec): round \(t) is named twice") }
            rounds.append(t)
        }
        let training = try algorithms(v).filter(\.trainsNetwork)
        guard !training.isEmpty else {
            throw ValidationError("--trace-rounds: none of --algo \(v.algo ?? "") trains a network (neuralucb, neuralucb-diag or neural-egreedy do)")
        }
        guard !v.warmStart else {
            throw ValidationError("--trace-rounds needs TrainNN from w₀: under --warm-start a training starts from the last network while its ridge pulls towards w₀, which a trace (decay towards its own first weights) cannot state; add --no-warm-start")
        }
        guard v.steps >= 1, v.eta > 0 else {
            throw ValidationError("--trace-rounds: TrainNN makes no step (J = \(v.steps), η = \(v.eta)); a trace needs J ≥ 1 and η > 0")
        }
        let schedule = settings(training[0], v)
        if let t = rounds.first(where: { !schedule.trains(after: $0) }) {
            let before = stride(from: t, through: 1, by: -1).first { schedule.trains(after: $0) }
            let after = (t...v.rounds).first { schedule.trains(after: $0) }
            let near = [before, after].compactMap { $0 }.map(String.init).joined(separator: " or ")
            throw ValidationError("--trace-rounds: TrainNN does not run after round \(t) (--train-every \(v.trainEvery)\(v.trainEveryRoundUntil > 0 ? ", every round to \(v.trainEveryRoundUntil)" : "")); choose a round where it does\(near.isEmpty ? "" : ", e.g. \(near)")")
        }
        return rounds.sorted()
    }

    private func algorithms(_ v: Values) throws -> [NeuralUCB.Algorithm] {
        let algo = v.algo ?? ""
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

    private func settings(_ a: NeuralUCB.Algorithm, _ v: Values) -> NeuralUCB.Settings {
        var s = NeuralUCB.Settings(algorithm: a)
        s.lambda = v.lambda; s.gamma = v.gamma; s.eta = v.eta; s.steps = v.steps
        s.objective = NeuralUCB.Objective(rawValue: v.objective) ?? .sum
        s.trainEvery = v.trainEvery; s.trainEveryRoundUntil = v.trainEveryRoundUntil; s.warmStart = v.warmStart
        s.epsilon = v.epsilon; s.alpha = v.alpha
        return s
    }

    /// The bandit `--data` names: a round generator of a run's seed, and its description.
    private func bandit(_ v: Values) throws -> (name: String, contextDim: Int, arms: Int, baseSeed: UInt64,
                                                rounds: (UInt64) throws -> NeuralUCB.Bandit) {
        let rounds = v.rounds
        let data = v.data ?? ""
        if data.hasPrefix("synthetic:") {
            let name = String(data.dropFirst("synthetic:".count))
            guard let h = BanditEnvironment.Function(rawValue: name) else {
                throw ConfigError("--data \(data): give synthetic:quadratic, synthetic:quadform or synthetic:cos")
            }
            let (dim, arms, noise) = (v.dim, v.arms, v.noise)
            let formula = ["quadratic": "10(xᵀa)²", "quadform": "xᵀAᵀAx", "cos": "cos(3xᵀa)"][name] ?? name
            return ("synthetic \(formula) + \(noise)·N(0,1), d = \(dim), unit ball", dim, arms, seed ?? 0, { s in
                NeuralUCB.Bandit(try BanditEnvironment.synthetic(h, dim: dim, arms: arms, rounds: rounds, noise: noise, seed: s))
            })
        }
        let source = try DataArgument.resolve(data)
        let spec = source.spec, configSeed = source.seed
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
            let v = try values()
            let algorithms = try algorithms(v)
            let b = try bandit(v)
            let model = algorithms.contains { $0.usesNetwork }
                ? try MLP(spec: NeuralTangentRandomFeatures.modelSpec(inputDim: b.contextDim, depth: v.depth, width: v.width)) : nil
            if let model, algorithms.contains(where: { $0.fullMatrix && $0 != .linucb }), model.parameterCount > NeuralUCB.maxFullDimension {
                throw ConfigError("the network has P = \(model.parameterCount) parameters and a full Z is P × P, refused above \(NeuralUCB.maxFullDimension): use --algo neuralucb-diag or a smaller --width")
            }
            if algorithms.contains(.linucb), b.contextDim > NeuralUCB.maxFullDimension {
                throw ConfigError("linucb keeps a \(b.contextDim) × \(b.contextDim) matrix, refused above \(NeuralUCB.maxFullDimension)")
            }
            let traced = try tracedRounds(v)
            var written: [[[String]]] = algorithms.map { _ in [] }   // [algorithm][run] → trace paths
            if let dir = traces, !traced.isEmpty, let model {
                try prepareTraceFolder(dir, algorithms: algorithms, runs: v.runs, baseSeed: b.baseSeed, rounds: traced, model: model)
            }
            // Progress on stderr for long runs: one line per finished run of an algorithm.
            let progress = v.rounds >= 1000
            var runsByAlgorithm = [[NeuralUCB.Run]](repeating: [], count: algorithms.count)
            for r in 0..<v.runs {
                let runSeed = b.baseSeed &+ UInt64(r)
                let rounds = try b.rounds(runSeed)
                let w0 = model?.initialParameters(seed: runSeed) ?? []
                for (i, a) in algorithms.enumerated() {
                    let started = Date()
                    let run = try NeuralUCB.run(settings(a, v), bandit: rounds, model: model, w0: w0, seed: runSeed,
                                                recordRounds: Set(traced))
                    var paths: [String] = []
                    if let dir = traces, let model {
                        for training in run.trainings {
                            let path = Self.tracePath(dir, a, runSeed, training.round)
                            try writeTrace(training, to: path, algorithm: a, seed: runSeed, v, bandit: rounds, arms: run.playedArms,
                                           model: model, w0: w0, description: b.name)
                            paths.append(path)
                        }
                    }
                    written[i].append(paths)
                    var kept = run
                    kept.trainings = []   // J + 1 weight vectors per traced round: written, not kept
                    runsByAlgorithm[i].append(kept)
                    if progress {
                        let line = String(format: "run %d/%d (seed %llu) %@: R_T = %.1f, %.1f s\n", r + 1, v.runs, runSeed,
                                          a.rawValue, run.finalRegret, Date().timeIntervalSince(started))
                        FileHandle.standardError.write(Data(line.utf8))
                    }
                }
            }
            let summaries = zip(algorithms, runsByAlgorithm).map { NeuralUCB.Summary(settings: settings($0.0, v), runs: $0.1) }
            if let html {
                let page = htmlPage(summaries, v, bandit: b.name, arms: b.arms, seed: b.baseSeed, model: model)
                do { try page.write(toFile: html, atomically: true, encoding: .utf8) } catch {
                    throw ConfigError("--html \(html): cannot write the page (\(error.localizedDescription)); give a writable path")
                }
            }
            print(json ? jsonText(summaries, v, bandit: b.name, arms: b.arms, seed: b.baseSeed, model: model, traces: written)
                       : text(summaries, v, bandit: b.name, arms: b.arms, seed: b.baseSeed, model: model)
                         + traceLines(summaries, written, v), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    // MARK: - Traces of chosen rounds

    /// `DIR/<algorithm>-seed<s>-round<t>.sqlite`.
    static func tracePath(_ dir: String, _ a: NeuralUCB.Algorithm, _ seed: UInt64, _ round: Int) -> String {
        (dir as NSString).appendingPathComponent("\(a.rawValue)-seed\(seed)-round\(round).sqlite")
    }

    /// Makes `dir` (and its parents) and refuses, before any round is played, a trace file that
    /// is already there (a trace is never overwritten).
    private func prepareTraceFolder(_ dir: String, algorithms: [NeuralUCB.Algorithm], runs: Int, baseSeed: UInt64,
                                    rounds: [Int], model: MLP) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConfigError("--traces \(dir): a file is there; give a folder") }
        } else {
            do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw ConfigError("--traces \(dir): cannot make the folder (\(error.localizedDescription))")
            }
        }
        for a in algorithms where a.trainsNetwork {
            for r in 0..<runs {
                for t in rounds {
                    let path = Self.tracePath(dir, a, baseSeed &+ UInt64(r), t)
                    if fm.fileExists(atPath: path) {
                        throw ConfigError("--traces \(dir): \((path as NSString).lastPathComponent) is already there (a trace is never overwritten); remove it or give another folder")
                    }
                }
            }
        }
    }

    /// Writes one TrainNN run as a trace (Docs/bandits-and-pruning.md, "Traces of chosen rounds").
    private func writeTrace(_ training: NeuralUCB.Training, to path: String, algorithm a: NeuralUCB.Algorithm, seed: UInt64,
                            _ v: Values, bandit: NeuralUCB.Bandit, arms: [Int], model: MLP, w0: [Double],
                            description: String) throws {
        let data = training.traceData(bandit: bandit, arms: arms, model: model, w0: w0)
        let J = training.iterates.count - 1
        // Every iterate is a checkpoint unless they would pass 2^24 numbers (128 MB); then ten or so.
        let every = (J + 1) * model.parameterCount <= 1 << 24 ? 1 : max(1, (J + 9) / 10)
        let origin: [String: Any] = [
            "algorithm": a.rawValue, "round": training.round, "seed": seed, "bandit": description,
            "lambda": training.lambda, "eta": training.eta, "steps": J, "objective": v.objective, "gamma": v.gamma,
            "note": "TrainNN after round \(training.round): J GD steps from w₀ on Σ_i ½(f̃(x_i; w) − r_i)² + (λ/2)‖w − w₀‖²\(v.objective == "mean" ? " divided by t" : ""); as a trace: targets r_i + f(x_i; w₀), mean MSE, learning rate η·\(v.objective == "mean" ? "1" : "t") and weight decay λ/t towards w₀",
        ]
        let run = TraceRecorder.IterateRun(
            name: "\(a.rawValue)-seed\(seed)-round\(training.round)", seed: seed, model: model.spec, loss: .mse,
            optimizer: try training.traceOptimizer(), trainX: data.trainX, trainY: data.trainY, testX: data.testX, testY: data.testY,
            iterates: training.iterates, checkpointEvery: every,
            source: "pathkernel bandit: the contexts played in rounds 1…\(training.round) (targets: reward + f(x; w₀)); held out: the arms of round \(training.round + 1)",
            origin: ("bandit", origin))
        do { try TraceRecorder.write(run, to: path) } catch {
            throw ConfigError("--traces: cannot write \(path) (\(error))")
        }
    }

    /// The text report's list of written traces (nothing without `--trace-rounds`).
    private func traceLines(_ s: [NeuralUCB.Summary], _ written: [[[String]]], _ v: Values) -> String {
        let all = written.flatMap { $0.flatMap { $0 } }
        guard traceRounds != nil, !all.isEmpty else { return "" }
        var out = "\ntraces     TrainNN of the chosen rounds: full-batch GD from w₀ on the t\n"
        out += "           played contexts, decay λ/t towards w₀ (pathkernel analyze FILE)\n"
        for path in all { out += "           \(path)\n" }
        return out
    }

    // MARK: - Output

    /// `text` wrapped to 80 columns, every line indented by `indent` spaces.
    private func wrapped(_ text: String, indent: Int) -> String {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && indent + line.count + 1 + word.count > 80 { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines.map { String(repeating: " ", count: indent) + $0 + "\n" }.joined()
    }

    private func parameters(_ a: NeuralUCB.Algorithm, _ v: Values) -> String {
        let (eta, steps, objective, warmStart, lambda, gamma, alpha, epsilon) = (v.eta, v.steps, v.objective, v.warmStart, v.lambda, v.gamma, v.alpha, v.epsilon)
        let train = "η \(eta), J \(steps), \(objective)\(warmStart ? ", warm" : "")"
        switch a {
        case .neuralucb, .neuralucbDiag: return "λ \(lambda), γ \(gamma), \(train)"
        case .neuralucb0: return "λ \(lambda), γ \(gamma)"
        case .linucb: return "λ \(lambda), α \(alpha)"
        case .neuralEgreedy: return "ε \(epsilon), λ \(lambda), \(train)"
        case .uniform: return ""
        }
    }

    private func text(_ s: [NeuralUCB.Summary], _ v: Values, bandit: String, arms K: Int, seed: UInt64, model: MLP?) -> String {
        let (rounds, runs, trainEvery, trainEveryRoundUntil) = (v.rounds, v.runs, v.trainEvery, v.trainEveryRoundUntil)
        var out = ""
        if let name = v.presetName { out += "preset     \(name)\n" }
        if let note = v.presetNote { out += wrapped(note, indent: 11) }
        out += "bandit     \(bandit)\n"
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
        if let first = s.first, s.count > 1 {
            out += "\nmean R_T of \(first.settings.algorithm.rawValue) over each other algorithm's mean R_T\n"
            for other in s.dropFirst() {
                let ratio = other.finalRegretMean > 0 ? String(format: "%.3f", first.finalRegretMean / other.finalRegretMean) : "–"
                out += other.settings.algorithm.rawValue.rightPadded(16) + ratio + "\n"
            }
        }
        out += "\nplay counts per arm, summed over runs\n"
        for summary in s {
            var counts = [Int](repeating: 0, count: K)
            for run in summary.runs { for (a, c) in run.playCounts.enumerated() { counts[a] += c } }
            let shown = K <= 10 ? counts.map(String.init).joined(separator: " ") : counts.prefix(10).map(String.init).joined(separator: " ") + " … (--json: all)"
            out += summary.settings.algorithm.rawValue.rightPadded(16) + shown + "\n"
        }
        out += "\nsettings\n"
        for summary in s where !parameters(summary.settings.algorithm, v).isEmpty {
            out += summary.settings.algorithm.rawValue.rightPadded(16) + parameters(summary.settings.algorithm, v) + "\n"
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

    private func htmlPage(_ s: [NeuralUCB.Summary], _ v: Values, bandit: String, arms K: Int, seed: UInt64, model: MLP?) -> String {
        var card: [(label: String, value: String)] = []
        if let name = v.presetName { card.append(("preset", name + (v.presetNote.map { ": " + $0 } ?? ""))) }
        card.append(("bandit", bandit))
        card.append(("arms, rounds, runs", "K = \(K), T = \(v.rounds), \(v.runs) run\(v.runs == 1 ? "" : "s") (seeds \(seed)…\(seed &+ UInt64(v.runs - 1)))"))
        if let model {
            let layers = model.spec.layers.map(String.init).joined(separator: "-")
            card.append(("network", "MLP \(layers) relu, ntk, σ_w √2, no bias, P = \(model.parameterCount), centered"))
            let schedule = v.trainEveryRoundUntil > 0 ? "every round to \(v.trainEveryRoundUntil), then every \(v.trainEvery)" : (v.trainEvery == 1 ? "every round" : "every \(v.trainEvery) rounds")
            card.append(("training", "TrainNN \(schedule)"))
        }
        var settings: [String: String] = [:]
        for summary in s { settings[summary.settings.algorithm.rawValue] = parameters(summary.settings.algorithm, v) }
        let title = "pathkernel bandit: " + (v.presetName ?? (v.data ?? "bandit"))
        return Report.banditHTML(Report.BanditPage(title: title, card: card, settings: settings), summaries: s)
    }

    private func jsonText(_ s: [NeuralUCB.Summary], _ v: Values, bandit: String, arms K: Int, seed: UInt64, model: MLP?,
                          traces: [[[String]]]) -> String {
        let (rounds, runs) = (v.rounds, v.runs)
        func number(_ v: Double?) -> String { v.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        func string(_ v: String) -> String {
            String(decoding: (try? JSONEncoder().encode(v)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        var fields = ["\"preset\": \(v.presetName.map(string) ?? "null")", "\"bandit\": \(string(bandit))", "\"arms\": \(K)", "\"rounds\": \(rounds)", "\"runs\": \(runs)",
                      "\"seed\": \(seed)"]
        if let model {
            fields.append("\"network\": {\"layers\": \(model.spec.layers), \"parameters\": \(model.parameterCount)}")
        }
        let algorithms = s.enumerated().map { index, summary -> String in
            let st = summary.settings
            let runs = summary.runs.enumerated().map { r, run -> String in
                let paths = index < traces.count && r < traces[index].count ? traces[index][r] : []
                return "{\"seed\": \(run.seed), \"finalRegret\": \(number(run.finalRegret)), \"playCounts\": \(run.playCounts), "
                    + (self.traceRounds != nil ? "\"traces\": [\(paths.map(string).joined(separator: ", "))], " : "")
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
