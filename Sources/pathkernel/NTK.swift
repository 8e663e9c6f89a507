import ArgumentParser
import Foundation
import PKAnalysis
import PKNetworks
import PKNumerics
import PKTrace

extension EmpiricalNTK.QuerySet: ExpressibleByArgument {}

/// `pathkernel ntk`: the empirical NTK of a trace's network at a step, its spectrum, and the
/// kernel as a NumPy or CSV file (Docs/ntk-family.md, "The empirical NTK at a checkpoint").
struct NTKCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ntk",
        abstract: "The empirical NTK of a trace's network at a step, and its spectrum.",
        usage: "pathkernel ntk <path> [--step <step>] [--queries <queries>]\n               [--out <FILE>] [<options>]",
        discussion: """
        Θ̂(x, x') = J(x; w_k) J(x'; w_k)ᵀ between the trace's examples (--queries), at a stored \
        checkpoint or at any step the trace can replay to (--step; default 0, the \
        initialization). --kernel full keeps every C×C block: (nC) × (nC), row r·C + c; \
        --kernel trace keeps each block's trace Σ_c Θ̂_cc: n × n. --spectrum adds the \
        eigenvalues, λ_min, λ_max, the condition number λ_max/λ_min and the effective rank \
        exp(−Σ p log p), p = λ/Σλ. --out writes the kernel as .npy (float64, C order: \
        numpy.load) or .csv (numpy.loadtxt(f, delimiter=',')). Docs/ntk-family.md.

        Example:  pathkernel ntk sine.sqlite --step 400 --spectrum --out K.npy
        """)

    @Argument(help: "The trace file.")
    var path: String

    @Option(parsing: .unconditional, help: "The step whose weights w_k give the kernel (default 0).",
            transform: OptionValue.integer(in: 0...ConfigLimits.maxSteps))
    var step: Int?

    @Option(help: "The kernel's examples: train, test, or both (training ones first).")
    var queries: EmpiricalNTK.QuerySet = .train

    @Option(help: "Keep full C×C blocks per pair of examples or only their trace.")
    var kernel: KernelMode = .full

    @Option(help: ArgumentHelp("Write the kernel to FILE: .npy (float64, C order) or .csv.", valueName: "FILE"))
    var out: String?

    @Flag(help: "Add the eigenvalues, λ_min, λ_max, condition number and effective rank.")
    var spectrum = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    /// Largest kernel printed as text (rows); larger ones go to --out or --json.
    static let maxPrintedRows = 12

    func validate() throws {
        try checkThreadsEnvironment()
        if let out, KernelFile.format(of: out) == nil {
            throw ValidationError("--out \(out): the kernel file must end in .npy or .csv")
        }
    }

    func run() throws {
        do {
            // A file that cannot be written fails now, not after the kernel.
            if let out { try OutputPath.check(out) }
            let result = try EmpiricalNTK.compute(trace: path, step: step, queries: queries, mode: kernel, spectrum: spectrum)
            if let out { try KernelFile.write(result.kernel, to: out) }
            print(json ? jsonText(result) : text(result), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    // MARK: - Output

    private func shape(_ r: EmpiricalNTK) -> String {
        let k = r.kernel
        return r.mode == .full
            ? "full, \(k.rows) × \(k.cols)" + (r.outputs > 1 ? " (C = \(r.outputs): row r·C + c, column r'·C + c')" : "")
            : "trace, \(k.rows) × \(k.cols)" + (r.outputs > 1 ? " (Σ_c Θ̂_cc over C = \(r.outputs) outputs)" : "")
    }

    private func text(_ r: EmpiricalNTK) -> String {
        let g = { (v: Double) in String(format: "%.6e", v) }
        var out = "trace      \(r.path) (\(r.model))\n"
        out += "step       \(r.step) (\(r.replayed ? "replayed from the trace's steps" : "stored checkpoint"))\n"
        let what = ["train": "training examples", "test": "held-out examples", "both": "training then held-out examples"][r.queries.rawValue]!
        out += "queries    \(r.examples) \(what)\n"
        out += "kernel     \(shape(r))\n"
        if let file = self.out {
            out += "written    \(file) (\(KernelFile.format(of: file)! == .npy ? "NumPy .npy, float64, C order" : "CSV, one row per line"))\n"
        }
        if let s = r.spectrum {
            out += "\nλ_max      \(g(s.lambdaMax))\n"
            out += "λ_min      \(g(s.lambdaMin))\n"
            out += "condition  " + (s.conditionNumber.map(g) ?? "∞ (λ_min ≤ 0: singular to working precision)") + "\n"
            out += "eff. rank  \(String(format: "%.4f", s.effectiveRank)) of \(s.eigenvalues.count) (exp of the entropy of λ/Σλ)\n"
            out += "eigenvalues (descending)\n"
            let v = s.eigenvalues
            func lines(_ values: ArraySlice<Double>) {
                let texts = values.map(g)
                for i in stride(from: 0, to: texts.count, by: 6) {
                    out += "  " + texts[i..<min(i + 6, texts.count)].joined(separator: " ") + "\n"
                }
            }
            if v.count <= 48 {
                lines(v[...])
            } else {
                lines(v.prefix(24))
                out += "  … (\(v.count - 48) more: --json lists them all)\n"
                lines(v.suffix(24))
            }
        }
        if self.out == nil {
            let k = r.kernel
            if k.rows <= Self.maxPrintedRows {
                out += "\nΘ̂ at step \(r.step) (\(k.rows) × \(k.cols))\n"
                for i in 0..<k.rows {
                    out += (0..<k.cols).map { String(format: "%19.12e", k[i, $0]) }.joined(separator: " ") + "\n"
                }
            } else {
                out += "\n(the \(k.rows) × \(k.cols) kernel is printed as text up to \(Self.maxPrintedRows) rows: --out K.npy or --json)\n"
            }
        }
        return out
    }

    private func jsonText(_ r: EmpiricalNTK) -> String {
        func string(_ s: String) -> String {
            String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        var fields = ["\"trace\": \(string(r.path))", "\"model\": \(string(r.model))", "\"step\": \(r.step)",
                      "\"replayed\": \(r.replayed)", "\"queries\": \"\(r.queries.rawValue)\"",
                      "\"examples\": \(r.examples)", "\"outputs\": \(r.outputs)", "\"kernelMode\": \"\(r.mode.rawValue)\"",
                      "\"shape\": [\(r.kernel.rows), \(r.kernel.cols)]"]
        if let file = out { fields.append("\"out\": \(string(file))") }
        if let s = r.spectrum {
            fields.append("\"spectrum\": {\"lambdaMax\": \(s.lambdaMax), \"lambdaMin\": \(s.lambdaMin), \"conditionNumber\": \(s.conditionNumber.map { "\($0)" } ?? "null"), \"effectiveRank\": \(s.effectiveRank), \"eigenvalues\": \(s.eigenvalues)}")
        }
        if out == nil {
            let k = r.kernel
            fields.append("\"kernel\": [" + (0..<k.rows).map { i in "[" + (0..<k.cols).map { "\(k[i, $0])" }.joined(separator: ", ") + "]" }.joined(separator: ",\n  ") + "]")
        }
        return "{\n" + fields.joined(separator: ",\n") + "\n}\n"
    }
}
