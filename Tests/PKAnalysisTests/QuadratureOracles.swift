import PKNetworks
import PKNumerics

/// The oracle of the exact-quadrature tests: `∫₀¹ J(x; start + t·delta) dt` for one query `x`
/// (C × P) by a composite Gauss–Legendre rule (`panels` panels of 4 nodes) on every piece between
/// consecutive `cuts` (0, the reference breakpoints, 1), explicit Jacobians at every node.
func compositePathJacobian(_ model: any Network, start: [Double], delta: [Double], _ x: Matrix,
                           cuts: [Double], panels: Int) -> Matrix {
    let rule = GaussLegendre(nodes: 4)
    var jbar = Matrix(rows: model.outputDim, cols: model.parameterCount)
    for p in 0..<(cuts.count - 1) {
        let h = (cuts[p + 1] - cuts[p]) / Double(panels)
        for k in 0..<panels {
            for (s, o) in zip(rule.nodes, rule.weights) {
                var wt = start
                Vec.axpy(cuts[p] + h * (Double(k) + s), delta, &wt)
                let j = model.jacobians(wt, x)
                for i in jbar.data.indices { jbar.data[i] += h * o * j.data[i] }
            }
        }
    }
    return jbar
}
