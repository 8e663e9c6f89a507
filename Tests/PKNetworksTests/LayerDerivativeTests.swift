import Testing
import PKNetworks
import PKNumerics

/// Every layer kind's pullback and tangent against central finite differences (Double), the two
/// against each other (`⟨J ẋ, u⟩ = ⟨ẋ, Jᵀu⟩`), and the Float32 routes against the Double ones;
/// the same for compositions (a small CNN, residual blocks). Forward passes have their own
/// oracles in `LayerForwardTests`.
@Suite("Layer derivatives")
struct LayerDerivativeTests {
    static func make(_ name: String, _ body: () throws -> any Layer) -> LayerCase {
        LayerCase(name: name, layer: try! body())
    }

    /// Every kind, in several settings (strides, paddings, bias on/off, both parameterizations).
    static let leaves: [LayerCase] = {
        var cases: [LayerCase] = [
            make("dense ntk") { try Dense(inputs: 4, outputs: 3, sigmaW: 1.3, sigmaB: 0.4) },
            make("dense standard no-bias") { try Dense(inputs: 5, outputs: 2, bias: false, parameterization: .standard, sigmaW: 1.3) },
            make("flatten") { try Flatten(inputShape: [2, 3, 4]) },
            make("conv2d 3×3 valid") { try Conv2D(inputShape: [2, 5, 6], outputChannels: 3, kernel: (3, 3), sigmaW: 1.2, sigmaB: 0.3) },
            make("conv2d 3×2 stride 2 same standard no-bias") {
                try Conv2D(inputShape: [2, 6, 5], outputChannels: 3, kernel: (3, 2), stride: (2, 2), padding: .same,
                           bias: false, parameterization: .standard)
            },
            make("conv2d 2×3 stride (2,1) explicit (1,2)") {
                try Conv2D(inputShape: [1, 5, 4], outputChannels: 2, kernel: (2, 3), stride: (2, 1), padding: .explicit(height: 1, width: 2))
            },
            make("conv2d 1×1") { try Conv2D(inputShape: [3, 2, 3], outputChannels: 2, kernel: (1, 1)) },
            make("avgpool2d 2×2") { try AvgPool2D(inputShape: [2, 4, 6], kernel: (2, 2)) },
            make("avgpool2d 3×3 stride 2 same") { try AvgPool2D(inputShape: [2, 5, 5], kernel: (3, 3), stride: (2, 2), padding: .same) },
            make("avgpool2d 3×2 stride 1 explicit (1,1)") { try AvgPool2D(inputShape: [1, 4, 4], kernel: (3, 2), stride: (1, 1), padding: .explicit(height: 1, width: 1)) },
            make("globalavgpool") { try GlobalAvgPool(inputShape: [3, 2, 3]) },
            make("layernorm [6]") { try LayerNorm(inputShape: [6]) },
            make("layernorm [2,3,3] eps 1e-3") { try LayerNorm(inputShape: [2, 3, 3], epsilon: 1e-3) },
            make("layernorm [5] no affine") { try LayerNorm(inputShape: [5], affine: false) },
        ]
        for (name, pool) in [
            ("maxpool2d 2×2", { try MaxPool2D(inputShape: [2, 4, 4], kernel: (2, 2)) }),
            ("maxpool2d 3×2 stride (2,1) same", { try MaxPool2D(inputShape: [1, 5, 6], kernel: (3, 2), stride: (2, 1), padding: .same) }),
            ("maxpool2d 3×3 stride 2 explicit (1,1)", { try MaxPool2D(inputShape: [2, 5, 5], kernel: (3, 3), stride: (2, 2), padding: .explicit(height: 1, width: 1)) }),
        ] as [(String, () throws -> any Layer)] {
            var c = make(name, pool)
            c.inputs = .distinct
            cases.append(c)
        }
        for activation in Activation.allCases {
            var c = make(activation.rawValue) { try ActivationLayer(activation, shape: [2, 3, 3], leakySlope: 0.2) }
            c.inputs = .awayFromZero
            cases.append(c)
        }
        return cases
    }()

    /// A small smooth CNN: conv (same) → tanh → avgpool → conv (valid) → gelu → layernorm → global
    /// average pool → dense.
    static func smoothCNN() throws -> Sequential {
        let c1 = try Conv2D(inputShape: [1, 6, 6], outputChannels: 2, kernel: (3, 3), padding: .same)
        let a1 = try ActivationLayer(.tanh, shape: c1.outputShape)
        let p1 = try AvgPool2D(inputShape: a1.outputShape, kernel: (2, 2))
        let c2 = try Conv2D(inputShape: p1.outputShape, outputChannels: 3, kernel: (2, 2))
        let a2 = try ActivationLayer(.gelu, shape: c2.outputShape)
        let n2 = try LayerNorm(inputShape: a2.outputShape)
        let g = try GlobalAvgPool(inputShape: n2.outputShape)
        return try Sequential([c1, a1, p1, c2, a2, n2, g, try Dense(inputs: 3, outputs: 2)])
    }

    /// A CNN with kinks: conv → relu → maxpool → flatten → dense.
    static func reluCNN() throws -> Sequential {
        let c1 = try Conv2D(inputShape: [2, 5, 5], outputChannels: 3, kernel: (2, 2), sigmaB: 0.5)
        let a1 = try ActivationLayer(.relu, shape: c1.outputShape)
        let p1 = try MaxPool2D(inputShape: a1.outputShape, kernel: (2, 2))
        let f = try Flatten(inputShape: p1.outputShape)
        return try Sequential([c1, a1, p1, f, try Dense(inputs: f.outputShape.count, outputs: 2)])
    }

    /// `x + Dense(tanh(Dense(LayerNorm(x))))`.
    static func identityResidual() throws -> Residual {
        try Residual(block: Sequential([try LayerNorm(inputShape: [4]), try Dense(inputs: 4, outputs: 5),
                                        try ActivationLayer(.tanh, shape: [5]), try Dense(inputs: 5, outputs: 4)]))
    }

    /// A residual CNN: conv stem, a block with a 1×1 projection shortcut, global pool, dense head.
    static func residualCNN() throws -> Sequential {
        let stem = try Conv2D(inputShape: [1, 4, 4], outputChannels: 2, kernel: (3, 3), padding: .same)
        let b1 = try Conv2D(inputShape: [2, 4, 4], outputChannels: 3, kernel: (3, 3), padding: .same)
        let b2 = try Conv2D(inputShape: [3, 4, 4], outputChannels: 3, kernel: (3, 3), padding: .same, bias: false)
        let block = try Sequential([b1, try ActivationLayer(.softplus, shape: [3, 4, 4]), b2])
        let projection = try Conv2D(inputShape: [2, 4, 4], outputChannels: 3, kernel: (1, 1), bias: false)
        return try Sequential([stem, try ActivationLayer(.erf, shape: [2, 4, 4]),
                               try Residual(block: block, shortcut: projection),
                               try GlobalAvgPool(inputShape: [3, 4, 4]), try Dense(inputs: 3, outputs: 2)])
    }

    static let compositions: [LayerCase] = [
        make("smooth CNN", smoothCNN),
        LayerCase(name: "ReLU/max-pool CNN", layer: try! reluCNN(), finiteDifferences: false, inputs: .distinct),
        make("identity residual block", identityResidual),
        make("residual CNN with projection", residualCNN),
    ]

    static let all = leaves + compositions

    // MARK: Against finite differences

    @Test("pullback equals finite differences in the input and the parameters", arguments: all.filter(\.finiteDifferences))
    func pullbackMatchesFiniteDifferences(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 1), w = c.parameters(seed: 2)
        let u = randomMatrix(rows: x.rows, cols: layer.outputShape.count, seed: 3)
        let (_, cache) = layer.forward(x, parameters: w)
        let (dx, dw) = layer.pullback(u, cache: cache, needsInputCotangent: true)
        let fdW = centralDifferences(at: w) { Vec.dot(layer.apply(x, parameters: $0).data, u.data) }
        let fdX = centralDifferences(at: x.data) {
            Vec.dot(layer.apply(Matrix(rows: x.rows, cols: x.cols, data: $0), parameters: w).data, u.data)
        }
        #expect(dw.count == layer.parameterCount)
        #expect(dx?.rows == x.rows && dx?.cols == x.cols)
        #expect(relativeError(dw, fdW) < Tolerance.finiteDifference, "\(c) parameters: \(relativeError(dw, fdW))")
        #expect(relativeError(dx?.data ?? [], fdX) < Tolerance.finiteDifference, "\(c) input: \(relativeError(dx?.data ?? [], fdX))")
        // Not asking for the input cotangent leaves the parameter cotangent as it is.
        let (none, dw2) = layer.pullback(u, cache: cache, needsInputCotangent: false)
        #expect(none == nil && dw2 == dw)
    }

    @Test("tangent equals the directional finite difference", arguments: all.filter(\.finiteDifferences))
    func jvpMatchesDirectionalDifference(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 4), w = c.parameters(seed: 5)
        let dx = randomMatrix(rows: x.rows, cols: x.cols, seed: 6), v = randomVector(layer.parameterCount, seed: 7)
        let (_, cache) = layer.forward(x, parameters: w)
        let t = layer.jvp(inputTangent: dx, parameterTangent: Array(v.prefix(layer.parameterCount)), cache: cache)
        let h = finiteDifferenceStep
        let up = layer.apply(x + h * dx, parameters: zip(w, v).map { $0 + h * $1 })
        let down = layer.apply(x - h * dx, parameters: zip(w, v).map { $0 - h * $1 })
        let fd = (up - down).data.map { $0 / (2 * h) }
        #expect(t != nil)
        #expect(relativeError(t?.data ?? [], fd) < Tolerance.finiteDifference, "\(c): \(relativeError(t?.data ?? [], fd))")
        // Parameters alone (input tangent zero) against their own difference.
        let tw = layer.jvp(w, x, tangent: Array(v.prefix(layer.parameterCount)))
        let fdw = (layer.apply(x, parameters: zip(w, v).map { $0 + h * $1 })
                   - layer.apply(x, parameters: zip(w, v).map { $0 - h * $1 })).data.map { $0 / (2 * h) }
        #expect(relativeError(tw.data, fdw) < Tolerance.finiteDifference || fdw.allSatisfy { $0 == 0 }, "\(c) parameters only")
    }

    // MARK: Pullback and tangent are adjoint

    @Test("⟨J ẋ + J_w ẇ, u⟩ = ⟨ẋ, ∂x⟩ + ⟨ẇ, ∂w⟩", arguments: all)
    func pullbackAndTangentAreAdjoint(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 8), w = c.parameters(seed: 9)
        let u = randomMatrix(rows: x.rows, cols: layer.outputShape.count, seed: 10)
        let dx = randomMatrix(rows: x.rows, cols: x.cols, seed: 11), v = randomVector(max(layer.parameterCount, 1), seed: 12)
        let wDot = Array(v.prefix(layer.parameterCount))
        let (output, cache) = layer.forward(x, parameters: w)
        #expect(output.data.map(\.bitPattern) == layer.apply(x, parameters: w).data.map(\.bitPattern), "\(c): apply differs from forward")
        let t = layer.jvp(inputTangent: dx, parameterTangent: wDot, cache: cache)!
        let (gx, gw) = layer.pullback(u, cache: cache, needsInputCotangent: true)
        let lhs = innerProduct(t.data, u.data)
        let rx = innerProduct(dx.data, gx!.data), rw = innerProduct(wDot, gw)
        let scale = max(lhs.scale, rx.scale + rw.scale)
        #expect(abs(lhs.value - (rx.value + rw.value)) <= Tolerance.adjointness * scale,
                "\(c): \(lhs.value) vs \(rx.value + rw.value)")
        // A zero input tangent and no parameters: the tangent is nil (zero).
        if layer.parameterCount == 0 {
            #expect(layer.jvp(inputTangent: nil, parameterTangent: [Double](), cache: cache) == nil)
        }
    }

    // MARK: Float32 against Double

    @Test("Float32 forward, pullback and tangent agree with Double", arguments: all)
    func floatAgreesWithDouble(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 13), w = c.parameters(seed: 14)
        let u = randomMatrix(rows: x.rows, cols: layer.outputShape.count, seed: 15)
        let dx = randomMatrix(rows: x.rows, cols: x.cols, seed: 16)
        let v = Array(randomVector(max(layer.parameterCount, 1), seed: 17).prefix(layer.parameterCount))
        let (y, cache) = layer.forward(x, parameters: w)
        let (gx, gw) = layer.pullback(u, cache: cache, needsInputCotangent: true)
        let t = layer.jvp(inputTangent: dx, parameterTangent: v, cache: cache)!

        let wf = w.map(Float.init)
        let (yf, cachef) = layer.forward(FloatMatrix(x), parameters: wf)
        let (gxf, gwf) = layer.pullback(FloatMatrix(u), cache: cachef, needsInputCotangent: true)
        let tf = layer.jvp(inputTangent: FloatMatrix(dx), parameterTangent: v.map(Float.init), cache: cachef)!
        #expect(floatError(yf.data, y.data) < Tolerance.floatAgainstDouble, "\(c) forward: \(floatError(yf.data, y.data))")
        #expect(floatError(gxf!.data, gx!.data) < Tolerance.floatAgainstDouble, "\(c) input cotangent: \(floatError(gxf!.data, gx!.data))")
        #expect(floatError(gwf, gw) < Tolerance.floatAgainstDouble, "\(c) parameter cotangent: \(floatError(gwf, gw))")
        #expect(floatError(tf.data, t.data) < Tolerance.floatAgainstDouble, "\(c) tangent: \(floatError(tf.data, t.data))")
    }

    // MARK: Batches

    @Test("rows are independent: a batch gives each example's result", arguments: all)
    func rowsAreIndependent(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 18), w = c.parameters(seed: 19)
        let u = randomMatrix(rows: x.rows, cols: layer.outputShape.count, seed: 20)
        let whole = layer.apply(x, parameters: w)
        var gradientSum = [Double](repeating: 0, count: layer.parameterCount)
        for r in 0..<x.rows {
            let one = layer.apply(x.rows(r..<(r + 1)), parameters: w)
            #expect(relativeError(one.data, whole.row(r)) < Tolerance.roundOff, "\(c) row \(r)")
            Vec.axpy(1, layer.vjp(w, x.rows(r..<(r + 1)), cotangent: u.rows(r..<(r + 1))), &gradientSum)
        }
        #expect(relativeError(layer.vjp(w, x, cotangent: u), gradientSum) < Tolerance.roundOff, "\(c) gradient")
        // An empty batch.
        let empty = layer.apply(Matrix(rows: 0, cols: x.cols), parameters: w)
        #expect(empty.rows == 0 && empty.cols == layer.outputShape.count)
    }
}
