/// An analysis result stored in its trace (a row of the `analysis` table).
///
/// The store treats both JSON fields as opaque; the analysis module owns their meaning. `key`
/// identifies the settings (the analysis module uses canonical key-sorted settings JSON), and a
/// trace holds at most one analysis per key: saving again replaces it.
public struct StoredAnalysis: Sendable, Equatable {
    public var key: String
    public var settingsJSON: String
    public var resultJSON: String
    /// ISO-8601 UTC.
    public var createdAt: String
    /// The pathkernel version that computed it.
    public var toolVersion: String
    /// What the trace held when the analysis read it (`TraceReader.basis()`); nil for analyses
    /// stored before schema v3, or saved without one.
    public var basis: TraceBasis?

    public init(key: String, settingsJSON: String, resultJSON: String, createdAt: String, toolVersion: String,
                basis: TraceBasis? = nil) {
        self.key = key
        self.settingsJSON = settingsJSON
        self.resultJSON = resultJSON
        self.createdAt = createdAt
        self.toolVersion = toolVersion
        self.basis = basis
    }
}
