import Foundation
import PKNetworks
import PKNumerics
import PKTraining

/// `layer-jacobians`: the per-example Jacobians of layer networks (`Layer.jacobians`) against the
/// one-example-at-a-time route they replaced (`Layer.jacobiansOneByOne`), and the batched route's
/// variants (examples per pass, the tiled forward pass), on small CNNs, a convolutional and a dense
/// residual block with LayerNorm, on 28×28 inputs, in float64 and float32. Speed-ups are ratios of medians in one run.
public enum LayerJacobianBenchmark {
    /// The networks, as layer-list JSON on `[1, 28, 28]` inputs with 10 outputs.
    public static let networks: [(name: String, json: String)] = [
        ("CNN 8 channels", cnn(channels: 8)),
        ("CNN 16 channels", cnn(channels: 16)),
        ("residual + LayerNorm, 8 channels", """
        {"kind": "sequential", "layers": [
          {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"kind": "relu"},
          {"kind": "residual", "block": {"kind": "sequential", "layers": [
            {"kind": "layernorm"}, {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"kind": "gelu"},
            {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}]}},
          {"kind": "avgpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 10}]}
        """),
        ("dense residual 784-256-256-10", """
        {"kind": "sequential", "layers": [
          {"kind": "flatten"}, {"kind": "dense", "out": 256}, {"kind": "relu"},
          {"kind": "residual", "block": {"kind": "sequential", "layers": [
            {"kind": "layernorm"}, {"kind": "dense", "out": 256}, {"kind": "gelu"}, {"kind": "dense", "out": 256}]}},
          {"kind": "dense", "out": 10}]}
        """),
    ]

    /// conv 3×3 (same) → relu → conv 3×3 (same) → relu → avg pool 2×2 → flatten → dense 10.
    public static func cnn(channels: Int) -> String {
        """
        {"kind": "sequential", "layers": [
          {"kind": "conv2d", "out": \(channels), "kernel": 3, "padding": "same"}, {"kind": "relu"},
          {"kind": "conv2d", "out": \(channels), "kernel": 3, "padding": "same"}, {"kind": "relu"},
          {"kind": "avgpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "out": 10}]}
        """
    }

    public static func build(_ json: String, input: TensorShape = [1, 28, 28]) throws -> any Layer {
        try JSONDecoder().decode(LayerSpec.self, from: Data(json.utf8)).build(input: input)
    }

    /// One route's median seconds and its speed-up over the one-by-one route.
    public struct Route: Codable, Sendable {
        public var name: String
        public var seconds: Double
        /// One-by-one seconds / these seconds.
        public var speedup: Double
        /// Largest |difference| from the one-by-one rows, relative to their largest entry.
        public var relativeDifference: Double
    }

    public struct Case: Codable, Sendable {
        public var network: String
        public var parameters: Int
        public var precision: String
        public var examples: Int
        public var oneByOneSeconds: Double
        public var routes: [Route]
    }

    public struct Result: Codable, Sendable {
        public var threads: Int
        public var cases: [Case]

        public func text() -> String {
            var s = "layer-jacobians  per-example Jacobians of layer networks on 28×28 inputs, 10 outputs, \(threads) threads\n"
            for c in cases {
                s += "    \(c.network) (\(c.parameters) parameters), \(c.precision), \(c.examples) examples: one by one \(String(format: "%.3f", c.oneByOneSeconds)) s\n"
                for r in c.routes {
                    s += "        \(r.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(String(format: "%8.4f", r.seconds)) s   \(String(format: "%6.2f", r.speedup)) ×   difference \(String(format: "%.1e", r.relativeDifference))\n"
                }
            }
            return s + "\n"
        }
    }

    /// `examples` inputs `N(0, 1)`, weights from `initialParameters(seed: 1)`.
    public static func run(examples: Int = 32, repeats: Int = 3, log: (String) -> Void = { _ in }) throws -> Result {
        return try BLASThreads.with(1) {
            var cases: [Case] = []
            for (name, json) in networks {
                let net = try build(json)
                var rng = PortableRandom.stream(seed: 1, label: 0x57_4A)
                let x = Matrix(rows: examples, cols: net.inputShape.count, data: (0..<(examples * net.inputShape.count)).map { _ in rng.normal() })
                let w = net.initialParameters(seed: 1)
                cases.append(measure(name, net, w, x, as: Double.self, repeats: repeats, log: log))
                cases.append(measure(name, net, w, x, as: Float.self, repeats: repeats, log: log))
            }
            return Result(threads: Parallel.threads, cases: cases)
        }
    }

    @_specialize(where S == Double)
    @_specialize(where S == Float)
    static func measure<S: BLASScalar>(_ name: String, _ net: any Layer, _ w: [Double], _ x: Matrix, as _: S.Type,
                                       repeats: Int, log: (String) -> Void) -> Case {
        let xs = DenseMatrix<S>(x), ws = w.map { S($0) }
        log("layer-jacobians: \(name), \(S.self)")
        // PATHKERNEL_BENCH_SKIP_REFERENCE=1 (development only): no one-by-one route, the default batched one stands in.
        let skip = ProcessInfo.processInfo.environment["PATHKERNEL_BENCH_SKIP_REFERENCE"] == "1"
        var oracle = skip ? net.jacobians(ws, xs) : net.jacobiansOneByOne(ws, xs)
        let base = skip ? Double.nan : Measure.median(repeats: repeats) { oracle = net.jacobiansOneByOne(ws, xs) }
        var routes: [Route] = []
        for (route, chunk, tiled) in [("batched (default, 8 per pass)", LayerJacobians<S>.defaultExamplesPerPass, false),
                                      ("batched, 1 per pass", 1, false), ("batched, 4 per pass", 4, false),
                                      ("batched, 16 per pass", 16, false), ("tiled forward, 8 per pass", 8, true)] {
            var J = net.jacobians(ws, xs, examplesPerPass: chunk, tiled: tiled)
            let t = Measure.median(repeats: repeats) { J = net.jacobians(ws, xs, examplesPerPass: chunk, tiled: tiled) }
            var diff = 0.0, scale = 0.0
            J.rows.data.withUnsafeBufferPointer { a in
                oracle.rows.data.withUnsafeBufferPointer { b in
                    for k in 0..<a.count {
                        diff = max(diff, abs(Double(a[k]) - Double(b[k])))
                        scale = max(scale, abs(Double(b[k])))
                    }
                }
            }
            routes.append(Route(name: route, seconds: t, speedup: base / t, relativeDifference: scale > 0 ? diff / scale : diff))
        }
        return Case(network: name, parameters: net.parameterCount, precision: S.self == Float.self ? "f32" : "f64",
                    examples: xs.rows, oneByOneSeconds: base, routes: routes)
    }
}
