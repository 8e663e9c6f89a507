import Testing
import PKNetworks
import PKNumerics

/// Hand-written reverse and forward mode against central finite differences over every
/// parameter, and the Jacobian routines against each other.
///
/// The nets are 3-5-4-2 at a fixed seed. For ReLU and leaky ReLU a finite difference is only an
/// oracle away from the kinks: with step 1e-6 a pre-activation would have to lie within ~1e-6 of
/// zero to cross one, which these seeds do not do (a crossing would show as an O(1) error).
@Suite("Network derivatives")
struct DerivativeTests {
    static let examples = 4

    static func setUp(_ c: NetCase) -> (MLP, [Double], Matrix) {
        let model = try! MLP(spec: c.spec)
        let w = model.initialParameters(seed: 11)
        let x = randomMatrix(rows: examples, cols: model.inputDim, seed: 12)
        return (model, w, x)
    }

    @Test("vjp equals finite differences over all parameters", arguments: NetCase.all)
    func vjpMatchesFiniteDifferences(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let cotangent = randomMatrix(rows: x.rows, cols: model.outputDim, seed: 13)
        let g = model.vjp(w, x, cotangent: cotangent)
        let fd = centralDifferences(at: w) { Vec.dot(model.forward($0, x).data, cotangent.data) }
        #expect(g.count == model.parameterCount)
        #expect(relativeError(g, fd) < Tolerance.finiteDifference, "\(c): \(relativeError(g, fd))")
    }

    @Test("jacobian rows equal finite differences", arguments: NetCase.all)
    func jacobianMatchesFiniteDifferences(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let x0 = x.row(0)
        let J = model.jacobian(w, x0)
        #expect(J.rows == model.outputDim && J.cols == model.parameterCount)
        for out in 0..<model.outputDim {
            let fd = centralDifferences(at: w) { model.forward($0, Matrix(rows: 1, cols: x0.count, data: x0))[0, out] }
            #expect(relativeError(J.row(out), fd) < Tolerance.finiteDifference, "\(c) output \(out)")
        }
    }

    @Test("stacked jacobians equal per-example jacobians", arguments: NetCase.all)
    func batchJacobiansMatchPerExample(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let C = model.outputDim
        let J = model.jacobians(w, x)
        #expect(J.rows == x.rows * C && J.cols == model.parameterCount)
        for r in 0..<x.rows {
            let Jr = model.jacobian(w, x.row(r))
            for out in 0..<C {
                #expect(relativeError(J.row(r * C + out), Jr.row(out)) < Tolerance.roundOff, "\(c) row \(r)")
            }
        }
    }

    @Test("vjp equals Jᵀ·cotangent summed over examples", arguments: NetCase.all)
    func vjpEqualsJacobianTransposeProduct(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let cotangent = randomMatrix(rows: x.rows, cols: model.outputDim, seed: 14)
        let J = model.jacobians(w, x)
        // Row r·C + c of J pairs with cotangent[r, c]: the cotangent's row-major data, as a row.
        let reference = Matrix.product(Matrix(rows: 1, cols: cotangent.data.count, data: cotangent.data), J).data
        #expect(relativeError(model.vjp(w, x, cotangent: cotangent), reference) < Tolerance.roundOff)
    }

    @Test("jvp equals J·v", arguments: NetCase.all)
    func jvpEqualsJacobianProduct(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let v = randomVector(model.parameterCount, seed: 15)
        let Jv = Matrix.product(model.jacobians(w, x), Matrix(rows: v.count, cols: 1, data: v))
        let jvp = model.jvp(w, x, tangent: v)
        #expect(jvp.rows == x.rows && jvp.cols == model.outputDim)
        #expect(relativeError(jvp.data, Jv.data) < Tolerance.roundOff, "\(c)")
    }

    @Test("jvp equals the directional finite difference", arguments: NetCase.all)
    func jvpMatchesDirectionalDifference(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let v = randomVector(model.parameterCount, seed: 16)
        let h = finiteDifferenceStep
        var up = w, down = w
        Vec.axpy(h, v, &up)
        Vec.axpy(-h, v, &down)
        let fd = (model.forward(up, x) - model.forward(down, x)).data.map { $0 / (2 * h) }
        #expect(relativeError(model.jvp(w, x, tangent: v).data, fd) < Tolerance.finiteDifference, "\(c)")
    }

    @Test("forwardWithPullback shares the forward pass and agrees with forward and vjp", arguments: NetCase.all)
    func forwardWithPullbackAgrees(_ c: NetCase) {
        let (model, w, x) = Self.setUp(c)
        let cotangent = randomMatrix(rows: x.rows, cols: model.outputDim, seed: 17)
        let (output, pullback) = model.forwardWithPullback(w, x)
        // The same operations in the same order: bit-identical.
        #expect(output.data.map(\.bitPattern) == model.forward(w, x).data.map(\.bitPattern))
        #expect(pullback(cotangent).map(\.bitPattern) == model.vjp(w, x, cotangent: cotangent).map(\.bitPattern))
        // Linear in the cotangent.
        let twice = pullback(2 * cotangent), once = pullback(cotangent)
        #expect(relativeError(twice, once.map { 2 * $0 }) < Tolerance.roundOff)
    }
}

@Suite("Forward pass against closed forms")
struct ForwardTests {
    @Test(arguments: Parameterization.allCases)
    func singleLayerIsAffine(_ p: Parameterization) throws {
        let spec = ModelSpec(layers: [3, 2], activation: .tanh, parameterization: p, sigmaW: 1.3, sigmaB: 0.7)
        let model = try MLP(spec: spec)
        let w = model.initialParameters(seed: 3)
        let x = randomMatrix(rows: 5, cols: 3, seed: 4)
        // Layout: W (2×3, row-major) then b (2).
        let sW = p == .ntk ? 1.3 / 3.0.squareRoot() : 1
        let sb = p == .ntk ? 0.7 : 1
        let f = model.forward(w, x)
        for r in 0..<5 {
            for c in 0..<2 {
                var z = sb * w[6 + c]
                for j in 0..<3 { z += sW * w[3 * c + j] * x[r, j] }
                #expect(isClose(f[r, c], z, tolerance: Tolerance.roundOff))
            }
        }
    }

    @Test(arguments: Activation.allCases)
    func twoLayerNetMatchesHandWrittenLoops(_ act: Activation) throws {
        let spec = ModelSpec(layers: [2, 3, 1], activation: act, sigmaW: 1.5, sigmaB: 0.2, leakySlope: 0.1)
        let model = try MLP(spec: spec)
        let w = model.initialParameters(seed: 8)
        let x = randomMatrix(rows: 3, cols: 2, seed: 9)
        // Offsets: W0 0..<6, b0 6..<9, W1 9..<12, b1 12.
        let s0 = 1.5 / 2.0.squareRoot(), s1 = 1.5 / 3.0.squareRoot()
        let f = model.forward(w, x)
        for r in 0..<3 {
            var out = 0.2 * w[12]
            for i in 0..<3 {
                let z = s0 * (w[2 * i] * x[r, 0] + w[2 * i + 1] * x[r, 1]) + 0.2 * w[6 + i]
                out += s1 * w[9 + i] * act.value(z, leakySlope: 0.1)
            }
            #expect(isClose(f[r, 0], out, tolerance: Tolerance.roundOff), "\(act) row \(r)")
        }
    }

    @Test func layoutNamesShapesAndOffsets() throws {
        let withBias = try MLP(spec: ModelSpec(layers: [3, 5, 2], activation: .relu))
        #expect(withBias.layout == [
            ParameterTensor(name: "layers.0.weight", shape: [5, 3], offset: 0, count: 15),
            ParameterTensor(name: "layers.0.bias", shape: [5], offset: 15, count: 5),
            ParameterTensor(name: "layers.1.weight", shape: [2, 5], offset: 20, count: 10),
            ParameterTensor(name: "layers.1.bias", shape: [2], offset: 30, count: 2),
        ])
        #expect(withBias.parameterCount == 32 && withBias.inputDim == 3 && withBias.outputDim == 2)
        let noBias = try MLP(spec: ModelSpec(layers: [3, 5, 2], activation: .relu, bias: false))
        #expect(noBias.layout.map(\.name) == ["layers.0.weight", "layers.1.weight"])
        #expect(noBias.layout.map(\.offset) == [0, 15] && noBias.parameterCount == 25)
    }

    @Test func emptyBatchGivesEmptyOutputs() throws {
        let model = try MLP(spec: ModelSpec(layers: [3, 4, 2], activation: .gelu))
        let w = model.initialParameters(seed: 1)
        let x = Matrix(rows: 0, cols: 3)
        #expect(model.forward(w, x).rows == 0 && model.forward(w, x).cols == 2)
        #expect(model.vjp(w, x, cotangent: Matrix(rows: 0, cols: 2)) == [Double](repeating: 0, count: model.parameterCount))
    }
}
