import ArgumentParser
import Foundation
import PKAnalysis
import PKBench
import PKNetworks
import PKNumerics
import PKTraining

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run benchmarks and print their table (never part of the tests).",
        usage: "pathkernel bench [--workload <workload>] [<options>]",
        discussion: """
        W1: the empirical NTK of an MLP 64-512-512-512-1 (relu, NTK parameterization) between 200 \
        queries and 1,000 training points, float64 and float32, against the explicit Jacobian \
        contraction and the machine's GEMM rate measured in the same run; it names the OpenBLAS core \
        (and OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE as set) and fails when its kernels disagree with the \
        explicit route. For the core OpenBLAS picks itself: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        pathkernel bench --workload W1. W1 --kernels-only: the structured kernels' timed calls alone.
        W2: a full-batch GD run of that model on 1,000 points (100 steps), then its path analysis \
        (q = 4, 200 held-out queries, the exact decomposition and the path kernel matrix), against \
        the training run's own time; float64 and float32.
        W3: W2 with 10 outputs and cross-entropy, --kernel trace and --kernel full.
        W4: the empirical NTK of a CNN (conv 3×3 ×2 with 64 channels, average pooling, dense 10) \
        between 100 queries and 500 training points on 28×28 inputs, float64 and float32, from \
        the per-example Jacobians of its layers (a few minutes on 2 cores). W4 --residual: a small \
        residual CNN instead (conv, two residual blocks with layer norm, one with a 1×1 projection, \
        global average pooling, dense 10; 4 channels, 1×8×8 inputs, 20 × 30 points; seconds), for \
        the neural-tangents comparison of Tools/compare.
        W5, W6: an ordinary Fashion-MNIST run (presets w5-momentum, SGD + momentum 0.9, and \
        w6-adamw: 2,000 + 500 images, MLP 784-128-128-10 tanh, batch 64, 300 steps, a checkpoint \
        every 10) trained, recorded and analyzed with the default settings in float64 and float32: \
        seconds per phase, the estimate against the real time, the kernel phase's GFLOP/s against \
        the GEMM rate of this process, peak memory (tens of minutes on 2 cores; --steps N for less).
        recording: the cost of recording a preset: trained without recording (as train --no-record), \
        recorded at its checkpoint policy (or --checkpoint-every K) and with a checkpoint every step, \
        interleaved repeats, with the trace sizes and the load average before and after.
        W7-cntk: the exact CNTK Gram (gap, 2 relu conv layers 3×3 same, σ_w = √2), NNGP and NTK, \
        of 100 Fashion-MNIST training images (--images N): 5,050 image pairs of 1,229,312 \
        pixel-pair expectations (minutes on 2 cores). --readout flatten for the flatten readout \
        (2·784 expectations per pair); --queries Q for the cross kernel of Q held-out images \
        against the N training images instead (Q·N pairs); --export DIR writes the images and \
        kernels as .npy for Tools/compare/neural_tangents_w7_cntk.py.
        W7-mlp: the analytic NNGP and NTK (float64) of a 5-layer MLP 784-512-512-512-512-1 (σ_w 1.5, \
        σ_b 0.1, NTK parameterization) between 2,000 and 2,000 seeded N(0, I) points (--points N), relu \
        (closed form) then tanh (trapezoidal quadrature, with its node counts and activation \
        evaluations per second); --activation relu|tanh for one; --export DIR writes the inputs and \
        kernels as .npy for Tools/compare/neural_tangents_w7.py. The tanh kernel at 2,000 points \
        takes tens of minutes on 2 cores.
        layer-jacobians: per-example Jacobians of small CNNs and a residual block (28×28 inputs), \
        batched against one example at a time (about a minute on 2 cores).
        plan: does the estimate analyze prints before it starts (analyze --plan) hold, and its \
        progress bar's ETA? Trains the presets (W5 and W6 cut to 30 and 10 steps) and analyzes each \
        trace with the default settings as a new analyze process would (the plan's rates measured \
        afresh): the estimate against the real time, per phase too, and the ETA at 10 % and 50 % of \
        the work against the time then left, with the load before each (about 10 minutes on 2 \
        cores). --preset a,b,... for some presets, --steps N to cut every run to N steps, \
        --precision f32 for float32 analyses.
        Without --workload, W1, W2 and W3 run in turn (about 25 minutes on 2 cores, most of it W3 --kernel full).
        """)

    @Option(help: "W1, W2, W3, W4, W5, W6, W7-cntk, W7-mlp, recording, layer-jacobians or plan (default: W1, W2 and W3).")
    var workload: String?

    @Option(parsing: .unconditional, help: "W7-cntk: the number of training images, 3…2000 (default 100).",
            transform: OptionValue.integer(in: CNTKBenchmark.imagesRange))
    var images: Int?

    @Option(parsing: .unconditional, help: "W7-cntk: the cross kernel of this many held-out images (rows) against the --images training images, 1…2000 (default: the Gram matrix).",
            transform: OptionValue.integer(in: CNTKBenchmark.queriesRange))
    var queries: Int?

    @Option(help: "W7-cntk: gap (default) or flatten.")
    var readout: ConvolutionalKernel.Readout?

    @Option(parsing: .unconditional, help: "W7-mlp: the number of points in each set, 3…20000 (default 2000).",
            transform: OptionValue.integer(in: MLPKernelBenchmark.pointsRange))
    var points: Int?

    @Option(help: "W7-mlp: only this activation (relu or tanh; default both).")
    var activation: String?

    @Option(parsing: .unconditional, help: "W5, W6: train and analyze this many steps instead of 300 (1…100000), for a quicker look; plan: every preset's run cut to at most N steps.",
            transform: OptionValue.integer(in: 1...100_000))
    var steps: Int?

    @Option(help: "recording: the preset to train (default fmnist-mlp); plan: the presets to check, comma-separated (default: every training preset but ntt-fmnist and sweep-relu).")
    var preset: String?

    @Option(help: "plan: the analyses' precision, f64 (default) or f32.")
    var precision: AnalysisSettings.Precision?

    @Option(parsing: .unconditional, help: "recording: the checkpoint interval to compare instead of the preset's own policy (1…100000000).",
            transform: OptionValue.integer(in: TrainingSpec.stepsRange))
    var checkpointEvery: Int?

    @Flag(help: "W4: the residual CNN (two residual blocks with layer norm, 1×8×8 inputs, 20 × 30 points) instead of the plain one.")
    var residual = false

    @Flag(help: "W4 --residual: layer norms with γ, β (moved off 1 and 0) instead of without.")
    var affineLayerNorm = false

    @Option(parsing: .unconditional, help: "W4: the channels of both convolutions, 1…1024 (default 64; with --residual, the stem's and first block's, default 4).",
            transform: OptionValue.integer(in: 1...1024))
    var channels: Int?

    @Option(parsing: .unconditional, help: "Timed repeats, 1…1000: W1's kernels after one warm-up (default 7), W4's kernels (default 1), layer-jacobians (default 3), the recording runs (default 3).",
            transform: OptionValue.integer(in: KernelBenchmark.repeatsRange))
    var repeats: Int?

    @Option(help: ArgumentHelp("W1, W4: also write the problem (weights, inputs) and both kernels as .npy files for Tools/compare; W7-mlp: the inputs and each activation's NNGP and NTK.", valueName: "DIR"))
    var export: String?

    @Flag(help: "W1: time only the structured kernels (--repeats calls per precision after a warm-up; no GEMM rate, no explicit route, so no check against it): the rounds of Tools/compare's interleaved comparison.")
    var kernelsOnly = false

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        try checkThreadsEnvironment()
    }

    func run() throws {
        let log: (String) -> Void = { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
        let known = ["W1", "W2", "W3", "W4", "W5", "W6", "W7-cntk", "W7-mlp", "recording", "layer-jacobians", "plan"]
        let chosen = workload.map { w in [known.first { $0.uppercased() == w.uppercased() } ?? w] } ?? ["W1", "W2", "W3"]
        for w in chosen where !known.contains(w) {
            throw fail("unknown workload '\(w)'; known: \(known.joined(separator: ", "))")
        }
        if export != nil && (chosen.count != 1 || !["W1", "W4", "W7-cntk", "W7-mlp"].contains(chosen[0])) {
            throw fail("--export writes one workload's problem: run it with --workload W1, W4, W7-cntk or W7-mlp")
        }
        if steps != nil && !chosen.allSatisfy({ RealisticBenchmark.presets[$0] != nil || $0 == "plan" }) {
            throw fail("--steps sets W5's and W6's runs (or cuts plan's): run it with --workload W5, W6 or plan")
        }
        if preset != nil && chosen != ["recording"] && chosen != ["plan"] { throw fail("--preset names recording's preset or plan's presets: run it with --workload recording or plan") }
        if precision != nil && chosen != ["plan"] { throw fail("--precision sets plan's analyses: run it with --workload plan") }
        let planPresets = chosen == ["plan"] ? preset.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } : nil
        if let planPresets {
            let names = try Presets.names()
            for name in planPresets where !names.contains(name) {
                throw fail("unknown preset '\(name)' in --preset; known: \(names.joined(separator: ", "))")
            }
            if planPresets.isEmpty { throw fail("--preset names no preset: give one or more, comma-separated") }
        }
        if (images != nil || queries != nil || readout != nil) && chosen != ["W7-cntk"] {
            throw fail("--images, --queries and --readout set W7-cntk's problem: run them with --workload W7-cntk")
        }
        if (points != nil || activation != nil) && chosen != ["W7-mlp"] { throw fail("--points and --activation set W7-mlp's problem: run them with --workload W7-mlp") }
        if let advice = BLASInfo.current.slowCoreAdvice { log("warning: \(advice)") }
        if poisonsUninitialized {
            log("warning: this binary fills its scratch buffers with NaN before use (a debug build, or the test build of `./dev test`): "
                + "its times are not the release build's; build it with `swift build -c release --product pathkernel` for benchmarks")
        }
        var mlpActivations: [Activation]? = nil
        if let activation {
            guard let a = Activation(rawValue: activation.lowercased()), MLPKernelBenchmark.activations.contains(a) else {
                throw fail("--activation must be relu or tanh, got '\(activation)'")
            }
            mlpActivations = [a]
        }
        if channels != nil && chosen != ["W4"] { throw fail("--channels sets W4's network: run it with --workload W4") }
        if kernelsOnly && (chosen != ["W1"] || export != nil) { throw fail("--kernels-only times W1's kernels: run it with --workload W1 and without --export") }
        if kernelsOnly {
            do {
                let t = try KernelBenchmark.timeKernels(repeats: repeats ?? 7, log: log)
                print(json ? try t.json() : t.text(), terminator: json ? "\n" : "")
            } catch {
                throw fail("\(error)")
            }
            return
        }
        if checkpointEvery != nil && chosen != ["recording"] { throw fail("--checkpoint-every sets the recording workload's policy: run it with --workload recording") }
        if residual && chosen != ["W4"] { throw fail("--residual sets W4's network: run it with --workload W4") }
        if affineLayerNorm && !(residual && chosen == ["W4"]) { throw fail("--affine-layer-norm sets W4 --residual's layer norms: run it with --workload W4 --residual") }
        do {
            var report = BenchReport()
            for w in chosen {
                switch w {
                case "W1":
                    report.w1 = try KernelBenchmark.run(repeats: repeats ?? 7,
                                                        export: export.map { URL(fileURLWithPath: $0) }, log: log)
                case "W2":
                    report.w2 = try PathBenchmark.runW2(log: log)
                case "W3":
                    report.w3 = try PathBenchmark.runW3(log: log)
                case "W4":
                    report.w4 = try CNNKernelBenchmark.run(repeats: repeats ?? 1, channels: channels, residual: residual, affineLayerNorm: affineLayerNorm,
                                                           export: export.map { URL(fileURLWithPath: $0) }, log: log)
                case "W5", "W6":
                    let dir = try PathBenchmark.scratch()
                    defer { try? FileManager.default.removeItem(at: dir) }
                    report.realistic.append(try RealisticBenchmark.run(workload: w, steps: steps, directory: dir, log: log))
                case "W7-cntk":
                    report.cntk = try CNTKBenchmark.run(images: images ?? 100, queries: queries, readout: readout ?? .gap,
                                                        export: export.map { URL(fileURLWithPath: $0) }, log: log)
                case "W7-mlp":
                    report.mlpKernel = try MLPKernelBenchmark.run(points: points ?? 2000, only: mlpActivations,
                                                                  export: export.map { URL(fileURLWithPath: $0) }, log: log)
                case "layer-jacobians":
                    report.layerJacobians = try LayerJacobianBenchmark.run(repeats: repeats ?? 3, log: log)
                case "plan":
                    let dir = try PathBenchmark.scratch()
                    defer { try? FileManager.default.removeItem(at: dir) }
                    report.plan = try PlanBenchmark.run(presets: planPresets, steps: steps, precision: precision ?? .f64, directory: dir, log: log)
                default:
                    let dir = try PathBenchmark.scratch()
                    defer { try? FileManager.default.removeItem(at: dir) }
                    report.recording = try RecordingBenchmark.run(config: try Presets.load(preset ?? "fmnist-mlp"), repeats: repeats ?? 3,
                                                                  checkpointEvery: checkpointEvery, directory: dir, log: log)
                }
            }
            print(json ? try report.json() : report.text(), terminator: json ? "\n" : "")
        } catch {
            throw fail("\(error)")
        }
    }
}
