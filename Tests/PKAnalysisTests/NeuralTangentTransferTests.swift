import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
@testable import PKAnalysis

/// Neural Tangent Transfer against the ntk-family contract §7: oracle 7 (jax in float64: loss
/// terms, gradient norm, three Adam steps, mask changes), the factored cross kernel against the
/// explicit Jacobian product, the hand-written gradient against central differences, and the
/// magnitude rule's count and ties.
@Suite("Neural Tangent Transfer")
struct NeuralTangentTransferTests {
    /// Contract §7, relative to max(1, |expected|).
    static let oracleTolerance = 1e-10
    /// Factored kernel vs `J₁J₂ᵀ`: round-off of sums of a few hundred products.
    static let kernelTolerance = 1e-12
    /// Central differences with h = 1e-5 on an O(1) loss: truncation h²·|L'''| ≈ 1e-10 plus
    /// cancellation ε·|L|/h ≈ 1e-11, relative to max |∂L| (max(1, …)).
    static let finiteDifferenceTolerance = 1e-7

    static func close(_ a: Double, _ b: Double, _ tol: Double) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

    /// Oracle 7: teacher `[3, 8, 6, 2]` tanh ntk σ_w 1.5 σ_b 0.1, `w_T,k = √2 sin(1.7k + 0.3)`;
    /// §2a's six training inputs.
    static func oracleSetup() throws -> (MLP, [Double], Matrix) {
        let spec = ModelSpec(layers: [3, 8, 6, 2], activation: .tanh, parameterization: .ntk,
                             sigmaW: 1.5, sigmaB: 0.1, bias: true)
        let model = try MLP(spec: spec)
        let wT = (0..<model.parameterCount).map { 2.0.squareRoot() * sin(1.7 * Double($0) + 0.3) }
        let x = Matrix([[0.9, -0.3, 0.4], [0.1, 1.2, -0.5], [-0.7, 0.2, 0.6], [-0.45, 0.15, -0.2],
                        [0.3, 0.3, -0.9], [1.1, 0.4, 0.2]])
        return (model, wT, x)
    }

    @Test func oracle7() throws {
        let (model, wT, x) = try Self.oracleSetup()
        #expect(model.parameterCount == 100)
        let mask = MagnitudeMask.make(model, weights: wT, density: 0.5)
        #expect(MagnitudeMask.keptPerLayer(model, mask) == [12, 24, 6])
        var s = wT
        for k in s.indices where mask[k] { s[k] += 0.3 * sin(0.37 * Double(k)) }
        let objective = NTTObjective(network: model, teacher: wT, lambdaKernel: 0.1, lambdaL2: 1e-4, density: 0.5)
        let (terms, g) = objective.termsAndGradient(student: s, mask: mask, batch: x)
        let tol = Self.oracleTolerance
        #expect(Self.close(terms.kernel, 0.3381524135589, tol), "kernel term \(terms.kernel)")
        #expect(Self.close(terms.target, 0.3366956679056, tol), "target term \(terms.target)")
        #expect(Self.close(terms.weightNormSquared, 70.27889698371, tol), "‖M⊙s‖² \(terms.weightNormSquared)")
        #expect(Self.close(terms.loss, 0.3845666886583, tol), "L \(terms.loss)")
        #expect(Self.close(terms.relativeKernelDistance, 0.5998510633842, tol), "distance \(terms.relativeKernelDistance)")
        let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(Self.close(norm, 0.395882384003, tol), "‖∇L‖ \(norm)")
        for k in g.indices where !mask[k] { #expect(g[k] == 0, "pruned entry \(k) has gradient \(g[k])") }

        let adam = try Transform.make(kind: "adam", beta1: 0.9, beta2: 0.999, eps: 1e-8)
        var state = adam.initialState(parameterCount: model.parameterCount)
        let expected = [0.3689388745313, 0.3540316420304, 0.3397237707755]
        for e in expected {
            let r = NeuralTangentTransfer.adamStep(objective, student: s, mask: mask, batch: x, optimizer: adam,
                                                   state: state, learningRate: 0.01)
            s = r.student
            state = r.state
            let L = objective.terms(student: s, mask: mask, batch: x).loss
            #expect(Self.close(L, e, tol), "Adam step: L \(L), expected \(e)")
        }
        for k in s.indices where !mask[k] { #expect(s[k] == wT[k], "pruned entry \(k) moved") }
        let next = MagnitudeMask.make(model, weights: s, density: 0.5)
        #expect(MagnitudeMask.changes(model, from: mask, to: next) == [2, 6, 2])
    }

    /// Networks the oracle does not cover: relu without biases (C = 3, standard), gelu with an
    /// odd batch (the halves differ in size), erf ntk.
    static func otherNetworks() throws -> [(MLP, Matrix)] {
        let specs = [
            ModelSpec(layers: [4, 7, 5, 3], activation: .relu, parameterization: .standard, sigmaW: 1.2, sigmaB: 0, bias: false),
            ModelSpec(layers: [3, 6, 2], activation: .gelu, parameterization: .ntk, sigmaW: 1.3, sigmaB: 0.2, bias: true),
            ModelSpec(layers: [2, 5, 4, 4, 2], activation: .erf, parameterization: .ntk, sigmaW: 1.4, sigmaB: 0.3, bias: true),
        ]
        let rows = [6, 5, 4]
        return try zip(specs, rows).map { spec, n in
            let model = try MLP(spec: spec)
            var x = Matrix(rows: n, cols: spec.layers[0])
            for k in x.data.indices { x.data[k] = cos(0.9 * Double(k) + 0.4) }
            return (model, x)
        }
    }

    static func weights(_ model: MLP, phase: Double, scale: Double) -> [Double] {
        (0..<model.parameterCount).map { scale * sin(1.3 * Double($0) + phase) }
    }

    @Test func crossKernelEqualsJacobianProduct() throws {
        for (model, x) in try Self.otherNetworks() + [(Self.oracleSetup().0, Self.oracleSetup().2)] {
            let w = Self.weights(model, phase: 0.7, scale: 0.8)
            let objective = NTTObjective(network: model, teacher: w, lambdaKernel: 1, lambdaL2: 0, density: 1)
            let n1 = x.rows / 2, C = model.outputDim
            let theta = objective.crossKernel(objective.pass(w, x), split: n1).kernel
            let J = model.jacobians(w, x)
            var expected = Matrix(rows: n1 * C, cols: (x.rows - n1) * C)
            Matrix.gemm(J.rows(0..<(n1 * C)), J.rows((n1 * C)..<(x.rows * C)), transposeB: true, into: &expected)
            let scale = expected.data.map(abs).max()!
            for k in theta.data.indices {
                #expect(abs(theta.data[k] - expected.data[k]) <= Self.kernelTolerance * scale, "\(model.spec.layers) entry \(k)")
            }
        }
    }

    @Test func gradientMatchesCentralDifferences() throws {
        let (om, ow, ox) = try Self.oracleSetup()
        for (model, x) in try Self.otherNetworks() + [(om, ox)] {
            let teacher = model.parameterCount == ow.count ? ow : Self.weights(model, phase: 0.3, scale: 0.9)
            let mask = MagnitudeMask.make(model, weights: teacher, density: 0.6)
            var s = teacher
            for k in s.indices { s[k] += 0.25 * cos(0.61 * Double(k)) }
            let objective = NTTObjective(network: model, teacher: teacher, lambdaKernel: 0.7, lambdaL2: 1e-2, density: 0.6)
            let g = objective.termsAndGradient(student: s, mask: mask, batch: x).gradient
            let h = 1e-5
            var fd = [Double](repeating: 0, count: s.count)
            for k in s.indices {
                var p = s, m = s
                p[k] += h
                m[k] -= h
                fd[k] = (objective.terms(student: p, mask: mask, batch: x).loss
                         - objective.terms(student: m, mask: mask, batch: x).loss) / (2 * h)
            }
            let scale = max(1, fd.map(abs).max()!)
            for k in s.indices {
                #expect(abs(g[k] - fd[k]) <= Self.finiteDifferenceTolerance * scale,
                        "\(model.spec.layers) \(model.activation) ∂L/∂s[\(k)]: \(g[k]) vs \(fd[k])")
            }
        }
    }

    @Test func magnitudeRuleCountsAndTies() throws {
        let spec = ModelSpec(layers: [3, 3, 1], activation: .relu, parameterization: .standard, sigmaW: 1, sigmaB: 0, bias: true)
        let model = try MLP(spec: spec)
        var w = [Double](repeating: 0, count: model.parameterCount)
        // Layer 0 (9 entries): |w| = 1 at flat indices 2, 5, 7 and 8 (a tie), 0.5 at 0.
        for k in [2, 5, 7, 8] { w[k] = k % 2 == 0 ? 1 : -1 }
        w[0] = 0.5
        // ρ = 0.3: k = ⌊2.7 + 0.5⌋ = 3 of 9 (ties: the lower indices 2, 5, 7); ⌊0.9 + 0.5⌋ = 1 of 3.
        let mask = MagnitudeMask.make(model, weights: w, density: 0.3)
        #expect((0..<9).filter { mask[$0] } == [2, 5, 7])
        #expect(MagnitudeMask.keptPerLayer(model, mask) == [3, 1])
        #expect(MagnitudeMask.keptCount(density: 0.5, size: 5) == 3)   // ⌊2.5 + ½⌋
        for layer in model.layers {
            if let bo = layer.biasOffset { #expect((bo..<(bo + layer.outputs)).allSatisfy { mask[$0] }, "biases are kept") }
        }
        let random = MagnitudeMask.random(model, density: 0.3, seed: 7)
        #expect(MagnitudeMask.keptPerLayer(model, random) == [3, 1])
        #expect(random == MagnitudeMask.random(model, density: 0.3, seed: 7))
    }

    @Test func runKeepsDensityAndRecordsMaskUpdates() throws {
        let (model, wT, x) = try Self.oracleSetup()
        var inputs = Matrix(rows: 12, cols: 3)
        for k in inputs.data.indices { inputs.data[k] = sin(0.77 * Double(k)) }
        var settings = NeuralTangentTransfer.Settings(density: 0.5)
        settings.batchSize = 4
        settings.epochs = 3      // 3 batches per epoch: 9 iterations
        settings.maskEvery = 2   // updates after 2, 4, 6 (not 8: within the last 2)
        settings.learningRate = 0.01
        let r = try NeuralTangentTransfer.run(network: model, teacher: wT, inputs: inputs, heldOut: x, settings: settings)
        #expect(r.iterations == 9)
        #expect(r.history.map(\.iteration) == [0, 2, 4, 6, 9])
        #expect(r.history.filter { $0.maskChanges != nil }.count == 3)
        #expect(MagnitudeMask.keptPerLayer(model, r.mask) == [12, 24, 6])
        #expect(r.history.last!.heldOut.loss < r.history.first!.heldOut.loss)
        let again = try NeuralTangentTransfer.run(network: model, teacher: wT, inputs: inputs, heldOut: x, settings: settings)
        #expect(again.student == r.student)
    }
}
