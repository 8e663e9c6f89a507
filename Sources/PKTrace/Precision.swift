/// The element type of stored checkpoints (`run.precision`, `checkpoint.dtype`).
///
/// Training always runs in `Double`; `.float32` only rounds what is stored (round to nearest),
/// halving the checkpoint size. Data and step rows are unaffected.
public enum Precision: String, Sendable, Codable, CaseIterable {
    case float64, float32

    /// Bytes per stored element.
    public var byteWidth: Int { self == .float64 ? 8 : 4 }
}
