import Testing
import PKNetworks
import PKNumerics

/// An MLP spec built as a `Sequential` of layers is `MLP`: the same layout, the same initial
/// parameters for a seed, and bit-identical outputs, VJPs and JVPs in Double (the layers make the
/// same GEMM calls in the same order, so `==` on bit patterns is the intended comparison here,
/// not a tolerance).
@Suite("An MLP as layers is MLP, bit for bit")
struct MLPAsLayersTests {
    static func setUp(_ c: NetCase) -> (MLP, Sequential, [Double], Matrix) {
        let mlp = try! MLP(spec: c.spec)
        let layers = try! Sequential(mlp: c.spec)
        return (mlp, layers, mlp.initialParameters(seed: 11), randomMatrix(rows: 5, cols: mlp.inputDim, seed: 12))
    }

    @Test("layout and initial parameters", arguments: NetCase.all)
    func layoutAndInitialization(_ c: NetCase) {
        let (mlp, layers, _, _) = Self.setUp(c)
        #expect(layers.layout == mlp.layout)
        #expect(layers.parameterCount == mlp.parameterCount)
        #expect(layers.inputShape == [mlp.inputDim] && layers.outputShape == [mlp.outputDim])
        for seed: UInt64 in [0, 42, 2024] {
            #expect(layers.initialParameters(seed: seed).map(\.bitPattern) == mlp.initialParameters(seed: seed).map(\.bitPattern))
        }
        #expect(layers.isPiecewiseLinear == (c.activation == .relu || c.activation == .leakyRelu))
    }

    @Test("outputs, VJPs and JVPs", arguments: NetCase.all)
    func derivatives(_ c: NetCase) {
        let (mlp, layers, w, x) = Self.setUp(c)
        #expect(layers.forward(w, x).data.map(\.bitPattern) == mlp.forward(w, x).data.map(\.bitPattern))
        let u = randomMatrix(rows: x.rows, cols: mlp.outputDim, seed: 13)
        #expect(layers.vjp(w, x, cotangent: u).map(\.bitPattern) == mlp.vjp(w, x, cotangent: u).map(\.bitPattern))
        let v = randomVector(mlp.parameterCount, seed: 14)
        #expect(layers.jvp(w, x, tangent: v).data.map(\.bitPattern) == mlp.jvp(w, x, tangent: v).data.map(\.bitPattern))
    }

    /// The preset shapes (wider, deeper) and the golden initialization of `InitializationTests`.
    @Test func presetShapesAndGoldenValues() throws {
        let golden = try Sequential(mlp: ModelSpec(layers: [2, 2, 1], activation: .tanh))
        #expect(golden.initialParameters(seed: 42).map(\.bitPattern) == InitializationTests.golden42)
        let spec = ModelSpec(layers: [16, 32, 32, 3], activation: .relu, parameterization: .standard, sigmaW: 1.4)
        let (mlp, layers) = (try MLP(spec: spec), try Sequential(mlp: spec))
        let w = mlp.initialParameters(seed: 3), x = randomMatrix(rows: 40, cols: 16, seed: 4)
        #expect(layers.layout == mlp.layout)
        #expect(layers.forward(w, x).data.map(\.bitPattern) == mlp.forward(w, x).data.map(\.bitPattern))
        let u = randomMatrix(rows: 40, cols: 3, seed: 5)
        #expect(layers.vjp(w, x, cotangent: u).map(\.bitPattern) == mlp.vjp(w, x, cotangent: u).map(\.bitPattern))
    }

    @Test func invalidSpecsAreRefusedAsMLPRefusesThem() {
        #expect(throws: ModelSpecError.self) { try Sequential(mlp: ModelSpec(layers: [3, 0, 1], activation: .relu)) }
    }
}
