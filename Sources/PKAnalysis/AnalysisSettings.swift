import PKNetworks

/// What an analysis computes; the key under which its result is stored in the trace.
public struct AnalysisSettings: Codable, Sendable, Equatable, Hashable {
    public enum Queries: String, Codable, Sendable, CaseIterable { case test, train, both }
    /// Gauss–Legendre nodes per segment (or per sub-segment in adaptive mode).
    public var nodes: Int = 4
    /// Adaptive mode: target for the reconstruction error summed over all steps (output units);
    /// nil = fixed `nodes` per segment.
    public var adaptiveTolerance: Double? = nil
    /// Which splits' fidelity is reported. Training points are always queries internally
    /// (`path-krr` and `path-km-self` need the path kernel between training points).
    public var queries: Queries = .both
    /// At most this many held-out queries (the first ones); nil = all.
    public var maxQueries: Int? = nil
    /// `full` C×C blocks or their trace. nil = `full` for C = 1 or small problems, else `trace`.
    public var kernel: KernelMode? = nil
    /// Relative ridge ρ: λ = ρ · tr(K(X, X))/n.
    public var ridge: Double = 1e-6

    public init(nodes: Int = 4, adaptiveTolerance: Double? = nil, queries: Queries = .both, maxQueries: Int? = nil,
                kernel: KernelMode? = nil, ridge: Double = 1e-6) {
        self.nodes = nodes
        self.adaptiveTolerance = adaptiveTolerance
        self.queries = queries
        self.maxQueries = maxQueries
        self.kernel = kernel
        self.ridge = ridge
    }

    public func validate() throws {
        guard (1...64).contains(nodes) else { throw AnalysisError("--nodes must be between 1 and 64, got \(nodes)") }
        if let t = adaptiveTolerance, !(t > 0 && t.isFinite) { throw AnalysisError("--adaptive needs a positive tolerance, got \(t)") }
        if let m = maxQueries, m < 1 { throw AnalysisError("--max-queries must be ≥ 1, got \(m)") }
        guard ridge >= 0, ridge.isFinite else { throw AnalysisError("--ridge must be ≥ 0, got \(ridge)") }
    }
}
