import ArgumentParser
import Foundation
import PKAnalysis
import PKData
import PKNetworks
import PKNumerics
import PKTrace
import PKTraining

extension ConvolutionalKernel.Padding: ExpressibleByArgument {}
extension ConvolutionalKernel.Readout: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}

/// `pathkernel cntk`: the infinite-width NNGP and NTK of a small conv net between the images of
/// a dataset (Docs/ntk-family.md, "The CNTK"), and kernel regression with them.
struct CNTKCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cntk",
        abstract: "The CNTK: infinite-width kernels of a small conv net on images.",
        usage: "pathkernel cntk (--data <SPEC> | --trace <trace>) [<options>]",
        discussion: """
        The net: --conv-layers blocks of [conv q×q (--filter, odd), stride 1, --padding; \
        --activation], a --readout (gap: global average pooling, all pixel pairs; flatten: \
        the diagonal pixel pairs only), then a dense layer; ntk parameterization, one σ_w, σ_b. \
        The kernels are exact (contract §3): one number per pair of images, the NNGP and the NTK \
        of the training split (a Gram matrix), written with --out. --predict adds kernel \
        regression at t = ∞ (f = Θ(x, X) Θ(X, X)⁻¹ Y) on the held-out split: accuracy and MSE.

        --data is \(DataArgument.forms); a preset's or run config's sequential model's input \
        [C, H, W] gives the image shape. Rows are H×W×C images, channel last (--image H,W,C); \
        a square single-channel image is assumed when the shape is not given. gap costs P² pixel pairs per image pair \
        (28×28: 614,656), flatten P. Docs/ntk-family.md.

        With --trace T [--step k]: a recorded conv net of this form (conv2d, activation, …, \
        globalavgpool or flatten, dense) gives the net and the images (its first --train \
        training images); the report adds its empirical NTK at the checkpoint and the gap \
        ‖Θ̂ − Θ⊗I‖_F/‖Θ⊗I‖_F to the CNTK's.

        Example:  pathkernel cntk --data fashion-mnist --train 100 --test 50 --predict
        """)

    @Option(help: ArgumentHelp(DataArgument.optionHelp, valueName: "SPEC"))
    var data: String?

    @Option(help: "A trace of a conv net of the CNTK's form: its net, training images, and the gap of its empirical NTK.")
    var trace: String?

    @Option(parsing: .unconditional, help: "With --trace: the checkpoint's step (default: the first checkpoint).",
            transform: OptionValue.integer(in: 0...ConfigLimits.maxSteps))
    var step: Int?

    @Option(parsing: .unconditional, help: "Training images (overrides the spec's train).",
            transform: OptionValue.integer(in: 1...ConfigLimits.maxExamples))
    var train: Int?

    @Option(parsing: .unconditional, help: "Held-out images (overrides the spec's test).",
            transform: OptionValue.integer(in: 0...ConfigLimits.maxExamples))
    var test: Int?

    @Option(parsing: .unconditional, help: "Seed of the data's subsets and generators (default: the config's, or 1).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Image shape, rows channel last.", valueName: "H,W,C"))
    var image: String?

    @Option(parsing: .unconditional, help: "Convolution blocks L_c (default 2).",
            transform: OptionValue.integer(in: 1...ConvolutionalKernel.maxConvLayers))
    var convLayers: Int?

    @Option(parsing: .unconditional, help: "Filter size q, odd (default 3).",
            transform: OptionValue.integer(in: 1...ConvolutionalKernel.maxFilter))
    var filter: Int?

    @Option(help: "Zero padding of every convolution: same (default) or valid.")
    var padding: ConvolutionalKernel.Padding?

    @Option(help: "gap (all pixel pairs, default) or flatten (diagonal pairs).")
    var readout: ConvolutionalKernel.Readout?

    @Option(parsing: .unconditional, help: "σ_w of every layer (default √2).",
            transform: OptionValue.number(in: .above(0)))
    var sigmaW: Double?

    @Option(parsing: .unconditional, help: "σ_b of every layer (default 0).", transform: OptionValue.number(in: .atLeast(0)))
    var sigmaB: Double?

    @Option(help: "relu (default), leaky-relu, erf, gelu, identity (closed forms); tanh, sigmoid, softplus.")
    var activation: Activation?

    @Option(parsing: .unconditional, help: "Slope of leaky-relu below 0 (default 0.01).",
            transform: OptionValue.number(in: .between(-1e6, 1e6)))
    var leakySlope: Double?

    @Option(help: "Which kernels to compute and print.")
    var kind: KernelCommand.Kind = .both

    @Flag(help: "Kernel regression at t = ∞ on the held-out split.")
    var predict = false

    @Option(parsing: .unconditional, help: "With --predict: relative ridge ρ ≥ 0, λ = ρ·tr(Θ)/n.",
            transform: OptionValue.number(in: LinearizedDynamics.ridgeRange))
    var ridge: Double = 0

    @Option(help: ArgumentHelp("Write the training Gram to FILE (.npy or .csv); with --kind both two files, FILE.nngp.EXT and FILE.ntk.EXT.", valueName: "FILE"))
    var out: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    /// Most kernel entries per matrix (200 MB of float64), as `pathkernel kernel`.
    static let maxEntries = KernelCommand.maxEntries
    /// Largest Gram matrix printed as text.
    static let maxPrintedRows = 8

    /// The architecture options given on the command line (refused with --trace).
    private var netOptions: [String] {
        [convLayers.map { _ in "--conv-layers" }, filter.map { _ in "--filter" }, padding.map { _ in "--padding" },
         readout.map { _ in "--readout" }, sigmaW.map { _ in "--sigma-w" }, sigmaB.map { _ in "--sigma-b" },
         activation.map { _ in "--activation" }, leakySlope.map { _ in "--leaky-slope" }, image.map { _ in "--image" }].compactMap { $0 }
    }

    func validate() throws {
        try checkThreadsEnvironment()
        if (data == nil) == (trace == nil) { throw ValidationError("give exactly one of --data SPEC or --trace FILE.sqlite") }
        if trace != nil {
            if let first = netOptions.first { throw ValidationError("\(first): with --trace the net and images come from the trace; drop it") }
            if predict || out != nil || test != nil || seed != nil {
                throw ValidationError("--trace compares the trace's empirical NTK with the CNTK; --predict, --out, --test and --seed go with --data")
            }
        }
        if step != nil && trace == nil { throw ValidationError("--step picks the trace's checkpoint: add --trace FILE.sqlite") }
        if let out, KernelFile.format(of: out) == nil {
            throw ValidationError("--out \(out): the kernel file must end in .npy or .csv")
        }
        if ridge > 0 && !predict { throw ValidationError("--ridge applies to --predict: add --predict") }
        if let image { _ = try Self.parseImage(image) }
    }

    static func parseImage(_ text: String) throws -> (height: Int, width: Int, channels: Int) {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let h = parts[0], let w = parts[1], let c = parts[2], h >= 1, w >= 1, c >= 1,
              h <= 4096, w <= 4096, c <= 4096 else {
            throw ValidationError("--image \(text): give the image shape as H,W,C (height, width, channels; positive, e.g. 28,28,1)")
        }
        return (h, w, c)
    }

    func run() throws {
        do {
            if let trace {
                print(try compare(trace: trace), terminator: "")
                return
            }
            let source = try DataArgument.resolve(data!)
            var spec = source.spec
            if let train { spec.train = train }
            if let test { spec.test = test }
            let split = try spec.load(seed: seed ?? source.seed ?? 1)
            let d = split.train.inputDim
            let (shape, layout, assumed) = try imageShape(features: d, input: source.input)
            let arch = ConvolutionalKernel.Architecture(
                height: shape.height, width: shape.width, channels: shape.channels, convLayers: convLayers ?? 2, filter: filter ?? 3,
                padding: padding ?? .same, readout: readout ?? .gap, activation: activation ?? .relu, leakySlope: leakySlope ?? 0.01,
                sigmaW: sigmaW ?? 2.0.squareRoot(), sigmaB: sigmaB ?? 0)
            let kernel = try ConvolutionalKernel(arch)
            let n = split.train.count, q = split.test.count
            guard n * n <= Self.maxEntries else {
                throw InfiniteWidthError("\(n) training images make a \(n) × \(n) kernel, more than \(Self.maxEntries) entries (200 MB per matrix); use --train N with fewer images")
            }
            if predict {
                guard n <= LinearPrediction.maxKernelRows else {
                    throw InfiniteWidthError("--predict solves with the \(n) × \(n) training kernel, more than \(LinearPrediction.maxKernelRows) rows; use --train N with fewer images")
                }
                guard q > 0 else { throw InfiniteWidthError("--predict needs held-out images: the data's test split is empty (--test N)") }
                guard q * n <= Self.maxEntries else {
                    throw InfiniteWidthError("\(q) held-out × \(n) training images exceed \(Self.maxEntries) kernel entries; use --test N with fewer images")
                }
            }
            if let out { try OutputPath.check(out) }
            let wantNTK = kind != .nngp || predict
            if !GaussianExpectation.hasClosedForm(arch.activation) {
                let work = Double(n * (n + 1) / 2 + (predict ? q * n : 0)) * Double(kernel.expectationsPerPair())
                FileHandle.standardError.write(Data("note: \(arch.activation.rawValue) has no closed form: \(String(format: "%.3g", work)) pixel-pair expectations by the trapezoidal rule, each at least 97² activation evaluations (relu, erf or gelu are closed forms)\n".utf8))
            }
            let start = Date()
            let gram = try kernel.kernels(split.train.x, layout: layout, ntk: wantNTK)
            let cross = predict ? try kernel.kernels(split.test.x, split.train.x, layout: layout, ntk: wantNTK) : nil
            let seconds = Date().timeIntervalSince(start)
            var notes: [String] = []
            if let assumed { notes.append(assumed) }
            if !GaussianExpectation.hasClosedForm(arch.activation) {
                let largest = max(gram.largestVariance, cross?.largestVariance ?? 0)
                if largest > KernelCommand.measuredVariance {
                    notes.append("pre-activation variances reach \(String(format: "%.4g", largest)), beyond the 32 up to which the trapezoidal rule's error (1e-10) was measured; scale the inputs down for that accuracy")
                }
            }
            var written: [String] = []
            if let out {
                for (name, m) in kernelsToWrite(gram) {
                    let path = kind == .both ? Self.suffixed(out, name) : out
                    try KernelFile.write(m, to: path)
                    written.append(path)
                }
            }
            var predictions: [Prediction] = []
            if let cross {
                let targets = Self.targets(split.train), heldOut = Self.targets(split.test)
                for (name, train, test) in [("nngp", gram.nngp, cross.nngp), ("ntk", gram.ntk!, cross.ntk!)]
                where kind == .both || kind.rawValue == name {
                    let r = try KernelRegression.infiniteTime(kernel: train, cross: test, targets: targets, ridge: ridge)
                    predictions.append(Prediction(kernel: name, ridge: r.ridge, lambdaMin: r.eigenvalues.first ?? 0,
                                                  trainMSE: Self.mse(r.train, targets), testMSE: Self.mse(r.test, heldOut),
                                                  trainAccuracy: Self.accuracy(r.train, split.train),
                                                  testAccuracy: Self.accuracy(r.test, split.test)))
                }
            }
            let report = Report(arch: arch, source: source.name, train: n, test: predict ? q : 0, gram: gram, seconds: seconds,
                                pairs: n * (n + 1) / 2 + (predict ? q * n : 0), expectations: kernel.expectationsPerPair(),
                                written: written, predictions: predictions, notes: notes, task: split.train.task)
            print(json ? jsonText(report) : text(report), terminator: "")
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    // MARK: - A trace's conv net against its CNTK

    /// Most entries of the empirical NTK's tangent features (`n·C` rows of `P` parameters): 1.6 GB.
    static let maxFeatureEntries = 200_000_000

    /// The trace's network read as a CNTK architecture, its first `--train` training images, the
    /// CNTK's NTK and the empirical NTK at the checkpoint, and their relative gap.
    private func compare(trace: String) throws -> String {
        let reader = try TraceReader.open(trace)
        defer { reader.close() }
        let run = try TraceRun.load(reader)
        guard let network = run.model as? LayerNetwork else {
            throw InfiniteWidthError("\(trace): its model is an MLP (\(run.model.summary)); compare it with `pathkernel kernel --trace \(trace) --compare`")
        }
        let arch = try ConvolutionalKernel.Architecture(network: network)
        let n = min(train ?? run.trainX.rows, run.trainX.rows)
        guard n > 0 else { throw InfiniteWidthError("\(trace): no training images") }
        let c = network.outputDim
        guard n * c * network.parameterCount <= Self.maxFeatureEntries else {
            throw InfiniteWidthError("the empirical NTK of \(n) images needs \(n) × \(c) × \(network.parameterCount) Jacobian entries, more than \(Self.maxFeatureEntries); use --train N with fewer images")
        }
        let x = run.trainX.rows(0..<n)
        let start = Date()
        let kernel = try ConvolutionalKernel(arch)
        let k = try kernel.kernels(x, layout: .channelsFirst)
        let seconds = Date().timeIntervalSince(start)
        guard let chosen = try step ?? reader.checkpointSteps().first else { throw InfiniteWidthError("\(trace): no checkpoint to compare") }
        let w = try reader.checkpoint(step: chosen)
        let gap = try InfiniteWidthKernel.empiricalGap(network: network, weights: w, x, nil, analytic: k.ntk!)
        if json {
            func matrix(_ m: Matrix) -> String {
                "[" + (0..<m.rows).map { i in "[" + (0..<m.cols).map { "\(m[i, $0])" }.joined(separator: ", ") + "]" }.joined(separator: ",\n  ") + "]"
            }
            return "{\n\"net\": \"\(arch.summary)\",\n\"trace\": \(String(decoding: try JSONEncoder().encode(trace), as: UTF8.self)),\n"
                + "\"train\": \(n),\n\"seconds\": \(seconds),\n\"nngp\": \(matrix(k.nngp)),\n\"ntk\": \(matrix(k.ntk!)),\n"
                + "\"empirical\": {\"step\": \(chosen), \"gap\": \(gap.gap), \"outputGaps\": \(gap.outputGaps), \"ntk\": \(matrix(gap.empirical))}\n}\n"
        }
        var out = "trace      \(trace) (\(network.summary))\n"
        out += "net        \(arch.summary)\n"
        out += "images     the first \(n) training images\n"
        out += "work       \(n * (n + 1) / 2) image pairs × \(kernel.expectationsPerPair()) pixel-pair expectations, "
            + String(format: "%.3g", seconds) + " s\n"
        if n <= Self.maxPrintedRows {
            for (title, m) in [("CNTK NTK", k.ntk!), ("empirical NTK at step \(chosen)" + (c > 1 ? ", rows r·C + c, columns r'·C + c'" : ""), gap.empirical)] {
                out += "\n\(title) (\(m.rows) × \(m.cols))\n"
                for i in 0..<m.rows { out += (0..<m.cols).map { String(format: "%19.12e", m[i, $0]) }.joined(separator: " ") + "\n" }
            }
            out += "\n"
        }
        out += "gap        ‖Θ̂ − Θ⊗I‖_F/‖Θ⊗I‖_F = " + String(format: "%.6g", gap.gap) + " at step \(chosen)\n"
        if c > 1 { out += "per output " + gap.outputGaps.map { String(format: "%.6g", $0) }.joined(separator: " ") + "\n" }
        return out
    }

    // MARK: - Inputs

    /// The image shape: `--image` (channel last), a sequential model's `[C, H, W]` (channel first),
    /// or a square single-channel image (with a note).
    func imageShape(features d: Int, input: [Int]?) throws
        -> ((height: Int, width: Int, channels: Int), ConvolutionalKernel.ImageLayout, String?) {
        if let image {
            let s = try Self.parseImage(image)
            guard s.height * s.width * s.channels == d else {
                throw InfiniteWidthError("--image \(image): \(s.height)×\(s.width)×\(s.channels) = \(s.height * s.width * s.channels) values, the data has \(d) per example")
            }
            return (s, .channelsLast, nil)
        }
        if let input, input.count == 3, input.reduce(1, *) == d {
            return ((input[1], input[2], input[0]), .channelsFirst, nil)
        }
        let side = Int(Double(d).squareRoot().rounded())
        guard side * side == d else {
            throw InfiniteWidthError("the data has \(d) values per example, not a square image: give its shape with --image H,W,C")
        }
        return ((side, side, 1), .channelsLast, "image shape \(side)×\(side)×1 assumed from \(d) values per example (--image H,W,C to change it)")
    }

    private func kernelsToWrite(_ k: ConvolutionalKernels) -> [(String, Matrix)] {
        switch kind {
        case .nngp: return [("nngp", k.nngp)]
        case .ntk: return [("ntk", k.ntk!)]
        case .both: return [("nngp", k.nngp), ("ntk", k.ntk!)]
        }
    }

    /// `K.npy` → `K.nngp.npy`.
    static func suffixed(_ path: String, _ name: String) -> String {
        let ext = (path as NSString).pathExtension
        return (path as NSString).deletingPathExtension + ".\(name).\(ext)"
    }

    // MARK: - Kernel regression

    /// Regression: the targets; binary: ±1; multiclass: one-hot.
    static func targets(_ d: Dataset) -> Matrix {
        switch d.task {
        case .regression: return d.y
        case .binary: return d.y.map { 2 * $0 - 1 }
        case .multiclass:
            var m = Matrix(rows: d.count, cols: d.numClasses)
            for (i, label) in d.labels.enumerated() where label >= 0 && label < d.numClasses { m[i, label] = 1 }
            return m
        }
    }

    /// The project's MSE, `(1/n) Σ ½‖f − y‖²`.
    static func mse(_ f: Matrix, _ y: Matrix) -> Double {
        var s = 0.0
        for i in f.data.indices { let d = f.data[i] - y.data[i]; s += d * d }
        return 0.5 * s / Double(max(f.rows, 1))
    }

    /// The share of examples whose predicted class (sign; argmax) is the label; nil for regression.
    static func accuracy(_ f: Matrix, _ d: Dataset) -> Double? {
        guard d.task != .regression, d.count > 0 else { return nil }
        let labels = d.labels
        var right = 0
        for i in 0..<d.count {
            let predicted = d.task == .binary ? (f[i, 0] > 0 ? 1 : 0) : f.argmax(row: i)
            if predicted == labels[i] { right += 1 }
        }
        return Double(right) / Double(d.count)
    }

    // MARK: - Output

    struct Prediction {
        let kernel: String
        let ridge: Double
        let lambdaMin: Double
        let trainMSE: Double, testMSE: Double
        let trainAccuracy: Double?, testAccuracy: Double?
    }

    struct Report {
        let arch: ConvolutionalKernel.Architecture
        let source: String
        let train: Int, test: Int
        let gram: ConvolutionalKernels
        let seconds: Double
        let pairs: Int
        let expectations: Int
        let written: [String]
        let predictions: [Prediction]
        let notes: [String]
        let task: TaskKind
    }

    private func text(_ r: Report) -> String {
        var out = "net        \(r.arch.summary)\n"
        out += "data       \(r.source): \(r.train) training" + (r.test > 0 ? ", \(r.test) held-out" : "") + " images\n"
        out += "method     " + (GaussianExpectation.hasClosedForm(r.arch.activation)
            ? "closed form" : "trapezoidal rule (M = 2·⌈48·√max(1, q)⌉ + 1 nodes per axis)") + ", exact recursion\n"
        out += "work       \(r.pairs) image pairs × \(r.expectations) pixel-pair expectations, "
            + String(format: "%.3g", r.seconds) + " s on \(Parallel.threads) thread\(Parallel.threads == 1 ? "" : "s")\n"
        for note in r.notes { out += "note       \(note)\n" }
        for path in r.written { out += "written    \(path) (\(KernelFile.format(of: path)! == .npy ? "NumPy .npy, float64, C order" : "CSV, one row per line"))\n" }
        func matrix(_ title: String, _ m: Matrix) {
            out += "\n\(title) (\(m.rows) × \(m.cols))\n"
            guard m.rows <= Self.maxPrintedRows else {
                out += "(printed up to \(Self.maxPrintedRows) rows: --out K.npy or --json)\n"
                return
            }
            for i in 0..<m.rows {
                out += (0..<m.cols).map { String(format: "%19.12e", m[i, $0]) }.joined(separator: " ") + "\n"
            }
        }
        if kind != .ntk { matrix("NNGP", r.gram.nngp) }
        if kind != .nngp, let t = r.gram.ntk { matrix("NTK", t) }
        if !r.predictions.isEmpty {
            let pct = { (v: Double?) in v.map { String(format: "%.2f%%", 100 * $0) } ?? "—" }
            out += "\nkernel regression at t = ∞ (targets: \(["regression": "the values", "binary": "±1", "multiclass": "one-hot"][r.task.rawValue]!))\n"
            out += "kernel".rightPadded(8) + "train acc".leftPadded(11) + "test acc".leftPadded(11) + "train MSE".leftPadded(13)
                + "test MSE".leftPadded(13) + "λ_min".leftPadded(12) + "\n"
            for p in r.predictions {
                out += p.kernel.rightPadded(8) + pct(p.trainAccuracy).leftPadded(11) + pct(p.testAccuracy).leftPadded(11)
                    + String(format: "%.4e", p.trainMSE).leftPadded(13) + String(format: "%.4e", p.testMSE).leftPadded(13)
                    + String(format: "%.3e", p.lambdaMin).leftPadded(12) + "\n"
            }
            if ridge > 0 {
                out += "ridge      ρ = \(ridge): λ_r = ρ·tr/n, " + r.predictions.map { "\($0.kernel) \(String(format: "%.4e", $0.ridge))" }.joined(separator: ", ") + "\n"
            }
        }
        return out
    }

    private func jsonText(_ r: Report) -> String {
        func number(_ v: Double?) -> String { v.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        func matrix(_ m: Matrix) -> String {
            "[" + (0..<m.rows).map { i in "[" + (0..<m.cols).map { number(m[i, $0]) }.joined(separator: ", ") + "]" }.joined(separator: ",\n  ") + "]"
        }
        func string(_ s: String) -> String {
            String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        let a = r.arch
        var fields = [
            "\"net\": {\"height\": \(a.height), \"width\": \(a.width), \"channels\": \(a.channels), \"convLayers\": \(a.convLayers), "
                + "\"filter\": \(a.filter), \"padding\": \"\(a.padding.rawValue)\", \"readout\": \"\(a.readout.rawValue)\", "
                + "\"activation\": \"\(a.activation.rawValue)\", \"leakySlope\": \(a.leakySlope), \"sigmaW\": \(a.sigmaW), \"sigmaB\": \(a.sigmaB)}",
            "\"data\": \(string(r.source))", "\"train\": \(r.train)", "\"test\": \(r.test)",
            "\"imagePairs\": \(r.pairs)", "\"expectationsPerPair\": \(r.expectations)", "\"seconds\": \(r.seconds)",
            "\"largestVariance\": \(r.gram.largestVariance)",
            "\"written\": [\(r.written.map(string).joined(separator: ", "))]",
            "\"notes\": [\(r.notes.map(string).joined(separator: ", "))]",
        ]
        if kind != .ntk { fields.append("\"nngp\": \(matrix(r.gram.nngp))") }
        if kind != .nngp, let t = r.gram.ntk { fields.append("\"ntk\": \(matrix(t))") }
        if !r.predictions.isEmpty {
            let p = r.predictions.map { p in
                "{\"kernel\": \"\(p.kernel)\", \"ridge\": \(p.ridge), \"lambdaMin\": \(p.lambdaMin), \"trainMSE\": \(number(p.trainMSE)), "
                    + "\"testMSE\": \(number(p.testMSE)), \"trainAccuracy\": \(number(p.trainAccuracy)), \"testAccuracy\": \(number(p.testAccuracy))}"
            }
            fields.append("\"predictions\": [\(p.joined(separator: ", "))]")
        }
        return "{\n" + fields.joined(separator: ",\n") + "\n}\n"
    }
}
