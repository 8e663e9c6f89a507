import ArgumentParser
import Foundation
import PKAnalysis
import PKData
import PKNumerics
import PKTraining

/// `pathkernel ntrf`: neural tangent random features and the Cao–Gu measure of a binary
/// dataset (Docs/ntk-family.md, "NTRF and the Cao–Gu measure"; contract §4).
struct NTRFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ntrf",
        abstract: "Cao–Gu NTRF risk, margin complexity and bound terms (binary data).",
        usage: """
        pathkernel ntrf --data <spec> --depth <L> --width <m> --radius <R,…>
                        [--seed <s>] [--delta <δ>] [--json]
        """,
        discussion: """
        The Cao–Gu net (relu MLP d-m-…-m-1, ntk parameterization, σ_w = √2, no bias) on the \
        training examples of --data, inputs scaled to unit norm, labels y ∈ {0, 1} mapped to \
        2y − 1. Prints H = (d/4)(Θ + Σ) (the analytic NTK and NNGP), λ_min(H), yᵀH⁻¹y, \
        √(yᵀH⁻¹y/n), the margin complexity min ỹᵀH⁻¹ỹ over ỹ_i y_i ≥ 1 (exact QP), and per \
        radius R the NTRF risk R̂(R) of the width-m net at its initialization (--seed), with \
        the terms 4R̂(R), LR/√n and √(log(1/δ)/n) of Cao & Gu's Theorem 3.3. The paper gives \
        no constants for its O(·): no bound value is printed. Docs/ntk-family.md.

        --data is \(DataArgument.forms). The seed draws the data and the net; default: the \
        config's seed, else 0.

        Example:  pathkernel ntrf --data '{"kind": "xor", "train": 200, "test": 0}'
                      --depth 2 --width 256 --radius 1,4
        """)

    @Option(help: ArgumentHelp(DataArgument.optionHelp, valueName: "spec"))
    var data: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight matrices L (2…64): L − 1 hidden layers.", valueName: "L"),
            transform: OptionValue.integer(in: NeuralTangentRandomFeatures.depthRange))
    var depth: Int

    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden width m of the finite net (for R̂).", valueName: "m"),
            transform: OptionValue.integer(in: 1...ConfigLimits.maxWidth))
    var width: Int

    @Option(parsing: .unconditional, help: ArgumentHelp("Radii R > 0, comma-separated (e.g. 0.5,2).", valueName: "R,…"))
    var radius: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the data and the net (0…2^64−1).", valueName: "s"),
            transform: OptionValue.integer(in: 0...UInt64.max))
    var seed: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("δ of the confidence term, in (0, 1/e].", valueName: "δ"),
            transform: OptionValue.number(in: NeuralTangentRandomFeatures.deltaRange))
    var delta: Double = 0.05

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        try checkThreadsEnvironment()
        _ = try radii()
    }

    /// The `--radius` values.
    private func radii() throws -> [Double] {
        let parts = radius.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty else { throw ValidationError("--radius: give one or more radii R > 0, e.g. --radius 0.5,2") }
        return try parts.map { text in
            guard let v = Double(text), NeuralTangentRandomFeatures.radiusRange.contains(v) else {
                throw ValidationError("--radius \(radius): '\(text)' is not \(NeuralTangentRandomFeatures.radiusRange); give radii R > 0 separated by commas, e.g. --radius 0.5,2")
            }
            return v
        }
    }

    func run() throws {
        do {
            let source = try DataArgument.resolve(data)
            let spec = source.spec, configSeed = source.seed
            let seed = self.seed ?? configSeed ?? 0
            let train = try spec.load(seed: seed).train
            let labels = try Self.signedLabels(train, source: data)
            let report = try NeuralTangentRandomFeatures.analyze(
                x: train.x, labels: labels, depth: depth, width: width, radii: try radii(), delta: delta,
                parameters: .seed(seed))
            print(json ? jsonText(report, name: train.name, seed: seed) : text(report, name: train.name, seed: seed, labels: labels),
                  terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    /// Binary labels `y ∈ {0, 1}` as `2y − 1`; other tasks are refused.
    static func signedLabels(_ d: Dataset, source: String) throws -> [Double] {
        switch d.task {
        case .binary: return d.y.data.map { 2 * $0 - 1 }
        case .multiclass:
            throw ConfigError("\(source): \(d.name) has \(d.numClasses) classes; the Cao–Gu measure is for binary labels (two classes): use binary data, e.g. moons, circles, xor, spirals with classes 2, or idx with two classes")
        case .regression:
            throw ConfigError("\(source): \(d.name) is a regression dataset; the Cao–Gu measure needs binary labels 0/1 (e.g. a csv with \"task\": \"binary\")")
        }
    }

    // MARK: - Output

    private static func g(_ v: Double) -> String { String(format: "%.10g", v) }

    /// The text form; every line but the data's name fits 80 columns.
    private func text(_ r: NTRFReport, name: String, seed: UInt64, labels: [Double]) -> String {
        let g = Self.g
        let positives = labels.filter { $0 > 0 }.count
        let layers = ([r.inputDim] + [Int](repeating: r.width, count: r.depth - 1) + [1]).map(String.init).joined(separator: "-")
        var out = "data       \(name): n = \(r.examples) examples, d = \(r.inputDim) features\n"
        out += "           inputs scaled to unit norm (Cao–Gu setting)\n"
        out += "           labels y ∈ {0, 1} as 2y − 1: \(positives) +1, \(r.examples - positives) −1\n"
        out += "net        MLP \(layers) relu, ntk, σ_w √2, no bias\n"
        out += "           L = \(r.depth), m = \(r.width), seed \(seed)\n"
        out += "kernel     H = (d/4)(Θ + Σ): the analytic NTK and NNGP of that MLP\n"
        out += "           \(r.examples) × \(r.examples)"
        if r.examples <= 5 {
            out += "\n"
            for i in 0..<r.examples {
                out += "          " + (0..<r.examples).map { String(format: " %12.6g", r.kernel[i, $0]) }.joined() + "\n"
            }
        } else {
            out += " (--json prints it)\n"
        }
        out += "\n"
        out += "λ_min(H)           \(g(r.lambdaMin))   (λ_max \(g(r.lambdaMax)))\n"
        if let q = r.labelComplexity, let t = r.labelTerm {
            out += "yᵀH⁻¹y             \(g(q))\n"
            out += "√(yᵀH⁻¹y/n)        \(g(t))\n"
        }
        if let m = r.margin, let t = r.marginTerm {
            out += "margin complexity  \(g(m.value))   min ỹᵀH⁻¹ỹ over ỹ_i y_i ≥ 1 (exact QP)\n"
            out += "                   \(m.atMargin) of \(r.examples) at |ỹ_i| = 1, KKT residual \(String(format: "%.1e", m.kktResidual))\n"
            out += "√(margin/n)        \(g(t))   × L = \(g(Double(r.depth) * t)) (Corollary 3.10)\n"
        }
        out += "√(log(1/δ)/n)      \(g(r.confidenceTerm))   (δ = \(r.delta))\n"
        out += "\nNTRF risk R̂(R): the least mean logistic loss of the NTRF functions with\n"
        out += "‖W_l − W_l⁽⁰⁾‖_F ≤ R/√m for every layer (width m = \(r.width))\n"
        out += "R".rightPadded(8) + "R̂(R)".leftPadded(15) + "4R̂(R)".leftPadded(15) + "LR/√n".leftPadded(15)
            + "residual".leftPadded(10) + "  full balls\n"
        for p in r.risks {
            let full = zip(p.layerNorms, p.layerRadii).filter { $0.0 >= $0.1 * (1 - 1e-9) }.count
            out += g(p.radius).rightPadded(8) + g(p.risk).leftPadded(15) + g(4 * p.risk).leftPadded(15)
                + g(r.radiusTerm(p.radius)).leftPadded(15) + String(format: "%.1e", p.residual).leftPadded(10)
                + "  \(full) of \(r.depth)\n"
        }
        out += "\nCao & Gu 2019, Theorem 3.3, for m ≥ m*(δ, R, L, n):\n"
        out += "  E[0-1 error] ≤ 4R̂(R) + O(LR/√n + √(log(1/δ)/n)); the O(·) has no published\n"
        out += "  constants, so no bound value is formed.\n"
        for note in r.notes { out += "note       \(note)\n" }
        return out
    }

    private func jsonText(_ r: NTRFReport, name: String, seed: UInt64) -> String {
        func number(_ v: Double?) -> String { v.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        func string(_ s: String) -> String {
            String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        var fields = ["\"data\": \(string(name))", "\"examples\": \(r.examples)", "\"inputDim\": \(r.inputDim)",
                      "\"depth\": \(r.depth)", "\"width\": \(r.width)", "\"seed\": \(seed)", "\"delta\": \(r.delta)",
                      "\"inputsNormalized\": true", "\"labels\": \"2y-1\"",
                      "\"lambdaMin\": \(number(r.lambdaMin))", "\"lambdaMax\": \(number(r.lambdaMax))",
                      "\"labelComplexity\": \(number(r.labelComplexity))", "\"labelTerm\": \(number(r.labelTerm))"]
        if let m = r.margin {
            fields.append("\"margin\": {\"value\": \(number(m.value)), \"term\": \(number(r.marginTerm)), "
                + "\"depthTimesTerm\": \(number(r.marginTerm.map { Double(r.depth) * $0 })), \"labels\": \(m.labels), "
                + "\"atMargin\": \(m.atMargin), \"kktResidual\": \(number(m.kktResidual)), \"iterations\": \(m.iterations)}")
        } else {
            fields.append("\"margin\": null")
        }
        fields.append("\"confidenceTerm\": \(number(r.confidenceTerm))")
        let risks = r.risks.map { p in
            "{\"radius\": \(p.radius), \"risk\": \(number(p.risk)), \"fourRisk\": \(number(4 * p.risk)), "
                + "\"radiusTerm\": \(number(r.radiusTerm(p.radius))), \"layerNorms\": \(p.layerNorms), \"layerRadii\": \(p.layerRadii), "
                + "\"residual\": \(number(p.residual)), \"iterations\": \(p.iterations), \"converged\": \(p.converged)}"
        }
        fields.append("\"risks\": [\n  " + risks.joined(separator: ",\n  ") + "]")
        fields.append("\"notes\": [\(r.notes.map(string).joined(separator: ", "))]")
        fields.append("\"kernel\": [" + (0..<r.kernel.rows).map { i in
            "[" + (0..<r.kernel.cols).map { number(r.kernel[i, $0]) }.joined(separator: ", ") + "]"
        }.joined(separator: ", ") + "]")
        return "{\n" + fields.joined(separator: ",\n") + "\n}\n"
    }
}
