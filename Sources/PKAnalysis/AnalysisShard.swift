import Foundation
import PKNumerics
import PKTrace

/// Shard `index` of `count` of an analysis (`pathkernel analyze TRACE --shard I/N --out PART`,
/// Docs/scale-out.md): the query rows `⌊I·nQ/N⌋ ..< ⌊(I+1)·nQ/N⌋` (held-out queries first, then
/// the training points, `AnalysisContext`), every step. Each query row's sums (its row of K^p, of
/// N's row sums, the JVP sum, R_wd) depend on no other query row, on every route (the backward
/// routes' query side R is a row per query), so the shards' rows together are the analysis's,
/// computed once; what every shard computes alike (the path's replay, the training side, the
/// dynamics' Θ_t, the linearized network) is taken from shard 0 by `merge`.
public struct AnalysisShard: Codable, Sendable, Equatable {
    public let index: Int
    public let count: Int

    /// The most shards of one analysis.
    public static let maxCount = 10_000

    public init(index: Int, count: Int) throws {
        guard count >= 1, count <= Self.maxCount else {
            throw AnalysisError("--shard I/N needs 1 ≤ N ≤ \(Self.maxCount) shards, not \(count)")
        }
        guard index >= 0, index < count else {
            throw AnalysisError("--shard I/N numbers shards from 0 to N − 1 (a Slurm array's task ids): \(index) is not below \(count)")
        }
        self.index = index
        self.count = count
    }

    /// Parses `I/N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw AnalysisError("--shard takes I/N, shard I (0 … N − 1) of N, e.g. --shard 0/4; not \"\(text)\"")
        }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// Its query rows of `nQ`.
    public func rows(queries nQ: Int) throws -> Range<Int> {
        guard count <= nQ else {
            throw AnalysisError("\(count) shards of \(nQ) queries would leave shards with none: use at most \(nQ) shards")
        }
        return (index * nQ / count)..<((index + 1) * nQ / count)
    }
}

/// What a part says of the trace it was computed from: the run's identity and the trace's basis
/// (`TraceBasis`). A part of another trace, or of this trace before it changed, is refused.
struct TraceIdentity: Codable, Equatable {
    var name: String
    var createdAt: String
    var seed: UInt64
    /// CRC-32 of the run's config JSON.
    var configChecksum: UInt32
    var parameters: Int
    var steps: Int
    var basis: TraceBasis

    init(run: TraceRun, basis: TraceBasis) {
        name = run.info.name
        createdAt = run.info.createdAt
        seed = run.info.seed
        configChecksum = CRC32.checksum(run.info.configJSON)
        parameters = run.model.parameterCount
        steps = run.steps
        self.basis = basis
    }
}

/// A part's header (`PartFile.headerJSON`).
struct ShardPartHeader: Codable {
    var toolVersion: String
    var trace: TraceIdentity
    /// The analysis settings' key (`AnalysisStore.key`): the merge's settings.
    var settings: String
    var shard: AnalysisShard
    var queries: Int, train: Int, outputs: Int, blocks: Int
    var rowsLower: Int, rowsUpper: Int
    var replay: ReplaySummary
    var quadrature: QuadratureTally
    var dynamics: [AnalysisResult.DynamicsPoint]
    var dynamicsSubset: Int
    var pathKmSums: [[Double]?]
    /// Wall and CPU seconds of the shard.
    var seconds: Double
    var cpuSeconds: Double
}

extension PathAnalyzer {
    /// Shard `shard` of this analysis of `reader`'s trace, as a part for `merge`. `toolVersion`
    /// is stored in the part (the merge names a part of another version).
    public func analyzeShard(reader: TraceReader, shard: AnalysisShard, toolVersion: String,
                             progress: (AnalysisProgress) -> Void = { _ in }) throws -> PartFile {
        // One BLAS thread for the whole shard (BLASThreads).
        return try BLASThreads.with(1) {
            if settings.adaptiveTolerance != nil || settings.quadrature == .adaptive {
                throw AnalysisError("--shard cannot be combined with --adaptive: adaptive quadrature chooses each step's nodes from all queries at once, so shards of the queries would choose differently (use --quadrature gauss --nodes q, or exact for relu networks)")
            }
            let started = Date(), cpu0 = Self.cpuSeconds()
            let basis = try reader.basis()
            let walk = try self.walk(reader: reader, shard: shard, progress: progress)
            let c = walk.context, acc = walk.acc, rows = c.rows
            let C = c.outputs, n = c.train, blocks = c.blocks
            func rowsOf(_ m: Matrix, width: Int) -> PartFile.Array2D {
                let lo = rows.lowerBound * width, hi = rows.upperBound * width
                return .init(rows: hi - lo, cols: m.cols, data: Array(m.data[(lo * m.cols)..<(hi * m.cols)]))
            }
            func whole(_ m: Matrix) -> PartFile.Array2D { .init(rows: m.rows, cols: m.cols, data: m.data) }
            var arrays: [String: PartFile.Array2D] = [
                "kp": rowsOf(acc.kp, width: blocks),
                "n_sum": rowsOf(acc.nSum, width: 1),
                "rwd": rowsOf(acc.rwd, width: 1),
                "jvp_sum": rowsOf(acc.jvpSum, width: 1),
                "n_diag": whole(acc.nDiag),
                "c_sum": .init(rows: 1, cols: n, data: acc.cSum),
                "g_sum": whole(acc.gSum),
                "w_t": .init(rows: 1, cols: walk.wT.count, data: walk.wT),
                "w_lin": .init(rows: 1, cols: walk.wLin.count, data: walk.wLin),
            ]
            for (k, m) in acc.nAttr.enumerated() { arrays["n_attr_\(k)"] = whole(m) }
            precondition(acc.kp.cols == n * blocks && acc.nSum.cols == C)
            let header = ShardPartHeader(
                toolVersion: toolVersion, trace: TraceIdentity(run: c.run, basis: basis), settings: AnalysisStore.key(settings), shard: shard,
                queries: c.queries, train: n, outputs: C, blocks: blocks, rowsLower: rows.lowerBound, rowsUpper: rows.upperBound,
                replay: walk.replay, quadrature: walk.quadrature.tally, dynamics: walk.dynamics.points, dynamicsSubset: walk.dynamics.indices.count,
                pathKmSums: walk.dynamics.pathKmSums, seconds: Date().timeIntervalSince(started), cpuSeconds: Self.cpuSeconds() - cpu0)
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            return PartFile(headerJSON: String(decoding: try enc.encode(header), as: UTF8.self), arrays: arrays)
        }
    }

    /// The analysis of `reader`'s trace from the parts of a shard set (`analyzeShard`), named by
    /// `names` in messages: checks that they are of this trace as it is now, of one settings and
    /// shard count, complete and disjoint; places each part's rows; takes what every shard
    /// computes alike from shard 0; then builds the kernel machines, fidelity and attribution as
    /// `analyze` does. Returns the result and the settings it was computed with.
    public static func merge(reader: TraceReader, parts: [PartFile], names: [String], toolVersion: String,
                             machinesProgress: (Bool) -> Void = { _ in }) throws -> (result: AnalysisResult, settings: AnalysisSettings) {
        // One BLAS thread for the merge and its kernel machines (BLASThreads).
        return try BLASThreads.with(1) {
            let started = Date(), cpu0 = cpuSeconds()
            guard !parts.isEmpty, parts.count == names.count else { throw AnalysisError("merge needs the parts of a shard set: none given") }
            let dec = JSONDecoder()
            dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            var headers: [ShardPartHeader] = []
            for (part, name) in zip(parts, names) {
                do { headers.append(try dec.decode(ShardPartHeader.self, from: Data(part.headerJSON.utf8))) } catch {
                    throw AnalysisError("\(name): its header cannot be read (\(error)); was it written by `pathkernel analyze --shard` of this version?")
                }
            }
            let run = try TraceRun.load(reader)
            let identity = TraceIdentity(run: run, basis: try reader.basis())
            let first = headers[0]
            for (h, name) in zip(headers, names) {
                guard h.trace.name == identity.name && h.trace.createdAt == identity.createdAt && h.trace.seed == identity.seed
                        && h.trace.configChecksum == identity.configChecksum && h.trace.parameters == identity.parameters else {
                    throw AnalysisError("\(name) is a part of another trace (run \"\(h.trace.name)\" created \(h.trace.createdAt)), not of \(reader.path) (run \"\(identity.name)\" created \(identity.createdAt))")
                }
                if let changed = identity.basis.changes(since: h.trace.basis) {
                    throw AnalysisError("\(name) was computed from an earlier state of \(reader.path) (\(changed)): analyze the shards again")
                }
                guard h.settings == first.settings else {
                    throw AnalysisError("\(name) has other analysis settings than \(names[0]) (\(h.settings) against \(first.settings)): every part of a merge comes from the same `analyze --shard` options")
                }
                guard h.shard.count == first.shard.count else {
                    throw AnalysisError("\(name) is shard \(h.shard.description), of a set of \(h.shard.count); \(names[0]) is of a set of \(first.shard.count)")
                }
                guard h.toolVersion == toolVersion else {
                    throw AnalysisError("\(name) was written by pathkernel \(h.toolVersion), this is \(toolVersion): merge with the version that computed the shards, or compute them again")
                }
            }
            // Complete and disjoint.
            let N = first.shard.count
            var byIndex = [Int: Int]()
            for (k, h) in headers.enumerated() {
                if let other = byIndex[h.shard.index] {
                    throw AnalysisError("shard \(h.shard.description) is given twice: \(names[other]) and \(names[k])")
                }
                byIndex[h.shard.index] = k
            }
            let missing = (0..<N).filter { byIndex[$0] == nil }
            guard missing.isEmpty else {
                throw AnalysisError("the shard set is incomplete: \(missing.count) of \(N) shards missing (\(missing.prefix(20).map { "\($0)/\(N)" }.joined(separator: ", "))\(missing.count > 20 ? ", …" : "")); run them (`pathkernel analyze \(reader.path) --shard I/\(N) --out PART`) and merge all \(N) parts")
            }
            let ordered = (0..<N).map { byIndex[$0]! }
            var settings: AnalysisSettings
            do { settings = try JSONDecoder().decode(AnalysisSettings.self, from: Data(first.settings.utf8)) } catch {
                throw AnalysisError("\(names[0]): its analysis settings cannot be read (\(error))")
            }
            try settings.validate()
            let context = try AnalysisContext(settings: settings, run: run)
            let nQ = context.queries, n = context.train, C = context.outputs, blocks = context.blocks, P = run.model.parameterCount

            // Each part's arrays, checked against the analysis's shapes; rows placed.
            var acc = KernelAccumulators(zeroFor: context)
            for k in ordered {
                let h = headers[k], part = parts[k], name = names[k]
                let expected = try h.shard.rows(queries: nQ)
                guard h.queries == nQ, h.train == n, h.outputs == C, h.blocks == blocks, h.rowsLower == expected.lowerBound,
                      h.rowsUpper == expected.upperBound else {
                    throw AnalysisError("\(name) does not fit this analysis (\(h.queries) queries × \(h.train) training points, \(h.outputs) outputs, rows \(h.rowsLower)..<\(h.rowsUpper); expected \(nQ) × \(n), \(C), rows \(expected.lowerBound)..<\(expected.upperBound))")
                }
                func array(_ key: String, rows: Int, cols: Int) throws -> [Double] {
                    guard let a = part.arrays[key] else { throw AnalysisError("\(name) has no array \(key): not a complete part") }
                    guard a.rows == rows && a.cols == cols else {
                        throw AnalysisError("\(name): array \(key) is \(a.rows) × \(a.cols), expected \(rows) × \(cols)")
                    }
                    return a.data
                }
                let m = expected.count
                func place(_ key: String, into target: inout Matrix, width: Int) throws {
                    let data = try array(key, rows: m * width, cols: target.cols)
                    let lo = expected.lowerBound * width * target.cols
                    target.data.replaceSubrange(lo..<(lo + data.count), with: data)
                }
                try place("kp", into: &acc.kp, width: blocks)
                try place("n_sum", into: &acc.nSum, width: 1)
                try place("rwd", into: &acc.rwd, width: 1)
                try place("jvp_sum", into: &acc.jvpSum, width: 1)
                // Rows of N kept whole: non-zero only in the shard that holds the query row.
                let diag = try array("n_diag", rows: acc.nDiag.rows, cols: C)
                for i in diag.indices { acc.nDiag.data[i] += diag[i] }
                for a in acc.nAttr.indices {
                    let d = try array("n_attr_\(a)", rows: C, cols: n)
                    for i in d.indices { acc.nAttr[a].data[i] += d[i] }
                }
                _ = try array("c_sum", rows: 1, cols: n)
                _ = try array("g_sum", rows: n, cols: C)
                _ = try array("w_t", rows: 1, cols: P)
                _ = try array("w_lin", rows: 1, cols: P)
                guard h.dynamics.count == headers[ordered[0]].dynamics.count, h.pathKmSums.count == h.dynamics.count else {
                    throw AnalysisError("\(name): its dynamics do not match shard 0's")
                }
            }
            // What every shard computes alike: shard 0's.
            let zero = headers[ordered[0]], zeroPart = parts[ordered[0]]
            acc.cSum = zeroPart.arrays["c_sum"]!.data
            acc.gSum = Matrix(rows: n, cols: C, data: zeroPart.arrays["g_sum"]!.data)
            let wT = zeroPart.arrays["w_t"]!.data, wLin = zeroPart.arrays["w_lin"]!.data
            var dynamics = zero.dynamics
            for p in dynamics.indices where zero.pathKmSums[p] != nil {
                var num = 0.0, den = 0.0
                for k in ordered {
                    guard let s = headers[k].pathKmSums[p], s.count == 2 else { continue }
                    num += s[0]
                    den += s[1]
                }
                dynamics[p].pathKmError = den > 0 ? (num / den).squareRoot() : nil
            }
            // The route, notes and quadrature as the shards chose them (the same trace and settings).
            let path = try WeightPath(run: run, reader: reader, allowMismatch: settings.allowInconsistentSteps == true)
            let optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors)
            let selection = KernelRoutes.select(context: context, optimizer: optimizer, checkpointResolution: path.checkpointResolution,
                                                initialState: path.initialStoredState)
            let (exact, quadratureNotes) = exactQuadrature(settings: settings, model: context.model, route: selection.route)
            var quadrature = SegmentQuadrature(settings: settings, steps: context.steps, model: context.model, exact: exact)
            quadrature.take(ordered.map { headers[$0].quadrature })
            let assembly = AnalysisAssembly(context: context, route: selection.route, form: optimizer.kernelForm,
                                            notes: run.notes + selection.notes + quadratureNotes, path: zero.replay, w0: path.current,
                                            wT: wT, wLin: wLin, dynamics: dynamics, dynamicsSubset: zero.dynamicsSubset, quadrature: quadrature)
            var (result, _) = try assembly.assemble(acc, started: started, machinesProgress: machinesProgress)
            // Time: the result's `seconds` is the longest shard's wall time plus the merge's.
            let shardWall = headers.map(\.seconds).max() ?? 0
            result.seconds = shardWall + Date().timeIntervalSince(started)
            result.sharding = .init(shards: N, shardCpuSeconds: headers.reduce(0) { $0 + $1.cpuSeconds }, longestShardSeconds: shardWall,
                                    mergeCpuSeconds: cpuSeconds() - cpu0)
            return (result, settings)
        }
    }

    /// This process's CPU seconds so far (user + system, all threads).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
