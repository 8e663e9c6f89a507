import Foundation
import PKNetworks
import PKNumerics

/// The infinite-channel NNGP and NTK of a small convolutional network, the CNTK (ntk-family
/// contract §3; Arora, Du, Hu, Li, Salakhutdinov & Wang 2019, "On Exact Computation with an
/// Infinitely Wide Neural Net"; neural-tangents `stax.Conv`, `GlobalAvgPool`, `Flatten`).
///
/// Priorities, in order: the contract's definitions in float64; self pairs exact (an image paired
/// with itself reads its variances from the diagonal of the same pixel-pair matrix, so `ρ = 1`,
/// `θ = 0` exactly, as §1's rule); the same bits on any number of threads (each image pair is
/// computed alone, in a fixed order); no trap and no NaN for finite inputs; then speed.
///
/// The net: images `H × W × C_in`; `L_c` blocks of [conv `q×q`, stride 1, `same` (zeros,
/// `(q−1)/2` on each side, `q` odd) or `valid` padding; activation]; readout `gap` (average over
/// pixels) or `flatten`, then a dense layer; `ntk` parameterization, conv fan-in `C_in q²`, one
/// `σ_w`, `σ_b`. The recursion on pixel-pair covariances (`δ` over the `q×q` window offsets,
/// terms leaving the image are 0, the `1/q²` kept at borders):
///
///     K⁰(p,p') = (1/C_in) Σ_c x_c(p) x'_c(p')
///     Σˡ(p,p') = (σ_w²/q²) Σ_δ Kˡ(p+δ, p'+δ) + σ_b²
///     Θˡ(p,p') = Σˡ(p,p') + (σ_w²/q²) Σ_δ [Σ̇ˡ⁻¹ ⊙ Θˡ⁻¹](p+δ, p'+δ)        (no second term at l = 0)
///     Kˡ⁺¹, Σ̇ˡ from §1's 2×2 Gaussian with variances Σˡ(x,x)(p,p), Σˡ(x',x')(p',p')
///     gap:     K̄ = (1/P²) Σ_{p,p'} K^{L_c},  Θ̄ = (1/P²) Σ_{p,p'} [Σ̇ ⊙ Θ]^{L_c−1}
///     flatten: K̄ = (1/P) Σ_p K^{L_c}(p,p),   Θ̄ = (1/P) Σ_p [Σ̇ ⊙ Θ]^{L_c−1}(p,p)
///     NNGP = σ_w² K̄ + σ_b²,  NTK = NNGP + σ_w² Θ̄                 (P: pixels after the last conv)
///
/// Cost per image pair: `gap` keeps all `P²` pixel pairs (memory `5·P²` doubles per thread,
/// time `O(P² q L_c)` window sums plus `P² L_c` Gaussian expectations); `flatten` only the
/// diagonal `(p, p)` (a window sum of a diagonal stays diagonal: `O(P q² L_c)`). The window sum
/// is separable: along the width for every row pair, then along the height.
///
/// Does *not* hold: the quadrature activations (tanh, sigmoid, softplus) cost `M² ≥ 9409`
/// activation evaluations per pixel pair and layer, and their 1e-10 error bound was measured for
/// variances up to 32 only; strides other than 1, pooling between convolutions and even filters
/// are not covered.
public struct ConvolutionalKernel: Sendable {
    /// Zero padding of every convolution.
    public enum Padding: String, CaseIterable, Sendable, Codable {
        /// The output keeps the input's size: `(q−1)/2` zeros on each side.
        case same
        /// No padding: each convolution removes `q − 1` rows and columns.
        case valid
    }

    /// What follows the last convolution block, before the dense layer.
    public enum Readout: String, CaseIterable, Sendable, Codable {
        /// Global average pooling over the pixels (all `P²` pixel pairs matter).
        case gap
        /// Flattening (only the diagonal pixel pairs `(p, p)` matter).
        case flatten
    }

    /// How one image is laid out in a row of the input matrix.
    public enum ImageLayout: String, CaseIterable, Sendable {
        /// `(h, w, c)` row-major: index `(h·W + w)·C + c` (the contract's images).
        case channelsLast
        /// `(c, h, w)` row-major: index `(c·H + h)·W + w` (the project's `conv2d` layers).
        case channelsFirst
    }

    /// The network's shape and scales.
    public struct Architecture: Sendable, Equatable {
        public var height: Int
        public var width: Int
        public var channels: Int
        /// Convolution blocks `L_c`.
        public var convLayers: Int
        /// Filter size `q` (odd).
        public var filter: Int
        public var padding: Padding
        public var readout: Readout
        public var activation: Activation
        /// Slope of leaky ReLU below 0.
        public var leakySlope: Double
        public var sigmaW: Double
        public var sigmaB: Double

        public init(height: Int, width: Int, channels: Int = 1, convLayers: Int = 2, filter: Int = 3,
                    padding: Padding = .same, readout: Readout = .gap, activation: Activation = .relu,
                    leakySlope: Double = 0.01, sigmaW: Double = 2.0.squareRoot(), sigmaB: Double = 0) {
            self.height = height
            self.width = width
            self.channels = channels
            self.convLayers = convLayers
            self.filter = filter
            self.padding = padding
            self.readout = readout
            self.activation = activation
            self.leakySlope = leakySlope
            self.sigmaW = sigmaW
            self.sigmaB = sigmaB
        }

        /// Features per image, `H·W·C_in`.
        public var features: Int { height * width * channels }

        /// The zeros before (and after) each row and column: `(q−1)/2` for `same`, 0 for `valid`.
        public var pad: Int { padding == .same ? (filter - 1) / 2 : 0 }

        /// `(height, width)` of the input and after each convolution: `L_c + 1` entries.
        public var sizes: [(height: Int, width: Int)] {
            var out = [(height, width)]
            for _ in 0..<max(convLayers, 0) {
                let (h, w) = out.last!
                out.append(padding == .same ? (h, w) : (h - filter + 1, w - filter + 1))
            }
            return out
        }

        /// Pixels after the last convolution, `P`.
        public var outputPixels: Int { let s = sizes.last!; return s.height * s.width }

        /// One line: `28×28×1, 2 × [conv 3×3 same, relu], gap, σ_w 1.414, σ_b 0`.
        public var summary: String {
            let slope = activation == .leakyRelu ? " (slope \(leakySlope))" : ""
            return "\(height)×\(width)×\(channels) images, \(convLayers) × [conv \(filter)×\(filter) \(padding.rawValue), "
                + "\(activation.rawValue)\(slope)], \(readout.rawValue) readout, σ_w \(String(format: "%.6g", sigmaW)), "
                + "σ_b \(String(format: "%.6g", sigmaB))"
        }
    }

    public let architecture: Architecture
    public let route: GaussianExpectation.Route

    /// Most convolution blocks.
    public static let maxConvLayers = 64
    /// Largest filter size.
    public static let maxFilter = 63
    /// Most bytes of pixel-pair buffers per thread (the `gap` readout keeps `5·P²` doubles).
    public static let maxScratchBytes = 1 << 30

    /// Refuses an architecture the recursion does not cover, with one line saying what to change:
    /// an even filter, images too small for `valid` padding, non-positive sizes, a negative or
    /// non-finite scale, or `gap` buffers above `maxScratchBytes`.
    public init(_ architecture: Architecture, route: GaussianExpectation.Route = .automatic) throws {
        let a = architecture
        guard a.height >= 1, a.width >= 1, a.channels >= 1 else {
            throw InfiniteWidthError("the image shape \(a.height)×\(a.width)×\(a.channels) must have positive sizes (height × width × channels)")
        }
        guard (1...Self.maxConvLayers).contains(a.convLayers) else {
            throw InfiniteWidthError("the number of convolution layers must be 1…\(Self.maxConvLayers), got \(a.convLayers)")
        }
        guard (1...Self.maxFilter).contains(a.filter) else {
            throw InfiniteWidthError("the filter size must be an odd number in 1…\(Self.maxFilter), got \(a.filter)")
        }
        guard a.filter % 2 == 1 else {
            throw InfiniteWidthError("the filter size must be odd (same padding puts (q−1)/2 zeros on each side), got \(a.filter); use \(a.filter - 1) or \(a.filter + 1)")
        }
        if a.padding == .valid {
            let need = a.convLayers * (a.filter - 1) + 1
            guard a.height >= need, a.width >= need else {
                throw InfiniteWidthError("valid padding with \(a.convLayers) convolution layer\(a.convLayers == 1 ? "" : "s") of \(a.filter)×\(a.filter) filters needs images of at least \(need)×\(need); these are \(a.height)×\(a.width): use --padding same, fewer layers or a smaller filter")
            }
        }
        guard a.sigmaW > 0, a.sigmaW.isFinite else { throw InfiniteWidthError("σ_w must be a finite number > 0, got \(a.sigmaW)") }
        guard a.sigmaB >= 0, a.sigmaB.isFinite else { throw InfiniteWidthError("σ_b must be a finite number ≥ 0, got \(a.sigmaB)") }
        guard a.leakySlope.isFinite else { throw InfiniteWidthError("the leaky slope must be finite, got \(a.leakySlope)") }
        if a.readout == .gap {
            let bytes = Self.scratchBytes(a)
            guard bytes <= Self.maxScratchBytes else {
                throw InfiniteWidthError("the gap readout keeps all P² = \(a.height * a.width)² pixel pairs of an image pair: \(bytes >> 20) MB per thread, above \(Self.maxScratchBytes >> 20) MB; use --readout flatten (P per pair) or smaller images")
            }
        }
        self.architecture = a
        self.route = route
    }

    /// Bytes of pixel-pair buffers one thread holds: `5·P₀²` doubles for `gap` (`P₀ = H·W`, the
    /// largest layer), `5·P₀` for `flatten`.
    public static func scratchBytes(_ a: Architecture) -> Int {
        let p = a.height.multipliedReportingOverflow(by: a.width).partialValue
        let (pp, over) = p.multipliedReportingOverflow(by: p)
        if a.readout == .flatten { return 8 * 5 * p }
        return over || pp > Int.max / 40 ? Int.max : 40 * pp
    }

    /// Pixel-pair Gaussian expectations for `pairs` image pairs (the work's dominant term):
    /// `Σ_l P_l²` per pair for `gap`, `Σ_l P_l` for `flatten`.
    public func expectationsPerPair() -> Int {
        architecture.sizes.dropFirst().reduce(0) { s, size in
            let p = size.height * size.width
            return s + (architecture.readout == .gap ? p * p : p)
        }
    }

    /// The NNGP and NTK between the images in the rows of `x1` (`n₁ × H·W·C_in`) and of `x2`
    /// (`n₂ × H·W·C_in`), or the Gram matrices of `x1` when `x2` is nil: both `n₁ × n₂`, scalar
    /// per output pair (the `C`-output kernel is `K ⊗ I_C`). `ntk: false` skips the NTK's terms
    /// (the result's `ntk` is nil). Throws `InfiniteWidthError` for a wrong column count, no rows,
    /// a non-finite input or a kernel that overflows.
    public func kernels(_ x1: Matrix, _ x2: Matrix? = nil, layout: ImageLayout = .channelsLast,
                        ntk: Bool = true) throws -> ConvolutionalKernels {
        let a = architecture
        for (name, x) in [("images", x1)] + (x2.map { [("second images", $0)] } ?? []) {
            guard x.cols == a.features else {
                throw InfiniteWidthError("the \(name) have \(x.cols) values per row, the architecture takes \(a.height)×\(a.width)×\(a.channels) = \(a.features)")
            }
            guard x.rows > 0 else { throw InfiniteWidthError("the \(name) have no rows") }
            if let i = x.data.firstIndex(where: { !$0.isFinite }) {
                throw InfiniteWidthError("the \(name) have a non-finite value (\(x.data[i])) in row \(i / a.features + 1), value \(i % a.features + 1)")
            }
        }
        let gram = x2 == nil
        let images1 = Self.pixelMajor(x1, a, layout)
        let images2 = x2.map { Self.pixelMajor($0, a, layout) } ?? images1
        let n1 = x1.rows, n2 = x2?.rows ?? n1
        let plan = Plan(a, route: route, ntk: ntk)

        // Each image's own variances Σˡ(x,x)(p,p), all layers in one row of `plan.varianceCount`
        // (layer l from `plan.varianceOffsets[l]`), by the diagonal recursion.
        func selfVariances(_ images: [Double], count: Int) -> [Double] {
            var out = [Double](repeating: 0, count: count * plan.varianceCount)
            out.withUnsafeMutableBufferPointer { o in
                let base = o.baseAddress!
                images.withUnsafeBufferPointer { im in
                    let ip = im.baseAddress!
                    Parallel.forEach(count) { i in
                        var scratch = [Double](repeating: 0, count: plan.diagonalScratchCount)
                        let x = ip + i * plan.inputValues
                        scratch.withUnsafeMutableBufferPointer { sp in
                            _ = plan.diagonalPair(x, x, nil, nil, sp.baseAddress!, record: base + i * plan.varianceCount)
                        }
                    }
                }
            }
            return out
        }
        let vars1 = selfVariances(images1, count: n1)
        let vars2 = gram ? vars1 : selfVariances(images2, count: n2)
        let largestVariance = max(vars1.max() ?? 0, gram ? 0 : vars2.max() ?? 0)

        // Image pairs in row order: the upper triangle of a Gram matrix, every pair of a cross
        // kernel; cut into chunks that depend on the count only (each pair is computed alone
        // anyway). Row i's first pair is number `rowStart[i]`.
        let pairCount = gram ? n1 * (n1 + 1) / 2 : n1 * n2
        let rowStart = (0...n1).map { i in gram ? i * n1 - i * (i - 1) / 2 : i * n2 }
        let chunks = Self.chunks(pairCount, parts: min(pairCount, Self.maxChunks))
        var nngp = [Double](repeating: 0, count: n1 * n2)
        var theta = [Double](repeating: 0, count: ntk ? n1 * n2 : 0)
        let vc = plan.varianceCount
        nngp.withUnsafeMutableBufferPointer { kp in
            theta.withUnsafeMutableBufferPointer { tp in
                images1.withUnsafeBufferPointer { i1 in
                    images2.withUnsafeBufferPointer { i2 in
                        vars1.withUnsafeBufferPointer { v1 in
                            vars2.withUnsafeBufferPointer { v2 in
                                let (kBase, tBase, p1, p2) = (kp.baseAddress!, tp.baseAddress, i1.baseAddress!, i2.baseAddress!)
                                let (vb1, vb2) = (v1.baseAddress!, v2.baseAddress!)
                                Parallel.forEach(chunks.count) { c in
                                    var full = a.readout == .gap ? FullScratch(plan) : nil
                                    var diagonal = [Double](repeating: 0, count: plan.diagonalScratchCount)
                                    diagonal.withUnsafeMutableBufferPointer { dp in
                                        guard let first = chunks[c].first else { return }
                                        // The chunk's first pair: the last row starting at or before it.
                                        var (lo, hi) = (0, n1 - 1)
                                        while lo < hi {
                                            let mid = (lo + hi + 1) / 2
                                            if rowStart[mid] <= first { lo = mid } else { hi = mid - 1 }
                                        }
                                        var (i, j) = (lo, (gram ? lo : 0) + first - rowStart[lo])
                                        for _ in chunks[c] {
                                            defer {
                                                j += 1
                                                if j == n2 { i += 1; j = gram ? i : 0 }
                                            }
                                            let x = p1 + i * plan.inputValues, y = p2 + j * plan.inputValues
                                            let same = gram && i == j
                                            let vx = same ? nil : UnsafePointer(vb1 + i * vc), vy = same ? nil : UnsafePointer(vb2 + j * vc)
                                            let r = a.readout == .gap
                                                ? plan.fullPair(x, y, vx, vy, &full!)
                                                : plan.diagonalPair(x, y, vx, vy, dp.baseAddress!, record: nil)
                                            kBase[i * n2 + j] = r.0
                                            if ntk { tBase![i * n2 + j] = r.1 }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if gram {
            for i in 0..<n1 {
                for j in 0..<i {
                    nngp[i * n2 + j] = nngp[j * n2 + i]
                    if ntk { theta[i * n2 + j] = theta[j * n2 + i] }
                }
            }
        }
        let k = Matrix(rows: n1, cols: n2, data: nngp)
        let t = ntk ? Matrix(rows: n1, cols: n2, data: theta) : nil
        guard k.isFinite, t?.isFinite ?? true else { throw InfiniteWidthKernel.overflow }
        return ConvolutionalKernels(nngp: k, ntk: t, largestVariance: largestVariance)
    }

    /// Most chunks of image pairs (each allocates one thread's buffers once).
    static let maxChunks = 256

    /// `0..<n` in `parts` contiguous ranges of nearly equal length.
    static func chunks(_ n: Int, parts: Int) -> [Range<Int>] {
        (0..<parts).map { p in (p * n / parts)..<((p + 1) * n / parts) }
    }

    /// The images as `n` blocks of `P₀ × C_in` values, pixel-major (channels last).
    static func pixelMajor(_ x: Matrix, _ a: Architecture, _ layout: ImageLayout) -> [Double] {
        guard layout == .channelsFirst, a.channels > 1 else { return x.data }
        let p = a.height * a.width, c = a.channels
        var out = [Double](repeating: 0, count: x.data.count)
        for r in 0..<x.rows {
            let base = r * a.features
            for ch in 0..<c { for q in 0..<p { out[base + q * c + ch] = x.data[base + ch * p + q] } }
        }
        return out
    }
}

/// The CNTK's kernels between two image sets, each `n₁ × n₂` (row `i`: `X₁`'s image `i`, column
/// `j`: `X₂`'s image `j`; scalar per output pair).
public struct ConvolutionalKernels: Sendable, Equatable {
    /// The NNGP: the covariance of the network's outputs at initialization.
    public let nngp: Matrix
    /// The NTK (nil when not asked for).
    public let ntk: Matrix?
    /// The largest pre-activation variance `Σˡ(x,x)(p,p)` an activation saw (the quadrature's
    /// error bound, 1e-10, holds up to 32).
    public let largestVariance: Double
}

// MARK: - The recursion

extension ConvolutionalKernel {
    /// Everything the per-pair recursion needs, fixed for one architecture.
    struct Plan {
        let a: Architecture
        let route: GaussianExpectation.Route
        let ntk: Bool
        /// `(H_l, W_l)` for `l = 0…L_c`.
        let sizes: [(height: Int, width: Int)]
        let inputValues: Int
        let channels: Double
        /// `σ_w²/q²`.
        let scale: Double
        let sw2: Double
        let sb2: Double

        init(_ a: Architecture, route: GaussianExpectation.Route, ntk: Bool) {
            self.a = a
            self.route = route
            self.ntk = ntk
            sizes = a.sizes
            inputValues = a.features
            channels = Double(a.channels)
            sw2 = a.sigmaW * a.sigmaW
            sb2 = a.sigmaB * a.sigmaB
            scale = sw2 / Double(a.filter * a.filter)
        }

        @inline(__always)
        func expectation(q1: Double, q2: Double, c: Double) -> GaussianExpectation.Pair {
            if route == .automatic {
                switch a.activation {
                case .relu: return GaussianExpectation.arcCosine(slope: 0, q1: q1, q2: q2, c: c)
                case .leakyRelu: return GaussianExpectation.arcCosine(slope: a.leakySlope, q1: q1, q2: q2, c: c)
                default: break
                }
            }
            return GaussianExpectation.pair(a.activation, leakySlope: a.leakySlope, q1: q1, q2: q2, c: c, route: route)
        }

        /// The readout's `(NNGP, NTK)` from the last layer's sums `Σ K`, `Σ Σ̇⊙Θ` over `count` terms.
        func readout(_ sumK: Double, _ sumG: Double, count: Int) -> (Double, Double) {
            let nngp = sw2 * (sumK / Double(count)) + sb2
            return (nngp, nngp + sw2 * (sumG / Double(count)))
        }

        // MARK: Diagonal (flatten readout, and every image's own variances)

        /// Doubles of one image's variances over all layers (`Σ_l P_{l+1}`).
        var varianceCount: Int { varianceOffsets.last! }
        /// Where layer `l`'s variances start in a row of `varianceCount`.
        var varianceOffsets: [Int] {
            var out = [0]
            for l in 0..<a.convLayers { out.append(out[l] + sizes[l + 1].height * sizes[l + 1].width) }
            return out
        }
        /// Doubles of the diagonal recursion's buffers (`k`, `g`, `Σ`, `Θ`, a temporary: `P₀` each).
        var diagonalScratchCount: Int { 5 * max(sizes[0].height * sizes[0].width, 1) }

        /// The pair `(x, y)` on the diagonal pixel pairs `(p, p)`. `vx`, `vy` are the images' own
        /// variances (rows of `varianceCount`); nil for an image paired with itself, which reads
        /// them from its own `Σˡ(p, p)` (and writes them to `record` when given). `scratch` holds
        /// `diagonalScratchCount` doubles. Returns the flatten readout's `(NNGP, NTK)` (NTK 0 when
        /// `ntk` is off).
        func diagonalPair(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ vx: UnsafePointer<Double>?,
                          _ vy: UnsafePointer<Double>?, _ scratch: UnsafeMutablePointer<Double>,
                          record: UnsafeMutablePointer<Double>?) -> (Double, Double) {
            let c = a.channels
            let p0 = max(sizes[0].height * sizes[0].width, 1)
            let k = scratch, g = scratch + p0, sigma = scratch + 2 * p0, theta = scratch + 3 * p0, temp = scratch + 4 * p0
            for p in 0..<(sizes[0].height * sizes[0].width) {
                var acc = 0.0
                for ch in 0..<c { acc += x[p * c + ch] * y[p * c + ch] }
                k[p] = acc / channels
            }
            var sumK = 0.0, sumG = 0.0, count = 1
            var offset = 0
            for l in 0..<a.convLayers {
                let (hi, wi) = sizes[l], (ho, wo) = sizes[l + 1]
                let po = ho * wo
                windowDiagonal(k, into: sigma, temp: temp, hi: hi, wi: wi, ho: ho, wo: wo)
                for p in 0..<po { sigma[p] = scale * sigma[p] + sb2 }
                if ntk {
                    if l == 0 {
                        theta.update(from: sigma, count: po)
                    } else {
                        windowDiagonal(g, into: theta, temp: temp, hi: hi, wi: wi, ho: ho, wo: wo)
                        for p in 0..<po { theta[p] = sigma[p] + scale * theta[p] }
                    }
                }
                if let record { (record + offset).update(from: sigma, count: po) }
                let v1 = vx.map { $0 + offset } ?? UnsafePointer(sigma), v2 = vy.map { $0 + offset } ?? UnsafePointer(sigma)
                let last = l == a.convLayers - 1
                if last { sumK = 0; sumG = 0; count = po }
                for p in 0..<po {
                    let e = expectation(q1: v1[p], q2: v2[p], c: sigma[p])
                    if last {
                        sumK += e.value
                        if ntk { sumG += e.derivative * theta[p] }
                    } else {
                        k[p] = e.value
                        if ntk { g[p] = e.derivative * theta[p] }
                    }
                }
                offset += po
            }
            let r = readout(sumK, sumG, count: count)
            return (r.0, ntk ? r.1 : 0)
        }

        /// `out[ho·wo + wo] = Σ_a Σ_b m[(ho+a−pad)·wi + wo+b−pad]` over the offsets inside the image:
        /// first along the width (b ascending), then along the height (a ascending) — the order of
        /// `window`'s diagonal, so that the two give the same bits.
        func windowDiagonal(_ m: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>,
                            temp t: UnsafeMutablePointer<Double>, hi: Int, wi: Int, ho: Int, wo: Int) {
            let q = a.filter, pad = a.pad
            t.update(repeating: 0, count: hi * wo)
            out.update(repeating: 0, count: ho * wo)
            for h in 0..<hi {
                for b in 0..<q {
                    let off = b - pad
                    let lo = max(0, -off), up = min(wo, wi - off)
                    guard lo < up else { continue }
                    for w in lo..<up { t[h * wo + w] += m[h * wi + w + off] }
                }
            }
            for h in 0..<ho {
                for aa in 0..<q {
                    let src = h + aa - pad
                    guard src >= 0 && src < hi else { continue }
                    for w in 0..<wo { out[h * wo + w] += t[src * wo + w] }
                }
            }
        }

        // MARK: Full pixel-pair matrices (gap readout)

        /// The pair `(x, y)` on all pixel pairs; matrices laid out `[h][h'][w][w']`. `vx`, `vy`
        /// as in `diagonalPair` (nil: read from the pair's own diagonal). Returns the gap
        /// readout's `(NNGP, NTK)`.
        func fullPair(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ vx: UnsafePointer<Double>?,
                      _ vy: UnsafePointer<Double>?, _ s: inout FullScratch) -> (Double, Double) {
            let offsets = varianceOffsets
            let c = a.channels
            let (h0, w0) = sizes[0]
            var result = (0.0, 0.0)
            withUnsafeScratch(&s) { k, g, sigma, theta, t, diag1, diag2 in
                // K⁰ in [h][h'][w][w'] order.
                for h in 0..<h0 {
                    for h2 in 0..<h0 {
                        let row = (h * h0 + h2) * w0 * w0
                        for w in 0..<w0 {
                            let px = x + (h * w0 + w) * c
                            let dst = k + row + w * w0
                            for w2 in 0..<w0 {
                                let py = y + (h2 * w0 + w2) * c
                                var acc = 0.0
                                for ch in 0..<c { acc += px[ch] * py[ch] }
                                dst[w2] = acc / channels
                            }
                        }
                    }
                }
                for l in 0..<a.convLayers {
                    let (hi, wi) = sizes[l], (ho, wo) = sizes[l + 1]
                    let count = ho * ho * wo * wo
                    window(k, into: sigma, temp: t, hi: hi, wi: wi, ho: ho, wo: wo)
                    for i in 0..<count { sigma[i] = scale * sigma[i] + sb2 }
                    if ntk {
                        if l == 0 {
                            theta.update(from: sigma, count: count)
                        } else {
                            window(g, into: theta, temp: t, hi: hi, wi: wi, ho: ho, wo: wo)
                            for i in 0..<count { theta[i] = sigma[i] + scale * theta[i] }
                        }
                    }
                    // The variances of pixel (h, w): the images' own, or this matrix's diagonal.
                    let po = ho * wo
                    for h in 0..<ho {
                        for w in 0..<wo {
                            let d = sigma[((h * ho + h) * wo + w) * wo + w]
                            diag1[h * wo + w] = vx?[offsets[l] + h * wo + w] ?? d
                            diag2[h * wo + w] = vy?[offsets[l] + h * wo + w] ?? d
                        }
                    }
                    let last = l == a.convLayers - 1
                    var sumK = 0.0, sumG = 0.0
                    for h in 0..<ho {
                        for h2 in 0..<ho {
                            let row = (h * ho + h2) * wo * wo
                            var rowK = 0.0, rowG = 0.0
                            for w in 0..<wo {
                                let q1 = diag1[h * wo + w]
                                let base = row + w * wo
                                for w2 in 0..<wo {
                                    let i = base + w2
                                    let e = expectation(q1: q1, q2: diag2[h2 * wo + w2], c: sigma[i])
                                    if last {
                                        rowK += e.value
                                        if ntk { rowG += e.derivative * theta[i] }
                                    } else {
                                        k[i] = e.value
                                        if ntk { g[i] = e.derivative * theta[i] }
                                    }
                                }
                            }
                            sumK += rowK
                            sumG += rowG
                        }
                    }
                    if last {
                        let r = readout(sumK, sumG, count: po * po)
                        result = (r.0, ntk ? r.1 : 0)
                    }
                }
            }
            return result
        }

        /// `out[ho][ho'][wo][wo'] = Σ_a Σ_b m[ho+a−pad][ho'+a−pad][wo+b−pad][wo'+b−pad]` over the
        /// offsets that keep both pixels inside the image: along the width into `t`
        /// (`[hi][hi'][wo][wo']`, b ascending), then along the height (a ascending).
        func window(_ m: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>,
                    temp t: UnsafeMutablePointer<Double>, hi: Int, wi: Int, ho: Int, wo: Int) {
            let q = a.filter, pad = a.pad
            let slabIn = wi * wi, slabOut = wo * wo
            t.update(repeating: 0, count: hi * hi * slabOut)
            out.update(repeating: 0, count: ho * ho * slabOut)
            for hh in 0..<(hi * hi) {
                let src = m + hh * slabIn, dst = t + hh * slabOut
                for b in 0..<q {
                    let off = b - pad
                    let lo = max(0, -off), hiW = min(wo, wi - off)
                    guard lo < hiW else { continue }
                    for w in lo..<hiW {
                        let s = src + (w + off) * wi + off, d = dst + w * wo
                        for w2 in lo..<hiW { d[w2] += s[w2] }
                    }
                }
            }
            for h in 0..<ho {
                for h2 in 0..<ho {
                    let d = out + (h * ho + h2) * slabOut
                    for aa in 0..<q {
                        let s1 = h + aa - pad, s2 = h2 + aa - pad
                        guard s1 >= 0, s1 < hi, s2 >= 0, s2 < hi else { continue }
                        let s = t + (s1 * hi + s2) * slabOut
                        for i in 0..<slabOut { d[i] += s[i] }
                    }
                }
            }
        }

        private func withUnsafeScratch(_ s: inout FullScratch, _ body: (UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                                       UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                                       UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                                       UnsafeMutablePointer<Double>) -> Void) {
            s.k.withUnsafeMutableBufferPointer { k in
                s.g.withUnsafeMutableBufferPointer { g in
                    s.sigma.withUnsafeMutableBufferPointer { sigma in
                        s.theta.withUnsafeMutableBufferPointer { theta in
                            s.temp.withUnsafeMutableBufferPointer { t in
                                s.diag1.withUnsafeMutableBufferPointer { d1 in
                                    s.diag2.withUnsafeMutableBufferPointer { d2 in
                                        body(k.baseAddress!, g.baseAddress!, sigma.baseAddress!, theta.baseAddress!,
                                             t.baseAddress!, d1.baseAddress!, d2.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One thread's buffers for the full recursion (`P₀²` doubles each, `P₀` for the variances).
    struct FullScratch {
        var k, g, sigma, theta, temp, diag1, diag2: [Double]
        init(_ plan: Plan) {
            let p = max(plan.sizes[0].height * plan.sizes[0].width, 1)
            k = [Double](repeating: 0, count: p * p)
            sigma = k; temp = k
            g = plan.ntk ? k : [0]
            theta = plan.ntk ? k : [0]
            diag1 = [Double](repeating: 0, count: p)
            diag2 = diag1
        }
    }
}
