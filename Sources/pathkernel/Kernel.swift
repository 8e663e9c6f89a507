import ArgumentParser
import Foundation
import PKAnalysis
import PKData
import PKNetworks
import PKNumerics
import PKTrace
import PKTraining

/// `pathkernel kernel`: the infinite-width NNGP and NTK of an MLP spec between rows of CSV files
/// (Docs/ntk-family.md), optionally next to the empirical NTK at a trace's checkpoint.
struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "The infinite-width NNGP and NTK of an MLP between the rows of CSV files.",
        usage: "pathkernel kernel (--preset <preset> | --config <config> |\n                  --trace <trace>) --inputs <inputs> [<options>]",
        discussion: """
        The model comes from a preset, a run config or a trace (its layers, activation, \
        parameterization, sigmaW, sigmaB, bias, leakySlope); the widths matter only under the \
        standard parameterization, whose NTK grows with them. Inputs are CSV files of numbers, one \
        example per row, as many columns as the model's input width (a header line is allowed). \
        The kernels are one number per pair of rows; a model with C outputs has the kernel K ⊗ I_C. \
        Closed forms for identity, relu, leaky-relu, erf and gelu; the trapezoidal rule (error \
        ≤ 1e-10 for variances up to 32) for tanh, sigmoid and softplus. Docs/ntk-family.md.

        Example:  pathkernel kernel --preset teacher-relu --inputs x.csv --kind ntk

        With --trace T --compare: also the empirical NTK at a checkpoint (--step, default the \
        first) and its relative gap ‖Θ̂ − Θ‖_F/‖Θ‖_F to the analytic one.
        """)

    @Option(help: "A built-in preset (see `pathkernel presets`): its model.")
    var preset: String?

    @Option(help: "A run config JSON file (Docs/config.md): its model.")
    var config: String?

    @Option(help: "A trace file: its model (and, with --compare, a checkpoint).")
    var trace: String?

    @Option(help: "CSV file of input rows (the kernel's rows).")
    var inputs: String

    @Option(help: "CSV file of second input rows (the kernel's columns). Default: the rows of --inputs (a Gram matrix).")
    var inputs2: String?

    @Option(help: "Which kernels to print.")
    var kind: Kind = .both

    @Flag(help: "With --trace: also the empirical NTK at a checkpoint and its gap to the analytic NTK.")
    var compare = false

    @Option(parsing: .unconditional, help: "With --trace --compare: the checkpoint's step (default: the first checkpoint).",
            transform: OptionValue.integer(in: 0...ConfigLimits.maxSteps))
    var step: Int?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    enum Kind: String, ExpressibleByArgument, CaseIterable { case nngp, ntk, both }

    /// The largest variance for which the quadrature's error bound was measured (contract §1).
    static let measuredVariance = 32.0

    /// Most kernel entries (n₁·n₂) per matrix: 200 MB of float64 each.
    static let maxEntries = 25_000_000

    func validate() throws {
        try checkThreadsEnvironment()
        if [preset, config, trace].compactMap({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --preset NAME, --config FILE.json or --trace FILE.sqlite")
        }
        if compare && trace == nil { throw ValidationError("--compare needs --trace FILE.sqlite (the checkpoint to compare)") }
        if step != nil && !compare { throw ValidationError("--step picks the checkpoint of --compare: add --compare (and --trace)") }
    }

    func run() throws {
        do {
            let spec = try modelSpec()
            let analytic = try InfiniteWidthKernel(spec: spec)
            let x1 = try Self.readInputs(inputs, width: spec.layers[0])
            let x2 = try inputs2.map { try Self.readInputs($0, width: spec.layers[0]) }
            let n2 = x2?.rows ?? x1.rows
            guard x1.rows * n2 <= Self.maxEntries else {
                throw InfiniteWidthError("\(x1.rows) × \(n2) = \(x1.rows * n2) kernel entries, more than \(Self.maxEntries) (200 MB per matrix); use fewer rows")
            }
            let k = try analytic.kernels(x1, x2)
            if !GaussianExpectation.hasClosedForm(spec.activation) && k.largestVariance > Self.measuredVariance {
                FileHandle.standardError.write(Data("note: pre-activation variances reach \(String(format: "%.4g", k.largestVariance)), beyond the \(Int(Self.measuredVariance)) up to which the trapezoidal rule's error (1e-10) was measured; scale the inputs down for that accuracy\n".utf8))
            }
            var comparison: (step: Int, gap: EmpiricalKernelGap)? = nil
            if compare, let trace { comparison = try Self.compare(trace: trace, step: step, spec: spec, x1, x2, analytic: k.ntk) }
            print(json ? jsonText(spec, k, comparison) : text(spec, k, comparison, n1: x1.rows, n2: n2), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    private func modelSpec() throws -> ModelSpec {
        if let preset { return try Presets.load(preset).model }
        if let config { return try RunConfig.load(path: config).model }
        let reader = try TraceReader.open(trace!)
        defer { reader.close() }
        do {
            return try JSONDecoder().decode(ModelSpec.self, from: Data(reader.run.modelJSON.utf8))
        } catch {
            throw InfiniteWidthError("\(trace!): its model_json cannot be read (\(error)); check it with `pathkernel inspect \(trace!)`")
        }
    }

    /// The empirical NTK at a checkpoint of `trace` (its first one when `step` is nil).
    static func compare(trace: String, step: Int?, spec: ModelSpec, _ x1: Matrix, _ x2: Matrix?,
                        analytic: Matrix) throws -> (Int, EmpiricalKernelGap) {
        let reader = try TraceReader.open(trace)
        defer { reader.close() }
        let network = try MLP(spec: spec)
        let stored = reader.layout.map { "\($0.name) \($0.shape) @\($0.offset)" }
        let expected = network.layout.map { "\($0.name) \($0.shape) @\($0.offset)" }
        guard stored == expected else {
            throw InfiniteWidthError("\(trace): its parameter layout is not its model's; check it with `pathkernel inspect \(trace)`")
        }
        guard let chosen = try step ?? reader.checkpointSteps().first else {
            throw InfiniteWidthError("\(trace): no checkpoint to compare")
        }
        let w = try reader.checkpoint(step: chosen)
        return (chosen, try InfiniteWidthKernel.empiricalGap(network: network, weights: w, x1, x2, analytic: analytic))
    }

    /// The rows of a CSV file of numbers as an `n × width` matrix; names the file, line and column
    /// of the first cell that is not a finite number.
    static func readInputs(_ path: String, width: Int) throws -> Matrix {
        let table = try CSV.read(path: path)
        guard table.columnCount == width else {
            throw InfiniteWidthError("\(path): \(table.columnCount) columns, the model takes \(width) inputs (model.layers[0]); one example per row, one column per feature")
        }
        var data: [Double] = []
        data.reserveCapacity(table.rows.count * width)
        for (row, line) in zip(table.rows, table.lineNumbers) {
            for (c, cell) in row.enumerated() {
                guard let v = Double(cell), v.isFinite else {
                    throw InfiniteWidthError("\(path): line \(line), column \(c + 1): '\(cell)' is not a finite number")
                }
                data.append(v)
            }
        }
        return Matrix(rows: table.rows.count, cols: width, data: data)
    }

    // MARK: - Output

    private func describe(_ spec: ModelSpec) -> String {
        let scales = "σ_w \(spec.sigmaW)" + (spec.bias ? ", σ_b \(spec.sigmaB)" : ", no bias")
        let slope = spec.activation == .leakyRelu ? " (slope \(spec.leakySlope))" : ""
        return "MLP \(spec.layers.map(String.init).joined(separator: "-")) \(spec.activation.rawValue)\(slope), \(spec.parameterization.rawValue), \(scales)"
    }

    private func text(_ spec: ModelSpec, _ k: InfiniteWidthKernels, _ comparison: (step: Int, gap: EmpiricalKernelGap)?,
                      n1: Int, n2: Int) -> String {
        let c = spec.layers.last!
        var out = "model      \(describe(spec))\n"
        out += "inputs     \(n1) rows of \(inputs) × \(n2) rows of \(inputs2 ?? inputs)\(inputs2 == nil ? " (Gram matrix)" : "")\n"
        out += "method     " + (GaussianExpectation.hasClosedForm(spec.activation)
            ? "closed form\n" : "trapezoidal rule (M = 2·⌈48·√max(1, q)⌉ + 1 nodes per axis)\n")
        if c > 1 { out += "outputs    \(c): the kernel of every output; across outputs it is 0 (K ⊗ I_\(c))\n" }
        func matrix(_ title: String, _ m: Matrix) {
            out += "\n\(title) (\(m.rows) × \(m.cols))\n"
            for i in 0..<m.rows {
                out += (0..<m.cols).map { String(format: "%19.12e", m[i, $0]) }.joined(separator: " ") + "\n"
            }
        }
        if kind != .ntk { matrix("NNGP", k.nngp) }
        if kind != .nngp { matrix("NTK (\(spec.parameterization.rawValue) parameterization)", k.ntk) }
        if let (step, gap) = comparison {
            matrix("empirical NTK at step \(step)" + (c > 1 ? ", rows r·C + c, columns r'·C + c'" : ""), gap.empirical)
            out += "\ngap        ‖Θ̂ − Θ⊗I‖_F/‖Θ⊗I‖_F = " + String(format: "%.6g", gap.gap) + "\n"
            if c > 1 {
                out += "per output " + gap.outputGaps.map { String(format: "%.6g", $0) }.joined(separator: " ") + "\n"
            }
        }
        return out
    }

    private func jsonText(_ spec: ModelSpec, _ k: InfiniteWidthKernels, _ comparison: (step: Int, gap: EmpiricalKernelGap)?) -> String {
        func matrix(_ m: Matrix) -> String {
            "[" + (0..<m.rows).map { i in "[" + (0..<m.cols).map { "\(m[i, $0])" }.joined(separator: ", ") + "]" }.joined(separator: ",\n  ") + "]"
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let model = String(decoding: (try? encoder.encode(spec)) ?? Data("null".utf8), as: UTF8.self)
        var fields = ["\"model\": \(model)",
                      "\"method\": \"\(GaussianExpectation.hasClosedForm(spec.activation) ? "closed-form" : "trapezoid")\"",
                      "\"outputs\": \(spec.layers.last!)",
                      "\"largestVariance\": \(k.largestVariance)"]
        if kind != .ntk { fields.append("\"nngp\": \(matrix(k.nngp))") }
        if kind != .nngp { fields.append("\"ntk\": \(matrix(k.ntk))") }
        if let (step, gap) = comparison {
            fields.append("\"empirical\": {\"step\": \(step), \"gap\": \(gap.gap), \"outputGaps\": \(gap.outputGaps), \"ntk\": \(matrix(gap.empirical))}")
        }
        return "{\n\"" + fields.map { String($0.dropFirst()) }.joined(separator: ",\n\"") + "\n}\n"
    }
}
