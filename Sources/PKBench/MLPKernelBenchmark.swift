import Foundation
import PKAnalysis
import PKNetworks
import PKNumerics

/// W7's MLP part (issue 12): the analytic NNGP and NTK (ntk-family contract §1) of a 5-layer MLP
/// `784-512-512-512-512-1` (four activation layers; `σ_w = 1.5`, `σ_b = 0.1`, bias on, NTK
/// parameterization; the hidden widths do not enter the `ntk` kernel) between `points` queries and
/// `points` training points (default 2,000 × 2,000, a cross kernel: `n²` pairs per layer), in
/// float64, for relu (closed form, the arc-cosine kernel) and tanh (the trapezoidal rule, `M²`
/// activation evaluations per pair and activation layer). Inputs `N(0, I)`, seeded.
///
/// Reports wall and CPU seconds per activation; for tanh also the quadrature's cost: the node
/// counts per axis `M` the pairs used (from the same self variances the kernel computes) and the
/// activation evaluations `Σ (M² + M)` over pairs and layers, per second. Its check: the kernel of
/// the first three queries against the first three training points, computed alone, equals the
/// big kernel's block to the bit (every pair's recursion is independent of the others).
public enum MLPKernelBenchmark {
    /// The accepted point counts (`--points`).
    public static let pointsRange = 3...20_000
    public static let inputDimension = 784

    public static func spec(_ activation: Activation, inputs: Int = inputDimension, width: Int = 512) -> ModelSpec {
        ModelSpec(layers: [inputs, width, width, width, width, 1], activation: activation, parameterization: .ntk,
                  sigmaW: 1.5, sigmaB: 0.1, bias: true)
    }

    /// The seeded inputs: `points × d` queries, then `points × d` training points, entries `N(0, 1)`.
    public struct Problem: Sendable {
        public let queries: Matrix
        public let train: Matrix
        public init(points: Int, inputs d: Int = inputDimension, seed: UInt64 = 7) {
            var rng = PortableRandom.stream(seed: seed, label: 0x57_37)
            queries = Matrix(rows: points, cols: d, data: (0..<(points * d)).map { _ in rng.normal() })
            train = Matrix(rows: points, cols: d, data: (0..<(points * d)).map { _ in rng.normal() })
        }
    }

    public struct Quadrature: Codable, Sendable {
        /// Smallest and largest node count per axis over the pairs and layers.
        public let minNodes: Int
        public let maxNodes: Int
        /// `Σ (M² + M)` over the pairs and activation layers (each evaluation gives φ and φ').
        public let evaluations: Double
        /// Activation evaluations per wall second, and per CPU second.
        public let evaluationsPerSecond: Double
        public let evaluationsPerCPUSecond: Double
        /// The largest pre-activation variance seen (the 1e-10 bound holds to 32).
        public let largestVariance: Double
    }

    public struct Run: Codable, Sendable {
        public let activation: String
        public let seconds: Double
        public let cpuSeconds: Double
        /// Pair expectations (`n₁ n₂` per activation layer) per wall second.
        public let pairsPerSecond: Double
        public let quadrature: Quadrature?
        /// `max |block − alone|` over the NNGP and NTK of the first 3 × 3 block: 0 expected.
        public let blockCheck: Double
        public let ntkMean: Double
    }

    public struct Result: Codable, Sendable {
        public let points: Int
        public let net: String
        public let threads: Int
        public let runs: [Run]
        public let loadBefore: String?
        public let loadAfter: String?

        public func text() -> String {
            var s = "W7-mlp  analytic NNGP + NTK, float64, \(points) × \(points) points, \(net), \(threads) threads\n"
            if let loadBefore { s += "    load average before: \(loadBefore)\n" }
            for r in runs {
                s += "    \(r.activation.padding(toLength: 5, withPad: " ", startingAt: 0)) \(String(format: "%.3f", r.seconds)) s wall, "
                    + "\(String(format: "%.3f", r.cpuSeconds)) s CPU, \(String(format: "%.3g", r.pairsPerSecond)) pair expectations/s; "
                    + "check \(String(format: "%.1e", r.blockCheck)) (0: block equals the kernel computed alone); mean Θ \(String(format: "%.12g", r.ntkMean))\n"
                if let q = r.quadrature {
                    s += "          quadrature: M = \(q.minNodes)…\(q.maxNodes) nodes per axis (largest variance \(String(format: "%.4g", q.largestVariance))), "
                        + "\(String(format: "%.4g", q.evaluations)) activation evaluations, \(String(format: "%.3g", q.evaluationsPerSecond))/s wall, "
                        + "\(String(format: "%.3g", q.evaluationsPerCPUSecond))/s CPU\n"
                }
            }
            if let loadAfter { s += "    load average after: \(loadAfter)\n" }
            return s + "\n"
        }
    }

    public static let activations: [Activation] = [.relu, .tanh]

    /// The analytic kernels of `activation`'s net between the problem's queries and training points.
    public static func kernels(_ p: Problem, activation: Activation, width: Int = 512) throws -> InfiniteWidthKernels {
        try InfiniteWidthKernel(spec: spec(activation, inputs: p.queries.cols, width: width)).kernels(p.queries, p.train)
    }

    /// The quadrature's node counts: each point's self variances `Σˡ(x,x)` by the kernel's own
    /// recursion (`Kˡ⁺¹(x,x) = E[φ(u)²]` at `q₁ = q₂ = c`), then `M = nodeCount(max(q₁, q₂))` per pair.
    static func quadratureCost(_ p: Problem, activation: Activation) -> (minNodes: Int, maxNodes: Int, evaluations: Double) {
        let s = spec(activation, inputs: p.queries.cols)
        let sw2 = s.sigmaW * s.sigmaW, sb2 = s.sigmaB * s.sigmaB
        let d = Double(p.queries.cols)
        func selfK(_ x: Matrix) -> [Double] {
            (0..<x.rows).map { i in (0..<x.cols).reduce(0.0) { $0 + x[i, $1] * x[i, $1] } / d }
        }
        var k1 = selfK(p.queries), k2 = selfK(p.train)
        var lo = Int.max, hi = 0, evaluations = 0.0
        for _ in 0..<(s.layers.count - 2) {
            let q1 = k1.map { sw2 * $0 + sb2 }, q2 = k2.map { sw2 * $0 + sb2 }
            let m2 = q2.map { GaussianExpectation.nodeCount(maxVariance: $0) }
            for a in q1 {
                let ma = GaussianExpectation.nodeCount(maxVariance: a)
                for mb in m2 {
                    let m = max(ma, mb)   // nodeCount is monotone in the variance
                    lo = min(lo, m); hi = max(hi, m)
                    evaluations += Double(m * m + m)
                }
            }
            k1 = q1.map { GaussianExpectation.pair(activation, leakySlope: s.leakySlope, q1: $0, q2: $0, c: $0).value }
            k2 = q2.map { GaussianExpectation.pair(activation, leakySlope: s.leakySlope, q1: $0, q2: $0, c: $0).value }
        }
        return (lo, hi, evaluations)
    }

    static func loadAverage() -> String? {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)).map {
            $0.split(separator: " ").prefix(3).joined(separator: " ")
        }
    }

    /// Runs relu, then tanh (or the ones in `only`). `export` writes the inputs and kernels as .npy
    /// (`x1.npy`, `x2.npy`, `<act>_nngp.npy`, `<act>_ntk.npy`) for Tools/compare.
    public static func run(points: Int = 2000, only: [Activation]? = nil, export: URL? = nil,
                           log: (String) -> Void = { _ in }) throws -> Result {
        guard pointsRange.contains(points) else {
            throw InfiniteWidthError("W7-mlp --points must be \(pointsRange.lowerBound)…\(pointsRange.upperBound), got \(points)")
        }
        if let export {
            try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
        }
        let p = Problem(points: points)
        if let export {
            try Npy.write(p.queries, to: export.appendingPathComponent("x1.npy"))
            try Npy.write(p.train, to: export.appendingPathComponent("x2.npy"))
        }
        let before = loadAverage()
        var runs: [Run] = []
        let hidden = spec(.relu).layers.count - 2
        for a in only ?? activations {
            log("W7-mlp: \(a.rawValue), \(points) × \(points) points")
            var result: InfiniteWidthKernels? = nil
            let t = try Measure.cpuAndWallSeconds { result = try kernels(p, activation: a) }
            let k = result!
            let small = Problem(queries: p.queries.rows(0..<3), train: p.train.rows(0..<3))
            let alone = try kernels(small, activation: a)
            var worst = 0.0
            for i in 0..<3 {
                for j in 0..<3 {
                    worst = max(worst, abs(alone.ntk[i, j] - k.ntk[i, j]), abs(alone.nngp[i, j] - k.nngp[i, j]))
                }
            }
            var quadrature: Quadrature? = nil
            if !GaussianExpectation.hasClosedForm(a) {
                let c = quadratureCost(p, activation: a)
                quadrature = Quadrature(minNodes: c.minNodes, maxNodes: c.maxNodes, evaluations: c.evaluations,
                                        evaluationsPerSecond: c.evaluations / t.wall, evaluationsPerCPUSecond: c.evaluations / t.cpu,
                                        largestVariance: k.largestVariance)
            }
            if let export {
                try Npy.write(k.nngp, to: export.appendingPathComponent("\(a.rawValue)_nngp.npy"))
                try Npy.write(k.ntk, to: export.appendingPathComponent("\(a.rawValue)_ntk.npy"))
            }
            runs.append(Run(activation: a.rawValue, seconds: t.wall, cpuSeconds: t.cpu,
                            pairsPerSecond: Double(points * points * hidden) / t.wall, quadrature: quadrature,
                            blockCheck: worst, ntkMean: k.ntk.data.reduce(0, +) / Double(k.ntk.data.count)))
        }
        let net = spec(.relu).layers.map(String.init).joined(separator: "-") + " (σ_w 1.5, σ_b 0.1, ntk)"
        return Result(points: points, net: net, threads: Parallel.threads, runs: runs, loadBefore: before, loadAfter: loadAverage())
    }
}

extension MLPKernelBenchmark.Problem {
    init(queries: Matrix, train: Matrix) {
        self.queries = queries
        self.train = train
    }
}
