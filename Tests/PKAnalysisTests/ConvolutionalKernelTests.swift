import Foundation
import Testing
import PKNetworks
import PKNumerics
@testable import PKAnalysis

/// The CNTK against the ntk-family contract §3: oracle 3 (neural-tangents 0.6.5, float64), a
/// direct implementation of the recursion (4-D loops over pixel pairs and window offsets, no
/// separable sums), the MLP kernels of §1 as the special case of 1×1 filters, exact self pairs,
/// the same bits on 1 and 2 threads, layouts, and bad inputs.
@Suite("CNTK", .serialized)
struct ConvolutionalKernelTests {
    /// Contract §3: relative to `max |entry|` of the expected matrix.
    static let oracleTolerance = 1e-12
    /// Against the direct recursion and the MLP special case: the same formulas summed in
    /// another order (round-off only; an inexact self variance alone would show ~1e-9 in relu's NTK).
    static let roundOffTolerance = 1e-12
    /// Duplicate images, and a cross kernel against the Gram matrix of the same images: the same
    /// arithmetic, so only a variance read by a different route could separate them (~1e-9).
    static let duplicateTolerance = 1e-14

    /// Oracle 3's images: `x_i[h,w,c] = sin(1 + 0.9i + 0.7h + 1.3w + 2.1c)`, 4×4×2, channel last.
    static let oracleImages: Matrix = {
        var data: [Double] = []
        for i in 0..<3 { for h in 0..<4 { for w in 0..<4 { for c in 0..<2 {
            data.append(sin(1 + 0.9 * Double(i) + 0.7 * Double(h) + 1.3 * Double(w) + 2.1 * Double(c)))
        } } } }
        return Matrix(rows: 3, cols: 32, data: data)
    }()

    struct Case: Sendable, CustomTestStringConvertible {
        let layers: Int
        let padding: ConvolutionalKernel.Padding
        let readout: ConvolutionalKernel.Readout
        let nngp: [Double]
        let ntk: [Double]
        var testDescription: String { "L_c=\(layers) \(padding.rawValue) \(readout.rawValue)" }
    }

    /// Upper triangles 11 12 13 22 23 33.
    static let oracle: [Case] = [
        Case(layers: 2, padding: .same, readout: .gap,
             nngp: [0.26308304307, 0.2519269373353, 0.2376879725693, 0.256068602475, 0.2492145347199, 0.2576843592483],
             ntk: [0.4516360146252, 0.4073584892277, 0.3555229350695, 0.4375852998243, 0.4017581621102, 0.4408146907098]),
        Case(layers: 2, padding: .same, readout: .flatten,
             nngp: [0.5281175397757, 0.38842203183, 0.2244699245463, 0.51504643035, 0.3820956848852, 0.5180725502432],
             ntk: [1.584352619327, 0.8294212855581, 0.256345577149, 1.54513929105, 0.8110081365891, 1.55421765073]),
        Case(layers: 1, padding: .valid, readout: .gap,
             nngp: [0.7053579473974, 0.5781081161695, 0.3276709352101, 0.6724614331247, 0.5600525322483, 0.6800395640006],
             ntk: [1.224395667382, 0.9506240426632, 0.4500338292087, 1.158602638837, 0.9145128748209, 1.173758900588]),
        Case(layers: 1, padding: .valid, readout: .flatten,
             nngp: [1.008567762527, 0.6928623657157, 0.2098694943703, 0.991371844513, 0.6835711480957, 0.9953529074732],
             ntk: [2.017135525053, 1.136743120677, 0.1102000864187, 1.982743689026, 1.118160685437, 1.990705814946]),
    ]

    static func upper(_ m: Matrix) -> [Double] { (0..<m.rows).flatMap { i in (i..<m.cols).map { m[i, $0] } } }
    static func maxAbs(_ v: [Double]) -> Double { v.map(abs).max() ?? 0 }

    static func expectClose(_ got: [Double], _ want: [Double], _ tolerance: Double, _ what: String) {
        #expect(got.count == want.count, "\(what): \(got.count) entries, expected \(want.count)")
        let scale = maxAbs(want)
        for (k, (g, e)) in zip(got, want).enumerated() {
            #expect(abs(g - e) <= tolerance * scale, "\(what) entry \(k): \(g) vs \(e) (diff \(abs(g - e)))")
        }
    }

    @Test(arguments: oracle)
    func oracle3(_ c: Case) throws {
        let arch = ConvolutionalKernel.Architecture(height: 4, width: 4, channels: 2, convLayers: c.layers, filter: 3,
                                                    padding: c.padding, readout: c.readout, activation: .relu,
                                                    sigmaW: 2.0.squareRoot(), sigmaB: 0)
        let k = try ConvolutionalKernel(arch).kernels(Self.oracleImages)
        Self.expectClose(Self.upper(k.nngp), c.nngp, Self.oracleTolerance, "\(c.testDescription) NNGP")
        Self.expectClose(Self.upper(try #require(k.ntk)), c.ntk, Self.oracleTolerance, "\(c.testDescription) NTK")
        // The NNGP alone is the same computation without the NTK's terms.
        let alone = try ConvolutionalKernel(arch).kernels(Self.oracleImages, ntk: false)
        #expect(alone.ntk == nil)
        Self.expectClose(Self.upper(alone.nngp), c.nngp, Self.oracleTolerance, "\(c.testDescription) NNGP alone")
    }

    // MARK: - A direct implementation of the recursion

    /// The recursion of §3 written as plainly as possible: 4-D arrays `[h][w][h'][w']`, the window
    /// sum as a loop over both offsets per entry, the variances of image `x` taken from the
    /// diagonal of its own pixel-pair matrices (x against itself, computed the same way).
    static func direct(_ a: ConvolutionalKernel.Architecture, _ x: [Double], _ y: [Double]) -> (nngp: Double, ntk: Double) {
        let (hh, ww, cc, q) = (a.height, a.width, a.channels, a.filter)
        let pad = a.padding == .same ? (q - 1) / 2 : 0
        let sw2 = a.sigmaW * a.sigmaW, sb2 = a.sigmaB * a.sigmaB
        func input(_ u: [Double], _ v: [Double]) -> [[[[Double]]]] {
            (0..<hh).map { h in (0..<ww).map { w in (0..<hh).map { h2 in (0..<ww).map { w2 in
                (0..<cc).reduce(0.0) { $0 + u[(h * ww + w) * cc + $1] * v[(h2 * ww + w2) * cc + $1] } / Double(cc)
            } } } }
        }
        func window(_ m: [[[[Double]]]], _ hi: Int, _ wi: Int, _ ho: Int, _ wo: Int) -> [[[[Double]]]] {
            (0..<ho).map { h in (0..<wo).map { w in (0..<ho).map { h2 in (0..<wo).map { w2 in
                var s = 0.0
                for da in 0..<q {
                    for db in 0..<q {
                        let (i, j, i2, j2) = (h + da - pad, w + db - pad, h2 + da - pad, w2 + db - pad)
                        if i >= 0 && i < hi && j >= 0 && j < wi && i2 >= 0 && i2 < hi && j2 >= 0 && j2 < wi { s += m[i][j][i2][j2] }
                    }
                }
                return s
            } } } }
        }
        var kxy = input(x, y), kxx = input(x, x), kyy = input(y, y)
        var g: [[[[Double]]]]? = nil
        var (hi, wi) = (hh, ww)
        for _ in 0..<a.convLayers {
            let (ho, wo) = a.padding == .same ? (hi, wi) : (hi - q + 1, wi - q + 1)
            func sigma(_ m: [[[[Double]]]]) -> [[[[Double]]]] {
                window(m, hi, wi, ho, wo).map { $0.map { $0.map { $0.map { sw2 / Double(q * q) * $0 + sb2 } } } }
            }
            let sxy = sigma(kxy), sxx = sigma(kxx), syy = sigma(kyy)
            var theta = sxy
            if let g {
                let wg = window(g, hi, wi, ho, wo)
                for h in 0..<ho { for w in 0..<wo { for h2 in 0..<ho { for w2 in 0..<wo {
                    theta[h][w][h2][w2] += sw2 / Double(q * q) * wg[h][w][h2][w2]
                } } } }
            }
            func e(_ s: [[[[Double]]]], _ v1: [[[[Double]]]], _ v2: [[[[Double]]]], _ h: Int, _ w: Int, _ h2: Int, _ w2: Int) -> GaussianExpectation.Pair {
                GaussianExpectation.pair(a.activation, leakySlope: a.leakySlope, q1: v1[h][w][h][w], q2: v2[h2][w2][h2][w2], c: s[h][w][h2][w2])
            }
            var nk = sxy, ng = sxy, nxx = sxx, nyy = syy
            for h in 0..<ho { for w in 0..<wo { for h2 in 0..<ho { for w2 in 0..<wo {
                let p = e(sxy, sxx, syy, h, w, h2, w2)
                nk[h][w][h2][w2] = p.value
                ng[h][w][h2][w2] = p.derivative * theta[h][w][h2][w2]
                nxx[h][w][h2][w2] = e(sxx, sxx, sxx, h, w, h2, w2).value
                nyy[h][w][h2][w2] = e(syy, syy, syy, h, w, h2, w2).value
            } } } }
            (kxy, kxx, kyy, g) = (nk, nxx, nyy, ng)
            (hi, wi) = (ho, wo)
        }
        var sumK = 0.0, sumG = 0.0, count = 0
        for h in 0..<hi { for w in 0..<wi { for h2 in 0..<hi { for w2 in 0..<wi {
            guard a.readout == .gap || (h == h2 && w == w2) else { continue }
            sumK += kxy[h][w][h2][w2]
            sumG += g![h][w][h2][w2]
            count += 1
        } } } }
        let nngp = sw2 * sumK / Double(count) + sb2
        return (nngp, nngp + sw2 * sumG / Double(count))
    }

    /// Deterministic non-symmetric test images: `n` rows of `H·W·C` values.
    static func images(_ n: Int, _ a: ConvolutionalKernel.Architecture, phase: Double) -> Matrix {
        let d = a.features
        var data: [Double] = []
        for k in 0..<(n * d) {
            let a: Double = 0.8 * sin(0.37 * Double(k) + phase)
            let b: Double = 0.3 * cos(1.9 * Double(k * k % 17) + phase)
            data.append(a + b)
        }
        return Matrix(rows: n, cols: d, data: data)
    }

    struct Variant: Sendable, CustomTestStringConvertible {
        let height, width, channels, layers, filter: Int
        let padding: ConvolutionalKernel.Padding
        let readout: ConvolutionalKernel.Readout
        let activation: Activation
        let sigmaB: Double
        var testDescription: String {
            "\(height)×\(width)×\(channels) L_c=\(layers) q=\(filter) \(padding.rawValue) \(readout.rawValue) \(activation.rawValue) σ_b=\(sigmaB)"
        }
        var architecture: ConvolutionalKernel.Architecture {
            .init(height: height, width: width, channels: channels, convLayers: layers, filter: filter, padding: padding,
                  readout: readout, activation: activation, leakySlope: 0.2, sigmaW: 1.3, sigmaB: sigmaB)
        }
    }

    /// Non-square images, filters 3 and 5, 1–3 layers, bias, and other activations than relu.
    static let variants: [Variant] = [
        Variant(height: 5, width: 4, channels: 3, layers: 1, filter: 3, padding: .valid, readout: .gap, activation: .relu, sigmaB: 0.3),
        Variant(height: 5, width: 4, channels: 3, layers: 2, filter: 3, padding: .same, readout: .gap, activation: .erf, sigmaB: 0.3),
        Variant(height: 4, width: 5, channels: 1, layers: 3, filter: 3, padding: .same, readout: .flatten, activation: .leakyRelu, sigmaB: 0.1),
        Variant(height: 6, width: 5, channels: 2, layers: 1, filter: 5, padding: .valid, readout: .flatten, activation: .gelu, sigmaB: 0),
        Variant(height: 3, width: 4, channels: 2, layers: 2, filter: 5, padding: .same, readout: .gap, activation: .relu, sigmaB: 0),
        Variant(height: 7, width: 5, channels: 1, layers: 2, filter: 3, padding: .valid, readout: .gap, activation: .tanh, sigmaB: 0.2),
    ]

    @Test(arguments: variants)
    func againstTheDirectRecursion(_ v: Variant) throws {
        let a = v.architecture
        let x1 = Self.images(2, a, phase: 0.1), x2 = Self.images(3, a, phase: 1.7)
        let k = try ConvolutionalKernel(a).kernels(x1, x2)
        var nngp: [Double] = [], ntk: [Double] = []
        for i in 0..<2 {
            for j in 0..<3 {
                let r = Self.direct(a, x1.row(i), x2.row(j))
                nngp.append(r.nngp)
                ntk.append(r.ntk)
            }
        }
        Self.expectClose(k.nngp.data, nngp, Self.roundOffTolerance, "\(v.testDescription) NNGP")
        Self.expectClose(try #require(k.ntk).data, ntk, Self.roundOffTolerance, "\(v.testDescription) NTK")
        // Gram: the self pairs too.
        let gram = try ConvolutionalKernel(a).kernels(x1)
        let selfPair = Self.direct(a, x1.row(1), x1.row(1))
        Self.expectClose([gram.nngp[1, 1], try #require(gram.ntk)[1, 1]], [selfPair.nngp, selfPair.ntk],
                         Self.roundOffTolerance, "\(v.testDescription) self pair")
    }

    // MARK: - The MLP of §1 as the special case of 1×1 filters

    /// With `q = 1` every pixel is an MLP `[C, ∞ × L_c, 1]` on its channel vector: `flatten`
    /// averages the MLP kernels of the pixel pairs `(p, p)`, `gap` those of all `(p, p')`.
    @Test(arguments: [Activation.relu, .erf, .gelu], [ConvolutionalKernel.Readout.gap, .flatten])
    func oneByOneFiltersAreMLPs(_ activation: Activation, _ readout: ConvolutionalKernel.Readout) throws {
        let a = ConvolutionalKernel.Architecture(height: 3, width: 2, channels: 3, convLayers: 2, filter: 1, padding: .same,
                                                 readout: readout, activation: activation, sigmaW: 1.5, sigmaB: 0.1)
        let x = Self.images(3, a, phase: 0.4)
        let cntk = try ConvolutionalKernel(a).kernels(x)
        let mlp = try InfiniteWidthKernel(spec: ModelSpec(layers: [3, 64, 64, 1], activation: activation, parameterization: .ntk,
                                                          sigmaW: 1.5, sigmaB: 0.1, bias: true))
        let pixels = 6
        func pixelRows(_ i: Int) -> Matrix { Matrix(rows: pixels, cols: 3, data: x.row(i)) }
        var nngp: [Double] = [], ntk: [Double] = []
        for i in 0..<3 {
            for j in 0..<3 {
                let k = try mlp.kernels(pixelRows(i), pixelRows(j))
                let pairs = readout == .gap ? (0..<(pixels * pixels)).map { $0 } : (0..<pixels).map { $0 * pixels + $0 }
                nngp.append(pairs.reduce(0.0) { $0 + k.nngp.data[$1] } / Double(pairs.count))
                ntk.append(pairs.reduce(0.0) { $0 + k.ntk.data[$1] } / Double(pairs.count))
            }
        }
        Self.expectClose(cntk.nngp.data, nngp, Self.roundOffTolerance, "\(activation) \(readout) NNGP")
        Self.expectClose(try #require(cntk.ntk).data, ntk, Self.roundOffTolerance, "\(activation) \(readout) NTK")
    }

    /// 1×1 images (channels = features) under 1×1 filters are the MLP `[3, ∞, ∞, 1]`: §1's oracle
    /// 1a numbers (relu, σ_w = 1.5, σ_b = 0.1) through the CNTK, for both readouts.
    @Test func oneByOneImagesAreTheMLP() throws {
        let x = InfiniteWidthKernelTests.inputs
        for readout in ConvolutionalKernel.Readout.allCases {
            let a = ConvolutionalKernel.Architecture(height: 1, width: 1, channels: 3, convLayers: 2, filter: 1, padding: .valid,
                                                     readout: readout, activation: .relu, sigmaW: 1.5, sigmaB: 0.1)
            let k = try ConvolutionalKernel(a).kernels(x)
            // Oracle 1a, relu NTK (ntk parameterization) and NNGP, layers [3, 512, 512, 1].
            Self.expectClose(Self.upper(k.nngp), InfiniteWidthKernelTests.reluNNGP, Self.oracleTolerance, "\(readout) NNGP")
            Self.expectClose(Self.upper(try #require(k.ntk)),
                             [3.088984375, 0.5760940301407, 0.371303044643, 0.1666073580602, 4.911484375,
                              0.737356124531, 0.7649970507293, 2.6048828125, 0.6528679239796, 0.82509765625],
                             Self.oracleTolerance, "\(readout) NTK")
        }
    }

    // MARK: - Exact self pairs, determinism, layouts

    /// A duplicated image: its cross entry equals its self entry (both read the same variances),
    /// and a cross kernel of a set against itself equals its Gram matrix.
    @Test(arguments: ConvolutionalKernel.Readout.allCases)
    func selfPairsAreExact(_ readout: ConvolutionalKernel.Readout) throws {
        let a = ConvolutionalKernel.Architecture(height: 5, width: 5, channels: 2, convLayers: 2, filter: 3, padding: .same,
                                                 readout: readout, activation: .relu)
        let base = Self.images(2, a, phase: 0.9)
        let x = Matrix(rows: 3, cols: a.features, data: base.data + base.row(0))
        let kernel = try ConvolutionalKernel(a)
        let gram = try kernel.kernels(x)
        let ntk = try #require(gram.ntk)
        Self.expectClose([gram.nngp[0, 2], ntk[0, 2]], [gram.nngp[0, 0], ntk[0, 0]], Self.duplicateTolerance, "duplicate")
        let cross = try kernel.kernels(x, x)
        Self.expectClose(cross.nngp.data, gram.nngp.data, Self.duplicateTolerance, "cross NNGP")
        Self.expectClose(try #require(cross.ntk).data, ntk.data, Self.duplicateTolerance, "cross NTK")
        // Symmetric, positive semi-definite Gram.
        for i in 0..<3 { for j in 0..<3 { #expect(ntk[i, j] == ntk[j, i]) } }
        #expect(try LinearAlgebra.symmetricEigenvalues(ntk).allSatisfy { $0 >= -1e-12 })
    }

    @Test func sameBitsOnOneAndTwoThreads() throws {
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        for readout in ConvolutionalKernel.Readout.allCases {
            let a = ConvolutionalKernel.Architecture(height: 6, width: 5, channels: 1, convLayers: 2, filter: 3, padding: .same,
                                                     readout: readout, activation: .relu, sigmaB: 0.1)
            let x = Self.images(7, a, phase: 0.2), y = Self.images(5, a, phase: 2.2)
            var results: [[UInt64]] = []
            for threads in [1, 2, 1, 2] {
                Parallel.threads = threads
                let g = try ConvolutionalKernel(a).kernels(x)
                let c = try ConvolutionalKernel(a).kernels(x, y)
                results.append((g.nngp.data + g.ntk!.data + c.nngp.data + c.ntk!.data).map(\.bitPattern))
            }
            #expect(results.allSatisfy { $0 == results[0] }, "\(readout): the bits depend on the thread count")
        }
    }

    /// More image pairs than chunks (`maxChunks`), so that chunks hold several pairs and find
    /// their first one by row: every entry equals the pair computed alone.
    @Test(arguments: ConvolutionalKernel.Readout.allCases)
    func chunksOfSeveralPairs(_ readout: ConvolutionalKernel.Readout) throws {
        let a = ConvolutionalKernel.Architecture(height: 3, width: 3, channels: 1, convLayers: 1, filter: 3, padding: .same,
                                                 readout: readout, activation: .relu, sigmaB: 0.1)
        let kernel = try ConvolutionalKernel(a)
        let x = Self.images(30, a, phase: 0.6), y = Self.images(17, a, phase: 1.1)
        #expect(30 * 31 / 2 > ConvolutionalKernel.maxChunks && 30 * 17 > ConvolutionalKernel.maxChunks)
        let gram = try kernel.kernels(x), cross = try kernel.kernels(x, y)
        for i in 0..<30 {
            let xi = x.rows(i..<(i + 1))
            for j in i..<30 {
                let alone = try kernel.kernels(xi, x.rows(j..<(j + 1)))
                Self.expectClose([gram.nngp[i, j], gram.ntk![i, j], gram.nngp[j, i]],
                                 [alone.nngp[0, 0], alone.ntk![0, 0], alone.nngp[0, 0]], Self.duplicateTolerance, "Gram \(i), \(j)")
            }
            for j in 0..<17 {
                let alone = try kernel.kernels(xi, y.rows(j..<(j + 1)))
                Self.expectClose([cross.nngp[i, j], cross.ntk![i, j]], [alone.nngp[0, 0], alone.ntk![0, 0]],
                                 Self.duplicateTolerance, "cross \(i), \(j)")
            }
        }
    }

    @Test func channelsFirstLayout() throws {
        let a = ConvolutionalKernel.Architecture(height: 4, width: 3, channels: 2, convLayers: 1, filter: 3, padding: .same,
                                                 readout: .gap, activation: .relu)
        let last = Self.images(2, a, phase: 0.3)
        var first = last
        for r in 0..<2 { for h in 0..<4 { for w in 0..<3 { for c in 0..<2 {
            first[r, (c * 4 + h) * 3 + w] = last[r, (h * 3 + w) * 2 + c]
        } } } }
        let k1 = try ConvolutionalKernel(a).kernels(last)
        let k2 = try ConvolutionalKernel(a).kernels(first, layout: .channelsFirst)
        #expect(k1 == k2)
    }

    // MARK: - Bad inputs

    @Test func badInputsThrowOneLine() throws {
        func refused(_ a: ConvolutionalKernel.Architecture, _ words: [String]) {
            do {
                _ = try ConvolutionalKernel(a)
                Issue.record("accepted \(a)")
            } catch {
                let text = "\(error)"
                for w in words { #expect(text.contains(w), "\(w) not in: \(text)") }
                #expect(!text.contains("\n"))
            }
        }
        refused(.init(height: 8, width: 8, filter: 4), ["odd", "3 or 5"])
        refused(.init(height: 4, width: 4, convLayers: 2, filter: 3, padding: .valid), ["at least 5×5", "4×4", "--padding same"])
        refused(.init(height: 0, width: 4), ["positive"])
        refused(.init(height: 4, width: 4, convLayers: 0), ["convolution layers"])
        refused(.init(height: 4, width: 4, sigmaW: 0), ["σ_w"])
        refused(.init(height: 4, width: 4, sigmaB: -.infinity), ["σ_b"])
        refused(.init(height: 200, width: 200, readout: .gap), ["--readout flatten", "MB per thread"])
        // flatten of the same images is fine (P per pair).
        #expect(throws: Never.self) { try ConvolutionalKernel(.init(height: 200, width: 200, readout: .flatten)) }

        let kernel = try ConvolutionalKernel(.init(height: 2, width: 2, channels: 1, convLayers: 1))
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Matrix(rows: 1, cols: 3)) }
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Matrix(rows: 0, cols: 4)) }
        #expect(throws: InfiniteWidthError.self) { try kernel.kernels(Matrix([[1, .nan, 0, 0]])) }
        // A zero image without bias: variances 0, no NaN.
        let zero = try kernel.kernels(Matrix([[0, 0, 0, 0], [1, 0, 0, 1]]))
        #expect(zero.nngp.isFinite && zero.ntk!.isFinite)
    }
}
