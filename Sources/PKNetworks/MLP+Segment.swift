import PKNumerics

/// A piecewise-linear MLP along one straight segment of weights `w(t) = w + tΔw`, `t ∈ [0, 1]`
/// (path-kernel math §1.1, "Exact integration for piecewise-linear networks").
///
/// Priorities, in order: no breakpoint missed (every sign change of every hidden unit's
/// pre-activation in (0, 1) is found, from exact polynomial coefficients: closed forms for
/// degrees 1 and 2, isolation by the derivative's roots and bisection to the last bit above),
/// the breakpoints to round-off, GEMM-bound cost (the coefficients of all examples and pieces
/// of one layer are two GEMMs per degree), then clarity.
///
/// On an interval where the activation pattern of the layers before it is fixed, layer l's
/// pre-activation `z_l(t) = s_l (W_l + tΔW_l) a_l(t) + β_l (b_l + tΔb_l)` is a polynomial of
/// degree l + 1 in t (`a_0 = x` is constant, `a_{l+1} = D_l ⊙ z_l` with the fixed slopes `D_l`).
/// A breakpoint is a t where some unit's `z_l` changes sign; between breakpoints `f(x; w(t))` is a
/// polynomial of degree L (the depth) and `J(x; w(t))` one of degree L − 1, entry by entry.
///
/// Does not hold: a zero of even multiplicity (a unit touching 0 without crossing) is not a
/// breakpoint (the pattern is the same on both sides); breakpoints closer than round-off to each
/// other or to 0 or 1 are found as computed (a piece may be shorter than round-off).
extension MLP {
    /// Degree in t of `J(x; w + tΔw)` between breakpoints: L − 1 (0 for a linear network).
    public var segmentJacobianDegree: Int { depth - 1 }

    /// The breakpoints of every row of `x` (`n × inputDim`) along `w(t) = start + t·delta`: per
    /// example, the t in (0, 1), ascending and distinct, where some hidden unit's pre-activation
    /// changes sign (empty when none does, and for networks that are not piecewise linear).
    ///
    /// Walks the layers: for each example and interval on which the earlier layers' pattern is
    /// fixed, the polynomial coefficients of each unit of layer l (one GEMM by `W_l` and one by
    /// `ΔW_l` per degree, over all examples and intervals at once), their sign changes inside the
    /// interval (`Polynomial.signChanges`), then the interval cut there, with the slopes `D_l`
    /// read at each piece's midpoint, for layer l + 1.
    public func segmentBreakpoints(start w: [Double], delta v: [Double], _ x: Matrix) -> [[Double]] {
        checkShapes(w, x)
        precondition(v.count == parameterCount, "delta has \(v.count) entries, the network has \(parameterCount) parameters")
        let n = x.rows
        var breaks = [[Double]](repeating: [], count: n)
        guard isPiecewiseLinear else { return breaks }
        let alpha = activation == .leakyRelu ? spec.leakySlope : 0
        // Rows: (example, interval), and the coefficients of a_l on them, A[k] (rows × in_l).
        var example = Array(0..<n)
        var lo = [Double](repeating: 0, count: n), hi = [Double](repeating: 1, count: n)
        var coefficients: [Matrix] = [x]
        for layer in layers.dropLast() {
            let rows = example.count, width = layer.outputs, degree = coefficients.count
            let W = layer.weight(w), V = layer.weight(v)
            // z_l = Σ_k Z[k] t^k: Z[k] = s(A[k] Wᵀ + A[k−1] ΔWᵀ), plus β b in Z[0] and β Δb in Z[1].
            var z = [Matrix](repeating: Matrix(rows: rows, cols: width), count: degree + 1)
            for k in 0..<degree {
                Matrix.gemm(coefficients[k], W, transposeB: true, alpha: layer.weightScale, beta: 1, into: &z[k])
                Matrix.gemm(coefficients[k], V, transposeB: true, alpha: layer.weightScale, beta: 1, into: &z[k + 1])
            }
            if let bo = layer.biasOffset {
                for r in 0..<rows { for j in 0..<width {
                    z[0][r, j] += layer.biasScale * w[bo + j]
                    z[1][r, j] += layer.biasScale * v[bo + j]
                } }
            }
            let last = layer.index == depth - 2
            // Per row: its breakpoints on this layer and, unless last, the next layer's rows (one
            // per piece). Rows are independent: blocks of rows on the threads, each with its own
            // buffers, joined in row order (the same numbers as one thread).
            struct Part {
                var breaks: [(example: Int, cuts: ArraySlice<Double>)] = []
                var example: [Int] = [], lo: [Double] = [], hi: [Double] = []
                var coefficients: [[Double]]
            }
            let blocks = Parallel.ranges(rows, minimum: 64)
            var parts = [Part](repeating: Part(coefficients: Array(repeating: [], count: degree + 1)), count: blocks.count)
            let zData = z.map(\.data)
            parts.withUnsafeMutableBufferPointer { pp in
                Parallel.forEach(blocks.count) { b in
                    var part = Part(coefficients: Array(repeating: [], count: degree + 1))
                    var c = [Double](repeating: 0, count: degree + 1)
                    var roots: [Double] = [], slope = [Double](repeating: 0, count: width)
                    for r in blocks[b] {
                        roots.removeAll(keepingCapacity: true)
                        for j in 0..<width {
                            for k in 0...degree { c[k] = zData[k][r * width + j] }
                            Polynomial.appendSignChanges(c, in: lo[r], hi[r], to: &roots)
                        }
                        roots.sort()
                        var cuts = [lo[r]]
                        for t in roots where t > cuts[cuts.count - 1] { cuts.append(t) }
                        part.breaks.append((example[r], cuts.dropFirst()))
                        cuts.append(hi[r])
                        if last { continue }
                        // The next layer's rows: one per piece, a_{l+1} = D_l ⊙ z_l with D_l at the midpoint.
                        for p in 0..<(cuts.count - 1) {
                            let mid = 0.5 * (cuts[p] + cuts[p + 1])
                            part.example.append(example[r]); part.lo.append(cuts[p]); part.hi.append(cuts[p + 1])
                            for j in 0..<width {
                                for k in 0...degree { c[k] = zData[k][r * width + j] }
                                slope[j] = Polynomial.value(c, at: mid) > 0 ? 1 : alpha
                            }
                            for k in 0...degree {
                                for j in 0..<width { part.coefficients[k].append(slope[j] * zData[k][r * width + j]) }
                            }
                        }
                    }
                    pp[b] = part
                }
            }
            var nextExample: [Int] = [], nextLo: [Double] = [], nextHi: [Double] = []
            var nextCoefficients: [[Double]] = Array(repeating: [], count: degree + 1)
            for part in parts {
                for (e, cuts) in part.breaks { breaks[e] += cuts }
                nextExample += part.example; nextLo += part.lo; nextHi += part.hi
                for k in 0...degree { nextCoefficients[k] += part.coefficients[k] }
            }
            if last { break }
            example = nextExample; lo = nextLo; hi = nextHi
            coefficients = nextCoefficients.map { Matrix(rows: example.count, cols: width, data: $0) }
        }
        for r in 0..<n { breaks[r].sort() }
        return breaks
    }

    /// Tangent features (`TangentFeatures`, as `tangentFeatures`) of row r of `x` at its own point
    /// `w(t_r) = start + t_r·delta` of the segment, in precision `Scalar`, with the JVPs
    /// `J(x_r; w(t_r))·v` of each of `tangents`: the rows of one feature set may sit at different
    /// points of the segment (what per-example quadrature nodes need).
    ///
    /// Each layer's product with `W + tΔW` is two GEMMs, `a Wᵀ + t ⊙ (a ΔWᵀ)` (rows scaled by their
    /// t), forwards, in the JVPs and backwards: about twice `tangentFeatures`' work. The result
    /// agrees with `tangentFeatures(start + t_r·delta, x_r)` to round-off, not bit for bit.
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    public func segmentFeatures<Scalar: BLASScalar>(start w: [Double], delta v: [Double], _ x: Matrix, at t: [Double],
                                                    as _: Scalar.Type = Double.self,
                                                    tangents: [[Double]] = []) -> TangentFeatures<Scalar> {
        checkShapes(w, x)
        precondition(t.count == x.rows, "\(t.count) points for \(x.rows) rows")
        precondition(v.count == parameterCount, "delta has \(v.count) entries, the network has \(parameterCount) parameters")
        for u in tangents { precondition(u.count == parameterCount, "tangent has \(u.count) entries, the network has \(parameterCount) parameters") }
        func weights(_ p: [Double]) -> [DenseMatrix<Scalar>] { layers.map { DenseMatrix<Scalar>(layer: $0, p) } }
        func biases(_ p: [Double]) -> [[Scalar]?] {
            layers.map { layer in layer.biasOffset.map { bo in (0..<layer.outputs).map { Scalar(layer.biasScale * p[bo + $0]) } } }
        }
        let parts = SegmentParts(weights: weights(w), biases: biases(w), deltaWeights: weights(v), deltaBiases: biases(v),
                                 tangentWeights: tangents.map(weights), tangentBiases: tangents.map(biases))
        let xs = DenseMatrix<Scalar>(x), ts = t.map { Scalar($0) }
        let blocks = Parallel.ranges(x.rows, minimum: 32)
        var out = [TangentFeatures<Scalar>?](repeating: nil, count: blocks.count)
        out.withUnsafeMutableBufferPointer { op in
            Parallel.forEach(blocks.count) { p in
                op[p] = segmentFeatureBlock(parts, xs.rows(blocks[p]), at: Array(ts[blocks[p]]))
            }
        }
        return out.count == 1 ? out[0]! : TangentFeatures.concatenating(out.map { $0! })
    }

    /// The layers' weights and biases at the segment's start, its direction and the tangents, in one precision.
    struct SegmentParts<Scalar: BLASScalar> {
        let weights: [DenseMatrix<Scalar>], biases: [[Scalar]?]
        let deltaWeights: [DenseMatrix<Scalar>], deltaBiases: [[Scalar]?]
        let tangentWeights: [[DenseMatrix<Scalar>]], tangentBiases: [[[Scalar]?]]
    }

    /// `segmentFeatures` of one row block, on the calling thread (`featureBlock` with `W + tΔW`).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    func segmentFeatureBlock<Scalar: BLASScalar>(_ parts: SegmentParts<Scalar>, _ x: DenseMatrix<Scalar>, at t: [Scalar]) -> TangentFeatures<Scalar> {
        let m = x.rows, C = outputDim, L = depth
        /// `s·a Wᵀ + β b` (`b` nil: no bias term).
        func affine(_ a: DenseMatrix<Scalar>, _ W: DenseMatrix<Scalar>, _ b: [Scalar]?, scale s: Scalar) -> DenseMatrix<Scalar> {
            var z = DenseMatrix<Scalar>(rows: a.rows, cols: W.rows)
            if let b {
                z.data.withUnsafeMutableBufferPointer { zp in
                    for r in 0..<a.rows { for j in 0..<W.rows { zp[r * W.rows + j] = b[j] } }
                }
            }
            DenseMatrix.gemm(a, W, transposeB: true, alpha: s, beta: 1, into: &z)
            return z
        }
        /// `z += t_r · y` row by row (row r of a stacked matrix reads `t[r % m]`).
        func addScaledRows(_ y: DenseMatrix<Scalar>, into z: inout DenseMatrix<Scalar>) {
            let width = z.cols
            z.data.withUnsafeMutableBufferPointer { zp in
                y.data.withUnsafeBufferPointer { yp in
                    for r in 0..<z.rows {
                        let tr = t[r % m], base = r * width
                        for j in 0..<width { zp[base + j] += tr * yp[base + j] }
                    }
                }
            }
        }
        var inputs: [DenseMatrix<Scalar>] = [], slopes: [DenseMatrix<Scalar>] = []
        var a = x
        var da = [DenseMatrix<Scalar>?](repeating: nil, count: parts.tangentWeights.count)
        var output = DenseMatrix<Scalar>(rows: m, cols: C)
        var outputTangents: [DenseMatrix<Scalar>] = []
        for layer in layers {
            let l = layer.index, s = Scalar(layer.weightScale)
            inputs.append(a)
            var z = affine(a, parts.weights[l], parts.biases[l], scale: s)
            addScaledRows(affine(a, parts.deltaWeights[l], parts.deltaBiases[l], scale: s), into: &z)
            // ż = s(a Vᵀ + ȧ (W + tΔW)ᵀ) + β v_b.
            let dz = parts.tangentWeights.indices.map { k in
                var dz = affine(a, parts.tangentWeights[k][l], parts.tangentBiases[k][l], scale: s)
                if let dak = da[k] {
                    DenseMatrix.gemm(dak, parts.weights[l], transposeB: true, alpha: s, beta: 1, into: &dz)
                    addScaledRows(affine(dak, parts.deltaWeights[l], nil, scale: s), into: &dz)
                }
                return dz
            }
            if l == L - 1 { output = z; outputTangents = dz; break }
            let d = activation.applyInPlace(&z, leakySlope: spec.leakySlope)
            slopes.append(d)
            for k in dz.indices { da[k] = dz[k].hadamard(d) }
            a = z
        }
        // Backward with the C channels stacked: δ_{l−1} = s (δ_l (W_l + tΔW_l)) ⊙ φ'(z_{l−1}).
        var signals = [DenseMatrix<Scalar>](repeating: DenseMatrix(rows: 0, cols: 0), count: L)
        var delta = DenseMatrix<Scalar>(rows: C * m, cols: C)
        for c in 0..<C { for r in 0..<m { delta[c * m + r, c] = 1 } }
        for l in stride(from: L - 1, through: 0, by: -1) {
            signals[l] = delta
            if l == 0 { break }
            let s = Scalar(layers[l].weightScale)
            var next = DenseMatrix<Scalar>(rows: C * m, cols: layers[l].inputs)
            DenseMatrix.gemm(delta, parts.weights[l], alpha: s, into: &next)
            var moved = DenseMatrix<Scalar>(rows: C * m, cols: layers[l].inputs)
            DenseMatrix.gemm(delta, parts.deltaWeights[l], alpha: s, into: &moved)
            addScaledRows(moved, into: &next)
            let d = slopes[l - 1]
            next.data.withUnsafeMutableBufferPointer { np in
                d.data.withUnsafeBufferPointer { dp in
                    let size = dp.count
                    for c in 0..<C {
                        for i in 0..<size { np[c * size + i] *= dp[i] }
                    }
                }
            }
            delta = next
        }
        return TangentFeatures(count: m, channels: C, inputs: inputs, signals: signals,
                               weightScaleSquared: layers.map { $0.weightScale * $0.weightScale },
                               biasScaleSquared: layers.map { $0.biasOffset == nil ? 0 : $0.biasScale * $0.biasScale },
                               outputs: output, outputTangents: outputTangents)
    }
}

/// Real polynomials `p(t) = Σ_k c_k t^k` (coefficients lowest degree first): evaluation and the
/// sign changes inside an interval, for the breakpoints of `MLP.segmentBreakpoints`.
public enum Polynomial {
    /// `p(t)` by Horner's rule.
    @inlinable
    public static func value(_ c: [Double], at t: Double) -> Double {
        var s = 0.0
        for k in stride(from: c.count - 1, through: 0, by: -1) { s = s * t + c[k] }
        return s
    }

    /// The points of the open interval (lo, hi) where p changes sign, ascending: its real roots of
    /// odd multiplicity there. Degree 1: `−c₀/c₁`; degree 2: the two roots by the cancellation-free
    /// formula `q = −(c₁ + sign(c₁)√Δ)/2`, roots `q/c₂` and `c₀/q` (none when Δ ≤ 0: a double root
    /// is no sign change); degree d ≥ 3: the sign changes of p' (recursively) cut (lo, hi) into
    /// intervals where p is monotone, and each one whose ends have opposite signs holds one root,
    /// found by bisection until the interval is one ulp wide. Trailing zero coefficients lower
    /// the degree; the zero polynomial has none.
    ///
    /// Does not hold: a root closer to lo or hi than round-off may be reported or not.
    /// Appends `signChanges(c, in: lo, hi)` to `roots`: the same numbers, without a new array for
    /// degrees 1 and 2 (the breakpoint search's inner loop).
    @inlinable
    public static func appendSignChanges(_ c: [Double], in lo: Double, _ hi: Double, to roots: inout [Double]) {
        var d = c.count - 1
        while d >= 0 && c[d] == 0 { d -= 1 }
        guard d >= 1, lo < hi else { return }
        switch d {
        case 1:
            let t = -c[0] / c[1]
            if t > lo && t < hi { roots.append(t) }
        case 2:
            let disc = c[1] * c[1] - 4 * c[2] * c[0]
            guard disc > 0 else { return }
            let q = -0.5 * (c[1] + (c[1] >= 0 ? disc.squareRoot() : -disc.squareRoot()))
            let r1 = q / c[2], r2 = c[0] / q
            let in1 = r1 > lo && r1 < hi, in2 = r2 > lo && r2 < hi
            if in1 && in2 {
                if r1 == r2 { roots.append(r1) } else { roots.append(min(r1, r2)); roots.append(max(r1, r2)) }
            } else if in1 {
                roots.append(r1)
            } else if in2 {
                roots.append(r2)
            }
        default:
            roots += signChanges(c, in: lo, hi)
        }
    }

    public static func signChanges(_ c: [Double], in lo: Double, _ hi: Double) -> [Double] {
        var d = c.count - 1
        while d >= 0 && c[d] == 0 { d -= 1 }
        guard d >= 1, lo < hi else { return [] }
        switch d {
        case 1:
            let t = -c[0] / c[1]
            return t > lo && t < hi ? [t] : []
        case 2:
            let disc = c[1] * c[1] - 4 * c[2] * c[0]
            guard disc > 0 else { return [] }
            let q = -0.5 * (c[1] + (c[1] >= 0 ? disc.squareRoot() : -disc.squareRoot()))
            let roots = [q / c[2], c[0] / q].filter { $0 > lo && $0 < hi }.sorted()
            return roots.count == 2 && roots[0] == roots[1] ? [roots[0]] : roots
        default:
            let derivative = (1...d).map { Double($0) * c[$0] }
            let ends = [lo] + signChanges(derivative, in: lo, hi) + [hi]
            let values = ends.map { value(c, at: $0) }
            var roots: [Double] = []
            for i in 0..<(ends.count - 1) {
                let (a, b, pa, pb) = (ends[i], ends[i + 1], values[i], values[i + 1])
                if i > 0 && pa == 0 && values[i - 1] * pb < 0 { roots.append(a) }   // a root exactly at an extremum
                guard pa * pb < 0 else { continue }
                roots.append(bisect(c, a, b, increasing: pb > 0))
            }
            return roots
        }
    }

    /// The root of p in (a, b), where p is monotone with opposite signs at the ends, by bisection
    /// until no double lies strictly between the ends.
    static func bisect(_ c: [Double], _ a: Double, _ b: Double, increasing: Bool) -> Double {
        var (a, b) = (a, b)
        while true {
            let m = 0.5 * (a + b)
            if m <= a || m >= b { return m }
            let v = value(c, at: m)
            if v == 0 { return m }
            if (v > 0) == increasing { b = m } else { a = m }
        }
    }
}
