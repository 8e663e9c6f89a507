import PKNetworks
import PKNumerics

/// The quadrature nodes of each segment (path-kernel math §7): the fixed Gauss–Legendre rule of
/// `--nodes`, or with `--adaptive` the globally adaptive rule (`PathAnalyzer.adaptiveNodes`,
/// tolerance split evenly over the steps), and what the report says of them.
struct SegmentQuadrature {
    let rule: GaussLegendre
    /// `--adaptive`: the tolerance per step; nil for the fixed rule.
    let stepTolerance: Double?
    let maxNodes: Int
    /// Nodes over all segments, the deepest bisection, and the steps that reached `maxNodes`.
    private(set) var nodeCount = 0
    private(set) var maxDepth = 0
    private(set) var budgetSteps = 0

    init(settings: AnalysisSettings, steps: Int) {
        rule = GaussLegendre(nodes: settings.nodes)
        stepTolerance = settings.adaptiveTolerance.map { $0 / Double(steps) }
        maxNodes = settings.maxNodes ?? PathAnalyzer.defaultMaxAdaptiveNodes
    }

    /// The nodes `(s_j, ω_j)` on [0, 1] for the segment from `start` along `delta` (adaptive
    /// mode measures the integrand at the queries `x`).
    mutating func nodes(model: any Network, start: [Double], delta: [Double], x: Matrix) -> [(s: Double, w: Double)] {
        var nodes: [(s: Double, w: Double)]
        if let tol = stepTolerance {
            let (ns, depth, capped) = PathAnalyzer.adaptiveNodes(model: model, start: start, delta: delta, x: x, rule: rule,
                                                                  tolerance: tol, maxNodes: maxNodes)
            nodes = ns
            maxDepth = max(maxDepth, depth)
            if capped { budgetSteps += 1 }
        } else {
            nodes = zip(rule.nodes, rule.weights).map { ($0, $1) }
        }
        nodeCount += nodes.count
        return nodes
    }
}
