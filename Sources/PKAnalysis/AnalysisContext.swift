import PKNetworks
import PKNumerics

/// What every part of one analysis shares: the run, the settings, and the queries they give
/// (path-kernel math §7, "Queries"). Built once, before the first step; never changes.
///
/// Query rows: the `heldOut` held-out points first (the first `--max-queries` of them, none with
/// `--queries train`), then, in scope full, every training point (query row `heldOut + i` is
/// training point i). The accumulators, the routes, the dynamics and the kernel machines all
/// index queries this way.
struct AnalysisContext {
    let settings: AnalysisSettings
    let run: TraceRun
    let model: any Network
    /// Outputs C, training points n, analyzed steps T.
    let outputs: Int, train: Int, steps: Int
    /// Scope exact: the held-out queries only (no training-point queries, no dynamics, no NTK machines).
    let exactOnly: Bool
    /// Held-out queries nT and all queries nQ (nT, then n in scope full).
    let heldOut: Int, queries: Int
    /// The query inputs, nQ × d.
    let xq: Matrix
    /// How K^p is stored: `full` C×C blocks (`blocks` = C) or their trace (`blocks` = 1).
    let mode: KernelMode
    let blocks: Int
    /// The attributed queries (the first three held-out ones, else the first three training
    /// points): split, index in the split, query row.
    let attributed: [(split: String, index: Int, row: Int)]
    /// Query row → its index in `attributed` (the rows of N kept whole).
    let attrIndex: [Int: Int]
    /// The rows the dynamics' path-km error and the weight-decay note are measured on: the
    /// held-out queries, else every training point.
    let fidelityRows: [Int]
    /// The query rows this process computes: all of them, or a shard's (`AnalysisShard`; the
    /// routes compute only these rows of the accumulators, the rest stay zero).
    let rows: Range<Int>

    init(settings: AnalysisSettings, run: TraceRun, shard: AnalysisShard? = nil) throws {
        self.settings = settings
        self.run = run
        model = run.model
        let C = model.outputDim
        let n = run.trainX.rows
        outputs = C
        train = n
        steps = run.steps
        exactOnly = settings.scope == .exact
        let nT = settings.queries == .train ? 0 : min(run.testX.rows, settings.maxQueries ?? run.testX.rows)
        if exactOnly && nT == 0 { throw AnalysisError("--scope exact needs held-out queries, and \(run.path) has none") }
        heldOut = nT
        // Queries: the held-out ones, then (scope full) every training point.
        let nQ = nT + (exactOnly ? 0 : n)
        queries = nQ
        var xq = Matrix(rows: nQ, cols: run.trainX.cols)
        if nT > 0 { xq.data.replaceSubrange(0..<(nT * xq.cols), with: run.testX.data[0..<(nT * xq.cols)]) }
        if !exactOnly { xq.data.replaceSubrange((nT * xq.cols)..<(nQ * xq.cols), with: run.trainX.data) }
        self.xq = xq
        mode = settings.kernel ?? PathAnalyzer.defaultKernel(queries: nQ, train: n, outputs: C)
        blocks = mode == .full ? C : 1
        attributed = nT > 0 ? (0..<min(nT, 3)).map { ("test", $0, $0) }
                            : (0..<min(n, 3)).map { ("train", $0, nT + $0) }
        attrIndex = Dictionary(uniqueKeysWithValues: attributed.enumerated().map { ($1.row, $0) })
        fidelityRows = nT > 0 ? Array(0..<nT) : Array(0..<n).map { $0 + nT }
        rows = try shard?.rows(queries: nQ) ?? 0..<nQ
    }

    /// True when this process computes every query row (not a shard).
    var allRows: Bool { rows == 0..<queries }
}

extension AnalysisContext {
    /// The run's mean batch size, rounded (at least 1): the batch the plan measures R's product
    /// kernel at (`PathAnalyzer.measuredProductRate`).
    var meanBatch: Int {
        let steps = run.stepRecords.prefix(max(self.steps, 1))
        guard !steps.isEmpty else { return 1 }
        return max(1, Int((Double(steps.reduce(0) { $0 + $1.batch.count }) / Double(steps.count)).rounded()))
    }
}
