import Foundation
import PKNumerics

/// The named random streams of this module, each `PortableRandom.stream(seed:label:)` with
/// `label` = FNV-1a 64-bit hash of the stream's name (e.g. `"pkdata.train"`). Distinct names
/// make independent streams, so drawing more test examples never shifts the training set, and
/// the labels do not collide with the small integer labels other modules use.
public enum DataStreams {
    public static let train = label("pkdata.train")
    public static let test = label("pkdata.test")
    /// Teacher network weights (shared by train and test).
    public static let teacher = label("pkdata.teacher")
    /// The reference inputs that fix the teacher's output scale.
    public static let teacherScale = label("pkdata.teacher.scale")
    /// File loaders: the shuffle of a CSV file before the train/test split.
    public static let split = label("pkdata.split")
    /// IDX loader: which training / test examples are chosen.
    public static let trainChoice = label("pkdata.train.choice")
    public static let testChoice = label("pkdata.test.choice")

    /// FNV-1a, 64 bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the UTF-8 bytes.
    public static func label(_ name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    public static func random(seed: UInt64, _ label: UInt64) -> PortableRandom {
        PortableRandom.stream(seed: seed, label: label)
    }
}

/// Synthetic datasets. Each generator draws everything from the generator passed in, so the
/// same stream gives bit-identical data. `sin`/`cos`/`tanh` come from the platform libm: data
/// is bit-identical on one machine and libm, and may differ in the last bits across libms.
public enum Generators {
    /// `numpy.linspace(start, stop, n, endpoint:)`: `start + i·step`, and the last point exactly
    /// `stop` when `endpoint` (as numpy does).
    static func linspace(_ start: Double, _ stop: Double, _ n: Int, endpoint: Bool = true) -> [Double] {
        guard n > 0 else { return [] }
        if n == 1 { return [start] }
        let div = Double(endpoint ? n - 1 : n)
        let step = (stop - start) / div
        var out = (0..<n).map { start + Double($0) * step }
        if endpoint { out[n - 1] = stop }
        return out
    }

    /// Shuffles the rows (labels with them), then adds `noise·N(0, 1)` to every coordinate,
    /// row by row (scikit-learn's order: shuffle, then noise).
    static func shuffleAndPerturb(_ points: [(Double, Double)], _ labels: [Double], noise: Double,
                                  rng: inout PortableRandom) -> (x: [Double], y: [Double]) {
        let perm = rng.permutation(points.count)
        var x = [Double](), y = [Double]()
        x.reserveCapacity(2 * points.count)
        y.reserveCapacity(points.count)
        for i in perm {
            x.append(points[i].0 + noise * rng.normal())
            x.append(points[i].1 + noise * rng.normal())
            y.append(labels[i])
        }
        return (x, y)
    }

    /// Two interleaving half circles, scikit-learn's `make_moons(n, shuffle=True, noise)`.
    ///
    /// `n_out = ⌊n/2⌋` points of class 0 at `(cos t, sin t)`, `t = linspace(0, π, n_out)`;
    /// `n_in = n − n_out` points of class 1 at `(1 − cos t, ½ − sin t)`, `t = linspace(0, π, n_in)`;
    /// rows shuffled, then `noise·N(0, I₂)` added.
    public static func moons(count n: Int, noise: Double, rng: inout PortableRandom) -> Dataset {
        let nOut = n / 2, nIn = n - nOut
        var pts: [(Double, Double)] = [], labels: [Double] = []
        for t in linspace(0, .pi, nOut) { pts.append((cos(t), sin(t))); labels.append(0) }
        for t in linspace(0, .pi, nIn) { pts.append((1 - cos(t), 1 - sin(t) - 0.5)); labels.append(1) }
        let (x, y) = shuffleAndPerturb(pts, labels, noise: noise, rng: &rng)
        return Dataset(x: Matrix(rows: n, cols: 2, data: x), y: Matrix(rows: n, cols: 1, data: y),
                       task: .binary, numClasses: 2, name: "moons")
    }

    /// Two concentric circles, scikit-learn's `make_circles(n, shuffle=True, noise, factor)`.
    ///
    /// `n_out = ⌊n/2⌋` points of class 0 at `(cos t, sin t)`, `t = linspace(0, 2π, n_out, endpoint=False)`;
    /// `n_in = n − n_out` points of class 1 at `factor·(cos t, sin t)`, `t = linspace(0, 2π, n_in, endpoint=False)`;
    /// rows shuffled, then `noise·N(0, I₂)` added.
    public static func circles(count n: Int, noise: Double, factor: Double, rng: inout PortableRandom) -> Dataset {
        let nOut = n / 2, nIn = n - nOut
        var pts: [(Double, Double)] = [], labels: [Double] = []
        for t in linspace(0, 2 * .pi, nOut, endpoint: false) { pts.append((cos(t), sin(t))); labels.append(0) }
        for t in linspace(0, 2 * .pi, nIn, endpoint: false) { pts.append((factor * cos(t), factor * sin(t))); labels.append(1) }
        let (x, y) = shuffleAndPerturb(pts, labels, noise: noise, rng: &rng)
        return Dataset(x: Matrix(rows: n, cols: 2, data: x), y: Matrix(rows: n, cols: 1, data: y),
                       task: .binary, numClasses: 2, name: "circles")
    }

    /// `K` interleaved spiral arms in the plane.
    ///
    /// Example `i` has class `k = i mod K` (balanced, cyclic order); with `s ~ U[0, 1)`,
    /// radius `r = s`, angle `θ = 2π(turns·s + k/K)`, the point is
    /// `(r cos θ, r sin θ) + noise·N(0, I₂)`. Draw order per example: `s`, then the two normals.
    /// Binary (`y ∈ {0, 1}`) when `K = 2`, multiclass otherwise.
    public static func spirals(count n: Int, classes k: Int, turns: Double, noise: Double, rng: inout PortableRandom) -> Dataset {
        precondition(k >= 2, "spirals need at least 2 classes")
        var x = [Double](), y = [Double]()
        x.reserveCapacity(2 * n)
        for i in 0..<n {
            let c = i % k
            let s = rng.uniform()
            let theta = 2 * Double.pi * (turns * s + Double(c) / Double(k))
            x.append(s * cos(theta) + noise * rng.normal())
            x.append(s * sin(theta) + noise * rng.normal())
            y.append(Double(c))
        }
        return Dataset(x: Matrix(rows: n, cols: 2, data: x), y: Matrix(rows: n, cols: 1, data: y),
                       task: k == 2 ? .binary : .multiclass, numClasses: k, name: "spirals")
    }

    /// XOR: `x ~ U[−1, 1)²`, label 1 when `x₁·x₂ > 0` and 0 otherwise (computed on the clean
    /// point), then `noise·N(0, I₂)` added to the inputs (label noise near the axes).
    /// Draw order per example: `x₁`, `x₂`, then the two normals.
    public static func xor(count n: Int, noise: Double, rng: inout PortableRandom) -> Dataset {
        var x = [Double](), y = [Double]()
        x.reserveCapacity(2 * n)
        for _ in 0..<n {
            let a = rng.uniform(-1, 1), b = rng.uniform(-1, 1)
            y.append(a * b > 0 ? 1 : 0)
            x.append(a + noise * rng.normal())
            x.append(b + noise * rng.normal())
        }
        return Dataset(x: Matrix(rows: n, cols: 2, data: x), y: Matrix(rows: n, cols: 1, data: y),
                       task: .binary, numClasses: 2, name: "xor")
    }

    /// 1-D sine regression: `x ~ U[xMin, xMax)`, `y = sin(frequency·x) + noise·N(0, 1)`.
    /// Draw order per example: `x`, then the normal.
    public static func sine(count n: Int, xMin: Double, xMax: Double, frequency: Double, noise: Double,
                            rng: inout PortableRandom) -> Dataset {
        var x = [Double](), y = [Double]()
        x.reserveCapacity(n)
        y.reserveCapacity(n)
        for _ in 0..<n {
            let v = rng.uniform(xMin, xMax)
            x.append(v)
            y.append(sin(frequency * v) + noise * rng.normal())
        }
        return Dataset(x: Matrix(rows: n, cols: 1, data: x), y: Matrix(rows: n, cols: 1, data: y),
                       task: .regression, numClasses: 0, name: "sine")
    }

    /// A random fully connected network without biases that labels teacher–student data.
    ///
    /// Layer `l` has weights `W_l` (`out × in`) with entries `N(0, 1/in)`, drawn row by row from
    /// the `rng` given to `init`; hidden layers apply `activation`, the last is linear.
    /// `scale` is the root mean square of the raw outputs over 4096 reference inputs `N(0, I)`
    /// drawn from `scaleRNG`, so `teacher(x)/scale` has second moment ≈ 1 whatever the sizes.
    public struct Teacher: Sendable, Equatable {
        /// `square` is `φ(z) = z²`: with one hidden unit (`widths: [1]`) the teacher is the
        /// single-index quadratic `y ∝ (w·x)²`, a target kernels in high dimension learn slowly
        /// (Ghorbani et al. 2019; the `beyond-kernels` preset).
        public enum ActivationKind: String, Codable, Sendable { case tanh, relu, square }
        public let inputDim: Int
        public let widths: [Int]
        public let outputDim: Int
        public let activation: ActivationKind
        /// `weights[l]` is `out × in`.
        public let weights: [Matrix]
        public private(set) var scale: Double = 1

        public static let referenceCount = 4096

        public init(inputDim: Int, widths: [Int], outputDim: Int, activation: ActivationKind,
                    rng: inout PortableRandom, scaleRNG: inout PortableRandom) {
            precondition(inputDim >= 1 && outputDim >= 1 && widths.allSatisfy { $0 >= 1 }, "teacher sizes must be positive")
            self.inputDim = inputDim
            self.widths = widths
            self.outputDim = outputDim
            self.activation = activation
            let sizes = [inputDim] + widths + [outputDim]
            var w: [Matrix] = []
            for l in 0..<(sizes.count - 1) {
                let fanIn = sizes[l], fanOut = sizes[l + 1]
                let std = (1 / Double(fanIn)).squareRoot()
                w.append(Matrix(rows: fanOut, cols: fanIn, data: (0..<(fanIn * fanOut)).map { _ in std * rng.normal() }))
            }
            weights = w
            var sum = 0.0
            for _ in 0..<Teacher.referenceCount {
                let x = (0..<inputDim).map { _ in scaleRNG.normal() }
                for v in raw(x) { sum += v * v }
            }
            let rms = (sum / Double(Teacher.referenceCount * outputDim)).squareRoot()
            scale = rms > 0 && rms.isFinite ? rms : 1
        }

        /// The unscaled network output at one input.
        public func raw(_ x: [Double]) -> [Double] {
            var h = x
            for (l, w) in weights.enumerated() {
                var z = [Double](repeating: 0, count: w.rows)
                for r in 0..<w.rows {
                    var s = 0.0
                    for c in 0..<w.cols { s += w[r, c] * h[c] }
                    z[r] = s
                }
                if l < weights.count - 1 {
                    switch activation {
                    case .tanh: z = z.map { Foundation.tanh($0) }
                    case .relu: z = z.map { max($0, 0) }
                    case .square: z = z.map { $0 * $0 }
                    }
                }
                h = z
            }
            return h
        }

        /// `teacher(x)/scale`.
        public func callAsFunction(_ x: [Double]) -> [Double] { raw(x).map { $0 / scale } }
    }

    /// Teacher–student regression: `x ~ N(0, I_d)`, `y = teacher(x)/scale + noise·N(0, I_C)`.
    /// Draw order per example: the `d` input normals, then the `C` noise normals.
    public static func teacher(count n: Int, teacher: Teacher, noise: Double, rng: inout PortableRandom) -> Dataset {
        var x = [Double](), y = [Double]()
        x.reserveCapacity(n * teacher.inputDim)
        y.reserveCapacity(n * teacher.outputDim)
        for _ in 0..<n {
            let xi = (0..<teacher.inputDim).map { _ in rng.normal() }
            x.append(contentsOf: xi)
            for v in teacher(xi) { y.append(v + noise * rng.normal()) }
        }
        return Dataset(x: Matrix(rows: n, cols: teacher.inputDim, data: x),
                       y: Matrix(rows: n, cols: teacher.outputDim, data: y),
                       task: .regression, numClasses: 0, name: "teacher")
    }
}
