import Foundation
import PKNetworks
import PKNumerics

/// The quadrature nodes of each segment (path-kernel math §1.1, §7): the fixed Gauss–Legendre
/// rule of `--nodes`, with `--adaptive` the globally adaptive rule (`PathAnalyzer.adaptiveNodes`,
/// tolerance split evenly over the steps), or for a piecewise-linear network (an MLP, or a layer
/// network that is piecewise polynomial along a segment) the exact rule (`PiecewiseNodes`: each
/// query's breakpoints, ⌈(deg J + 1)/2⌉ nodes per piece); and what the report says of them.
struct SegmentQuadrature {
    /// The quadrature taken (resolved from `--quadrature`, the network and the route).
    let kind: AnalysisSettings.Quadrature
    /// Gauss: `--nodes`; exact: the rule per piece, exact for the degree of `J` on a piece.
    let rule: GaussLegendre
    /// `--adaptive`: the tolerance per step; nil for the fixed rule.
    let stepTolerance: Double?
    let maxNodes: Int
    /// Nodes over all segments, the deepest bisection, and the steps that reached `maxNodes`.
    private(set) var nodeCount = 0
    private(set) var maxDepth = 0
    private(set) var budgetSteps = 0
    /// Exact: (query, step) pairs, those with a breakpoint, their breakpoints, and the node
    /// evaluations of all pairs (shared nodes of the others included); the event sweep's pairs
    /// add theirs (`sweep`: counted by the routes that run it) and no node evaluations.
    private(set) var pairs = 0
    private var nodeKinkedPairs = 0
    private var nodeBreakpoints = 0
    private(set) var queryNodes = 0
    /// The event sweep's counts (`LayerNetwork.segmentSweptJacobians`), shared by reference with
    /// the `PiecewiseNodes` the routes receive; nil: the node route (`eventSweepEligible` false).
    let sweep: SweepTally?
    var kinkedPairs: Int { nodeKinkedPairs + (sweep?.counts.kinkedPairs ?? 0) }
    var breakpoints: Int { nodeBreakpoints + (sweep?.counts.breakpoints ?? 0) }
    /// The sweep's events that changed J and those that did not, over all its pairs (nil: no sweep).
    var sweepEvents: (events: Int, silent: Int)? {
        if let merged = mergedSweep { return merged }
        return sweep.map { ($0.counts.events, $0.counts.silent) }
    }
    private var mergedSweep: (events: Int, silent: Int)? = nil

    /// `exact`: the resolved quadrature is exact (the caller checked that it applies: a network
    /// with a `piecewiseJacobianDegree`, on a route that takes per-query nodes). `nodeRoute`
    /// (tests only, `PathAnalyzer.nodeRouteForLayerNetworks`): layer networks the sweep covers
    /// take the node route instead (breakpoints, nodes per piece), the oracle of the sweep's analyses.
    init(settings: AnalysisSettings, steps: Int, model: any Network, exact: Bool, nodeRoute: Bool = false) {
        stepTolerance = settings.adaptiveTolerance.map { $0 / Double(steps) }
        maxNodes = settings.maxNodes ?? PathAnalyzer.defaultMaxAdaptiveNodes
        if exact, model.piecewiseJacobianDegree != nil {
            kind = .exact
            rule = GaussLegendre(nodes: PiecewiseNodes.nodesPerPiece(model))
            sweep = (model as? LayerNetwork)?.eventSweepEligible == true && !nodeRoute ? SweepTally() : nil
        } else {
            sweep = nil
            kind = stepTolerance == nil ? .gauss : .adaptive
            rule = GaussLegendre(nodes: settings.nodes)
        }
    }

    /// The nodes `(s_j, ω_j)` on [0, 1] for the segment from `start` along `delta` (adaptive
    /// mode measures the integrand at the queries `x`), and with exact quadrature the queries
    /// that leave them for their own nodes.
    /// `rowOffset`: the query row of `x`'s first row (a shard's rows start past 0).
    mutating func nodes(model: any Network, start: [Double], delta: [Double], x: Matrix, rowOffset: Int = 0)
        -> (shared: [(s: Double, w: Double)], piecewise: PiecewiseNodes?) {
        var nodes: [(s: Double, w: Double)]
        var piecewise: PiecewiseNodes? = nil
        if let tol = stepTolerance {
            let (ns, depth, capped) = PathAnalyzer.adaptiveNodes(model: model, start: start, delta: delta, x: x, rule: rule,
                                                                  tolerance: tol, maxNodes: maxNodes)
            nodes = ns
            maxDepth = max(maxDepth, depth)
            if capped { budgetSteps += 1 }
        } else {
            nodes = zip(rule.nodes, rule.weights).map { ($0, $1) }
        }
        if kind == .exact, let sweep {
            // A layer network the event sweep covers: no breakpoint search, every query's J̄
            // exactly by the sweep in the route (which counts its events into `sweep`).
            pairs += x.rows
            piecewise = PiecewiseNodes(sweeping: rowOffset..<(rowOffset + x.rows), tally: sweep)
        } else if kind == .exact {
            let p = PiecewiseNodes(breakpoints: model.segmentBreakpoints(start: start, delta: delta, x), rule: rule, rowOffset: rowOffset)
            pairs += x.rows
            nodeKinkedPairs += x.rows - p.smoothRows.count
            nodeBreakpoints += p.breakpoints
            queryNodes += p.smoothRows.count * nodes.count + p.kinked.count
            piecewise = p
        }
        nodeCount += nodes.count
        return (nodes, piecewise)
    }
}

/// Exact quadrature's nodes on one segment (path-kernel math §1.1): the queries whose activation
/// pattern does not change on it (`smoothRows`) take the segment's shared rule; each other query
/// takes the rule on every piece between its breakpoints, `(t_k + (t_{k+1} − t_k)s_j,
/// (t_{k+1} − t_k)ω_j)`, listed query by query in `kinked`.
struct PiecewiseNodes {
    /// Query rows without a breakpoint, ascending.
    let smoothRows: [Int]
    /// The other queries' nodes: query row, point t in (0, 1), weight; rows ascending, t ascending.
    let kinked: [(row: Int, t: Double, weight: Double)]
    /// Breakpoints over all queries.
    let breakpoints: Int
    /// The event sweep: the query rows whose J̄ the route takes from
    /// `LayerNetwork.segmentSweptJacobians` (all of this segment's; `smoothRows` and `kinked` are
    /// empty), and where it counts their events. nil: the node route.
    let sweep: (rows: Range<Int>, tally: SweepTally)?

    /// Gauss–Legendre nodes per piece: the fewest q that integrate `J(x; w(t))`'s degree
    /// `d = piecewiseJacobianDegree` exactly, `2q − 1 ≥ d`: q = ⌈(d + 1)/2⌉ (an MLP of depth L:
    /// d = L − 1, q = ⌈L/2⌉; a layer network: d = D − 1, D its most layers with parameters on a
    /// path, q = ⌈D/2⌉).
    static func nodesPerPiece(_ model: any Network) -> Int { max(1, ((model.piecewiseJacobianDegree ?? 0) + 2) / 2) }

    /// `breakpoints[k]`: query row `rowOffset + k`'s breakpoints in (0, 1), ascending
    /// (`Network.segmentBreakpoints`).
    init(breakpoints: [[Double]], rule: GaussLegendre, rowOffset: Int = 0) {
        var smooth: [Int] = [], kinked: [(row: Int, t: Double, weight: Double)] = []
        var count = 0
        for (k, cuts) in breakpoints.enumerated() {
            let q = rowOffset + k
            if cuts.isEmpty { smooth.append(q); continue }
            count += cuts.count
            let ends = [0] + cuts + [1]
            for p in 0..<(ends.count - 1) {
                let (a, b) = (ends[p], ends[p + 1])
                for (s, w) in zip(rule.nodes, rule.weights) { kinked.append((q, a + (b - a) * s, (b - a) * w)) }
            }
        }
        smoothRows = smooth
        self.kinked = kinked
        self.breakpoints = count
        sweep = nil
    }

    /// Every query of `rows` by the event sweep, counted into `tally`.
    init(sweeping rows: Range<Int>, tally: SweepTally) {
        smoothRows = []
        kinked = []
        breakpoints = 0
        sweep = (rows, tally)
    }
}

/// The event sweep's counts over the (query, step) pairs it integrated: pairs whose segment had
/// an event that changed J, such events at distinct times (breakpoints), such events each, and
/// silent ones. The routes add to it from any thread (a lock).
final class SweepTally: @unchecked Sendable {
    struct Counts: Codable, Equatable {
        var kinkedPairs = 0, breakpoints = 0, events = 0, silent = 0
    }
    private let lock = NSLock()
    private var total = Counts()

    var counts: Counts { lock.withLock { total } }

    func add(_ rows: [EventSweepCounts]) {
        var c = Counts()
        for r in rows {
            if r.events > 0 { c.kinkedPairs += 1 }
            c.breakpoints += r.breakpoints
            c.events += r.events
            c.silent += r.silent
        }
        lock.withLock {
            total.kinkedPairs += c.kinkedPairs
            total.breakpoints += c.breakpoints
            total.events += c.events
            total.silent += c.silent
        }
    }
}

extension PiecewiseNodes {
    /// The kinked nodes of the query rows `rows` (a range of `kinked`, which is ordered by row).
    func kinkedNodes(of rows: Range<Int>) -> Range<Int> {
        let lower = kinked.firstIndex { $0.row >= rows.lowerBound } ?? kinked.count
        let upper = kinked[lower...].firstIndex { $0.row >= rows.upperBound } ?? kinked.count
        return lower..<upper
    }

    /// `J(x_r; start + t[r]·delta)·v` for every row r of `x` (n × C), one row at a time (`jvp`).
    static func jvps(model: any Network, start: [Double], delta: [Double], _ x: Matrix, at t: [Double], tangent v: [Double]) -> Matrix {
        var out = Matrix(rows: x.rows, cols: model.outputDim)
        for r in 0..<x.rows {
            var w = start
            Vec.axpy(t[r], delta, &w)
            let j = model.jvp(w, x.rows(r..<(r + 1)), tangent: v)
            for c in 0..<out.cols { out[r, c] = j[0, c] }
        }
        return out
    }
}

/// What `SegmentQuadrature` counted, as a shard's part carries it to the merge.
struct QuadratureTally: Codable, Equatable {
    var nodeCount: Int, maxDepth: Int, budgetSteps: Int
    var pairs: Int, kinkedPairs: Int, breakpoints: Int, queryNodes: Int
    /// The event sweep's events (J-changing, silent); nil without the sweep.
    var sweepEvents: Int? = nil, sweepSilent: Int? = nil
}

extension SegmentQuadrature {
    var tally: QuadratureTally {
        QuadratureTally(nodeCount: nodeCount, maxDepth: maxDepth, budgetSteps: budgetSteps, pairs: pairs, kinkedPairs: kinkedPairs,
                        breakpoints: breakpoints, queryNodes: queryNodes, sweepEvents: sweepEvents?.events, sweepSilent: sweepEvents?.silent)
    }

    /// The counts of a sharded analysis: the shared nodes per step are every shard's (the first
    /// shard's figures), the per-query counts add up over the shards' rows.
    mutating func take(_ parts: [QuadratureTally]) {
        guard let first = parts.first else { return }
        nodeCount = first.nodeCount
        maxDepth = first.maxDepth
        budgetSteps = first.budgetSteps
        pairs = parts.reduce(0) { $0 + $1.pairs }
        nodeKinkedPairs = parts.reduce(0) { $0 + $1.kinkedPairs }
        nodeBreakpoints = parts.reduce(0) { $0 + $1.breakpoints }
        queryNodes = parts.reduce(0) { $0 + $1.queryNodes }
        if parts.contains(where: { $0.sweepEvents != nil }) {
            mergedSweep = (parts.reduce(0) { $0 + ($1.sweepEvents ?? 0) }, parts.reduce(0) { $0 + ($1.sweepSilent ?? 0) })
        }
    }
}

