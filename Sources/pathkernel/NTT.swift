import ArgumentParser
import Foundation
import PKAnalysis
import PKData
import PKNetworks
import PKNumerics
import PKReport
import PKTraining

/// `pathkernel ntt`: Neural Tangent Transfer pruning (ntk-family contract §7;
/// Docs/bandits-and-pruning.md). The objective and its optimization are `NTTObjective` and
/// `NeuralTangentTransfer` (PKAnalysis); the supervised comparison trains with `Trainer`.
struct NTTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ntt",
        abstract: "Neural Tangent Transfer: sparse networks that match a dense NTK.",
        usage: """
        pathkernel ntt (--config <F> | --preset <name>) [--density <ρ> …]
                       [--lambda-kernel <λ_K>] [--lambda-l2 <λ₂>]
                       [--mask-every <k_M>] [--ntt-epochs <E>] [--out <P>]
                       [--ntt-batch <B>] [--ntt-lr <η>] [--seed <S>]
                       [--no-train] [--force] [--quiet] [--html <file.html>]
        """,
        discussion: """
        For each density ρ: starts from the config's initialization w_T (the teacher) and its \
        layerwise magnitude mask, fits the sparse student M ⊙ s to the teacher's outputs and \
        empirical NTK on the training inputs (labels unused) with Adam, updating the mask \
        every k_M iterations, and writes the student to an init file for \
        `pathkernel train --init`. Prints the three loss terms on a held-out batch (the first \
        test inputs), the relative kernel distance before and after, and the mask changes.

        Then (unless --no-train) trains, with the config's optimizer and steps, the NTT \
        student, the magnitude-pruned teacher (no NTT), a uniform random mask on a fresh \
        initialization (seed + 1) and the dense network, and prints their test accuracy. \
        MLPs only. Docs/bandits-and-pruning.md explains every number.

        Example:  pathkernel ntt --preset ntt-fmnist --density 0.1 0.03
        """)

    @Option(help: "A run config JSON file (its data, MLP, optimizer, steps).")
    var config: String?

    @Option(help: "A built-in preset (ntt-fmnist).")
    var preset: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Densities ρ in (0, 1] (default 0.1 0.03).", valueName: "ρ"),
            transform: OptionValue.number(in: NumberRange("a number in (0, 1]") { $0 > 0 && $0 <= 1 }))
    var density: [Double] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("λ_K, the kernel term's weight (default 1e-3).", valueName: "λ_K"),
            transform: OptionValue.number(in: .atLeast(0)))
    var lambdaKernel: Double = 1e-3

    @Option(parsing: .unconditional, help: ArgumentHelp("λ₂, the L2 weight, divided by ρ (default 1e-4).", valueName: "λ₂"),
            transform: OptionValue.number(in: .atLeast(0)))
    var lambdaL2: Double = 1e-4

    @Option(parsing: .unconditional, help: ArgumentHelp("k_M, iterations between mask updates (100).", valueName: "k_M"),
            transform: OptionValue.integer(in: 1...100_000_000))
    var maskEvery: Int = 100

    @Option(parsing: .unconditional, help: ArgumentHelp("Passes of NTT over the training inputs (20).", valueName: "E"),
            transform: OptionValue.integer(in: 0...1_000_000))
    var nttEpochs: Int = 20

    @Option(parsing: .unconditional, help: ArgumentHelp("NTT mini-batch size, two halves (64).", valueName: "B"),
            transform: OptionValue.integer(in: 2...1_000_000))
    var nttBatch: Int = 64

    @Option(parsing: .unconditional, help: ArgumentHelp("NTT's Adam learning rate (5e-4).", valueName: "η"),
            transform: OptionValue.number(in: .above(0)))
    var nttLr: Double = 5e-4

    @Option(help: ArgumentHelp("Init file (default NAME-ntt.json; several densities: -rho<ρ> added).", valueName: "P"))
    var out: String?

    @Option(parsing: .unconditional, help: "Override the config's seed.",
            transform: OptionValue.integer(in: 0...UInt64.max))
    var seed: UInt64?

    @Flag(help: "Skip the supervised comparison.")
    var noTrain = false

    @Flag(help: "Replace existing init files.")
    var force = false

    @Flag(help: "Print no progress.")
    var quiet = false

    @Option(help: ArgumentHelp("Also write a page: test accuracy against density.", valueName: "file.html"))
    var html: String?

    func validate() throws {
        try checkThreadsEnvironment()
        if (preset == nil) == (config == nil) {
            throw ValidationError("give exactly one of --preset NAME or --config FILE.json")
        }
        if let html, noTrain { throw ValidationError("--html \(html) draws the supervised comparison, which --no-train skips; drop one of them") }
    }

    /// `P` for one density: `P` itself when there is one, else `-rho<ρ>` before the extension.
    static func outputPath(_ base: String, density: Double, several: Bool) -> String {
        guard several else { return base }
        let url = URL(fileURLWithPath: base)
        let ext = url.pathExtension
        let stem = ext.isEmpty ? base : String(base.dropLast(ext.count + 1))
        return stem + "-rho\(density)" + (ext.isEmpty ? "" : "." + ext)
    }

    func run() throws {
        do {
            try runStudy()
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    func say(_ s: String) { if !quiet { FileHandle.standardError.write(Data((s + "\n").utf8)) } }

    func runStudy() throws {
        var cfg = try preset.map(Presets.load) ?? RunConfig.load(path: config!)
        if let seed { cfg.seed = seed }
        guard cfg.model.kind == "mlp" else {
            throw ConfigError("ntt: the model is \(cfg.model.kind); NTT's second-order gradient is written for MLPs only")
        }
        let densities = density.isEmpty ? [0.1, 0.03] : density
        let network = try MLP(spec: cfg.model)
        let split = try cfg.data.load(seed: cfg.seed)
        try cfg.validate()
        try cfg.validate(against: split)
        guard split.test.count >= 2 else { throw ConfigError("ntt: the held-out batch needs at least 2 test examples; the config has \(split.test.count)") }
        let heldOut = split.test.x.rows(0..<min(nttBatch, split.test.count))
        let teacher = network.initialParameters(seed: cfg.seed)
        let base = out ?? "\(cfg.name)-ntt.json"
        let paths = densities.map { Self.outputPath(base, density: $0, several: densities.count > 1) }
        for p in paths where FileManager.default.fileExists(atPath: p) && !force {
            throw ConfigError("\(p) exists; choose another --out or pass --force to replace it")
        }
        let modelLine = "MLP \(cfg.model.layers.map(String.init).joined(separator: "-")) \(cfg.model.activation.rawValue)"
        print("NTT: \(modelLine), teacher = the initialization of seed \(cfg.seed); \(split.train.count) training inputs, held-out batch = the first \(heldOut.rows) test inputs")
        let perEpoch = split.train.count / min(nttBatch, split.train.count)
        print("λ_K \(lambdaKernel), λ₂ \(lambdaL2), k_M \(maskEvery), \(nttEpochs) epochs × \(perEpoch) batches of \(min(nttBatch, split.train.count)), Adam lr \(nttLr)")
        var students: [(density: Double, ntt: SparseInit, magnitude: SparseInit, distances: (Double, Double))] = []
        let notesBase = "lambdaKernel \(lambdaKernel), lambdaL2 \(lambdaL2), maskEvery \(maskEvery), epochs \(nttEpochs), batch \(nttBatch), lr \(nttLr), seed \(cfg.seed), config \(cfg.name)"
        for (rho, path) in zip(densities, paths) {
            var settings = NeuralTangentTransfer.Settings(density: rho)
            settings.lambdaKernel = lambdaKernel
            settings.lambdaL2 = lambdaL2
            settings.maskEvery = maskEvery
            settings.epochs = nttEpochs
            settings.batchSize = nttBatch
            settings.learningRate = nttLr
            settings.seed = cfg.seed
            let bar = quiet ? nil : ProgressBar(total: max(1, perEpoch * nttEpochs))
            let result = try NeuralTangentTransfer.run(network: network, teacher: teacher, inputs: split.train.x, heldOut: heldOut,
                                                       settings: settings) { done, _ in bar?.update(done, "NTT ρ = \(rho)") }
            bar?.finish()
            let kept = MagnitudeMask.keptPerLayer(network, result.mask)
            let sizes = network.layers.map(\.weightCount)
            print("")
            print("density \(rho): kept \(zip(kept, sizes).map { "\($0) of \($1)" }.joined(separator: ", ")) weights per layer")
            print("   iter  kernel term   target term  ‖M⊙s‖²       L            kernel dist  mask changes")
            for r in result.history {
                let t = r.heldOut
                let changes = r.maskChanges.map { $0.map(String.init).joined(separator: " ") } ?? ""
                print(String(format: "  %5d  %-12.6g %-12.6g %-12.6g %-12.6g %-12.6g", r.iteration, t.kernel, t.target,
                             t.weightNormSquared, t.loss, t.relativeKernelDistance) + " " + changes)
            }
            let before = result.history.first!.heldOut.relativeKernelDistance
            let after = result.history.last!.heldOut.relativeKernelDistance
            print(String(format: "  relative kernel distance (held out): before %.6g, after %.6g", before, after))
            let student = SparseInit(method: "ntt", model: cfg.model, density: rho,
                                     parameters: result.student, mask: result.mask, notes: notesBase)
            try student.write(to: path, force: force)
            print("  written: \(path)")
            let magnitudeMask = MagnitudeMask.make(network, weights: teacher, density: rho)
            students.append((rho, student, SparseInit(method: "magnitude", model: cfg.model, density: rho,
                                                      parameters: teacher, mask: magnitudeMask), (before, after)))
        }
        guard !noTrain else { return }

        // The supervised comparison: every variant trained as `train` would, test accuracy.
        /// Test accuracy (classification) or `rmse …` (regression), or `diverged`, 9 columns, and
        /// the number (nil: diverged).
        func accuracy(_ initial: SparseInit?, freshSeed: Bool = false) throws -> (text: String, value: Double?) {
            var c = cfg
            if freshSeed { c.seed = cfg.seed &+ 1 }
            c.optimizer.parameterMask = initial?.mask
            let trainer = try Trainer(config: c, data: split, initialParameters: initial?.parameters)
            let outcome = trainer.run(observers: [])
            guard outcome.status == .finished else { return ("diverged ", nil) }
            let e = Evaluation.evaluate(model: trainer.model, parameters: outcome.finalParameters, data: split.test,
                                        loss: cfg.loss.kind)
            if let a = e.accuracy { return (String(format: "%-9.4f", a), a) }
            return (String(format: "rmse %-4.3g", e.rmse ?? .nan), e.rmse)
        }
        say("training the dense network and three sparse ones per density (\(cfg.training.steps) steps each)")
        let dense = try accuracy(nil)
        print("")
        print("test accuracy after supervised training (\(cfg.optimizer.summary), \(cfg.training.steps) steps; \(split.test.count) test examples)")
        print("  density  ntt       magnitude  random    dense")
        var rows: [Report.NTTRow] = []
        for s in students {
            let ntt = try accuracy(s.ntt)
            let magnitude = try accuracy(s.magnitude)
            let fresh = network.initialParameters(seed: cfg.seed &+ 1)
            let randomMask = MagnitudeMask.random(network, density: s.density, seed: cfg.seed)
            let random = try accuracy(SparseInit(method: "random", model: cfg.model, density: s.density,
                                                 parameters: fresh, mask: randomMask), freshSeed: true)
            print("  " + String(format: "%-7.4g", s.density) + "  " + ntt.text + " " + magnitude.text + "  " + random.text + " " + dense.text)
            rows.append(Report.NTTRow(density: s.density, kernelDistanceBefore: s.distances.0, kernelDistanceAfter: s.distances.1,
                                      ntt: ntt.value, magnitude: magnitude.value, random: random.value, dense: dense.value))
        }
        if let html {
            let card: [(label: String, value: String)] = [
                ("config", cfg.name + (preset.map { " (preset \($0))" } ?? "")),
                ("network", "\(modelLine), teacher = the initialization of seed \(cfg.seed)"),
                ("data", "\(split.train.count) training inputs, \(split.test.count) test examples; held-out batch = the first \(heldOut.rows) test inputs"),
                ("NTT", "λ_K \(lambdaKernel), λ₂ \(lambdaL2), k_M \(maskEvery), \(nttEpochs) epochs × \(perEpoch) batches of \(min(nttBatch, split.train.count)), Adam lr \(nttLr)"),
                ("supervised training", "\(cfg.optimizer.summary), \(cfg.training.steps) steps; random masks on the initialization of seed \(cfg.seed &+ 1)"),
            ]
            let metric = cfg.loss.kind == .mse ? "test RMSE" : "test accuracy"
            let page = Report.nttHTML(title: "pathkernel ntt: \(cfg.name)", card: card, metric: metric, rows: rows)
            do { try page.write(toFile: html, atomically: true, encoding: .utf8) } catch {
                throw ConfigError("--html \(html): cannot write the page (\(error.localizedDescription)); give a writable path")
            }
        }
    }
}
