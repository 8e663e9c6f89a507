import ArgumentParser
import Foundation
import PKAnalysis
import PKNetworks
import PKNumerics
import PKTraining

extension LinearPrediction.KernelSource: ExpressibleByArgument {}
extension LinearizedDynamics.Dynamics: ExpressibleByArgument {}
extension LinearizedDynamics.Ensemble: ExpressibleByArgument {}

/// `pathkernel predict-linear`: gradient descent on the linearized network, or the infinite
/// ensemble, in closed form (Docs/ntk-family.md, "Linearized dynamics").
struct PredictLinear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict-linear",
        abstract: "Linearized training dynamics in closed form, finite width or infinite.",
        usage: "pathkernel predict-linear (--trace <trace> | --config <config>)\n                          [<options>]",
        discussion: """
        f_t(x) = f₀(x) + Θ(x, X) G_t (Y − F₀), the network linearized at w₀ trained by \
        full-batch gradient descent on the mean MSE: discrete steps, G_t = Θ⁻¹[I − (I − ηΘ/n)^t], \
        or gradient flow, G_t = Θ⁻¹[I − exp(−ηΘt/n)]; t = inf gives Θ⁻¹. Θ is the empirical NTK \
        at w₀ (exact for the linearized network) or the analytic NTK (infinite width). \
        --ensemble adds the infinite ensemble's mean and covariance on the held-out points: \
        ntk (every layer trained) or nngp (the readout only). On a trace the times default to \
        its checkpoints, and at each one the report compares with the network. Docs/ntk-family.md.

        Example:  pathkernel predict-linear --trace sine.sqlite --dynamics flow
        """)

    @Option(help: "A trace file: its model, data, w₀ and learning rate.")
    var trace: String?

    @Option(help: "A run config JSON file: its model, data, initialization and learning rate.")
    var config: String?

    @Option(help: "The NTK: empirical (at w₀) or analytic (infinite width).")
    var kernel: LinearPrediction.KernelSource = .empirical

    @Option(parsing: .upToNextOption,
            help: ArgumentHelp("Times t ≥ 0 in steps, or inf (several allowed). Default: the trace's checkpoints, the config's steps.", valueName: "t"))
    var time: [String] = []

    @Option(help: "Discrete gradient descent or gradient flow.")
    var dynamics: LinearizedDynamics.Dynamics = .discrete

    @Option(help: "Also the infinite ensemble's mean and covariance (needs --kernel analytic).")
    var ensemble: LinearizedDynamics.Ensemble?

    @Option(parsing: .unconditional, help: "Relative ridge ρ ≥ 0 added to Θ(X, X): λ = ρ·tr(Θ)/m.",
            transform: OptionValue.number(in: LinearizedDynamics.ridgeRange))
    var ridge: Double = 0

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        try checkThreadsEnvironment()
        if [config, trace].compactMap({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --trace FILE.sqlite or --config FILE.json")
        }
        if ensemble != nil && kernel != .analytic {
            throw ValidationError("--ensemble is the infinite-width ensemble: add --kernel analytic")
        }
        _ = try times()
    }

    /// The `--time` values: numbers ≥ 0 or `inf`.
    private func times() throws -> [Double] {
        try time.map { text in
            let s = text.trimmingCharacters(in: .whitespaces).lowercased()
            if ["inf", "infinity", "∞"].contains(s) { return .infinity }
            guard let v = Double(s), v.isFinite, v >= 0 else {
                throw ValidationError("--time \(text): a time is a number of steps ≥ 0, or inf")
            }
            if dynamics == .discrete && v != v.rounded() {
                throw ValidationError("--time \(text): discrete gradient descent takes whole steps (--dynamics flow takes any time)")
            }
            return v
        }
    }

    func run() throws {
        do {
            let problem: LinearizedProblem
            var defaultTimes: [Double]
            if let trace {
                problem = try LinearizedProblem.load(trace: trace)
                defaultTimes = problem.network.keys.sorted().map { Double($0) }
            } else {
                let cfg = try RunConfig.load(path: config!)
                try cfg.validate()
                guard cfg.loss.kind == .mse else {
                    throw ConfigError("\(config!): predict-linear covers the MSE loss (this config's loss is \(cfg.loss.kind.rawValue))")
                }
                let split = try cfg.data.load(seed: cfg.seed)
                let model = try Networks.make(cfg.model)
                problem = LinearizedProblem(
                    model: model, w0: model.initialParameters(seed: cfg.seed), trainX: split.train.x, trainY: split.train.y,
                    testX: split.test.x, testY: split.test.y, learningRate: cfg.optimizer.learningRate, source: config!,
                    notes: LinearizedProblem.departures(optimizer: cfg.optimizer, fullBatch: cfg.optimizer.kind == .gd,
                                                        constantRate: cfg.optimizer.schedule.kind == .constant && cfg.optimizer.schedule.warmupSteps == 0))
                defaultTimes = [Double(cfg.training.steps)]
            }
            var options = LinearPrediction.Options()
            options.kernel = kernel
            options.dynamics = dynamics
            options.ensemble = ensemble
            options.ridge = ridge
            let given = try times()
            options.times = given.isEmpty ? defaultTimes : given
            let result = try LinearPrediction.compute(problem, options)
            print(json ? jsonText(result) : text(result), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    // MARK: - Output

    private static func time(_ t: Double) -> String { t.isFinite ? String(format: "%g", t) : "inf" }

    private func text(_ r: LinearPrediction) -> String {
        let g = { (v: Double) in String(format: "%.6e", v) }
        var out = "source     \(r.source) (\(r.model))\n"
        out += "kernel     " + (r.options.kernel == .empirical
            ? "empirical NTK at w₀, \(r.kernelRows) × \(r.kernelRows)\(r.outputs > 1 ? " (C = \(r.outputs) outputs, full blocks)" : "")"
            : "analytic NTK, \(r.kernelRows) × \(r.kernelRows), applied per output") + "\n"
        out += "dynamics   \(r.options.dynamics == .discrete ? "discrete gradient descent" : "gradient flow"), η = \(r.learningRate), n = \(r.examples) (mean MSE)\n"
        out += "spectrum   λ_min \(g(r.eigenvalues.first ?? 0)), λ_max \(g(r.eigenvalues.last ?? 0)), ηλ_max/n = \(String(format: "%.4g", r.stability))"
            + (r.options.dynamics == .discrete ? " (stable below 2)" : "") + "\n"
        if r.ridge > 0 { out += "ridge      λ_r = \(g(r.ridge)) (ρ = \(r.options.ridge))\n" }
        for note in r.notes { out += "note       \(note)\n" }
        let compared = r.points.contains { $0.networkGap != nil || $0.networkMaxDifference != nil }
        if compared {
            out += "network    at stored checkpoints, on the \(r.heldOut > 0 ? "held-out" : "training") points: gap ‖f_lin − f‖/‖f − f₀‖,\n"
                + "           max diff max |f_lin − f| (f: the network, f_lin: the prediction)\n"
        }
        out += "\n" + "time".rightPadded(10) + "train loss".leftPadded(14) + (r.heldOut > 0 ? "test loss".leftPadded(14) : "")
            + (compared ? "gap".leftPadded(12) + "max diff".leftPadded(12) : "") + "\n"
        for p in r.points {
            var line = Self.time(p.time).rightPadded(10) + g(p.trainLoss).leftPadded(14)
            if r.heldOut > 0 { line += (p.testLoss.map(g) ?? "—").leftPadded(14) }
            if compared {
                line += (p.networkGap.map { String(format: "%.3e", $0) } ?? "—").leftPadded(12)
                    + (p.networkMaxDifference.map { String(format: "%.3e", $0) } ?? "—").leftPadded(12)
            }
            out += line + "\n"
        }
        if let kind = r.options.ensemble {
            out += "\ninfinite ensemble (\(kind.rawValue)): mean and standard deviation on the \(r.heldOut) held-out points"
                + (r.outputs > 1 ? ", per output" : "") + "\n"
            let shown = min(r.heldOut, 10)
            for p in r.points {
                guard let mean = p.ensembleMean, let cov = p.ensembleCovariance else { continue }
                out += "t = \(Self.time(p.time))\n"
                for i in 0..<shown {
                    let sd = max(cov[i, i], 0).squareRoot()
                    out += "  " + (0..<r.outputs).map { String(format: "%13.6e", mean[i, $0]) }.joined(separator: " ")
                        + " ± " + String(format: "%.6e", sd) + "\n"
                }
                if r.heldOut > shown { out += "  … (\(r.heldOut - shown) more: --json prints them all)\n" }
            }
        }
        return out
    }

    private func jsonText(_ r: LinearPrediction) -> String {
        func number(_ v: Double) -> String { v.isFinite ? "\(v)" : (v > 0 ? "\"inf\"" : "null") }
        func matrix(_ m: Matrix) -> String {
            "[" + (0..<m.rows).map { i in "[" + (0..<m.cols).map { number(m[i, $0]) }.joined(separator: ", ") + "]" }.joined(separator: ", ") + "]"
        }
        func string(_ s: String) -> String {
            String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        var fields = ["\"source\": \(string(r.source))", "\"model\": \(string(r.model))",
                      "\"kernel\": \"\(r.options.kernel.rawValue)\"", "\"dynamics\": \"\(r.options.dynamics.rawValue)\"",
                      "\"learningRate\": \(r.learningRate)", "\"examples\": \(r.examples)", "\"heldOut\": \(r.heldOut)",
                      "\"outputs\": \(r.outputs)", "\"kernelRows\": \(r.kernelRows)", "\"ridge\": \(r.ridge)",
                      "\"stability\": \(r.stability)", "\"eigenvalues\": \(r.eigenvalues)",
                      "\"notes\": [\(r.notes.map(string).joined(separator: ", "))]"]
        if let e = r.options.ensemble { fields.append("\"ensemble\": \"\(e.rawValue)\"") }
        let points = r.points.map { p -> String in
            var f = ["\"time\": \(number(p.time))", "\"train\": \(matrix(p.train))", "\"test\": \(matrix(p.test))",
                     "\"trainLoss\": \(number(p.trainLoss))", "\"testLoss\": \(p.testLoss.map(number) ?? "null")",
                     "\"networkGap\": \(p.networkGap.map(number) ?? "null")",
                     "\"networkMaxDifference\": \(p.networkMaxDifference.map(number) ?? "null")"]
            if let m = p.ensembleMean, let c = p.ensembleCovariance {
                f.append("\"ensembleMean\": \(matrix(m))")
                f.append("\"ensembleCovariance\": \(matrix(c))")
            }
            return "{" + f.joined(separator: ", ") + "}"
        }
        fields.append("\"points\": [\n  " + points.joined(separator: ",\n  ") + "]")
        return "{\n" + fields.joined(separator: ",\n") + "\n}\n"
    }
}
