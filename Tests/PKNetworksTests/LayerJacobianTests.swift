import Testing
import PKNetworks
import PKNumerics

extension Tolerance {
    /// `Layer.jacobians` of `Sequential(mlp:)` against `MLP.jacobians`: the same products in
    /// another association (`s_W·(g·a)` in the Dense pullback's GEMM, `(s_W·g)·a` in `MLP`) and the
    /// signals of 1-row instead of n-row GEMMs, relative to the largest entry. Not bit-identical
    /// (4 of the 32 `NetCase.all` cases are); measured ≤ 1.6e-16.
    static let jacobianAgainstMLP = 1e-14
    /// Eigenvalues of a tangent-kernel Gram `J Jᵀ` below zero, relative to the largest: round-off
    /// of the GEMM and of `dsyevd` on the null space (measured ≥ −1.1e-16 for the three networks
    /// here, whose `n·C > P` rows leave a null space).
    static let positiveSemidefinite = 1e-12
}

/// The generic exact route (`Layer.jacobians`, `LayerJacobians`): per-example Jacobian rows of any
/// layer network, their kernels and products, against `MLP`'s explicit Jacobians and structured
/// kernels, central differences, forward mode, and Float32.
///
/// Tolerances (measured on 2026-11-29, x86_64 Linux, OpenBLAS): rows against `MLP.jacobians`
/// `jacobianAgainstMLP` (≤ 1.6e-16); kernels against `TangentFeatures.kernel`, `J·v` against
/// `jvp`, kernels against the written-out sums and their asymmetry `Tolerance.roundOff` (1e-12;
/// measured ≤ 7.9e-16); rows against central differences `Tolerance.finiteDifference` (1e-6;
/// measured ≤ 6.0e-10); eigenvalues `positiveSemidefinite`; Float32 against Double
/// `Tolerance.floatAgainstDouble` (2e-6 of the largest entry; measured ≤ 2.2e-7).
@Suite("Per-example Jacobians and kernels of layer networks")
struct LayerJacobianTests {
    // MARK: Networks

    /// conv 3×3 (same) → tanh → avg pool 2×2 → flatten → dense: `[1, 6, 6]` → `[3]`, P = 77.
    static func smallCNN() throws -> Sequential {
        let c1 = try Conv2D(inputShape: [1, 6, 6], outputChannels: 2, kernel: (3, 3), padding: .same, sigmaB: 0.4)
        let a1 = try ActivationLayer(.tanh, shape: c1.outputShape)
        let p1 = try AvgPool2D(inputShape: a1.outputShape, kernel: (2, 2))
        let f = try Flatten(inputShape: p1.outputShape)
        return try Sequential([c1, a1, p1, f, try Dense(inputs: f.outputShape.count, outputs: 3)])
    }

    /// The residual example of `Docs/networks.md`: stem conv, a block LayerNorm → conv → gelu → conv
    /// (no bias) with a 1×1 projection shortcut, global average pool, dense: `[1, 4, 4]` → `[1]`, P = 232.
    static func residualLayerNormCNN() throws -> Sequential {
        let stem = try Conv2D(inputShape: [1, 4, 4], outputChannels: 2, kernel: (3, 3), padding: .same)
        let block = try Sequential([try LayerNorm(inputShape: [2, 4, 4]),
                                    try Conv2D(inputShape: [2, 4, 4], outputChannels: 3, kernel: (3, 3), padding: .same),
                                    try ActivationLayer(.gelu, shape: [3, 4, 4]),
                                    try Conv2D(inputShape: [3, 4, 4], outputChannels: 3, kernel: (3, 3), padding: .same, bias: false)])
        let projection = try Conv2D(inputShape: [2, 4, 4], outputChannels: 3, kernel: (1, 1), bias: false)
        return try Sequential([stem, try Residual(block: block, shortcut: projection),
                               try GlobalAvgPool(inputShape: [3, 4, 4]), try Dense(inputs: 3, outputs: 1)])
    }

    static let networks: [LayerCase] = [
        LayerCase(name: "CNN (conv, avg pool, flatten, dense)", layer: try! smallCNN()),
        LayerCase(name: "identity residual block with LayerNorm", layer: try! LayerDerivativeTests.identityResidual()),
        LayerCase(name: "residual CNN with LayerNorm and projection", layer: try! residualLayerNormCNN()),
    ]

    /// `max |a − b| / max |b|` over two matrices of the same shape.
    static func maxRelative<S: BLASScalar>(_ a: DenseMatrix<S>, _ b: Matrix) -> Double {
        precondition(a.rows == b.rows && a.cols == b.cols, "shapes \(a.rows)×\(a.cols) and \(b.rows)×\(b.cols)")
        return relativeError(a.data.map(Double.init), b.data)
    }

    // MARK: (a) The MLP: MLP.jacobians and the structured kernels

    @Test("an MLP as layers: the Jacobian rows are MLP.jacobians", arguments: NetCase.all)
    func mlpJacobians(_ c: NetCase) throws {
        let mlp = try MLP(spec: c.spec), layers = try Sequential(mlp: c.spec)
        let w = mlp.initialParameters(seed: 21), x = randomMatrix(rows: 9, cols: mlp.inputDim, seed: 22)
        let generic = layers.jacobians(w, x), reference = mlp.jacobians(w, x)
        #expect(generic.count == 9 && generic.channels == mlp.outputDim && generic.parameterCount == mlp.parameterCount)
        #expect(Self.maxRelative(generic.rows, reference) <= Tolerance.jacobianAgainstMLP,
                "\(c): \(Self.maxRelative(generic.rows, reference))")
        #expect(Self.maxRelative(generic.outputs, mlp.forward(w, x)) <= Tolerance.jacobianAgainstMLP)
    }

    @Test("an MLP as layers: the kernels are TangentFeatures.kernel", arguments: FastKernelTests.specs)
    func mlpKernels(spec: ModelSpec) throws {
        let (model, u, v, x1, x2) = FastKernelTests.problem(spec)
        let layers = try Sequential(mlp: spec)
        let ja = layers.jacobians(u, x1), jb = layers.jacobians(v, x2)
        let fa = model.tangentFeatures(u, x1), fb = model.tangentFeatures(v, x2)
        for mode in KernelMode.allCases {
            let reference = TangentFeatures.kernel(fa, fb, mode: mode)
            let generic = LayerJacobians.kernel(ja, jb, mode: mode)
            #expect(FastKernelTests.maxRelative(generic, reference) <= Tolerance.roundOff,
                    "\(mode): \(FastKernelTests.maxRelative(generic, reference))")
        }
        // J·v is the MLP's forward-mode JVP.
        let t = randomVector(model.parameterCount, seed: 23)
        #expect(FastKernelTests.maxRelative(ja.product(t), model.jvp(u, x1, tangent: t)) <= Tolerance.roundOff)
    }

    // MARK: (b) A CNN and residual blocks: finite differences, forward mode, the kernel's properties

    @Test("each Jacobian row equals central differences of the forward pass", arguments: networks)
    func jacobianMatchesFiniteDifferences(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 31), w = c.parameters(seed: 32)
        let J = layer.jacobians(w, x)
        let C = layer.outputShape.count, P = layer.parameterCount
        #expect(J.count == x.rows && J.channels == C && J.rows.rows == x.rows * C && J.rows.cols == P)
        // Column k of J (every example and output at once) from f(w ± h e_k).
        var fd = Matrix(rows: x.rows * C, cols: P)
        var probe = w
        let h = finiteDifferenceStep
        for k in 0..<P {
            probe[k] = w[k] + h
            let up = layer.apply(x, parameters: probe)
            probe[k] = w[k] - h
            let down = layer.apply(x, parameters: probe)
            probe[k] = w[k]
            for i in 0..<(x.rows * C) { fd[i, k] = (up.data[i] - down.data[i]) / (2 * h) }
        }
        // Row by row, each against its own scale.
        var worst = 0.0
        for i in 0..<(x.rows * C) { worst = max(worst, relativeError(J.rows.row(i), fd.row(i))) }
        #expect(worst < Tolerance.finiteDifference, "\(c): \(worst)")
        #expect(Self.maxRelative(J.outputs, layer.apply(x, parameters: w)) <= Tolerance.roundOff)
    }

    @Test("J·v equals the network's jvp", arguments: networks)
    func productIsForwardMode(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 33), w = c.parameters(seed: 34), v = randomVector(layer.parameterCount, seed: 35)
        let J = layer.jacobians(w, x)
        let error = Self.maxRelative(J.product(v), layer.jvp(w, x, tangent: v))
        #expect(error <= Tolerance.roundOff, "\(c): \(error)")
    }

    @Test("the kernel is the written-out sums, symmetric and positive semi-definite", arguments: networks)
    func kernelProperties(_ c: LayerCase) throws {
        let layer = c.layer
        let C = layer.outputShape.count, P = layer.parameterCount
        // More Jacobian rows than parameters, so J Jᵀ has a null space whose round-off is tested.
        let n = P / C + 5
        let x = randomMatrix(rows: n, cols: layer.inputShape.count, seed: 36), w = c.parameters(seed: 37)
        let J = layer.jacobians(w, x)
        let full = LayerJacobians.kernel(J, J, mode: .full), trace = LayerJacobians.kernel(J, J, mode: .trace)
        #expect(full.rows == n * C && full.cols == n * C && trace.rows == n && trace.cols == n)

        // Against Σ_k J[i, k] J[j, k] and Σ_c of the C×C blocks, written out (other points' Jacobians on the right).
        let x2 = randomMatrix(rows: 4, cols: layer.inputShape.count, seed: 38), w2 = c.parameters(seed: 39)
        let J2 = layer.jacobians(w2, x2)
        var sums = Matrix(rows: n * C, cols: 4 * C), traced = Matrix(rows: n, cols: 4)
        for i in 0..<(n * C) {
            for j in 0..<(4 * C) {
                for k in 0..<P { sums[i, j] += J.rows[i, k] * J2.rows[j, k] }
                if i % C == j % C { traced[i / C, j / C] += sums[i, j] }
            }
        }
        #expect(Self.maxRelative(LayerJacobians.kernel(J, J2, mode: .full), sums) <= Tolerance.roundOff)
        #expect(Self.maxRelative(LayerJacobians.kernel(J, J2, mode: .trace), traced) <= Tolerance.roundOff)

        for (name, K) in [("full", full), ("trace", trace)] {
            let asymmetry = Self.maxRelative(K, K.transposed)
            #expect(asymmetry <= Tolerance.roundOff, "\(c) \(name): asymmetry \(asymmetry)")
            let eigenvalues = try LinearAlgebra.symmetricEigenvalues(K)
            let largest = eigenvalues.last!, smallest = eigenvalues.first!
            #expect(largest > 0 && smallest >= -Tolerance.positiveSemidefinite * largest,
                    "\(c) \(name): eigenvalues \(smallest) … \(largest)")
        }
    }

    @Test("rows are per example: a sub-batch gives the same rows bit for bit", arguments: networks)
    func rowsArePerExample(_ c: LayerCase) {
        let layer = c.layer
        let x = randomMatrix(rows: 11, cols: layer.inputShape.count, seed: 40), w = c.parameters(seed: 41)
        let whole = layer.jacobians(w, x), part = layer.jacobians(w, x.rows(7..<10))
        let C = layer.outputShape.count, P = layer.parameterCount
        #expect(Array(whole.rows.data[(7 * C * P)..<(10 * C * P)]).map(\.bitPattern) == part.rows.data.map(\.bitPattern))
        #expect(layer.jacobians(w, x.rows(0..<0)).rows.rows == 0)
    }

    // MARK: (c) Float32 against Double

    @Test("Float32 Jacobians, products and kernels agree with Double", arguments: networks)
    func floatAgreesWithDouble(_ c: LayerCase) {
        let layer = c.layer
        let x = c.input(seed: 42), w = c.parameters(seed: 43), v = randomVector(layer.parameterCount, seed: 44)
        let J = layer.jacobians(w, x), Jf = layer.jacobians(w.map(Float.init), FloatMatrix(x))
        #expect(Self.maxRelative(Jf.rows, J.rows) < Tolerance.floatAgainstDouble, "\(c) rows: \(Self.maxRelative(Jf.rows, J.rows))")
        #expect(Self.maxRelative(Jf.product(v.map(Float.init)), J.product(v)) < Tolerance.floatAgainstDouble)
        for mode in KernelMode.allCases {
            let error = Self.maxRelative(LayerJacobians.kernel(Jf, Jf, mode: mode), LayerJacobians.kernel(J, J, mode: mode))
            #expect(error < Tolerance.floatAgainstDouble, "\(c) \(mode): \(error)")
        }
    }
}
