import Foundation
import Testing
import PKNumerics
import PKOptim
import PKTrace
@testable import PKAnalysis

/// Same trace, same settings, same bits: every optimizer's analysis, with one and with three
/// outputs, repeated on one thread and on two, must give bit-identical results and kernels.
/// 64 queries, so that row blocks and query chunks are cut (a cut that followed the thread count
/// changed GEMM rounding). Release builds are checked too (`Tools/checks/determinism.py`): the
/// read of a released scratch buffer by Nesterov and RMSProp with three outputs showed only there.
@Suite("Analysis is deterministic", .serialized)
struct DeterminismTests {
    static let optimizers = [
        #"{"kind":"gd","learningRate":0.2}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9,"nesterov":true,"weightDecay":0.01}"# + "|tol",
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01,"clipNorm":0.5}"#,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}"#,
        #"{"kind":"rmsprop","learningRate":0.005,"momentum":0.5,"weightDecay":0.01}"#,
    ]

    /// The bits of everything an analysis prints, stores or returns (the run time excepted).
    static func fingerprint(_ r: AnalysisResult, _ kernel: Matrix) throws -> [UInt64] {
        var copy = r
        copy.seconds = 0
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        // JSON prints doubles round-trip exactly; the kernel's bits are compared directly.
        let json = try enc.encode(copy)
        return json.map { UInt64($0) } + [UInt64.max] + kernel.data.map(\.bitPattern)
    }

    @Test(arguments: optimizers, [1, 3])
    func repeatedAnalysesAreBitIdentical(optimizer: String, outputs: Int) throws {
        let windowed = optimizer.hasSuffix("|tol")
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.replacingOccurrences(of: "|tol", with: "").utf8))
        let cfg = outputs == 1
            ? config(name: "det1", data: #"{"kind":"moons","train":40,"test":24}"#,
                     model: #"{"layers":[2,5,1],"activation":"tanh"}"#, loss: .logistic,
                     optimizer: spec, steps: 9, batchSize: spec.kind == .gd ? nil : 6, checkpointEvery: 4)
            : config(name: "det3", data: #"{"kind":"spirals","train":40,"test":24,"classes":3}"#,
                     model: #"{"layers":[2,5,3],"activation":"tanh"}"#, loss: .crossEntropy,
                     optimizer: spec, steps: 9, batchSize: spec.kind == .gd ? nil : 6, checkpointEvery: 4)
        let path = try recordTrace(cfg)
        var settings = AnalysisSettings()
        if windowed { settings.momentumTolerance = 1e-6 }
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var prints: [[UInt64]] = []
        for threads in [1, 2, 1, 2] {
            Parallel.threads = threads
            let (r, k) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
            // The kernel form must also close: a scratch-buffer fault shows here first.
            #expect(r.reconstruction.test!.kernelFormMaxAbs < 1e-10, "\(optimizer), C = \(outputs)")
            prints.append(try Self.fingerprint(r, k))
        }
        for (i, p) in prints.enumerated().dropFirst() {
            #expect(p == prints[0], "run \(i) differs from run 0 (\(optimizer), C = \(outputs))")
        }
    }
}

/// The analyzer's progress: in cost units, monotone, phases in order, ending at the total.
@Suite("Analysis progress")
struct AnalysisProgressTests {
    @Test(arguments: [#"{"kind":"sgd","learningRate":0.1}"#, #"{"kind":"adam","learningRate":0.01}"#])
    func progressIsMonotoneAndComplete(optimizer: String) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        let cfg = config(name: "prog", data: #"{"kind":"spirals","train":20,"test":8,"classes":3}"#,
                         model: #"{"layers":[2,8,3],"activation":"tanh"}"#, loss: .crossEntropy,
                         optimizer: spec, steps: 6, batchSize: 5, checkpointEvery: 2)
        var seen: [AnalysisProgress] = []
        _ = try PathAnalyzer(settings: AnalysisSettings()).analyze(reader: TraceReader.open(try recordTrace(cfg))) { seen.append($0) }
        #expect(!seen.isEmpty)
        for (a, b) in zip(seen, seen.dropFirst()) {
            #expect(b.done >= a.done && b.phase.rawValue >= a.phase.rawValue)
            #expect(a.total == b.total)
        }
        #expect(seen.last!.fraction == 1 && seen.last!.phase == .machines)
        let phases = Set(seen.map(\.phase))
        #expect(phases.contains(.backward) == (spec.kind == .adam))
        if spec.kind == .adam {
            // The backward pass carries the query side: far more than the forward pass's step check.
            let forwardEnd = seen.last { $0.phase == .forward }!.fraction
            #expect(forwardEnd < 0.2, "forward pass estimated at \(forwardEnd) of the work")
        }
    }
}
