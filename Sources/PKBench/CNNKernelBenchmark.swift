import Foundation
import PKNetworks
import PKNumerics
import PKTrace
import PKTraining

/// W4: the empirical NTK of a small CNN — conv 3×3 (same) → relu → conv 3×3 (same) → relu → avg
/// pool 2×2 → flatten → dense 10, with 64 channels, NTK parameterization, on `[1, 28, 28]` inputs —
/// between 100 queries and 500 training points, in float64 and float32, from the batched
/// per-example Jacobians (`Layer.jacobians`) and `LayerJacobians.kernel(_:_:mode: .trace)` (the sum
/// over the 10 outputs: neural-tangents' default kernel times C). The generic exact route, timed
/// as the analyzer would use it; `Tools/compare/neural_tangents_w4.py` rebuilds the network in
/// neural-tangents' stax and checks the kernel.
public enum CNNKernelBenchmark {
    public static let defaultChannels = 64
    public static let inputShape: TensorShape = [1, 28, 28]

    /// The network as a layer list (the `LayerJacobianBenchmark` CNN with `channels` channels).
    public static func layersJSON(channels: Int) -> String { LayerJacobianBenchmark.cnn(channels: channels) }

    /// `--residual`: the residual network's channels, input shape and sizes (small: seconds, not
    /// minutes; it exists for the neural-tangents comparison, not for timing).
    public static let residualDefaultChannels = 4
    public static let residualInputShape: TensorShape = [1, 8, 8]
    public static let residualQueries = 20
    public static let residualTrain = 30

    /// `--residual`: conv 3×3 (same, `c`) → relu → an identity residual block [layernorm, conv 3×3
    /// (c), gelu, conv 3×3 (c)] → a projection residual block [layernorm, conv 3×3 (2c), gelu, conv
    /// 3×3 (2c, no bias)] + conv 1×1 (2c, no bias) → global average pool → dense 10. The layer
    /// norms have `"affine": false` unless `affine`: neural-tangents' `stax.LayerNorm` has no `γ`,
    /// `β`, so the comparison script adds them as a layer of its own.
    public static func residualJSON(channels c: Int, affine: Bool = false) -> String {
        """
        {"kind": "sequential", "layers": [
          {"kind": "conv2d", "out": \(c), "kernel": 3, "padding": "same"}, {"kind": "relu"},
          {"kind": "residual", "block": {"kind": "sequential", "layers": [
            {"kind": "layernorm", "affine": \(affine)}, {"kind": "conv2d", "out": \(c), "kernel": 3, "padding": "same"},
            {"kind": "gelu"}, {"kind": "conv2d", "out": \(c), "kernel": 3, "padding": "same"}]}},
          {"kind": "residual", "block": {"kind": "sequential", "layers": [
            {"kind": "layernorm", "affine": \(affine)}, {"kind": "conv2d", "out": \(2 * c), "kernel": 3, "padding": "same"},
            {"kind": "gelu"}, {"kind": "conv2d", "out": \(2 * c), "kernel": 3, "padding": "same", "bias": false}]},
           "shortcut": {"kind": "conv2d", "out": \(2 * c), "kernel": 1, "bias": false}},
          {"kind": "globalavgpool"}, {"kind": "dense", "out": 10}]}
        """
    }

    /// A fixed problem: weights from `initialParameters(seed:)`, inputs `N(0, 1)` (NCHW rows). With
    /// `affineLayerNorm` (residual only), the layer norms' `γ`, `β` are moved off their initial 1
    /// and 0 to `1 + 0.2·N(0, 1)` and `0.2·N(0, 1)`, so that `γ`'s part in the derivatives is tested.
    public struct Problem: Sendable {
        public let channels: Int
        /// Whether this is the `--residual` network, and whether its layer norms have `γ`, `β`.
        public let isResidual: Bool
        public let hasAffineLayerNorm: Bool
        public let json: String
        public let network: any Layer
        public let weights: [Double]
        public let queries: Matrix
        public let train: Matrix

        public init(channels: Int = CNNKernelBenchmark.defaultChannels, queries nq: Int = 100, train nt: Int = 500, seed: UInt64 = 1,
                    residual: Bool = false, affineLayerNorm: Bool = false) throws {
            guard residual || !affineLayerNorm else { throw ConfigError("the affine layer norms belong to the residual network") }
            self.channels = channels
            isResidual = residual
            hasAffineLayerNorm = affineLayerNorm
            json = residual ? CNNKernelBenchmark.residualJSON(channels: channels, affine: affineLayerNorm)
                : CNNKernelBenchmark.layersJSON(channels: channels)
            network = try LayerJacobianBenchmark.build(json, input: residual ? CNNKernelBenchmark.residualInputShape : CNNKernelBenchmark.inputShape)
            var w = network.initialParameters(seed: seed)
            if affineLayerNorm {
                var rng = PortableRandom.stream(seed: seed, label: 0x4C_4E)
                for t in network.layout where t.name.contains(".block.0.") {
                    let base = t.name.hasSuffix("weight") ? 1.0 : 0.0
                    for k in t.offset..<(t.offset + t.count) { w[k] = base + 0.2 * rng.normal() }
                }
            }
            weights = w
            var rng = PortableRandom.stream(seed: seed, label: 0x57_34)
            let d = network.inputShape.count
            queries = Matrix(rows: nq, cols: d, data: (0..<(nq * d)).map { _ in rng.normal() })
            train = Matrix(rows: nt, cols: d, data: (0..<(nt * d)).map { _ in rng.normal() })
        }
    }

    /// Θ(Q, X) summed over the outputs (`nQ × nX`), in `S`: the queries' Jacobians whole, the
    /// training points' in blocks of `trainBlock` (so memory stays at `(nQ + trainBlock)·C·P`
    /// scalars), each block's `C` trace GEMMs on every BLAS thread. Returns the seconds spent in
    /// the Jacobians and in the GEMMs.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public static func kernel<S: BLASScalar>(_ p: Problem, as _: S.Type, trainBlock: Int = 50)
        -> (kernel: DenseMatrix<S>, jacobianSeconds: Double, gemmSeconds: Double) {
        let w = p.weights.map { S($0) }
        var jacobianSeconds = 0.0, gemmSeconds = 0.0
        var jq: LayerJacobians<S>!
        jacobianSeconds += Measure.seconds { jq = p.network.jacobians(w, DenseMatrix<S>(p.queries)) }
        let nq = p.queries.rows, nt = p.train.rows
        var k = DenseMatrix<S>(rows: nq, cols: nt)
        for start in stride(from: 0, to: nt, by: trainBlock) {
            let rows = start..<min(start + trainBlock, nt)
            var jx: LayerJacobians<S>!
            jacobianSeconds += Measure.seconds { jx = p.network.jacobians(w, DenseMatrix<S>(p.train.rows(rows))) }
            var block = DenseMatrix<S>(rows: 0, cols: 0)
            gemmSeconds += Measure.seconds {
                block = BLASThreads.with(Parallel.threads) { LayerJacobians.kernel(jq, jx, mode: .trace) }
            }
            for r in 0..<nq {
                k.data.replaceSubrange((r * nt + rows.lowerBound)..<(r * nt + rows.upperBound),
                                       with: block.data[(r * rows.count)..<((r + 1) * rows.count)])
            }
        }
        return (k, jacobianSeconds, gemmSeconds)
    }

    public struct Precision: Codable, Sendable {
        /// Median seconds of `kernel` over `runs` runs.
        public var seconds: Double
        public var runs: Int
        /// Of the last run: the per-example Jacobians (both sides) and the kernel GEMMs.
        public var jacobianSeconds: Double
        public var gemmSeconds: Double
        /// ‖K − K_f64‖_F / ‖K_f64‖_F (0 for f64).
        public var relativeErrorVsF64: Double
        /// The machine's GEMM rate in this precision, every core, same run.
        public var gemmGflops: Double
    }

    public struct Result: Codable, Sendable {
        public var model: String
        public var parameters: Int
        public var queries: Int
        public var train: Int
        public var outputs: Int
        public var threads: Int
        public var f64: Precision
        public var f32: Precision
        /// The BLAS that computed both (OpenBLAS's core, `OPENBLAS_CORETYPE`, `OPENBLAS_L2_SIZE`).
        public var blas: BLASInfo = .current

        public func text() -> String {
            var s = "W4  empirical NTK (trace: sum over the \(outputs) outputs), \(model) (\(parameters) parameters), \(queries) × \(train), \(threads) threads\n"
            s += "    precision   seconds   Jacobians   GEMMs      error vs f64\n"
            for (name, p) in [("f64", f64), ("f32", f32)] {
                s += "    \(name)       \(String(format: "%8.2f", p.seconds))  \(String(format: "%8.2f", p.jacobianSeconds)) s  \(String(format: "%7.2f", p.gemmSeconds)) s   \(String(format: "%.1e", p.relativeErrorVsF64))\n"
            }
            s += "    machine GEMM (same run, \(threads) threads): DGEMM \(String(format: "%.1f", f64.gemmGflops)) GFLOP/s, SGEMM \(String(format: "%.1f", f32.gemmGflops)) GFLOP/s\n"
            s += "    \(blas.summary)\n\n"
            return s
        }
    }

    /// Runs W4 in both precisions (`repeats` timed runs each, no warm-up: one run takes about a
    /// minute). `export`: also writes the problem and both kernels for `neural_tangents_w4.py`.
    /// `residual`: the `residualJSON` network on `residualInputShape`, `residualQueries` ×
    /// `residualTrain` (a second or so).
    /// `affineLayerNorm`: that network's layer norms with `γ`, `β` (see `Problem`).
    public static func run(repeats: Int = 1, channels: Int? = nil, residual: Bool = false, affineLayerNorm: Bool = false, export: URL? = nil,
                           log: (String) -> Void = { _ in }) throws -> Result {
        guard KernelBenchmark.repeatsRange.contains(repeats) else {
            throw ConfigError("--repeats must be \(ConfigLimits.describe(KernelBenchmark.repeatsRange)), got \(repeats)")
        }
        if let export {
            try? FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
            try OutputPath.check(export.appendingPathComponent("kernel_f64.npy").path)
        }
        let p = residual
            ? try Problem(channels: channels ?? residualDefaultChannels, queries: residualQueries, train: residualTrain, residual: true,
                          affineLayerNorm: affineLayerNorm)
            : try Problem(channels: channels ?? defaultChannels)
        log("W4: GEMM rates")
        let dgemm = GemmRate.measure(Double.self, threads: Parallel.threads)
        let sgemm = GemmRate.measure(Float.self, threads: Parallel.threads)
        func measure<S: BLASScalar>(_: S.Type, gemm: Double, f64: DenseMatrix<Double>?) -> (Precision, DenseMatrix<S>) {
            let name = S.self == Float.self ? "f32" : "f64"
            var times: [Double] = []
            var last = (kernel: DenseMatrix<S>(rows: 0, cols: 0), jacobianSeconds: 0.0, gemmSeconds: 0.0)
            for run in 0..<repeats {
                log("W4 \(name): run \(run + 1) of \(repeats)")
                times.append(Measure.seconds { last = kernel(p, as: S.self) })
            }
            times.sort()
            return (Precision(seconds: times[times.count / 2], runs: repeats, jacobianSeconds: last.jacobianSeconds,
                              gemmSeconds: last.gemmSeconds,
                              relativeErrorVsF64: f64.map { KernelBenchmark.relativeError(last.kernel, $0) } ?? 0,
                              gemmGflops: gemm), last.kernel)
        }
        let (r64, k64) = measure(Double.self, gemm: dgemm, f64: nil)
        let (r32, k32) = measure(Float.self, gemm: sgemm, f64: k64)
        let c = p.channels
        let model = residual
            ? "residual CNN conv3×3(\(c))-relu-res[ln-conv3×3(\(c))-gelu-conv3×3(\(c))]-res[ln-conv3×3(\(2 * c))-gelu-conv3×3(\(2 * c)) + conv1×1(\(2 * c))]-gap-dense10 ntk on 1×8×8\(affineLayerNorm ? ", affine layer norms" : "")"
            : "CNN conv3×3(\(c))-relu-conv3×3(\(c))-relu-avgpool2-dense10 ntk on 1×28×28"
        let result = Result(model: model,
                            parameters: p.network.parameterCount, queries: p.queries.rows, train: p.train.rows,
                            outputs: p.network.outputShape.count, threads: Parallel.threads, f64: r64, f32: r32, blas: .current)
        log("W4: \(result.blas.summary)")
        // W4 has no explicit route to check against (its Jacobian contraction is the route); the
        // float32 kernel against the float64 one catches a BLAS core that gets one of them wrong.
        if !(r32.relativeErrorVsF64 <= KernelBenchmark.tolerance.f32) {
            throw KernelBenchmark.CheckFailed(workload: "W4", failures: ["f32 vs f64 \(String(format: "%.2e", r32.relativeErrorVsF64)) > \(String(format: "%.0e", KernelBenchmark.tolerance.f32))"],
                                              blas: result.blas)
        }
        if let export { try write(p, k64, k32, result, to: export) }
        return result
    }

    /// The export: `x_query.npy`, `x_train.npy` (n × C·H·W, NCHW rows), one `<tensor>.npy` per
    /// parameter tensor in its PyTorch shape (`0.weight` `[64, 1, 3, 3]`, …), `kernel_f64.npy`,
    /// `kernel_f32.npy` (queries × train, summed over the outputs) and `w4.json` (the layer list,
    /// the defaults it was built with, the tensors, the sizes, pathkernel's timings).
    static func write(_ p: Problem, _ k64: Matrix, _ k32: FloatMatrix, _ r: Result, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Npy.write(p.queries, to: dir.appendingPathComponent("x_query.npy"))
        try Npy.write(p.train, to: dir.appendingPathComponent("x_train.npy"))
        for t in p.network.layout {
            try Npy.encode(Array(p.weights[t.offset..<(t.offset + t.count)]), shape: t.shape)
                .write(to: dir.appendingPathComponent("\(t.name).npy"))
        }
        try Npy.write(k64, to: dir.appendingPathComponent("kernel_f64.npy"))
        try Npy.write(k32, to: dir.appendingPathComponent("kernel_f32.npy"))
        let defaults = LayerDefaults()
        let meta: [String: Any] = [
            "network": try JSONSerialization.jsonObject(with: Data(p.json.utf8)),
            "input_shape": p.network.inputShape.dimensions,
            "residual": p.isResidual, "affine_layernorm": p.hasAffineLayerNorm,
            "defaults": ["parameterization": defaults.parameterization.rawValue, "sigmaW": defaults.sigmaW, "sigmaB": defaults.sigmaB],
            "tensors": p.network.layout.map { ["name": $0.name, "shape": $0.shape, "offset": $0.offset] as [String: Any] },
            "parameters": p.network.parameterCount, "outputs": r.outputs, "queries": p.queries.rows, "train": p.train.rows,
            "kernel": "trace: sum over the outputs",
            "pathkernel": ["f64": ["seconds": r.f64.seconds, "jacobian_seconds": r.f64.jacobianSeconds, "gemm_seconds": r.f64.gemmSeconds],
                           "f32": ["seconds": r.f32.seconds, "jacobian_seconds": r.f32.jacobianSeconds, "gemm_seconds": r.f32.gemmSeconds]],
            "gemm_gflops": ["f64": r.f64.gemmGflops, "f32": r.f32.gemmGflops],
            "threads": r.threads,
            "blas": (try? KernelBenchmark.jsonObject(r.blas)) ?? NSNull(),
        ]
        try JSONSerialization.data(withJSONObject: meta, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("w4.json"))
    }
}
