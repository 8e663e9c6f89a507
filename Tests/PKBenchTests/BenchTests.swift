import Foundation
import Testing
import PKAnalysis
import PKData
import PKNetworks
import PKNumerics
import PKTraining
@testable import PKBench

/// The benchmark's building blocks, on small problems (benchmarks themselves are never timed in tests).
@Suite("Benchmark building blocks")
struct BenchTests {
    /// W2's and W3's configs pass the strict config checks (they are decoded with `try!`).
    @Test func benchmarkConfigsAreValid() throws {
        for outputs in [1, 10] { try PathBenchmark.config(outputs: outputs).validate() }
    }

    /// A repeat count out of range is refused by the benchmark itself (0 used to crash the median).
    @Test func repeatsAreRangeChecked() {
        #expect(throws: (any Error).self) { try KernelBenchmark.run(repeats: 0) }
    }

    /// An export directory that cannot be made is named before the benchmark runs (a path under
    /// a regular file stands in for an unwritable location; tests run as root).
    @Test func exportDirectoryIsCheckedFirst() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pk-bench-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        #expect { try KernelBenchmark.run(repeats: 1, export: file.appendingPathComponent("out")) } throws: { e in
            "\(e)".contains("is a file, not a directory")
        }
    }

    @Test func npyHeaderIsAlignedAndDescribesTheArray() {
        let m = Matrix(rows: 2, cols: 3, data: [1, 2, 3, 4, 5, 6])
        let bytes = [UInt8](Npy.encode(m.data, shape: [2, 3]))
        #expect(Array(bytes[0..<6]) == [0x93] + Array("NUMPY".utf8))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.contains("'descr': '<f8'") && header.contains("'shape': (2, 3)") && header.hasSuffix("\n"))
        #expect(bytes.count == 10 + headerLength + 6 * 8)
        let first = bytes[(10 + headerLength)..<(18 + headerLength)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        #expect(Double(bitPattern: first) == 1)
        let f = [UInt8](Npy.encode([Float(1), 2], shape: [2]))
        #expect(String(decoding: f, as: UTF8.self).contains("'descr': '<f4'") && String(decoding: f, as: UTF8.self).contains("(2,)"))
    }

    /// W1's two routes on a small problem: structured equals explicit contraction (f64 to
    /// round-off, f32 to single precision).
    @Test func structuredEqualsReferenceOnASmallProblem() {
        let spec = ModelSpec(layers: [5, 16, 16, 1], activation: .relu, parameterization: .ntk)
        let p = KernelBenchmark.Problem(spec: spec, queries: 7, train: 40, seed: 2)
        let ref = KernelBenchmark.reference(p, as: Double.self, blockRows: 16)
        #expect(KernelBenchmark.relativeError(KernelBenchmark.structured(p, as: Double.self), ref) <= 1e-13)
        #expect(KernelBenchmark.relativeError(KernelBenchmark.structured(p, as: Float.self), ref) <= 1e-5)
        #expect(KernelBenchmark.relativeError(KernelBenchmark.reference(p, as: Float.self, blockRows: 16), ref) <= 1e-5)
    }

    /// The FLOP count is what the formula in its doc says, for the W1 network.
    @Test func flopCountOfW1() {
        let p = KernelBenchmark.Problem(spec: KernelBenchmark.spec, queries: 2, train: 3)
        #expect(p.model.parameterCount == 559_105)
        // forward 2·n·Σ in·out, backward 2·n·Σ_{l>0} in·out, Grams 2·nq·nt·Σ(in + out).
        let io = [64 * 512, 512 * 512, 512 * 512, 512].map(Double.init)
        let expected = 2 * 1200 * io.reduce(0, +) + 2 * 1200 * io.dropFirst().reduce(0, +)
            + 2 * 200 * 1000 * Double((64 + 512) + (512 + 512) + (512 + 512) + (512 + 1))
        #expect(abs(KernelBenchmark.flops(model: p.model, queries: 200, train: 1000) - expected) <= 1e-9 * expected)
    }

    /// W4's kernel on a small problem (2 channels, 3 × 7 points, training blocks of 3) is the trace
    /// kernel of the one-example-at-a-time Jacobians; W4's own network has the parameters counted in
    /// `Docs/benchmarks.md`.
    @Test func cnnKernelEqualsOneByOneContraction() throws {
        let p = try CNNKernelBenchmark.Problem(channels: 2, queries: 3, train: 7, seed: 3)
        let w = p.weights
        let reference = LayerJacobians.kernel(p.network.jacobiansOneByOne(w, p.queries), p.network.jacobiansOneByOne(w, p.train), mode: .trace)
        #expect(reference.rows == 3 && reference.cols == 7)
        #expect(KernelBenchmark.relativeError(CNNKernelBenchmark.kernel(p, as: Double.self, trainBlock: 3).kernel, reference) <= 1e-13)
        #expect(KernelBenchmark.relativeError(CNNKernelBenchmark.kernel(p, as: Float.self, trainBlock: 3).kernel, reference) <= 1e-5)
        let w4 = try LayerJacobianBenchmark.build(CNNKernelBenchmark.layersJSON(channels: 64), input: CNNKernelBenchmark.inputShape)
        #expect(w4.parameterCount == (64 * 9 + 64) + (64 * 64 * 9 + 64) + (10 * 64 * 14 * 14 + 10))
        #expect(w4.parameterCount == 163_018)
    }

    /// W4 `--residual` (2 channels, 3 × 4 points): the kernel is the trace kernel of the
    /// one-example-at-a-time Jacobians; the layer norms carry no parameters; the export holds the
    /// layer list (`"residual": true`), the inputs, one `.npy` per tensor (nested names) and the kernels.
    @Test func residualKernelAndExport() throws {
        let p = try CNNKernelBenchmark.Problem(channels: 2, queries: 3, train: 4, seed: 2, residual: true)
        #expect(p.network.inputShape == CNNKernelBenchmark.residualInputShape)
        let names = p.network.layout.map(\.name)
        #expect(names == ["0.weight", "0.bias", "2.block.1.weight", "2.block.1.bias", "2.block.3.weight", "2.block.3.bias",
                          "3.block.1.weight", "3.block.1.bias", "3.block.3.weight", "3.shortcut.weight", "5.weight", "5.bias"])
        let w = p.weights
        let reference = LayerJacobians.kernel(p.network.jacobiansOneByOne(w, p.queries), p.network.jacobiansOneByOne(w, p.train), mode: .trace)
        let k64 = CNNKernelBenchmark.kernel(p, as: Double.self, trainBlock: 3).kernel
        let k32 = CNNKernelBenchmark.kernel(p, as: Float.self, trainBlock: 3).kernel
        #expect(KernelBenchmark.relativeError(k64, reference) <= 1e-13)
        #expect(KernelBenchmark.relativeError(k32, reference) <= 1e-5)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-w4res-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let precision = CNNKernelBenchmark.Precision(seconds: 0, runs: 1, jacobianSeconds: 0, gemmSeconds: 0, relativeErrorVsF64: 0, gemmGflops: 0)
        let result = CNNKernelBenchmark.Result(model: "test", parameters: p.network.parameterCount, queries: 3, train: 4, outputs: 10,
                                               threads: 1, f64: precision, f32: precision)
        try CNNKernelBenchmark.write(p, k64, k32, result, to: dir)
        for name in names + ["x_query", "x_train", "kernel_f64", "kernel_f32"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(name).npy").path), "\(name).npy")
        }
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("w4.json"))) as? [String: Any])
        #expect(meta["residual"] as? Bool == true)
        #expect(meta["input_shape"] as? [Int] == [1, 8, 8])
        #expect(meta["parameters"] as? Int == p.network.parameterCount)
        let layers = try #require((meta["network"] as? [String: Any])?["layers"] as? [[String: Any]])
        #expect(layers.map { $0["kind"] as? String } == ["conv2d", "relu", "residual", "residual", "globalavgpool", "dense"])
    }

    /// W4 `--residual --affine-layer-norm`: the layer norms' `γ`, `β` are parameters, moved off 1
    /// and 0, and the kernel is still the one-by-one trace kernel.
    @Test func residualAffineKernel() throws {
        let p = try CNNKernelBenchmark.Problem(channels: 2, queries: 2, train: 3, seed: 2, residual: true, affineLayerNorm: true)
        let gamma = try #require(p.network.layout.first { $0.name == "2.block.0.weight" })
        #expect(gamma.shape == [2, 8, 8])
        #expect(p.network.layout.contains { $0.name == "3.block.0.bias" })
        #expect(p.weights[gamma.offset..<(gamma.offset + gamma.count)].contains { abs($0 - 1) > 0.05 })
        let reference = LayerJacobians.kernel(p.network.jacobiansOneByOne(p.weights, p.queries),
                                              p.network.jacobiansOneByOne(p.weights, p.train), mode: .trace)
        #expect(KernelBenchmark.relativeError(CNNKernelBenchmark.kernel(p, as: Double.self, trainBlock: 2).kernel, reference) <= 1e-13)
        #expect(throws: (any Error).self) { try CNNKernelBenchmark.Problem(channels: 2, queries: 1, train: 1, affineLayerNorm: true) }
    }

    /// The BLAS a benchmark names: OpenBLAS's core (never empty on Linux) and the two variables
    /// as this process sees them (tests leave them as they are).
    @Test func blasInfoNamesTheCore() {
        let info = BLASInfo.current
        let env = ProcessInfo.processInfo.environment
        #expect(info.openblasCoretype == env["OPENBLAS_CORETYPE"] && info.openblasL2Size == env["OPENBLAS_L2_SIZE"])
        #if os(Linux)
        #expect(info.library == "OpenBLAS")
        #expect(!(info.coreName ?? "").isEmpty)
        #expect(info.config?.contains("OpenBLAS") == true)
        #expect(info.summary.contains("OpenBLAS core \(info.coreName ?? "?")") && info.summary.contains("OPENBLAS_CORETYPE"))
        #endif
    }

    /// The advice on OpenBLAS's core: only pre-AVX2 kernels on a CPU with AVX2 or AVX-512, and
    /// only when OPENBLAS_CORETYPE is unset; it names the core type to set for that CPU.
    @Test func slowCoreAdviceNamesTheFix() {
        let avx512 = BLASInfo.slowCoreAdvice(coreName: "Prescott", coretype: nil, vectorLevel: 2)
        #expect(avx512?.contains("OPENBLAS_CORETYPE=SkylakeX") == true && avx512?.contains("Prescott") == true)
        #expect(BLASInfo.slowCoreAdvice(coreName: "Sandybridge", coretype: nil, vectorLevel: 1)?.contains("OPENBLAS_CORETYPE=Haswell") == true)
        #expect(BLASInfo.slowCoreAdvice(coreName: "Prescott", coretype: nil, vectorLevel: 0) == nil)      // an old CPU: its right core
        #expect(BLASInfo.slowCoreAdvice(coreName: "Prescott", coretype: "Prescott", vectorLevel: 2) == nil)   // the user's choice
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            #expect(BLASInfo.slowCoreAdvice(coreName: core, coretype: nil, vectorLevel: 2) == nil)
        }
        #expect(BLASInfo.slowCoreAdvice(coreName: nil, coretype: nil, vectorLevel: 2) == nil)
        #if arch(x86_64)
        #expect((0...2).contains(BLASInfo.cpuVectorLevel))
        #endif
    }

    /// W1's report carries the BLAS (text and JSON, unset variables as null), and its check
    /// refuses kernels off the explicit route, naming the core.
    @Test func w1ReportsTheBLASAndChecksItsKernels() throws {
        let good = KernelBenchmark.Precision(seconds: 0.1, runs: 1, gflops: 1, referenceSeconds: 1, referenceRatio: 0.1, gemmGflops: 1,
                                             gemmFraction: 1, relativeErrorVsReference: 2e-16, relativeErrorVsF64: 0)
        var f32 = good
        f32.relativeErrorVsReference = 1e-7
        f32.relativeErrorVsF64 = 1e-7
        let blas = BLASInfo(library: "OpenBLAS", coreName: "Zen", config: "OpenBLAS 0.3.21 DYNAMIC_ARCH Zen", openblasCoretype: nil, openblasL2Size: "512")
        var r = KernelBenchmark.Result(model: "test", parameters: 1, queries: 1, train: 1, threads: 1, flops: 1, f64: good, f32: f32, blas: blas)
        try KernelBenchmark.check(r)

        var report = BenchReport()
        report.w1 = r
        #expect(report.text().contains("OpenBLAS core Zen (OPENBLAS_CORETYPE unset, OPENBLAS_L2_SIZE=512)"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let w1Blas = try #require((json["W1"] as? [String: Any])?["blas"] as? [String: Any])
        #expect(w1Blas["core_name"] as? String == "Zen")
        #expect(w1Blas["openblas_coretype"] is NSNull)
        #expect(w1Blas["openblas_l2_size"] as? String == "512")

        let times = KernelBenchmark.KernelTimes.Times(seconds: 0.1, times: [0.2, 0.1, 0.05], gflops: 38)
        let kernels = KernelBenchmark.KernelTimes(model: "test", parameters: 1, queries: 1, train: 1, threads: 1, flops: 1, f64: times,
                                                  f32: times, relativeErrorF32VsF64: 1e-7, blas: blas)
        let kernelsJSON = try #require(try JSONSerialization.jsonObject(with: Data(kernels.json().utf8)) as? [String: Any])
        let k = try #require(kernelsJSON["W1-kernels"] as? [String: Any])
        #expect((k["f64"] as? [String: Any])?["times"] as? [Double] == [0.2, 0.1, 0.05])
        #expect((k["blas"] as? [String: Any])?["core_name"] as? String == "Zen")
        #expect(kernels.text().contains("OpenBLAS core Zen"))

        r.f64.relativeErrorVsReference = 0.3
        r.f32.relativeErrorVsF64 = .nan
        #expect { try KernelBenchmark.check(r) } throws: { e in
            let s = "\(e)"
            return s.contains("f64 structured vs explicit 3.00e-01") && s.contains("f32 vs f64 nan") && s.contains("core Zen")
        }
    }

    @Test func peakMemoryIsReadable() {
        #if os(Linux)
        Measure.resetPeakMemory()
        let peak = Measure.peakMemory()
        #expect(peak != nil && peak! > 0)
        #endif
    }

    /// A tiny run for the recording workload (moons, 2-8-1, 12 SGD steps).
    static func recordingConfig(checkpointEvery: Int?) throws -> RunConfig {
        let every = checkpointEvery.map { #", "checkpointEvery": \#($0)"# } ?? ""
        return try RunConfig.decode(Data("""
            {"name": "rec", "seed": 3, "data": {"kind": "moons", "train": 40, "test": 10},
             "model": {"kind": "mlp", "layers": [2, 8, 1], "activation": "tanh"}, "loss": {"kind": "logistic"},
             "optimizer": {"kind": "sgd", "learningRate": 0.3, "momentum": 0.9},
             "training": {"steps": 12, "batchSize": 8\(every)}}
            """.utf8), source: "test")
    }

    /// The recording workload's structure (not its timing): recording off, the config's policy and
    /// every step, each timed `repeats` times, with trace sizes, checkpoint counts, CPU times and
    /// the load average; recording does not change the run (the benchmark checks the final weights).
    @Test func recordingWorkloadComparesOffPolicyAndEveryStep() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let b = try RecordingBenchmark.run(config: try Self.recordingConfig(checkpointEvery: 5), repeats: 2, directory: dir)
        #expect(b.variants.map(\.checkpointEvery) == [nil, 5, 1])
        #expect(b.steps == 12 && b.repeats == 2 && b.parameterCount == 2 * 8 + 8 + 8 + 1)
        for v in b.variants {
            #expect(v.seconds.count == 2 && v.cpuSeconds.count == 2 && v.median > 0 && v.stepsPerSecond > 0)
        }
        let (off, policy, every) = (b.variants[0], b.variants[1], b.variants[2])
        #expect(off.traceBytes == 0 && off.checkpoints == 0 && off.overhead == 0)
        #expect(policy.checkpoints == 4 && every.checkpoints == 13)   // 0, 5, 10, 12; 0…12
        #expect(off.writerCPUSeconds == [0, 0] && off.writerCPUFraction == 0)
        #expect(policy.writerCPUSeconds.allSatisfy { $0 > 0 } && every.writerCPUSeconds.allSatisfy { $0 > 0 })
        #expect(policy.traceBytes > 0 && every.traceBytes >= policy.traceBytes)   // 64 KiB pages: equal for a tiny model
        #expect(b.overhead == policy.overhead && policy.overhead.isFinite)
        #if os(Linux)
        #expect(b.loadBefore?.count == 3 && b.loadAfter?.count == 3)
        #endif
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "the benchmark's traces are removed")
        let text = b.text()
        for word in ["recording off", "every 5", "a checkpoint every step", "load average", "overhead", "writer CPU"] {
            #expect(text.contains(word), "'\(word)' not in: \(text)")
        }
        // The default policy is the config's; a policy of every step has no separate every-step row.
        let defaults = try RecordingBenchmark.run(config: try Self.recordingConfig(checkpointEvery: nil), repeats: 1, directory: dir)
        #expect(defaults.variants.map(\.checkpointEvery) == [nil, TrainingSpec.defaultCheckpointEvery, 1])
        #expect(defaults.variants[1].checkpoints == 2)   // 0 and 12
        let dense = try RecordingBenchmark.run(config: try Self.recordingConfig(checkpointEvery: 5), repeats: 1,
                                               checkpointEvery: 1, directory: dir)
        #expect(dense.variants.map(\.checkpointEvery) == [nil, 1])
        #expect { try RecordingBenchmark.run(config: try Self.recordingConfig(checkpointEvery: 5), repeats: 0, directory: dir) } throws: { _ in true }
    }

    /// The bar's ETA is sampled at the first report at or past 10 % and 50 % of the work, once
    /// each, and not at a fraction the reports jump past straight to the end.
    @Test func etaSamplerTakesTheFirstReportPastEachFraction() {
        var s = RealisticBenchmark.ETASampler()
        var reads = 0
        for (fraction, at, eta) in [(0.02, 1.0, 90.0), (0.08, 2.0, 80.0), (0.3, 3.0, 30.0), (0.4, 4.0, 20.0), (1.0, 9.0, 0.0)] {
            s.report(fraction: fraction, at: at) { reads += 1; return eta }
        }
        let checks = s.checks(end: 10)
        #expect(checks.map(\.fraction) == [0.1] && checks[0].eta == 30 && checks[0].remaining == 7 && reads == 1)
        #expect(abs(checks[0].error - (30.0 / 7 - 1)) < 1e-15)
        var t = RealisticBenchmark.ETASampler()
        for (fraction, at) in [(0.55, 2.0), (0.6, 3.0)] { t.report(fraction: fraction, at: at) { at * 10 } }
        #expect(t.checks(end: 4).map(\.fraction) == [0.1, 0.5] && t.checks(end: 4).map(\.remaining) == [2, 2])
    }

    /// The plan workload's structure (not its timing): a row per config with the estimate, the
    /// real time and their error, each phase against its estimate, the bar's ETA at 10 % and 50 %,
    /// and the verdict against ±30 % computed from them; the traces removed afterwards.
    @Test func planWorkloadComparesEstimateAndETAWithTheRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // Moons, 24 + 8 points, MLP 2-64-64-1 tanh, 30 steps: the steps (or the backward pass) are
        // a share of the work the bar reports through, not the machines alone.
        var momentum = try Self.recordingConfig(checkpointEvery: 4)   // SGD + momentum 0.9: the backward route
        momentum.data.train = 24
        momentum.data.test = 8
        momentum.model.layers = [2, 64, 64, 1]
        momentum.training.steps = 30
        var plain = momentum
        plain.name = "plain"
        plain.optimizer.momentum = 0
        let b = try PlanBenchmark.run(configs: [plain, momentum], fresh: false, directory: dir)
        #expect(b.rows.map(\.preset) == ["plain", "rec"])
        #expect(b.rows.map(\.optimizer) == ["sgd", "sgd μ 0.9"])
        #expect(b.precision == "f64" && b.threads >= 1 && !b.blas.isEmpty)
        for r in b.rows {
            let a = r.analysis
            #expect(r.steps == 30 && r.parameters == 2 * 64 + 64 + 64 * 64 + 64 + 64 + 1)
            #expect(a.seconds > 0 && a.estimatedSeconds > 0)
            #expect(abs(r.error - (a.estimatedSeconds - a.seconds) / a.seconds) < 1e-12)
            // 10 % falls in the steps or the backward pass; 50 % may be passed only by the last report.
            #expect(a.etaChecks.first?.fraction == 0.1 && a.etaChecks.allSatisfy { [0.1, 0.5].contains($0.fraction) })
            for c in a.etaChecks { #expect(c.remaining > 0 && c.remaining < a.seconds && c.eta >= 0) }
            let within = abs(r.error) <= 0.3 && a.etaChecks.allSatisfy { abs($0.eta / $0.remaining - 1) <= 0.3 }
            #expect(r.withinTolerance == within)
            #expect(a.machineGemmRates.isEmpty && a.gemmFraction == nil && a.gemmRate > 0)
            #expect(a.phases.first?.name == "steps" && a.phases.allSatisfy { $0.estimatedSeconds != nil })
            #expect(abs(a.phases.reduce(0) { $0 + $1.seconds } - a.seconds) < 1e-9 * max(1, a.seconds))
        }
        #expect(b.rows[0].analysis.phases.map(\.name) == ["steps", "kernel machines"])
        #expect(b.rows[1].analysis.phases.map(\.name) == ["steps", "kernel (backwards)", "kernel machines"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "the benchmark's traces are removed")
        let text = b.text()
        for word in ["plain", "sgd μ 0.9", "estimate", "ETA at 10 %", "within ±30 %", "kernel (backwards)", "load after"] {
            #expect(text.contains(word), "'\(word)' not in: \(text)")
        }
        var report = BenchReport()
        report.plan = b
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let plan = try #require(json["plan"] as? [String: Any])
        let rows = try #require(plan["rows"] as? [[String: Any]])
        #expect(rows.count == 2 && rows[0]["error"] is Double && rows[0]["within_tolerance"] is Bool && rows[1]["load_before"] is String)
        #expect(try JSONDecoder().decode(PlanBenchmark.Row.self, from: JSONEncoder().encode(b.rows[1])).preset == "rec")
    }
}

/// W7's CNTK part on three images (skipped without Fashion-MNIST): the cross kernel of the first
/// three images equals the Gram's upper triangle to the bit (the same arithmetic; the self
/// pairs' variances read by the other route).
@Suite("W7-cntk benchmark")
struct CNTKBenchmarkTests {
    @Test func threeImages() throws {
        #expect(throws: (any Error).self) { try CNTKBenchmark.run(images: 2) }
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") else { return }
        let r = try CNTKBenchmark.run(images: 3)
        #expect(r.imagePairs == 6 && r.expectationsPerPair == 2 * 784 * 784)
        #expect(r.crossCheck == 0, "cross kernel vs Gram \(r.crossCheck)")
        #expect(r.ntkTrace > 0 && r.text().contains("W7-cntk"))
    }

    /// `--queries` and `--readout flatten` (Tools/compare's timed problem): the cross kernel has the
    /// held-out images as rows and the training images as columns, and `--export` writes exactly
    /// the kernels the library computes on the exported images (the same arithmetic: within
    /// `sameArithmetic`, which only round-off in the .npy round trip could exceed — there is none).
    @Test func crossKernelAndExport() throws {
        let sameArithmetic = 1e-15
        #expect(throws: (any Error).self) { try CNTKBenchmark.run(images: 3, queries: 0) }
        #expect(throws: (any Error).self) { try CNTKBenchmark.run(images: 2001) }
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-w7cntk-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CNTKBenchmark.run(images: 3, queries: 2, readout: .flatten, export: dir)
        #expect(r.imagePairs == 6 && r.expectationsPerPair == 2 * 784 && r.queries == 2 && r.readout == "flatten")
        #expect(r.crossCheck == 0, "cross kernel vs Gram \(r.crossCheck)")
        func npy(_ name: String, rows: Int, cols: Int) throws -> Matrix {
            let bytes = try Data(contentsOf: dir.appendingPathComponent("\(name).npy"))
            let body = bytes.suffix(rows * cols * 8)
            let values = body.withUnsafeBytes { raw in (0..<(rows * cols)).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) } }
            return Matrix(rows: rows, cols: cols, data: values)
        }
        let split = try DataSpec(kind: "idx", train: 3, test: 2).load(seed: 1)
        let x1 = try npy("x1", rows: 2, cols: 784), x2 = try npy("x2", rows: 3, cols: 784)
        #expect(x1.data == split.test.x.data && x2.data == split.train.x.data)
        let k = try ConvolutionalKernel(CNTKBenchmark.architecture(readout: .flatten)).kernels(split.test.x, split.train.x)
        for (name, want) in [("nngp", k.nngp), ("ntk", k.ntk!)] {
            let got = try npy(name, rows: 2, cols: 3)
            let scale = want.data.map(abs).max()!
            #expect(zip(got.data, want.data).allSatisfy { abs($0 - $1) <= sameArithmetic * scale }, "\(name)")
        }
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("w7cntk.json"))) as? [String: Any])
        #expect(meta["readout"] as? String == "flatten" && meta["queries"] as? Int == 2 && meta["gram"] as? Bool == false)
    }
}

/// W7's MLP part on tiny problems: the bench's kernels against a per-pair recursion written here
/// (the contract's §1 recursion, relu's arc-cosine closed form spelled out; tanh through the
/// library's quadrature of one pair), so a wrong spec, input order or recursion in the bench
/// fails. Tolerances: relu 1e-12 relative (closed forms, round-off only); tanh 1e-12 relative
/// (the same quadrature per pair; only the recursion's arithmetic is independent).
@Suite("W7-mlp benchmark")
struct MLPKernelBenchmarkTests {
    static let closedFormTolerance = 1e-12
    static let quadratureTolerance = 1e-12

    /// (NNGP, NTK) of the bench's net for one pair, by the contract's recursion.
    static func pairKernels(_ x: [Double], _ y: [Double], activation: Activation) -> (nngp: Double, ntk: Double) {
        // W7's net as documented (σ_w 1.5, σ_b 0.1, bias, five dense layers), spelled out here.
        let sw2 = 1.5 * 1.5, sb2 = 0.1 * 0.1
        let depth = 5
        let d = Double(x.count)
        var kxy = zip(x, y).map { $0 * $1 }.reduce(0, +) / d
        var kxx = x.map { $0 * $0 }.reduce(0, +) / d
        var kyy = y.map { $0 * $0 }.reduce(0, +) / d
        var theta = 0.0, dot = 0.0, sigma = 0.0
        for l in 0..<depth {
            sigma = sw2 * kxy + sb2
            theta = sigma + (l == 0 ? 0 : sw2 * dot * theta)
            guard l < depth - 1 else { break }
            let q1 = sw2 * kxx + sb2, q2 = sw2 * kyy + sb2
            func e(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double) {
                if activation == .relu {
                    let s = max(a * b - c * c, 0).squareRoot()
                    let t = atan2(s, c)
                    return ((s + (Double.pi - t) * c) / (2 * Double.pi), (Double.pi - t) / (2 * Double.pi))
                }
                let p = GaussianExpectation.trapezoid(activation, leakySlope: 0, q1: a, q2: b, c: c)
                return (p.value, p.derivative)
            }
            (kxy, dot) = e(q1, q2, sigma)
            kxx = e(q1, q1, q1).0
            kyy = e(q2, q2, q2).0
        }
        return (sigma, theta)
    }

    @Test(arguments: MLPKernelBenchmark.activations)
    func kernelsMatchAPerPairRecursion(_ activation: Activation) throws {
        #expect(MLPKernelBenchmark.spec(activation).layers == [784, 512, 512, 512, 512, 1])
        #expect(MLPKernelBenchmark.spec(activation).parameterization == .ntk)
        let p = MLPKernelBenchmark.Problem(points: 4, inputs: 6, seed: 3)
        let k = try MLPKernelBenchmark.kernels(p, activation: activation)
        #expect(k.ntk.rows == 4 && k.ntk.cols == 4)
        let tol = activation == .relu ? Self.closedFormTolerance : Self.quadratureTolerance
        for i in 0..<4 {
            for j in 0..<4 {
                let x = (0..<6).map { p.queries[i, $0] }, y = (0..<6).map { p.train[j, $0] }
                let r = Self.pairKernels(x, y, activation: activation)
                #expect(abs(k.nngp[i, j] - r.nngp) <= tol * max(abs(r.nngp), 1), "\(activation) NNGP[\(i),\(j)] \(k.nngp[i, j]) vs \(r.nngp)")
                #expect(abs(k.ntk[i, j] - r.ntk) <= tol * max(abs(r.ntk), 1), "\(activation) NTK[\(i),\(j)] \(k.ntk[i, j]) vs \(r.ntk)")
            }
        }
    }

    /// The input covariance `K⁰ = x·x'/d_0` (one GEMM since session 9) against the serial
    /// in-order sum, cross and Gram, on W7's input width: every entry within `gemmTolerance`
    /// relative to √(K⁰(x,x)·K⁰(x',x')), and a point paired with itself or with a copy of itself
    /// exactly the ordered sum, equal to its own variance (ρ = 1 to the bit, the contract's
    /// numerical rule). Read through a one-layer net, whose NNGP is `σ_w² K⁰ + σ_b²`.
    @Test func inputCovarianceMatchesTheOrderedSum() throws {
        /// d_0·ε: the GEMM's summation order against the ordered one, 784 terms.
        let gemmTolerance = 784 * Double.ulpOfOne
        let p = MLPKernelBenchmark.Problem(points: 9, inputs: 784, seed: 5)
        var queries = p.queries, train = p.train
        // Copies: train row 3 = query row 5, and query row 7 = query row 2.
        for f in 0..<784 { train[3, f] = queries[5, f]; queries[7, f] = queries[2, f] }
        let spec = ModelSpec(layers: [784, 1], activation: .relu, parameterization: .ntk, sigmaW: 1.5, sigmaB: 0.1, bias: true)
        let kernel = try InfiniteWidthKernel(spec: spec)
        func ordered(_ a: Matrix, _ i: Int, _ b: Matrix, _ j: Int) -> Double {
            var s = 0.0
            for f in 0..<784 { s += a[i, f] * b[j, f] }
            return 1.5 * 1.5 * (s / 784) + 0.1 * 0.1
        }
        for (a, b, gram) in [(queries, train, false), (queries, queries, true)] {
            let k = try kernel.kernels(a, gram ? nil : b)
            for i in 0..<9 {
                for j in 0..<9 {
                    let expected = ordered(a, i, b, j)
                    let scale = (ordered(a, i, a, i) * ordered(b, j, b, j)).squareRoot()
                    #expect(abs(k.nngp[i, j] - expected) <= gemmTolerance * scale, "K⁰[\(i),\(j)] gram \(gram): \(k.nngp[i, j]) vs \(expected)")
                }
            }
            let copies = gram ? [(7, 2), (2, 7), (4, 4)] : [(5, 3)]
            for (i, j) in copies {
                #expect(k.nngp[i, j] == ordered(a, i, b, j) && k.nngp[i, j] == ordered(a, i, a, i), "copy (\(i), \(j)) gram \(gram)")
            }
        }
    }

    /// The quadrature's count: every pair of the tiny problem at 97…M nodes, counted directly.
    @Test func quadratureCostCountsEveryPair() {
        let p = MLPKernelBenchmark.Problem(points: 3, inputs: 5, seed: 4)
        let c = MLPKernelBenchmark.quadratureCost(p, activation: .tanh)
        #expect(c.minNodes >= 97 && c.maxNodes >= c.minNodes)
        #expect(c.evaluations >= Double(4 * 9 * (c.minNodes * c.minNodes + c.minNodes)))
        #expect(c.evaluations <= Double(4 * 9 * (c.maxNodes * c.maxNodes + c.maxNodes)))
    }

    @Test func runReportsBothActivationsAndChecksItsBlock() throws {
        #expect(throws: (any Error).self) { try MLPKernelBenchmark.run(points: 2) }
        let r = try MLPKernelBenchmark.run(points: 3)
        #expect(r.runs.map(\.activation) == ["relu", "tanh"])
        #expect(r.runs.allSatisfy { $0.blockCheck == 0 })
        #expect(r.runs[0].quadrature == nil && r.runs[1].quadrature != nil)
        #expect(r.text().contains("W7-mlp") && r.text().contains("quadrature"))
    }
}
