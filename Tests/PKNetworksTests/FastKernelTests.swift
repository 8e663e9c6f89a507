import Foundation
import Testing
@testable import PKNetworks
import PKNumerics

/// Every fast path of the structured kernels against the reference: explicit per-example
/// Jacobians contracted by GEMM (`MLP.jacobians`), and forward-mode JVPs (`MLP.jvp`).
@Suite("Fast tangent kernels against the explicit Jacobian contraction")
struct FastKernelTests {
    static let specs = [
        ModelSpec(layers: [3, 7, 5, 2], activation: .tanh, parameterization: .ntk),
        ModelSpec(layers: [4, 9, 1], activation: .relu, parameterization: .standard),
        ModelSpec(layers: [2, 6, 6, 3], activation: .gelu, parameterization: .ntk, bias: false),
        ModelSpec(layers: [5, 8, 4], activation: .softplus, parameterization: .ntk, sigmaW: 1.3, sigmaB: 0.4),
    ]

    /// Inputs with enough rows (70 and 90) that `Parallel.ranges` cuts them into blocks on a
    /// multi-core machine, so the block split and the concatenation are exercised.
    static func problem(_ spec: ModelSpec) -> (MLP, [Double], [Double], Matrix, Matrix) {
        let model = try! MLP(spec: spec)
        var rng = PortableRandom(seed: 11)
        let x1 = Matrix(rows: 70, cols: model.inputDim, data: (0..<(70 * model.inputDim)).map { _ in rng.normal() })
        let x2 = Matrix(rows: 90, cols: model.inputDim, data: (0..<(90 * model.inputDim)).map { _ in rng.normal() })
        return (model, model.initialParameters(seed: 1), model.initialParameters(seed: 2), x1, x2)
    }

    static func maxRelative<S: BLASScalar>(_ a: DenseMatrix<S>, _ b: Matrix) -> Double {
        precondition(a.rows == b.rows && a.cols == b.cols, "shapes \(a.rows)×\(a.cols) and \(b.rows)×\(b.cols)")
        let scale = max(b.data.map(abs).max() ?? 0, .leastNormalMagnitude)
        return zip(a.data, b.data).map { abs(Double($0) - $1) }.max()! / scale
    }

    @Test(arguments: specs)
    func everyModeAndPrecisionMatchesTheReference(spec: ModelSpec) {
        let (model, u, v, x1, x2) = Self.problem(spec)
        let C = model.outputDim
        let explicit = Matrix.product(model.jacobians(u, x1), model.jacobians(v, x2), transposeB: true)
        var traced = Matrix(rows: x1.rows, cols: x2.rows)
        for r in 0..<x1.rows { for s in 0..<x2.rows { for c in 0..<C { traced[r, s] += explicit[r * C + c, s * C + c] } } }

        let fa = model.tangentFeatures(u, x1), fb = model.tangentFeatures(v, x2)
        #expect(Self.maxRelative(TangentFeatures.kernel(fa, fb, mode: .full), explicit) <= 1e-12)
        #expect(Self.maxRelative(TangentFeatures.kernel(fa, fb, mode: .trace), traced) <= 1e-12)
        // Outputs from the feature pass equal the forward pass.
        #expect(Self.maxRelative(fa.outputs, model.forward(u, x1)) <= 1e-12)

        // float32: the same kernels to single-precision round-off.
        let ga = model.tangentFeatures(u, x1, as: Float.self), gb = model.tangentFeatures(v, x2, as: Float.self)
        #expect(Self.maxRelative(TangentFeatures.kernel(ga, gb, mode: .full), explicit) <= 1e-5)
        #expect(Self.maxRelative(TangentFeatures.kernel(ga, gb, mode: .trace), traced) <= 1e-5)

        // Several requests sharing the activation Grams give each kernel alone; contraction gives Θ·g.
        var rng = PortableRandom(seed: 5)
        let g = Matrix(rows: x2.rows, cols: C, data: (0..<(x2.rows * C)).map { _ in rng.normal() })
        let both = TangentFeatures.kernels(fa, [(fb, .trace), (fb.contracted(with: g), .full)])
        var thetaG = Matrix(rows: x1.rows * C, cols: x2.rows)
        for row in 0..<(x1.rows * C) { for s in 0..<x2.rows { for k in 0..<C { thetaG[row, s] += explicit[row, s * C + k] * g[s, k] } } }
        #expect(Self.maxRelative(both[0], traced) <= 1e-12)
        #expect(Self.maxRelative(both[1], thetaG) <= 1e-11)
    }

    @Test(arguments: specs)
    func fusedJVPsEqualForwardMode(spec: ModelSpec) {
        let (model, u, v, x1, _) = Self.problem(spec)
        let t2 = u.map { -0.3 * $0 }
        let f = model.tangentFeatures(u, x1, tangents: [v, t2])
        #expect(f.outputTangents.count == 2)
        #expect(Self.maxRelative(f.outputTangents[0], model.jvp(u, x1, tangent: v)) <= 1e-12)
        #expect(Self.maxRelative(f.outputTangents[1], model.jvp(u, x1, tangent: t2)) <= 1e-12)
        let f32 = model.tangentFeatures(u, x1, as: Float.self, tangents: [v])
        #expect(Self.maxRelative(f32.outputTangents[0], model.jvp(u, x1, tangent: v)) <= 1e-5)
    }

    /// Several batches in one pass, cut into parts that span both batches (8-row minimum), give
    /// each batch's features alone; kernels cut into tiles along either side (B's examples when
    /// nB ≥ nA, else A's) give the uncut kernel; both against the explicit contraction, every
    /// mode, one and several outputs, one-column last-layer signals included.
    @Test(arguments: specs)
    func batchesAndTilesMatchTheReference(spec: ModelSpec) {
        let (model, u, v, x1, x2) = Self.problem(spec)
        let C = model.outputDim
        let t = v.map { 0.5 * $0 }
        do {
            func run<T: BLASScalar>(_: T.Type) {
                let tol = T.self == Double.self ? 1e-12 : 1e-5
                let split = model.tangentFeatures(u, batches: [x1, x2], as: T.self, tangents: [t], blockMinimum: 8)
                let whole = model.tangentFeatures(u, batches: [x1, x2], as: T.self, tangents: [t], blockMinimum: 1_000_000)
                #expect(split.count == 2 && split[0].count == x1.rows && split[1].count == x2.rows)
                for (bi, x) in [x1, x2].enumerated() {
                    let alone = model.tangentFeatures(u, x, as: T.self, tangents: [t])
                    for f in [split[bi], whole[bi]] {
                        #expect(Self.maxRelative(f.outputs, model.forward(u, x)) <= tol)
                        #expect(Self.maxRelative(f.outputTangents[0], model.jvp(u, x, tangent: t)) <= tol)
                        for l in 0..<model.depth {
                            #expect(Self.maxRelative(f.inputs[l], Matrix(alone.inputs[l])) <= tol)
                            #expect(Self.maxRelative(f.signals[l], Matrix(alone.signals[l])) <= tol)
                        }
                    }
                }
                let explicit = Matrix.product(model.jacobians(u, x1), model.jacobians(u, x2), transposeB: true)
                var traced = Matrix(rows: x1.rows, cols: x2.rows)
                for r in 0..<x1.rows { for s in 0..<x2.rows { for c in 0..<C { traced[r, s] += explicit[r * C + c, s * C + c] } } }
                let (fa, fb) = (split[0], split[1])
                for minimum in [8, 1_000_000] {
                    // nB ≥ nA: tiles of B's examples; swapped: tiles of A's rows.
                    let ks = TangentFeatures.kernels(fa, [(fb, .full), (fb, .trace)], tileMinimum: minimum)
                    #expect(Self.maxRelative(ks[0], explicit) <= tol)
                    #expect(Self.maxRelative(ks[1], traced) <= tol)
                    let swapped = TangentFeatures.kernels(fb, [(fa, .full), (fa, .trace)], tileMinimum: minimum)
                    #expect(Self.maxRelative(swapped[0], explicit.transposed) <= tol)
                    #expect(Self.maxRelative(swapped[1], traced.transposed) <= tol)
                }
            }
            run(Double.self)
            run(Float.self)
        }
    }

    /// The thread count changes only how rows are split, never a row's value.
    @Test func rowBlocksDoNotChangeTheKernel() {
        let (model, u, v, x1, x2) = Self.problem(Self.specs[0])
        let whole = TangentFeatures.kernel(model.tangentFeatures(u, x1.rows(0..<35)), model.tangentFeatures(v, x2), mode: .full)
        let split = TangentFeatures.kernel(model.tangentFeatures(u, x1), model.tangentFeatures(v, x2), mode: .full)
        let C = model.outputDim
        let top = Matrix(rows: 35 * C, cols: split.cols, data: Array(split.data[0..<(35 * C * split.cols)]))
        #expect(Self.maxRelative(top, whole) <= 1e-13)
    }
}
