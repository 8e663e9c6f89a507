import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis
import PKTraining

/// `pathkernel ntk`'s library side (Docs/ntk-family.md, "The empirical NTK at a checkpoint"):
/// the kernel against explicit Jacobians by central finite differences, the spectrum against a
/// matrix built from known eigenvalues, the weights of a replayed step against the stored ones,
/// and the NumPy file's bytes.
@Suite("Empirical NTK at a checkpoint")
struct EmpiricalNTKTests {
    /// Central differences with step h = 1e-5 on a tanh net of O(1) weights: truncation
    /// ~h²·|f'''| ≈ 1e-10 and cancellation ~ε/h ≈ 1e-11 per Jacobian entry; relative to
    /// `max |entry|` of the kernel, 1e-7 leaves room for sums over ~100 parameters.
    static let finiteDifferenceTolerance = 1e-7
    /// The same matrix in another summation order (LAPACK against a closed form, trace blocks).
    static let roundOffTolerance = 1e-12

    static func tinyNetwork(bias: Bool = true) throws -> MLP {
        try MLP(spec: ModelSpec(layers: [3, 4, 5, 2], activation: .tanh, parameterization: .ntk,
                                sigmaW: 1.5, sigmaB: 0.1, bias: bias, leakySlope: 0.01))
    }

    static let inputs = Matrix([[0.9, -0.3, 0.4], [0.1, 1.2, -0.5], [-0.7, 0.2, 0.6], [-0.45, 0.15, -0.2]])

    /// `J` by central differences, `(nC) × P`, row `r·C + c` — no code of the network's own
    /// derivatives involved, only its forward pass.
    static func finiteDifferenceJacobians(_ net: MLP, _ w: [Double], _ x: Matrix, h: Double = 1e-5) -> Matrix {
        let n = x.rows, c = net.outputDim, p = net.parameterCount
        var j = Matrix(rows: n * c, cols: p)
        for k in 0..<p {
            var plus = w, minus = w
            plus[k] += h
            minus[k] -= h
            let d = net.forward(plus, x) - net.forward(minus, x)
            for r in 0..<n { for o in 0..<c { j[r * c + o, k] = d[r, o] / (2 * h) } }
        }
        return j
    }

    @Test(arguments: [true, false])
    func kernelMatchesFiniteDifferenceJacobians(bias: Bool) throws {
        let net = try Self.tinyNetwork(bias: bias)
        let w = (0..<net.parameterCount).map { 0.5 * sin(1.7 * Double($0) + 0.3) }
        let j = Self.finiteDifferenceJacobians(net, w, Self.inputs)
        let expected = Matrix.product(j, j, transposeB: true)
        let full = EmpiricalNTK.gram(net, weights: w, Self.inputs, mode: .full)
        #expect(full.rows == 8 && full.cols == 8)
        let scale = expected.data.map(abs).max()!
        let worst = zip(full.data, expected.data).map { abs($0 - $1) }.max()!
        #expect(worst <= Self.finiteDifferenceTolerance * scale, "largest difference \(worst), scale \(scale)")
        // trace: the sum of each C×C block's diagonal.
        let trace = EmpiricalNTK.gram(net, weights: w, Self.inputs, mode: .trace)
        #expect(trace.rows == 4 && trace.cols == 4)
        for r in 0..<4 {
            for s in 0..<4 {
                let sum = full[2 * r, 2 * s] + full[2 * r + 1, 2 * s + 1]
                #expect(abs(trace[r, s] - sum) <= Self.roundOffTolerance * scale)
            }
        }
    }

    /// `K = Q diag(λ) Qᵀ` with `Q = I − 2vvᵀ/vᵀv` (a Householder reflection, orthogonal and
    /// symmetric): its eigenvalues are `λ`.
    static func constructed(_ lambda: [Double]) -> Matrix {
        let m = lambda.count
        let v: [Double] = (0..<m).map { (i: Int) -> Double in
            let d = Double(i)
            return 1 + 0.3 * d * d - 0.7 * d
        }
        let vv = v.reduce(0) { $0 + $1 * $1 }
        var q = Matrix.identity(m)
        for i in 0..<m { for j in 0..<m { q[i, j] -= 2 * v[i] * v[j] / vv } }
        var d = Matrix(rows: m, cols: m)
        for i in 0..<m { d[i, i] = lambda[i] }
        return Matrix.product(Matrix.product(q, d), q, transposeB: true)
    }

    @Test func spectrumOfAConstructedMatrix() throws {
        let lambda = [0.5, 8, 1, 4, 2]
        let s = try KernelSpectrum(Self.constructed(lambda))
        let tolerance = Self.roundOffTolerance * 8
        for (got, want) in zip(s.eigenvalues, [8, 4, 2, 1, 0.5]) { #expect(abs(got - want) <= tolerance, "\(s.eigenvalues)") }
        #expect(abs(s.lambdaMax - 8) <= tolerance && abs(s.lambdaMin - 0.5) <= tolerance)
        #expect(abs(try #require(s.conditionNumber) - 16) <= 16 * 1e-11)
        // exp(entropy) of p = λ/15.5, written out.
        let p = [8, 4, 2, 1, 0.5].map { $0 / 15.5 }
        let erank = exp(-p.reduce(0) { $0 + $1 * log($1) })
        #expect(abs(s.effectiveRank - erank) <= 1e-11 * erank, "\(s.effectiveRank) vs \(erank)")

        // r equal nonzero eigenvalues, the rest 0: effective rank r, no condition number.
        let flat = try KernelSpectrum(Self.constructed([3, 0, 3, 0, 3]))
        #expect(abs(flat.effectiveRank - 3) <= 1e-10, "\(flat.effectiveRank)")
        #expect(abs(flat.lambdaMin) <= Self.roundOffTolerance * 3)
        #expect(KernelSpectrum(eigenvalues: [3, 0, 3]).conditionNumber == nil)
        #expect(KernelSpectrum(eigenvalues: [0, 0]).effectiveRank == 0)
        // A non-symmetric matrix is read through its symmetric part.
        var skew = Self.constructed(lambda)
        skew[0, 1] += 0.25
        skew[1, 0] -= 0.25
        let sym = try KernelSpectrum(skew)
        for (a, b) in zip(sym.eigenvalues, s.eigenvalues) { #expect(abs(a - b) <= tolerance) }
    }

    /// The weights of a step between checkpoints, replayed, equal the weights the same run
    /// stores when it keeps every step.
    @Test func replayedStepEqualsStoredStep() throws {
        let model = #"{"layers":[3,6,2],"activation":"tanh","parameterization":"ntk","sigmaW":1.5,"sigmaB":0.1}"#
        let data = #"{"kind":"teacher","train":6,"test":3,"inputDim":3,"teacherWidths":[4],"outputDim":2}"#
        let sparse = try recordTrace(config(name: "sparse", data: data, model: model, loss: .mse,
                                            optimizer: OptimizerSpec(kind: .gd, learningRate: 0.3), steps: 4, checkpointEvery: 2))
        let dense = try recordTrace(config(name: "dense", data: data, model: model, loss: .mse,
                                           optimizer: OptimizerSpec(kind: .gd, learningRate: 0.3), steps: 4, checkpointEvery: 1))
        let reader = try TraceReader.open(sparse)
        defer { reader.close() }
        let run = try TraceRun.load(reader)
        #expect(run.checkpoints == [0, 2, 4])
        let stored = try TraceReader.open(dense).checkpoint(step: 3)
        let (w3, replayed) = try WeightPath.weights(atStep: 3, run: run, reader: reader)
        #expect(replayed)
        // The replay runs the training step's own code on the same inputs: the same bits.
        #expect(w3 == stored)
        let (w2, stepTwoReplayed) = try WeightPath.weights(atStep: 2, run: run, reader: reader)
        let storedTwo = try reader.checkpoint(step: 2)
        #expect(!stepTwoReplayed && w2 == storedTwo)
        #expect(throws: AnalysisError.self) { try WeightPath.weights(atStep: 5, run: run, reader: reader) }

        let k = try EmpiricalNTK.compute(trace: sparse, step: 3, queries: .both, mode: .full, spectrum: true)
        #expect(k.replayed && k.examples == 9 && k.outputs == 2 && k.kernel.rows == 18)
        let x = Matrix(rows: 9, cols: 3, data: run.trainX.data + run.testX.data)
        #expect(k.kernel == EmpiricalNTK.gram(run.model, weights: stored, x, mode: .full))
        let spectrum = try #require(k.spectrum)
        #expect(spectrum.eigenvalues.count == 18 && spectrum.lambdaMin >= -Self.roundOffTolerance * spectrum.lambdaMax)
    }

    /// The `.npy` bytes, parsed here by the rules of NumPy's format 1.0 (an independent reader).
    @Test func npyFileLayout() throws {
        let m = Matrix([[1.5, -2, 3e-300], [0, .pi, -0.1]])
        let bytes = [UInt8](Npy.encode(m.data, shape: [m.rows, m.cols]))
        #expect(Array(bytes[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let start = 10 + headerLength
        #expect(start % 64 == 0, "data starts at \(start)")
        let header = String(decoding: bytes[10..<start], as: UTF8.self)
        #expect(header.hasSuffix("\n") && header.allSatisfy(\.isASCII))
        let dict = header.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(dict == "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", "\(dict)")
        #expect(bytes.count == start + 6 * 8)
        for i in 0..<6 {
            var bits: UInt64 = 0
            for b in 0..<8 { bits |= UInt64(bytes[start + 8 * i + b]) << (8 * b) }
            #expect(Double(bitPattern: bits) == m.data[i])
        }
        // CSV: shortest round-trip decimals.
        let csv = KernelFile.csv(m)
        let back = csv.split(separator: "\n").map { $0.split(separator: ",").map { Double($0)! } }
        #expect(Matrix(back) == m)
    }
}
