import Foundation
import Testing
import PKNumerics
import PKOptim
import PKTrace
import PKTraining
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

    /// The three-output run of these tests: spirals (40 training points, 24 held out), MLP
    /// 2-5-3 tanh, cross-entropy, 9 steps in batches of 6 (full batch for GD), a checkpoint every 4.
    static func threeOutputs(_ name: String, _ spec: OptimizerSpec) -> RunConfig {
        config(name: name, data: #"{"kind":"spirals","train":40,"test":24,"classes":3}"#,
               model: #"{"layers":[2,5,3],"activation":"tanh"}"#, loss: .crossEntropy,
               optimizer: spec, steps: 9, batchSize: spec.kind == .gd ? nil : 6, checkpointEvery: 4)
    }

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
            : Self.threeOutputs("det3", spec)
        let path = try recordTrace(cfg)
        var settings = AnalysisSettings()
        if windowed { settings.momentumTolerance = 1e-6 }
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
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
        Self.compareWithRecorded("\(optimizer)|C=\(outputs)", prints[0], note: "")
    }

    /// Refactoring aid, not a CI check: the bits depend on the BLAS kernels the CPU gets, so the
    /// recorded hashes (DeterminismFingerprints.swift) are compared only on request, on the machine
    /// that recorded them: `PATHKERNEL_CHECK_FINGERPRINTS=1` compares, `PATHKERNEL_PRINT_FINGERPRINTS=1`
    /// prints them again.
    static func compareWithRecorded(_ key: String, _ print_: [UInt64], note: String) {
        let env = ProcessInfo.processInfo.environment, hash = fnv1a(print_)
        if env["PATHKERNEL_PRINT_FINGERPRINTS"] != nil { print("fingerprint #\"\(key)\"#: 0x\(String(hash, radix: 16)),\(note)") }
        if env["PATHKERNEL_CHECK_FINGERPRINTS"] != nil {
            #expect(hash == DeterminismFingerprints.expected[key], "\(key): fingerprint 0x\(String(hash, radix: 16)) differs from the recorded one")
        }
    }

    /// Routes the cases above do not take, one analysis each (C = 1): a case is an optimizer and
    /// flags after `|`: `tol` (windowed momentum, tolerance 1e-6), `f32`, `nostate` (checkpoints
    /// every 4 steps, optimizer state deleted: checkpoint resolution), `resumed` (every stored
    /// state's count + 5: not fresh). Each on 1 and 2 threads, bit-identical (and, on request, against
    /// the hashes recorded in DeterminismFingerprints: see `compareWithRecorded`).
    static let routes = [
        #"{"kind":"sgd","learningRate":0.1,"weightDecay":0.01,"clipNorm":0.3}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3}"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.8,"dampening":0.3,"weightDecay":0.01}|tol"#,
        #"{"kind":"gd","learningRate":0.2,"momentum":0.9,"weightDecay":0.01}|f32|tol"#,
        #"{"kind":"rmsprop","learningRate":0.01,"alpha":0.9}"#,
        #"{"kind":"adamw","learningRate":0.02}"#,
        #"{"kind":"adam","learningRate":0.02,"weightDecay":0.01}|f32"#,
        #"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|nostate"#,
        #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|resumed"#,
    ]

    @Test(arguments: routes)
    func everyRouteKeepsItsBits(route: String) throws {
        let parts = route.split(separator: "|").map(String.init)
        let flags = Set(parts.dropFirst())
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(parts[0].utf8))
        let cfg = config(name: "route", data: #"{"kind":"moons","train":40,"test":24}"#,
                         model: #"{"layers":[2,5,1],"activation":"tanh"}"#, loss: .logistic, optimizer: spec, steps: 9,
                         batchSize: spec.kind == .gd ? nil : 6, checkpointEvery: flags.contains("resumed") ? 1 : 4)
        var path = try recordTrace(cfg)
        if flags.contains("nostate") { try sqlite(path, "DELETE FROM optimizer_state") }
        if flags.contains("resumed") {
            var trace = try TraceParts(path)
            trace.checkpoints = trace.checkpoints.map { c in
                var c = c
                c.state = c.state.map { StoredOptimizerState(names: $0.names, count: $0.count + 5, values: $0.values) }
                return c
            }
            path = try trace.write()
        }
        var settings = AnalysisSettings()
        if flags.contains("tol") { settings.momentumTolerance = 1e-6 }
        if flags.contains("f32") { settings.precision = .f32 }
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        var prints: [[UInt64]] = []
        var kernel = ""
        for threads in [1, 2] {
            Parallel.threads = threads
            let (r, k) = try PathAnalyzer(settings: settings).analyzeWithKernel(reader: TraceReader.open(path))
            prints.append(try Self.fingerprint(r, k))
            kernel = r.settings.pathKernel ?? ""
        }
        #expect(prints[1] == prints[0], "\(route): 1 and 2 threads differ")
        Self.compareWithRecorded(route, prints[0], note: "  // \(kernel)")
    }

    /// The backward route (momentum, Adam, AdamW, RMSProp) takes its steps in groups, one pass
    /// over R per group (`PathAnalyzer.backwardStepGroup`); its bits must not depend on the group
    /// size. Three outputs, 9 steps: groups of 1 (a step at a time, as before the groups), 2 (the
    /// last one short), 4 and 9 (the whole run in one), each bit-identical to the first.
    @Test(arguments: [optimizers[1], optimizers[2], optimizers[4], optimizers[5], optimizers[6]])
    func backwardStepGroupsKeepTheBits(optimizer: String) throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8))
        let cfg = Self.threeOutputs("group3", spec)
        let path = try recordTrace(cfg)
        let kernelFormTolerance = 1e-10   // float64: the kernel form closes on the network (as above)
        var prints: [[UInt64]] = []
        for group in [1, 2, 4, 9] {
            let (r, k) = try PathAnalyzer.$stepGroupOverride.withValue(group) {
                #expect(PathAnalyzer.backwardStepGroup(model: try TraceRun.load(TraceReader.open(path)).model, bytes: 8, queries: 1, nodes: 1) == group)
                return try PathAnalyzer(settings: AnalysisSettings()).analyzeWithKernel(reader: TraceReader.open(path))
            }
            #expect(r.reconstruction.test!.kernelFormMaxAbs < kernelFormTolerance, "\(optimizer), group \(group)")
            prints.append(try Self.fingerprint(r, k))
        }
        for (i, p) in prints.enumerated().dropFirst() {
            let same = p == prints[0]   // (a Bool, so that a failure prints the group, not the fingerprints)
            #expect(same, "group \([1, 2, 4, 9][i]) differs from a step at a time (\(optimizer))")
        }
    }

    /// R in blocks of query rows (`PathAnalyzer.queryBlockRowsOverride`): 64 queries in blocks of
    /// 64 (one), 25 (25, 25, 14) and 7: the same bits as one block; and the backward phase's
    /// progress counts (query row, step) pairs, so that the short last block weighs its rows.
    @Test func queryBlocksKeepTheBitsAndWeighTheirRows() throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(Self.optimizers[1].utf8))
        let cfg = Self.threeOutputs("blocks3", spec)
        let path = try recordTrace(cfg)
        var prints: [[UInt64]] = []
        var fractions: [[Double]] = []
        for rows in [64, 25, 7] {
            var seen: [AnalysisProgress] = []
            // A step group of 9: one report per block.
            let (r, k) = try PathAnalyzer.$stepGroupOverride.withValue(9) {
                try PathAnalyzer.$queryBlockRowsOverride.withValue(rows) {
                    try PathAnalyzer(settings: AnalysisSettings()).analyzeWithKernel(reader: TraceReader.open(path)) { seen.append($0) }
                }
            }
            prints.append(try Self.fingerprint(r, k))
            let backward = seen.filter { $0.phase == .backward }
            let start = backward.first!.done, end = backward.last!.done
            fractions.append(backward.dropFirst().map { ($0.done - start) / (end - start) })
        }
        for (i, p) in prints.enumerated().dropFirst() {
            let same = p == prints[0]
            #expect(same, "blocks of \([64, 25, 7][i]) rows differ from one block")
        }
        let tolerance = 1e-12   // ratios of sums of the same numbers
        // Blocks of 25, 25 and 14 rows: the backward phase at 25/64, 50/64 and 1 of its work.
        #expect(fractions[1].count == 3)
        for (f, expected) in zip(fractions[1], [25.0 / 64, 50.0 / 64, 1]) {
            #expect(abs(f - expected) <= tolerance, "blocks of 25: \(fractions[1])")
        }
    }

    /// An analysis keeps its bits while another thread of the process keeps asking for two BLAS
    /// threads (as a test training a large network beside it does): its lease of one thread
    /// (`BLASThreads.with`) holds OpenBLAS's process-wide count for the whole analysis, ridge
    /// machines included (a `dsyevd` on 40 rows gives other bits on two threads than on one:
    /// CI once failed `repeatedAnalysesAreBitIdentical` so, when the count was set, not leased).
    @Test func anotherThreadsBLASCountDoesNotReachAnAnalysis() throws {
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(Self.optimizers[5].utf8))
        let cfg = Self.threeOutputs("lease3", spec)
        let path = try recordTrace(cfg)
        func fingerprint() throws -> [UInt64] {
            let (r, k) = try PathAnalyzer(settings: AnalysisSettings()).analyzeWithKernel(reader: TraceReader.open(path))
            return try Self.fingerprint(r, k)
        }
        let quiet = try fingerprint()
        let stop = LockedFlag(), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let heldMicroseconds: UInt32 = 300, pauseMicroseconds: UInt32 = 100
            while !stop.value {
                BLASThreads.with(2) { usleep(heldMicroseconds) }
                usleep(pauseMicroseconds)
            }
            done.signal()
        }
        defer { stop.set(); done.wait() }
        for run in 0..<3 {
            #expect(try fingerprint() == quiet, "analysis \(run) beside two-thread BLAS leases differs from the quiet one")
        }
    }

    /// 64-bit FNV-1a over the fingerprint's words, each as its 8 little-endian bytes (Foundation
    /// has no SHA-256 on Linux without CryptoKit; this is a checksum, not a cryptographic hash).
    static func fnv1a(_ words: [UInt64]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for w in words {
            for k in 0..<8 {
                h ^= (w >> (8 * UInt64(k))) & 0xff
                h = h &* 0x0000_0100_0000_01b3
            }
        }
        return h
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
        // The work depends on the thread count (ntkinf-km's training runs on one thread: the units
        // are one thread's seconds): held, so that a test switching it cannot run between the
        // analysis and the plan below.
        let hold = Parallel.holdThreadCount()
        defer { hold.release() }
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
            // Each phase reports its start before any of its work (bench times the phases from
            // these reports): the backward phase's first report is the forward phase's end.
            let firstBackward = seen.first { $0.phase == .backward }!
            #expect(firstBackward.fraction == forwardEnd && firstBackward.step == 0)
        }
        // The units are the plan's seconds (each phase at its own rate and efficiency) on one
        // thread: the total is the plan's time × its threads, and each phase's share its share.
        let plan = try PathAnalyzer(settings: AnalysisSettings()).plan(reader: TraceReader.open(try recordTrace(cfg)))
        let tolerance = 1e-9   // the same sums in another order
        let total = seen.last!.total, planned = plan.seconds * Double(plan.threads)
        #expect(abs(total - planned) <= tolerance * planned, "progress total \(total) against the plan's \(planned) s")
        let machinesStart = seen.first { $0.phase == .machines }!.done
        let machines = try #require(plan.phases.first { $0.name == "kernel machines" }).seconds * Double(plan.threads)
        #expect(abs((total - machinesStart) - machines) <= tolerance * total, "machines \(total - machinesStart) against \(machines)")
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    func set() { lock.lock(); raised = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}
