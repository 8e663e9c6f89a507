import Foundation

extension AnalysisSettings {
    /// The `pathkernel analyze` options that select these settings (defaults left out), e.g.
    /// `["--queries", "test", "--max-queries", "20"]`: what a message needs to tell the user how
    /// to recompute this analysis under the same key.
    public var commandLineArguments: [String] {
        let d = AnalysisSettings()
        var args: [String] = []
        if let q = quadrature { args += ["--quadrature", q.rawValue] }
        if nodes != d.nodes { args += ["--nodes", "\(nodes)"] }
        if let t = adaptiveTolerance { args += ["--adaptive", "\(t)"] }
        if queries != d.queries { args += ["--queries", queries.rawValue] }
        if let m = maxQueries { args += ["--max-queries", "\(m)"] }
        if let k = kernel { args += ["--kernel", k.rawValue] }
        if ridge != d.ridge { args += ["--ridge", "\(ridge)"] }
        if precision != d.precision { args += ["--precision", precision.rawValue] }
        if scope != d.scope { args += ["--scope", scope.rawValue] }
        if let m = momentumTolerance { args += ["--momentum-tolerance", "\(m)"] }
        return args
    }
}
