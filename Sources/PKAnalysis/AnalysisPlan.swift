import Foundation
import PKNetworks
import PKNumerics
import PKTrace

/// What an analysis will cost, before it runs (`analyze --plan`, and the line `analyze` prints
/// before it starts): the work of each phase from `AnalysisCostModel`, the peak memory, and the
/// time at this machine's GEMM rate, measured now, times each phase's measured efficiency.
///
/// The work is counted in flop-equivalents (the cost model's unit: GEMM and elementwise flops,
/// plus a fixed cost per row of the backward pass's R). The efficiencies (`efficiency`) are the
/// fraction of the single-core GEMM rate × threads each phase reaches, calibrated on the runs
/// listed in Docs/path-kernel.md §7 (Cost and time estimate); the estimate is checked against
/// the real run by `bench --workload W5|W6`.
public struct AnalysisPlan: Codable, Sendable {
    public struct Phase: Codable, Sendable {
        public var name: String
        /// Flop-equivalents of the cost model.
        public var work: Double
        public var seconds: Double
    }

    public var trace: String
    public var steps: Int
    public var parameters: Int
    public var outputs: Int
    public var queries: Int
    public var train: Int
    public var kernel: String
    public var mode: String
    public var precision: String
    public var phases: [Phase]
    /// The backward pass's GEMM flops (the products of R with the batches' Jacobians), when the
    /// route has one: `2·C·n_q·P_R·n_b` per step.
    public var kernelFlops: Double?
    public var peakMemoryBytes: Double
    /// GFLOP/s of one core's GEMM in the analysis precision, measured now, and the threads.
    public var gemmRate: Double
    /// GFLOP/s of one core in R's own product kernel, measured now (`measuredProductRate`), when
    /// the plan prices an MLP's backward pass with it.
    public var productRate: Double?
    /// GFLOP/s of one core in a compact first layer's products with the batch
    /// (`measuredCompactProductRate`), measured now, when the plan prices one.
    public var compactProductRate: Double?
    /// Seconds per element of a float64 `dsymv` on one thread, measured now (`SymvSpeed`), when
    /// the plan prices with it a ridge machine's eigendecomposition or an MLP backward pass's
    /// kernel sums (`AnalysisCostModel.kernelAddFactor`).
    public var symvSeconds: Double?
    /// Seconds of one eigendecomposition of `PathAnalyzer.eigenProbeRows` rows, measured now
    /// (`PathAnalyzer.measuredEigenSeconds`), when the ridge machines' systems have at least
    /// `PathAnalyzer.eigenProbeFrom` rows and the plan scales it to theirs.
    public var eigenSeconds: Double?
    /// Seconds of the layer probe (`measuredLayerProbeSeconds`) and the factor it puts on a layer
    /// network's fixed feature work (`AnalysisCostModel.layerSpeedFactor`), for a layer network.
    public var layerProbeSeconds: Double?
    public var layerSpeedFactor: Double?
    /// Seconds per evaluation of each smooth activation of the network with its derivative, one
    /// thread's while every thread evaluates at once (`measuredActivationSeconds`), in the
    /// analysis precision; keyed by the activation's name, empty for a network without one.
    public var activationSeconds: [String: Double] = [:]
    public var threads: Int
    /// How many measurements the GEMM rate (and R's kernels' rates) are the median of: 1, or more
    /// when the first estimate was long enough for `PathAnalyzer.refineMeasurements`.
    public var measurements: Int = 1
    public var seconds: Double
    /// Settings that would cut the time, each with its estimate.
    public var cheaper: [Alternative]

    public struct Alternative: Codable, Sendable {
        public var option: String
        public var seconds: Double
        public var peakMemoryBytes: Double
    }
}

extension PathAnalyzer {
    /// The fraction of `threads × one core's GEMM rate` each phase reaches (see `AnalysisPlan`):
    /// backward fitted with a row cost on the five MLP backward runs (moons-momentum,
    /// teacher-adam, fmnist-adamw, W5, W6; session 12), now a layer network's only (an MLP's is
    /// `AnalysisCostModel.backwardGemmEfficiency` plus its memory-bound part, session 14),
    /// machines on the presets; forward is the large-GEMM limit of the steps phase, whose MLP
    /// work counts `AnalysisCostModel.gemmWidthFactor` flop-equivalents per flop (fitted with it on
    /// the four plain (S)GD presets, session 11); Docs/path-kernel.md §7.
    static let efficiency = (forward: 0.78, backward: 0.84, machines: 0.6)

    /// The plan of this analysis of `reader`'s trace; `gemmRate` (GFLOP/s of one core in the
    /// analysis precision) is measured when not given; `threads` is `Parallel.threads` when not
    /// given (read once: every estimate of one plan uses the same count). `alternatives: false`
    /// leaves `cheaper` empty (the estimate `analyze` prints before it starts, which need not
    /// measure the float32 rates).
    public func plan(reader: TraceReader, gemmRate: Double? = nil, threads: Int? = nil, alternatives: Bool = true) throws -> AnalysisPlan {
        try settings.validate()
        let run = try TraceRun.load(reader)
        let context = try AnalysisContext(settings: settings, run: run)
        let path = try WeightPath(run: run, reader: reader, allowMismatch: settings.allowInconsistentSteps == true)
        let optimizer = try run.optimizer.transformation(parameters: run.model.parameterTensors)
        let threads = max(1, threads ?? Parallel.threads)
        // The first estimate's compact layer shape (the one `refineMeasurements` measures again).
        var firstCompact: (outputs: Int, support: Int, inputs: Int)? = nil, estimated = false
        func estimate(_ settings: AnalysisSettings, rate: Double) throws -> AnalysisPlan {
            let context = try AnalysisContext(settings: settings, run: run)
            let selection = KernelRoutes.select(context: context, optimizer: optimizer, checkpointResolution: path.checkpointResolution,
                                                initialState: path.initialStoredState)
            let route = selection.route
            let cost = AnalysisCostModel(context: context, route: route, gemmRate: rate, threads: threads)
            let productRate = route.backwardPass && context.model is MLP
                ? PathAnalyzer.measuredProductRate(settings.precision, batch: context.meanBatch) : nil
            let compact = productRate == nil ? nil : PathAnalyzer.compactProductShape(context: context, route: route)
            if !estimated { firstCompact = compact; estimated = true }
            let compactRate = compact.map {
                PathAnalyzer.measuredCompactProductRate(settings.precision, batch: context.meanBatch, outputs: $0.outputs, support: $0.support,
                                                        inputs: $0.inputs)
            }
            let ridge = !context.exactOnly && context.train * context.blocks <= PathAnalyzer.eigenRidgeLimit
            let symvSeconds = ridge || productRate != nil ? PathAnalyzer.measuredSymvSeconds() : nil
            let eigenSeconds = ridge && context.train * context.blocks >= PathAnalyzer.eigenProbeFrom
                ? PathAnalyzer.measuredEigenSeconds() : nil
            let probe = context.model is LayerNetwork ? PathAnalyzer.measuredLayerProbeSeconds(settings.precision) : nil
            let T = Double(context.steps)
            let perSecond = rate * 1e9 * Double(threads)
            var phases = [AnalysisPlan.Phase(name: "steps", work: T * cost.forwardPerStep,
                                             seconds: T * cost.forwardPerStep / (perSecond * PathAnalyzer.efficiency.forward))]
            if cost.backwardPerStep > 0 {
                phases.append(.init(name: "kernel (backwards)", work: T * cost.backwardPerStep,
                                    seconds: T * cost.backwardPerStep / (perSecond * PathAnalyzer.efficiency.backward)))
            }
            if cost.machines > 0 {
                // The machines (eigendecompositions, the final NTK) run in float64 whatever the precision.
                let f64 = settings.precision == .f64 ? rate : PathAnalyzer.measuredGemmRate(.f64)
                phases.append(.init(name: "kernel machines", work: cost.machines,
                                    seconds: cost.machines / (f64 * 1e9 * Double(threads) * PathAnalyzer.efficiency.machines)))
            }
            let model = context.model, C = Double(context.outputs), P = Double(model.parameterCount)
            let bytes = Double(settings.precision == .f32 ? 4 : 8)
            let nQ = Double(context.queries), n = Double(context.train), blocks = Double(context.blocks)
            var memory = 8 * nQ * blocks * n * blocks                                   // K^p
                + 8 * Double(run.trainX.data.count + run.testX.data.count) * 2          // data, the query matrix
                + 8 * P * 8                                                             // weight vectors
            var kernelFlops: Double? = nil
            if let pre = route as? PreconditionedRoute {
                let PR = PathAnalyzer.meanQuerySideScalars(model: model, form: pre.form, queries: context.xq, rows: context.rows)
                let perBlock = min(nQ, max(1, Double(PathAnalyzer.querySideBlockBytes) / max(bytes * C * PR, 1)).rounded(.down))
                memory += (pre.form.hasPreconditioner ? 16 : 8) * T * P + bytes * C * PR * perBlock
                // The query features of the other steps of a group (`backwardStepGroup`).
                let group = PathAnalyzer.backwardStepGroup(model: model, bytes: Int(bytes), queries: Int(perBlock), nodes: settings.nodes)
                memory += Double((group - 1) * PathAnalyzer.backwardStepFeatureBytes(model: model, bytes: Int(bytes), queries: Int(perBlock),
                                                                                      nodes: settings.nodes))
                let meanBatch = Double(run.stepRecords.reduce(0) { $0 + $1.batch.count }) / max(T, 1)
                kernelFlops = 2 * C * nQ * PR * meanBatch * T
            } else {
                memory += 384 * 1_048_576                                               // query blocks' features and kernels
            }
            if !context.exactOnly {
                let m = n * blocks
                memory += 8 * m * m * 3 * Double(min(threads, 2))                        // the ridge machines' systems, side by side
            }
            let seconds = phases.reduce(0) { $0 + $1.seconds }
            return AnalysisPlan(trace: run.path, steps: context.steps, parameters: model.parameterCount, outputs: context.outputs,
                                queries: context.queries, train: context.train, kernel: route.kernelName, mode: context.mode.rawValue,
                                precision: settings.precision.rawValue, phases: phases, kernelFlops: kernelFlops,
                                peakMemoryBytes: memory, gemmRate: rate, productRate: productRate, compactProductRate: compactRate, symvSeconds: symvSeconds, eigenSeconds: eigenSeconds,
                                layerProbeSeconds: probe,
                                layerSpeedFactor: probe.map { AnalysisCostModel.layerSpeedFactor(probeSeconds: $0, precision: settings.precision) },
                                activationSeconds: Dictionary(uniqueKeysWithValues: context.model.smoothActivationUnits.keys.map {
                                    ($0.rawValue, PathAnalyzer.measuredActivationSeconds($0, settings.precision))
                                }),
                                threads: threads, seconds: seconds, cheaper: [])
        }
        var plan = try estimate(settings, rate: gemmRate ?? PathAnalyzer.measuredGemmRate(settings.precision))
        // A long analysis: its rates measured again over up to 2 s, and the estimate redone with
        // their medians (`refineMeasurements`). A given GEMM rate leaves the plan as it is.
        if gemmRate == nil, let budget = PathAnalyzer.refinementSeconds(estimate: plan.seconds) {
            let count = PathAnalyzer.refineMeasurements(settings.precision, batch: plan.productRate == nil ? nil : context.meanBatch,
                                                        compact: firstCompact, seconds: budget)
            plan = try estimate(settings, rate: PathAnalyzer.measuredGemmRate(settings.precision))
            plan.measurements = count
        }
        guard alternatives else { return plan }
        // What would cut it: each option alone, when it applies and is cheaper.
        var options: [(String, AnalysisSettings)] = []
        // (Scope full keeps every training point as a query for the kernel machines, whatever
        // --queries reports; scope exact drops them.)
        if settings.scope == .full && context.heldOut > 0 {
            var s = settings; s.queries = .test; s.scope = .exact; options.append(("--queries test --scope exact", s))
        }
        if context.heldOut > 100 {
            var s = settings; s.queries = .test; s.scope = .exact; s.maxQueries = 100
            options.append(("--queries test --scope exact --max-queries 100", s))
        }
        if settings.precision == .f64 {
            var s = settings; s.precision = .f32; options.append(("--precision f32", s))
        }
        if context.mode == .full && context.outputs > 1 {
            var s = settings; s.kernel = .trace; options.append(("--kernel trace", s))
        }
        for (option, s) in options {
            // f32 at the float32 GEMM rate, measured too (not a fixed 2×).
            let rate = s.precision == settings.precision ? plan.gemmRate : PathAnalyzer.measuredGemmRate(s.precision)
            let alt = try estimate(s, rate: rate)
            if alt.seconds < 0.9 * plan.seconds {
                plan.cheaper.append(.init(option: option, seconds: alt.seconds, peakMemoryBytes: alt.peakMemoryBytes))
            }
        }
        return plan
    }

    /// The plan's microbenchmarks of R's kernels take the median of their timed runs after a
    /// warm-up, at least `microbenchmarkRuns.minimum` of them and then more until
    /// `microbenchmarkRuns.seconds` have passed or `maximum` runs are done (until session 19, 7
    /// runs: about 30 ms for the product, 70 ms for the memory passes). This VM's speed drifts in
    /// episodes of a fraction of a second to seconds (a 1024² DGEMM timed back to back: 29–39
    /// GFLOP/s within 8 s), so a median over 30 ms sampled one episode. Plans of one W5 trace (20 steps; the real analysis 42.0 s, its backward phase
    /// about 38 s), the two builds alternated (session 19): the backward estimate 34.7–48.1 and
    /// 32.3–47.9 s with 7 runs (14 plans), 32.9–40.0 s with 31 runs (8 plans), 32.3–41.6 s with
    /// this budget (6 plans): the high outliers go, the spread narrows a little. Full W5 runs
    /// stayed 31–53 % high (the product kernel's measured rate still moves between processes:
    /// Docs/path-kernel.md §7, Session 19). A slow build (debug) stops at the minimum.
    static let microbenchmarkRuns = (minimum: 7, maximum: 31, seconds: 0.25)

    /// The median seconds of `run`'s timed runs after one untimed warm-up: at least
    /// `microbenchmarkRuns.minimum`, then more while `budget` seconds have not passed since the
    /// first (at most `maximum`); the upper middle one of an even count.
    static func medianSeconds(budget: Double = microbenchmarkRuns.seconds, _ run: () -> Void) -> Double {
        var times: [Double] = []
        var index = 0, start: UInt64 = 0
        while index == 0 || microbenchmarkContinues(runs: times.count, since: start, seconds: budget) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            if index == 0 { start = t0 }
            run()
            if index > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
            index += 1
        }
        return times.sorted()[times.count / 2]
    }

    /// Whether a microbenchmark that has timed `runs` runs since `start` (uptime nanoseconds)
    /// goes on (`microbenchmarkRuns`).
    static func microbenchmarkContinues(runs: Int, since start: UInt64, seconds: Double = microbenchmarkRuns.seconds) -> Bool {
        let limits = microbenchmarkRuns
        guard runs >= limits.minimum else { return true }
        return runs < limits.maximum && Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds
    }

    /// One core's GEMM rate in `precision` (GFLOP/s), measured once per process on 1024² matrices:
    /// the median of 5 runs after a warm-up (3 until session 19; see `microbenchmarkRuns`), or the
    /// median of such measurements once `refineMeasurements` has taken more.
    public static func measuredGemmRate(_ precision: AnalysisSettings.Precision) -> Double {
        gemmRates.value(precision) { gemmRateOnce(precision) }
    }

    static func gemmRateOnce(_ precision: AnalysisSettings.Precision, runs: Int = 5) -> Double {
        precision == .f32 ? GemmRate.measure(Float.self, n: 1024, runs: runs) : GemmRate.measure(Double.self, n: 1024, runs: runs)
    }

    /// The most a plan spends measuring its rates again (`refineMeasurements`): this share of its
    /// first estimate, at most `seconds`, and only when that is at least `least` (an estimate of
    /// 50 s or more); each round's GEMM rate the median of `gemmRuns` runs, R's kernels' the
    /// minimum of `microbenchmarkRuns` (shorter measurements, more of them, spread over the time).
    static let refinement = (share: 0.01, seconds: 2.0, least: 0.5, gemmRuns: 3)

    /// The seconds a plan whose first estimate is `estimate` seconds spends measuring its rates
    /// again (`refinement`), or nil for none (an estimate that is not a finite number too).
    static func refinementSeconds(estimate: Double) -> Double? {
        guard estimate.isFinite else { return nil }
        let budget = min(refinement.seconds, refinement.share * estimate)
        return budget >= refinement.least ? budget : nil
    }

    /// Measures the rates a plan priced an analysis with again, round after round, while another
    /// round fits in `seconds` (at least one round): the GEMM rate in `precision` and, for an MLP's
    /// backward pass (`batch` given), R's product kernel at that batch, the memory-bound passes
    /// over R and a compact first layer's products (`compact`, the shape measured). Each rate is then the median of its measurements. This VM's speed moves by up to
    /// 1.7× between moments a second or more apart (a core on R's product kernel, one-second
    /// windows: 23–41 GFLOP/s; single quarter-second measurements seconds apart: 20–42), so one
    /// measurement taken in a slow moment priced a whole run there (session 20: a 30-step W5
    /// whose GEMM rate was measured at 24.3 against about 33 GFLOP/s per core, estimated +17 %).
    /// Returns how many measurements each rate now has.
    @discardableResult
    public static func refineMeasurements(_ precision: AnalysisSettings.Precision, batch: Int?, compact: (outputs: Int, support: Int, inputs: Int)? = nil,
                                          seconds: Double) -> Int {
        rounds(seconds: seconds) {
            gemmRates.add(precision) { gemmRateOnce(precision, runs: refinement.gemmRuns) }
            if let batch {
                productRates.add(productKey(precision, batch: batch)) { productRateOnce(precision, batch: batch, seconds: 0) }
                querySideSeconds.add(precision) { querySideSecondsOnce(precision, seconds: 0) }
                if let c = compact {
                    productRates.add(compactProductKey(precision, batch: batch, outputs: c.outputs, support: c.support, inputs: c.inputs)) {
                        compactProductRateOnce(precision, batch: batch, outputs: c.outputs, support: c.support, inputs: c.inputs, seconds: 0)
                    }
                }
            }
        }
        return gemmRates.count(precision)
    }

    /// Runs `round` again while another round (at the mean time of those so far) fits in
    /// `seconds`, at least once; returns how many ran.
    @discardableResult
    static func rounds(seconds: Double, _ round: () -> Void) -> Int {
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0, count = 0
        repeat {
            round()
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            count += 1
        } while elapsed + elapsed / Double(count) <= seconds
        return count
    }
}

/// Measurements of one rate per key, taken once per process and more by `refineMeasurements`: the
/// rate is the median of them.
final class Measurements<Key: Hashable>: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [Key: [Double]] = [:]

    /// The median of `key`'s measurements, measuring once first when there is none.
    func value(_ key: Key, measure: () -> Double) -> Double {
        lock.lock(); defer { lock.unlock() }
        if table[key] == nil { table[key] = [measure()] }
        return Self.median(table[key]!)
    }

    /// Takes one more measurement of `key`.
    func add(_ key: Key, measure: () -> Double) {
        lock.lock(); defer { lock.unlock() }
        table[key, default: []].append(measure())
    }

    func count(_ key: Key) -> Int {
        lock.lock(); defer { lock.unlock() }
        return table[key]?.count ?? 0
    }

    func forget() {
        lock.lock(); defer { lock.unlock() }
        table = [:]
    }

    static func median(_ values: [Double]) -> Double {
        let v = values.sorted(), n = v.count
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

private let gemmRates = Measurements<AnalysisSettings.Precision>()
private let productRates = Measurements<String>()
private let symvSeconds = LockedBox<Double?>(nil)
private let eigenSeconds = LockedBox<Double?>(nil)
private let querySideSeconds = Measurements<AnalysisSettings.Precision>()

extension PathAnalyzer {
    /// Seconds per element of a float64 `dsymv` on one thread while another runs beside it, as
    /// the two ridge machines' eigendecompositions run (`SymvSpeed`, about 60 ms), measured once
    /// per process: the memory-bound half of those eigendecompositions.
    public static func measuredSymvSeconds() -> Double {
        symvSeconds.withLock { s in
            if let s { return s }
            let v = SymvSpeed.measure(threads: min(Parallel.threads, 2))
            s = v
            return v
        }
    }

    /// The eigendecomposition probe's rows, and the ridge systems' rows from which the plan uses
    /// it (`AnalysisCostModel.eigenProbeRows`, where they are explained).
    public static let eigenProbeRows = 1024
    public static let eigenProbeFrom = 1500

    /// Seconds of one eigendecomposition of `eigenProbeRows` rows on one thread
    /// while another runs its own beside it, as the two ridge machines' run (`EigenSpeed`, about
    /// 0.4 s), measured once per process; nil when LAPACK failed on it. The plan scales it by
    /// `(m/eigenProbeRows)³` for systems of at least `eigenProbeFrom` rows.
    public static func measuredEigenSeconds() -> Double? {
        eigenSeconds.withLock { s in
            if let s { return s.isFinite && s > 0 ? s : nil }
            let v = EigenSpeed.measure(m: eigenProbeRows, threads: min(Parallel.threads, 2))
            s = v
            return v.isFinite && v > 0 ? v : nil
        }
    }

    /// One core's rate (GFLOP/s) of R's own kernels in `precision` (`rowsTimesBatch`, the products
    /// of R with the batch; R's update runs alongside it at the same price in the plan), measured
    /// once per process and batch size: one layer's rows of a thread's chunk of R
    /// (`backwardChunkBytes`, rows of 256 scalars, 64-byte aligned), which the analysis multiplies
    /// while they are in L2 right after their update, times a batch of `batch` (the run's mean
    /// batch, rounded, at most 512; a batch that is not a whole number of vectors pays for its
    /// padded last columns, as in the analysis), `24·64/batch` products per timed run (about
    /// 200 MFLOP), the median of its timed runs after a warm-up (`microbenchmarkRuns`: about a
    /// quarter of a second). Until session 20 the rows were 12 MiB, out of cache: on the AVX2
    /// EPYC of sessions 17–20 that measured 12–20 % less in a process that had just loaded a
    /// 300-step trace than in one that had loaded a 30-step one (alternated, three pairs each),
    /// and the full W5's estimate was 31–53 % high; with the chunk in cache it was +6 % (f64) and
    /// +19 % (f32) (Docs/path-kernel.md §7, Session 20). These kernels do not use OpenBLAS, so their rate does not follow the
    /// core type OpenBLAS chose (Prescott's fallback runs its GEMM at a fifth of AVX-512's; these
    /// kernels at full speed).
    public static func measuredProductRate(_ precision: AnalysisSettings.Precision, batch: Int = 64) -> Double {
        productRates.value(productKey(precision, batch: batch)) { productRateOnce(precision, batch: batch) }
    }

    static func productKey(_ precision: AnalysisSettings.Precision, batch: Int) -> String {
        "\(precision.rawValue)/\(min(max(batch, 1), 512))"
    }

    /// One measurement; `seconds` bounds its timed runs beyond the minimum (`microbenchmarkRuns`).
    static func productRateOnce(_ precision: AnalysisSettings.Precision, batch: Int, seconds: Double = microbenchmarkRuns.seconds) -> Double {
        let nb = min(max(batch, 1), 512)
        func rate<S: BLASScalar>(_: S.Type) -> Double {
            // One layer's rows of a thread's chunk, 64-byte aligned, as R in the analysis.
            let k = 256, m = max(1, backwardChunkBytes / (k * MemoryLayout<S>.stride)), calls = max(1, 24 * 64 / nb)
            var rng = PortableRandom(seed: 3)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: m * k * MemoryLayout<S>.stride, alignment: 64)
            defer { raw.deallocate() }
            let rows = raw.bindMemory(to: S.self, capacity: m * k)
            for i in 0..<(m * k) { rows[i] = S(rng.uniform()) }
            let bt = BatchTranspose<S>(rows: k, columns: nb)
            defer { bt.deallocate() }
            for i in 0..<k { for j in 0..<nb { bt.pointer[i * bt.stride + j] = S(rng.uniform()) } }
            var y = [S](repeating: 0, count: m * nb)
            let median = y.withUnsafeMutableBufferPointer { yp in
                medianSeconds(budget: seconds) {
                    for _ in 0..<calls {
                        S.rowsTimesBatch(yp.baseAddress!, rows: UnsafePointer(rows), batchT: UnsafePointer(bt.pointer), ldb: bt.stride,
                                         alpha: 1, m: m, k: k, nb: nb)
                    }
                }
            }
            return 2 * Double(calls * m * k * nb) / median / 1e9
        }
        return precision == .f32 ? rate(Float.self) : rate(Double.self)
    }

    /// One core's rate (GFLOP/s) in the products of a compact first layer's R with the batch
    /// (`rowsTimesBatch` with `batchRows`: each query's rows over its own nonzero inputs, the
    /// batch's rows gathered at them), measured once per process and shape: `outputs` rows over
    /// `support` of `inputs` inputs (spread evenly) per query, as many queries as fill a chunk of
    /// `backwardChunkBytes` (at most 64; each with its support shifted by one input), times a
    /// batch of `batch`; `24·64/batch` passes over the chunk's queries per timed run (at most
    /// 4,096 products in all); the median of its
    /// runs as `measuredProductRate`. Gathering the batch's rows and multiplying few rows per call
    /// (fmnist-adamw's 16) runs below the plain product's rate: fmnist-adamw's backward phase ran
    /// 1.8–2.0 times its estimate and W6's 1.2–1.6 times when this product was priced at the
    /// plain one's rate (session 20; perf of fmnist-adamw: this kernel at about 21 GFLOP/s per
    /// thread against the plain one's 38 measured by the same plan).
    public static func measuredCompactProductRate(_ precision: AnalysisSettings.Precision, batch: Int, outputs: Int, support: Int, inputs: Int) -> Double {
        productRates.value(compactProductKey(precision, batch: batch, outputs: outputs, support: support, inputs: inputs)) { compactProductRateOnce(precision, batch: batch, outputs: outputs, support: support, inputs: inputs) }
    }

    static func compactProductKey(_ precision: AnalysisSettings.Precision, batch: Int, outputs: Int, support: Int, inputs: Int) -> String {
        "\(productKey(precision, batch: batch))/compact/\(outputs)/\(support)/\(inputs)"
    }

    /// The shape `measuredCompactProductRate` measures for `route`'s analysis of `context` (an
    /// MLP's backward pass with a compact first layer), or nil.
    static func compactProductShape(context: AnalysisContext, route: any KernelRoute) -> (outputs: Int, support: Int, inputs: Int)? {
        guard route.backwardPass, context.model is MLP, let pre = route as? PreconditionedRoute,
              let shape = compactShape(model: context.model, form: pre.form, queries: context.xq, rows: context.rows) else { return nil }
        return (shape.outputs, max(1, Int(shape.support.rounded())), shape.inputs)
    }

    /// One measurement of `measuredCompactProductRate`; `seconds` as `productRateOnce`'s.
    static func compactProductRateOnce(_ precision: AnalysisSettings.Precision, batch: Int, outputs: Int, support: Int, inputs: Int,
                                       seconds: Double = microbenchmarkRuns.seconds) -> Double {
        let nb = min(max(batch, 1), 512), n = max(inputs, 1), k = min(max(support, 1), n), m = max(outputs, 1)
        func rate<S: BLASScalar>(_: S.Type) -> Double {
            // At most 64 queries and 4,096 products per timed run: a tiny layer (a test's) would
            // otherwise make millions of calls (minutes in a debug build, under the rates' lock).
            let queries = min(64, max(1, backwardChunkBytes / (m * k * MemoryLayout<S>.stride)))
            let calls = max(1, min(4096 / queries, 24 * 64 / nb))
            var rng = PortableRandom(seed: 5)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: queries * m * k * MemoryLayout<S>.stride, alignment: 64)
            defer { raw.deallocate() }
            let rows = raw.bindMemory(to: S.self, capacity: queries * m * k)
            for i in 0..<(queries * m * k) { rows[i] = S(rng.uniform()) }
            let bt = BatchTranspose<S>(rows: n, columns: nb)
            defer { bt.deallocate() }
            for i in 0..<n { for j in 0..<nb { bt.pointer[i * bt.stride + j] = S(rng.uniform()) } }
            // Query q's support: k inputs spread evenly over n, shifted by q (ascending, distinct).
            let support = (0..<queries).map { q in (0..<k).map { Int32((($0 * n) / k + q % max(1, n / k)) % n) }.sorted() }
            var y = [S](repeating: 0, count: m * nb)
            let median = y.withUnsafeMutableBufferPointer { yp in
                medianSeconds(budget: seconds) {
                    for _ in 0..<calls {
                        for q in 0..<queries {
                            support[q].withUnsafeBufferPointer { idx in
                                S.rowsTimesBatch(yp.baseAddress!, rows: UnsafePointer(rows + q * m * k), batchT: UnsafePointer(bt.pointer),
                                                 ldb: bt.stride, batchRows: idx.baseAddress!, alpha: 1, m: m, k: k, nb: nb)
                            }
                        }
                    }
                }
            }
            return 2 * Double(calls * queries * m * k * nb) / median / 1e9
        }
        return precision == .f32 ? rate(Float.self) : rate(Double.self)
    }

    /// Seconds per scalar of the backward pass's memory-bound passes over R, per thread with every
    /// thread busy (the plan's measure of what a faster GEMM does not speed up: R's update, its
    /// copy into OpenBLAS's packed layout, the contraction), measured once per process: each of
    /// `Parallel.threads` threads updates a chunk of `backwardChunkBytes` of its own in rows of 128
    /// (`scaledCombination` with a decay, as R's update) and copies it (as OpenBLAS packs it), 128
    /// times; the median of such runs after a warm-up (`microbenchmarkRuns`: about a quarter of
    /// a second per precision), per scalar and thread (shorter runs scattered by 2× on the Xeon
    /// of session 14).
    public static func measuredQuerySideSeconds(_ precision: AnalysisSettings.Precision) -> Double {
        querySideSeconds.value(precision) { querySideSecondsOnce(precision) }
    }

    /// One measurement; `seconds` bounds its timed runs beyond the minimum (`microbenchmarkRuns`).
    static func querySideSecondsOnce(_ precision: AnalysisSettings.Precision, seconds: Double = microbenchmarkRuns.seconds) -> Double {
        func time<S: BLASScalar>(_: S.Type) -> Double {
            let count = backwardChunkBytes / MemoryLayout<S>.size, row = 128, layer = 128 * row, passes = 128
            let threads = max(1, Parallel.threads)
            let buffers = (0..<threads).map { _ in
                (o: UnsafeMutablePointer<S>.allocate(capacity: count), packed: UnsafeMutablePointer<S>.allocate(capacity: count),
                 scale: UnsafeMutablePointer<S>.allocate(capacity: layer), a: UnsafeMutablePointer<S>.allocate(capacity: 4 * row))
            }
            defer { buffers.forEach { $0.o.deallocate(); $0.packed.deallocate(); $0.scale.deallocate(); $0.a.deallocate() } }
            for b in buffers {
                b.o.initialize(repeating: 0.5, count: count)
                b.packed.initialize(repeating: 0, count: count)
                b.scale.initialize(repeating: 1, count: layer)
                b.a.initialize(repeating: 0.25, count: 4 * row)
            }
            let median = medianSeconds(budget: seconds) {
                Parallel.forEach(threads) { t in
                    let b = buffers[t], a = UnsafePointer(b.a), scale = UnsafePointer(b.scale)
                    for _ in 0..<passes {
                        for r in stride(from: 0, to: count - row + 1, by: row) {
                            S.scaledCombination(b.o + r, scale: scale + r % layer, (a, a + row, a + 2 * row, a + 3 * row),
                                                (S(0.5), S(0.25), S(0.125), S(0.0625)), decay: S(0.5), count: row)
                        }
                        b.packed.update(from: b.o, count: count)
                    }
                }
            }
            return median / Double(passes * count)
        }
        return precision == .f32 ? time(Float.self) : time(Double.self)
    }
}
private let activationSeconds = LockedBox<[String: Double]>([:])

extension PathAnalyzer {
    /// Forgets every rate and speed measured so far in this process (GEMM, R's kernels and
    /// passes, `dsymv`, activations, quadrature), so that the next plan measures them again, as a
    /// new `analyze` process would: `bench --workload plan` calls it before each trace.
    public static func forgetMeasurements() {
        gemmRates.forget()
        productRates.forget()
        symvSeconds.withLock { $0 = nil }
        eigenSeconds.withLock { $0 = nil }
        querySideSeconds.forget()
        activationSeconds.withLock { $0 = [:] }
        layerProbeSeconds.withLock { $0 = [:] }
    }

    /// The network of the layer probe (`measuredLayerProbeSeconds`): fmnist-cnn's, conv 3×3 (4)
    /// relu max-pool 2, conv 3×3 (8) relu max-pool 2, dense 10 on 1×28×28 inputs (4,266 parameters).
    static let layerProbeSpec = #"""
        {"kind": "sequential", "input": [1, 28, 28], "parameterization": "ntk",
         "layers": [{"kind": "conv2d", "out": 4, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
                    {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
                    {"kind": "flatten"}, {"kind": "dense", "out": 10}]}
        """#

    /// Seconds one thread takes for the per-example Jacobians (`Layer.jacobians`, all 10 outputs)
    /// of `layerProbeSpec`'s network on 4 examples in `precision` (4 examples are one block of
    /// `Layer.jacobians`) while every thread of the analysis computes them at once, as the
    /// analysis does, measured once per process: the median of 9 calls per thread after a warm-up
    /// (`concurrentMedianSeconds`; about 20 ms in all). On one core alone until session 26: 1.2–2.1
    /// ms on session 19's EPYC, 1.48–2.84 ms over ten plans of session 26's, whose estimates of
    /// fmnist-cnn then ranged from 36 to 61 s (real about 60); on every thread at once 1.81–2.33
    /// ms over ten plans (fmnist-cnn 42–52 s, fmnist-resnet 37–43 s for about 38–42 real), with
    /// `AnalysisCostModel.layerProbeReference` unchanged (Docs/path-kernel.md §7, Session 26). A layer network's feature work is
    /// mostly not GEMM (im2col, col2im, the layers' per-example loops, writing the rows), so its
    /// speed does not follow the GEMM rate; the plan prices that part by this probe's time
    /// against `AnalysisCostModel.layerProbeReference` (Docs/path-kernel.md §7, Session 19).
    public static func measuredLayerProbeSeconds(_ precision: AnalysisSettings.Precision) -> Double {
        layerProbeSeconds.withLock { table in
            if let s = table[precision] { return s }
            func time<S: BLASScalar>(_: S.Type) -> Double {
                guard let spec = try? JSONDecoder().decode(ModelSpec.self, from: Data(layerProbeSpec.utf8)),
                      let network = try? LayerNetwork(spec: spec) else { return 0 }
                var rng = PortableRandom(seed: 11)
                let w = (0..<network.parameterCount).map { _ in S(rng.normal()) }
                let x = DenseMatrix<S>(rows: 4, cols: 784, data: (0..<(4 * 784)).map { _ in S(rng.uniform()) })
                return concurrentMedianSeconds(runs: 9) { _ in Double(network.root.jacobians(w, x).count) }
            }
            let s = precision == .f32 ? time(Float.self) : time(Double.self)
            table[precision] = s
            return s
        }
    }
}
private let layerProbeSeconds = LockedBox<[AnalysisSettings.Precision: Double]>([:])

extension PathAnalyzer {
    /// The median seconds of `run` on one thread while every thread (`Parallel.threads`) runs it
    /// at once: each thread times its own calls, one untimed and then `runs`, so that their
    /// timings overlap (a call of the activation's microbenchmark takes about half a millisecond;
    /// timing all threads' calls together would add the threads' start and its skew). `run(t)`
    /// gets its thread's index and returns a value, which goes into that thread's sum (the call's
    /// result is used).
    static func concurrentMedianSeconds(runs: Int = 15, _ run: (Int) -> Double) -> Double {
        let threads = max(1, Parallel.threads)
        let times = UnsafeMutablePointer<Double>.allocate(capacity: threads * runs)
        let sinks = UnsafeMutablePointer<Double>.allocate(capacity: threads)
        times.initialize(repeating: 0, count: threads * runs)
        sinks.initialize(repeating: 0, count: threads)
        defer { times.deallocate(); sinks.deallocate() }
        Parallel.forEach(threads) { t in
            for call in 0...runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                sinks[t] += run(t)
                if call > 0 { times[t * runs + call - 1] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
            }
        }
        let sorted = UnsafeBufferPointer(start: times, count: threads * runs).sorted()
        return sorted[sorted.count / 2]
    }

    /// Seconds one thread takes for one evaluation of `activation` with its derivative
    /// (`Activation.applyInPlace`, the networks' and the quadrature's inner step) in `precision`
    /// while every thread of the analysis (`Parallel.threads`) evaluates it at once, as the
    /// analysis does, measured once per process: the median of 15 passes over 16,384
    /// standard-normal inputs per thread (`concurrentMedianSeconds`; 0.3–0.5 ms a pass for tanh on
    /// session 23's EPYC). Where the vCPUs are one core's hyperthreads, the threads share that
    /// core's units, and the time includes it (Docs/path-kernel.md §7, Session 23). 0 for the
    /// identity and the piecewise-linear activations.
    public static func measuredActivationSeconds(_ activation: Activation, _ precision: AnalysisSettings.Precision) -> Double {
        guard activation.isSmooth else { return 0 }
        return activationSeconds.withLock { table in
            let key = "\(activation.rawValue)/\(precision.rawValue)"
            if let s = table[key] { return s }
            var rng = PortableRandom(seed: 7)
            let inputs = (0..<16_384).map { _ in rng.normal() }
            func time<S: BLASScalar>(_: S.Type) -> Double {
                let z = DenseMatrix<S>(rows: 1, cols: inputs.count, data: inputs.map { S($0) })
                return concurrentMedianSeconds { t in
                    var v = z
                    let d = activation.applyInPlace(&v)
                    return Double(v.data[t % inputs.count] + d.data[t % inputs.count])
                } / Double(inputs.count)
            }
            let s = precision == .f32 ? time(Float.self) : time(Double.self)
            table[key] = s
            return s
        }
    }

    /// Seconds one thread takes per activation evaluation of the analytic kernels' trapezoidal
    /// rule (`GaussianExpectation.trapezoid`, whose inner loop is cheaper than `applyInPlace` for
    /// tanh and sigmoid) while every thread runs one at once (see `measuredActivationSeconds`),
    /// measured once per process on one pair at `q = 1` (`M = 97`: 9,506 evaluations) per thread,
    /// the median of 15 such runs per thread after a warm-up (`concurrentMedianSeconds`). 0 for
    /// the closed forms.
    public static func measuredQuadratureSeconds(_ activation: Activation) -> Double {
        guard !GaussianExpectation.hasClosedForm(activation) else { return 0 }
        return activationSeconds.withLock { table in
            let key = "quadrature/\(activation.rawValue)"
            if let s = table[key] { return s }
            let m = Double(GaussianExpectation.nodeCount(maxVariance: 1))
            let median = concurrentMedianSeconds { _ in
                GaussianExpectation.trapezoid(activation, leakySlope: 0, q1: 1, q2: 1, c: 0.5).value
            }
            let s = median / (m * m + m)
            table[key] = s
            return s
        }
    }
}

/// A value behind a lock (the measured GEMM rates, shared by every plan of a process).
final class LockedBox<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
