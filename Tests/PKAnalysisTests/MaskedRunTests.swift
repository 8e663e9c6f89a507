import Foundation
import Testing
import PKNetworks
import PKNumerics
import PKOptim
import PKTrace
import PKTraining
@testable import PKAnalysis

/// A run with a fixed parameter mask (`train --init`, Neural Tangent Transfer's sparse networks):
/// the trace stores the mask, pruned entries stay 0, and the analyzer treats them as absent:
/// `K^p = Σ_t (η_t/|B_t|) J̄_t(x) M J(x_i; w_t)ᵀ` (the mask a fixed 0/1 diagonal on both
/// Jacobians), checked against composite Gauss–Legendre through the kinks, and the network
/// reconstructed at round-off.
@Suite("Masked runs: trace and path kernel", .serialized)
struct MaskedRunTests {
    /// Two routes to one integral of a piecewise polynomial (as ExactQuadratureTests).
    static let oracleTolerance = 1e-11
    /// Exact quadrature's reconstruction residual, relative.
    static let roundOff = 1e-12

    static func maskedRun(optimizer: String = #"{"kind":"sgd","learningRate":1.5}"#) throws -> (path: String, mask: [Bool]) {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        var cfg = config(name: "masked", data: #"{"kind":"spirals","train":12,"test":6,"classes":3}"#,
                         model: #"{"layers":[2,6,6,3],"activation":"relu"}"#,
                         loss: .crossEntropy, optimizer: spec, steps: 5, batchSize: 4)
        let model = try MLP(spec: cfg.model)
        let w0 = model.initialParameters(seed: cfg.seed)
        let mask = MagnitudeMask.make(model, weights: w0, density: 0.5)
        cfg.optimizer.parameterMask = mask
        let start = zip(w0, mask).map { $1 ? $0 : 0 }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-mask-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("m.sqlite").path
        let trainer = try Trainer(config: cfg, initialParameters: start)
        let recorder = TraceRecorder(path: path)
        trainer.run(observers: [recorder])
        try recorder.finish()
        return (path, mask)
    }

    @Test func traceStoresTheMaskAndPrunedEntriesStayZero() throws {
        let (path, mask) = try Self.maskedRun()
        let reader = try TraceReader.open(path)
        #expect(try reader.parameterMask() == mask)
        #expect(mask.contains(false) && mask.contains(true))
        for step in try reader.checkpointSteps() {
            let w = try reader.checkpoint(step: step)
            for k in w.indices where !mask[k] { #expect(w[k] == 0, "step \(step): pruned entry \(k) is \(w[k])") }
            if step > 0 { #expect(zip(w, mask).contains { $1 && $0 != 0 }) }
        }
        let run = try TraceRun.load(reader)
        #expect(run.optimizer.parameterMask == mask)
        // A trace without a mask reads nil.
        let plain = try recordTrace(config(name: "plain", data: #"{"kind":"spirals","train":12,"test":6,"classes":3}"#,
                                           model: #"{"layers":[2,6,6,3],"activation":"relu"}"#, loss: .crossEntropy,
                                           optimizer: OptimizerSpec(kind: .sgd, learningRate: 0.5), steps: 2, batchSize: 4))
        #expect(try TraceReader.open(plain).parameterMask() == nil)
    }

    @Test func pathKernelUsesOnlyUnmaskedParametersAndReconstructs() throws {
        let (path, mask) = try Self.maskedRun()
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let model = run.model, C = model.outputDim, T = run.steps, n = run.trainX.rows
        let xq = run.testX
        let nQ = xq.rows
        let w = try (0...T).map { try reader.checkpoint(step: $0) }
        var oracle = Matrix(rows: nQ * C, cols: n * C), unmasked = Matrix(rows: nQ * C, cols: n * C)
        for t in 0..<T {
            let delta = zip(w[t + 1], w[t]).map { $0 - $1 }
            let batch = run.stepRecords[t].batch.map(Int.init)
            let jb = model.jacobians(w[t], run.trainX.rows(at: batch))
            var jm = jb
            for r in 0..<jm.rows { for k in 0..<jm.cols where !mask[k] { jm[r, k] = 0 } }
            let scale = run.stepRecords[t].learningRate / Double(batch.count)
            for q in 0..<nQ {
                let x = xq.rows(q..<(q + 1))
                let cuts = [0] + ExactQuadratureTests.referenceBreakpoints(model, w[t], delta, x) + [1]
                let jbar = compositePathJacobian(model, start: w[t], delta: delta, x, cuts: cuts, panels: 64)
                let k = Matrix.product(jbar, jm, transposeB: true)
                let k0 = Matrix.product(jbar, jb, transposeB: true)
                for (b, i) in batch.enumerated() {
                    for c in 0..<C { for kk in 0..<C {
                        oracle[q * C + c, i * C + kk] += scale * k[c, b * C + kk]
                        unmasked[q * C + c, i * C + kk] += scale * k0[c, b * C + kk]
                    } }
                }
            }
        }
        let (result, kernel) = try PathAnalyzer(settings: AnalysisSettings()).analyzeWithKernel(reader: TraceReader.open(path))
        let kernelError = ExactQuadratureTests.relativeError(kernel.data, oracle.data)
        #expect(kernelError <= Self.oracleTolerance, "K^p against the masked oracle: \(kernelError)")
        // The test bites: with the pruned entries' Jacobian columns the kernel is far off.
        #expect(ExactQuadratureTests.relativeError(unmasked.data, oracle.data) > 1e-3)
        #expect(result.settings.quadrature == "exact")
        for res in [result.reconstruction.test!, result.reconstruction.train!] {
            #expect(res.relativeResidual <= Self.roundOff, "masked run: reconstruction residual \(res.relativeResidual)")
        }
    }

    /// Adam and momentum with a mask: the analysis reconstructs the network too (quadrature error
    /// only, no inconsistency); a clip with a mask is refused with a message.
    @Test func otherOptimizersAndClip() throws {
        for opt in [#"{"kind":"adam","learningRate":0.05}"#, #"{"kind":"sgd","learningRate":0.5,"momentum":0.9}"#] {
            let (path, _) = try Self.maskedRun(optimizer: opt)
            let result = try PathAnalyzer(settings: AnalysisSettings()).analyze(reader: TraceReader.open(path))
            #expect(result.reconstruction.test!.relativeResidual <= Self.roundOff, "\(opt): residual \(result.reconstruction.test!.relativeResidual)")
        }
        #expect(throws: (any Error).self) { try Self.maskedRun(optimizer: #"{"kind":"sgd","learningRate":0.5,"clipNorm":1}"#) }
    }
}
