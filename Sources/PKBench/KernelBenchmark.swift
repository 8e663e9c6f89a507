import Foundation
import PKNetworks
import PKNumerics
import PKTrace
import PKTraining

/// W1: the empirical NTK between 200 queries and 1,000 training points of an MLP
/// 64-512-512-512-1 (relu, NTK parameterization, 559,105 parameters), as measured for
/// neural-tangents in issue 4. pathkernel's structured kernel (`TangentFeatures`) against the
/// explicit Jacobian contraction `J_Q J_Xᵀ` in the same run, in float64 and float32.
public enum KernelBenchmark {
    public static let spec = ModelSpec(layers: [64, 512, 512, 512, 1], activation: .relu, parameterization: .ntk,
                                       sigmaW: 2.0.squareRoot(), sigmaB: 0.1)

    /// A fixed problem: weights from `MLP.initialParameters(seed:)`, inputs `N(0, I)`.
    public struct Problem: Sendable {
        public let model: MLP
        public let weights: [Double]
        public let queries: Matrix
        public let train: Matrix

        public init(spec: ModelSpec = KernelBenchmark.spec, queries nq: Int = 200, train nt: Int = 1000, seed: UInt64 = 1) {
            model = try! MLP(spec: spec)
            weights = model.initialParameters(seed: seed)
            var rng = PortableRandom.stream(seed: seed, label: 0x57_31)
            let d = model.inputDim
            queries = Matrix(rows: nq, cols: d, data: (0..<(nq * d)).map { _ in rng.normal() })
            train = Matrix(rows: nt, cols: d, data: (0..<(nt * d)).map { _ in rng.normal() })
        }
    }

    /// Θ(Q, X) by structured derivatives, in `S`: features of both sides (one pass over both
    /// batches), then per-layer Grams.
    public static func structured<S: BLASScalar>(_ p: Problem, as _: S.Type) -> DenseMatrix<S> {
        let f = p.model.tangentFeatures(p.weights, batches: [p.queries, p.train], as: S.self)
        return TangentFeatures.kernel(f[0], f[1], mode: .full)
    }

    /// Θ(Q, X) by explicit Jacobian contraction (the reference): `J_Q` whole, `J_X` in blocks of
    /// `blockRows` rows, one GEMM per block on every BLAS thread.
    public static func reference<S: BLASScalar>(_ p: Problem, as _: S.Type, blockRows: Int = 100) -> DenseMatrix<S> {
        BLASThreads.with(Parallel.threads) { referenceOnEveryThread(p, as: S.self, blockRows: blockRows) }
    }

    private static func referenceOnEveryThread<S: BLASScalar>(_ p: Problem, as _: S.Type, blockRows: Int) -> DenseMatrix<S> {
        let C = p.model.outputDim
        let jq = DenseMatrix<S>(p.model.jacobians(p.weights, p.queries))
        var k = DenseMatrix<S>(rows: p.queries.rows * C, cols: p.train.rows * C)
        for start in stride(from: 0, to: p.train.rows, by: blockRows) {
            let rows = start..<min(start + blockRows, p.train.rows)
            let jx = DenseMatrix<S>(p.model.jacobians(p.weights, p.train.rows(rows)))
            var block = DenseMatrix<S>(rows: jq.rows, cols: jx.rows)
            DenseMatrix.gemm(jq, rows: 0..<jq.rows, jx, rows: 0..<jx.rows, into: &block)
            for r in 0..<block.rows {
                k.data.replaceSubrange((r * k.cols + rows.lowerBound * C)..<(r * k.cols + rows.upperBound * C),
                                       with: block.data[(r * block.cols)..<((r + 1) * block.cols)])
            }
        }
        return k
    }

    /// Floating-point operations of `structured` (multiply–adds count two): forward passes of
    /// both sides, the stacked backward passes, and the per-layer activation and signal Grams.
    public static func flops(model: MLP, queries nq: Int, train nt: Int) -> Double {
        let n = Double(nq + nt), C = Double(model.outputDim)
        var f = 0.0
        for layer in model.layers {
            let io = Double(layer.inputs * layer.outputs)
            f += 2 * n * io                                  // forward
            if layer.index > 0 { f += 2 * n * C * io }        // backward into the layer's input
            f += 2 * Double(nq) * Double(nt) * (Double(layer.inputs) + C * C * Double(layer.outputs))   // Grams
        }
        return f
    }

    /// ‖A − B‖_F / ‖B‖_F in float64.
    public static func relativeError<S: BLASScalar, T: BLASScalar>(_ a: DenseMatrix<S>, _ b: DenseMatrix<T>) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a.data, b.data) {
            let d = Double(x) - Double(y)
            num += d * d
            den += Double(y) * Double(y)
        }
        return den > 0 ? (num / den).squareRoot() : num.squareRoot()
    }

    public struct Precision: Codable, Sendable {
        /// Median seconds of `structured` over `runs` runs after one warm-up.
        public var seconds: Double
        public var runs: Int
        /// `flops / seconds / 1e9`.
        public var gflops: Double
        /// Seconds of the explicit Jacobian contraction (one run).
        public var referenceSeconds: Double
        /// `seconds / referenceSeconds`.
        public var referenceRatio: Double
        /// The machine's GEMM rate in this precision, every core, same run.
        public var gemmGflops: Double
        /// `gflops / gemmGflops`.
        public var gemmFraction: Double
        /// ‖structured − reference‖_F / ‖reference‖_F (reference in the same precision).
        public var relativeErrorVsReference: Double
        /// ‖structured − structured f64‖_F / ‖structured f64‖_F (0 for f64).
        public var relativeErrorVsF64: Double
    }

    public struct Result: Codable, Sendable {
        public var model: String
        public var parameters: Int
        public var queries: Int
        public var train: Int
        public var threads: Int
        public var flops: Double
        public var f64: Precision
        public var f32: Precision
        /// The BLAS that computed both (OpenBLAS's core, `OPENBLAS_CORETYPE`, `OPENBLAS_L2_SIZE`).
        public var blas: BLASInfo = .current
    }

    /// The correctness check `run` makes before it reports a time: the structured kernel against
    /// the explicit Jacobian contraction in the same precision, and the float32 kernel against the
    /// float64 one (relative Frobenius). Some OpenBLAS builds compute wrong GEMMs on some
    /// processors (why machines may pin `OPENBLAS_CORETYPE`); a benchmark on such a core must fail,
    /// not report a fast wrong kernel.
    public static let tolerance = (f64: 1e-10, f32: 1e-4)

    /// Thrown by `check`: what disagreed, by how much, on which BLAS core.
    public struct CheckFailed: Error, CustomStringConvertible, Sendable {
        public let workload: String
        public let failures: [String]
        public let blas: BLASInfo
        public init(workload: String = "W1", failures: [String], blas: BLASInfo) {
            self.workload = workload
            self.failures = failures
            self.blas = blas
        }
        public var description: String {
            "\(workload)'s correctness check failed on \(blas.summary): \(failures.joined(separator: "; ")). "
                + "No time is reported: this BLAS computes wrong results with this core. Pin another one for the "
                + "command (OPENBLAS_CORETYPE=Haswell picks the AVX2 kernels) or use a newer OpenBLAS."
        }
    }

    /// Throws `CheckFailed` unless every error of `r` is within `tolerance` (a NaN fails).
    public static func check(_ r: Result) throws {
        var failures: [String] = []
        func expect(_ error: Double, _ tol: Double, _ what: String) {
            if !(error <= tol) { failures.append("\(what) \(String(format: "%.2e", error)) > \(String(format: "%.0e", tol))") }
        }
        expect(r.f64.relativeErrorVsReference, tolerance.f64, "f64 structured vs explicit")
        expect(r.f32.relativeErrorVsReference, tolerance.f32, "f32 structured vs explicit")
        expect(r.f32.relativeErrorVsF64, tolerance.f32, "f32 vs f64")
        if !failures.isEmpty { throw CheckFailed(failures: failures, blas: r.blas) }
    }

    /// Timed repeats W1 accepts (the same as the recording benchmark's).
    public static let repeatsRange = RecordingBenchmark.repeatsRange

    /// Runs W1 in both precisions, checks the kernels (`check`) and only then reports. `export`:
    /// also writes the problem and both kernels for `Tools/compare/neural_tangents_w1.py`.

    public static func run(repeats: Int = 7, export: URL? = nil, log: (String) -> Void = { _ in }) throws -> Result {
        guard repeatsRange.contains(repeats) else {
            throw ConfigError("--repeats must be \(ConfigLimits.describe(repeatsRange)), got \(repeats)")
        }
        if let export {   // before the benchmark: a directory that cannot take the files is named now
            try? FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
            try OutputPath.check(export.appendingPathComponent("kernel_f64.npy").path)
        }
        let p = Problem()
        let flops = flops(model: p.model, queries: p.queries.rows, train: p.train.rows)
        log("W1: GEMM rates")
        let dgemm = GemmRate.measure(Double.self, threads: Parallel.threads)
        let sgemm = GemmRate.measure(Float.self, threads: Parallel.threads)
        func measure<S: BLASScalar>(_: S.Type, gemm: Double, f64: DenseMatrix<Double>?) -> (Precision, DenseMatrix<S>) {
            log("W1 \(S.self == Float.self ? "f32" : "f64"): structured kernel, \(repeats) runs")
            var k = DenseMatrix<S>(rows: 0, cols: 0)
            let seconds = BLASThreads.with(1) {
                k = structured(p, as: S.self)
                return Measure.median(repeats: repeats) { k = structured(p, as: S.self) }
            }
            log("W1 \(S.self == Float.self ? "f32" : "f64"): explicit Jacobian contraction")
            var ref = DenseMatrix<S>(rows: 0, cols: 0)
            // PATHKERNEL_BENCH_SKIP_REFERENCE=1 (development only): compare with the kernel itself.
            let skip = ProcessInfo.processInfo.environment["PATHKERNEL_BENCH_SKIP_REFERENCE"] == "1"
            let refSeconds = skip ? Double.nan : Measure.seconds { ref = reference(p, as: S.self) }
            if skip { ref = k }
            let gflops = flops / seconds / 1e9
            return (Precision(seconds: seconds, runs: repeats, gflops: gflops, referenceSeconds: refSeconds,
                              referenceRatio: seconds / refSeconds, gemmGflops: gemm, gemmFraction: gflops / gemm,
                              relativeErrorVsReference: relativeError(k, ref),
                              relativeErrorVsF64: f64.map { relativeError(k, $0) } ?? 0), k)
        }
        let (r64, k64) = measure(Double.self, gemm: dgemm, f64: nil)
        let (r32, k32) = measure(Float.self, gemm: sgemm, f64: k64)
        let result = Result(model: "MLP \(spec.layers.map(String.init).joined(separator: "-")) relu ntk", parameters: p.model.parameterCount,
                            queries: p.queries.rows, train: p.train.rows, threads: Parallel.threads, flops: flops, f64: r64, f32: r32,
                            blas: .current)
        log("W1: \(result.blas.summary)")
        try check(result)
        if let export { try write(p, k64, k32, result, to: export) }
        return result
    }

    static func write(_ p: Problem, _ k64: Matrix, _ k32: FloatMatrix, _ r: Result, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Npy.write(p.queries, to: dir.appendingPathComponent("x_query.npy"))
        try Npy.write(p.train, to: dir.appendingPathComponent("x_train.npy"))
        for layer in p.model.layers {
            try Npy.write(layer.weight(p.weights), to: dir.appendingPathComponent("layers.\(layer.index).weight.npy"))
            if let bo = layer.biasOffset {
                try Npy.write(Array(p.weights[bo..<(bo + layer.outputs)]), to: dir.appendingPathComponent("layers.\(layer.index).bias.npy"))
            }
        }
        try Npy.write(k64, to: dir.appendingPathComponent("kernel_f64.npy"))
        try Npy.write(k32, to: dir.appendingPathComponent("kernel_f32.npy"))
        let meta: [String: Any] = [
            "layers": p.model.spec.layers, "activation": p.model.spec.activation.rawValue,
            "parameterization": p.model.spec.parameterization.rawValue, "sigma_w": p.model.spec.sigmaW,
            "sigma_b": p.model.spec.sigmaB, "bias": p.model.spec.bias, "queries": p.queries.rows, "train": p.train.rows,
            "pathkernel": ["f64": ["seconds": r.f64.seconds, "reference_seconds": r.f64.referenceSeconds.isFinite ? r.f64.referenceSeconds as Any : NSNull()],
                           "f32": ["seconds": r.f32.seconds, "reference_seconds": r.f32.referenceSeconds.isFinite ? r.f32.referenceSeconds as Any : NSNull()]],
            "gemm_gflops": ["f64": r.f64.gemmGflops, "f32": r.f32.gemmGflops],
            "blas": (try? jsonObject(r.blas)) ?? NSNull(),
        ]
        try JSONSerialization.data(withJSONObject: meta, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("w1.json"))
    }

    /// `bench --workload W1 --kernels-only`: the structured kernel's timed calls alone (no GEMM
    /// rate, no explicit route), for `Tools/compare/interleave_w1.py`, which alternates rounds of
    /// this with neural-tangents'. The correctness check belongs to the full `run` (on the same
    /// binary and BLAS core); this one compares only the float32 kernel with the float64 one.
    public struct KernelTimes: Codable, Sendable {
        public struct Times: Codable, Sendable {
            /// Median of `times`, each one call of `structured` after one untimed warm-up call.
            public var seconds: Double
            public var times: [Double]
            /// `flops / seconds / 1e9`.
            public var gflops: Double
            /// Median CPU seconds of the process (all threads) per call: with `threads` threads
            /// and none of them waiting, `threads × seconds`; on a shared machine the steadier figure.
            public var cpuSeconds: Double? = nil
        }
        public var model: String
        public var parameters: Int
        public var queries: Int
        public var train: Int
        public var threads: Int
        public var flops: Double
        public var f64: Times
        public var f32: Times
        /// ‖K_f32 − K_f64‖_F / ‖K_f64‖_F.
        public var relativeErrorF32VsF64: Double
        public var blas: BLASInfo

        /// `{"W1-kernels": …}` (snake_case fields).
        public func json() throws -> String {
            let object: [String: Any] = ["W1-kernels": try KernelBenchmark.jsonObject(self)]
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
        }

        public func text() -> String {
            var s = "W1  structured kernels only (no GEMM rate, no explicit route), \(model) (\(parameters) parameters), \(queries) × \(train), \(threads) threads\n"
            s += "    \(blas.summary)\n"
            s += "    precision   median s      min s      max s   GFLOP/s   calls   CPU s/call   GFLOP per CPU s\n"
            for (name, t) in [("f64", f64), ("f32", f32)] {
                s += "    \(name)       \(String(format: "%9.4f", t.seconds))  \(String(format: "%9.4f", t.times.min() ?? .nan))  \(String(format: "%9.4f", t.times.max() ?? .nan))  \(String(format: "%8.1f", t.gflops))   \(String(format: "%5d", t.times.count))   \(String(format: "%10.4f", t.cpuSeconds ?? .nan))   \(String(format: "%15.1f", flops / (t.cpuSeconds ?? .nan) / 1e9))\n"
            }
            s += "    f32 vs f64 kernel: \(String(format: "%.1e", relativeErrorF32VsF64))\n\n"
            return s
        }
    }

    /// Times `structured` `repeats` times per precision after one warm-up call each; throws when
    /// the float32 kernel is off the float64 one by more than `tolerance.f32`.
    public static func timeKernels(repeats: Int = 7, log: (String) -> Void = { _ in }) throws -> KernelTimes {
        return try BLASThreads.with(1) {
            guard repeatsRange.contains(repeats) else {
                throw ConfigError("--repeats must be \(ConfigLimits.describe(repeatsRange)), got \(repeats)")
            }
            let p = Problem()
            let flops = flops(model: p.model, queries: p.queries.rows, train: p.train.rows)
            func time<S: BLASScalar>(_: S.Type) -> (KernelTimes.Times, DenseMatrix<S>) {
                log("W1 \(S.self == Float.self ? "f32" : "f64"): structured kernel, 1 + \(repeats) calls")
                var k = structured(p, as: S.self)
                let measured = (0..<repeats).map { _ in Measure.cpuAndWallSeconds { k = structured(p, as: S.self) } }
                let times = measured.map(\.wall)
                let median = times.sorted()[times.count / 2]
                let cpu = measured.map(\.cpu).sorted()[measured.count / 2]
                return (KernelTimes.Times(seconds: median, times: times, gflops: flops / median / 1e9, cpuSeconds: cpu), k)
            }
            let (t64, k64) = time(Double.self)
            let (t32, k32) = time(Float.self)
            let result = KernelTimes(model: "MLP \(spec.layers.map(String.init).joined(separator: "-")) relu ntk", parameters: p.model.parameterCount,
                                     queries: p.queries.rows, train: p.train.rows, threads: Parallel.threads, flops: flops,
                                     f64: t64, f32: t32, relativeErrorF32VsF64: relativeError(k32, k64), blas: .current)
            if !(result.relativeErrorF32VsF64 <= tolerance.f32) {
                throw CheckFailed(failures: ["f32 vs f64 \(String(format: "%.2e", result.relativeErrorF32VsF64)) > \(String(format: "%.0e", tolerance.f32))"],
                                  blas: result.blas)
            }
            return result
        }
    }

    /// `value` as a JSON object with snake_case keys (as `BenchReport.json` writes it).
    static func jsonObject<T: Encodable>(_ value: T) throws -> Any {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        return try JSONSerialization.jsonObject(with: enc.encode(value))
    }
}
