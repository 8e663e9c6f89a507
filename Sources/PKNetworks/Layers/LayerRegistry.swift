/// The layer kinds the JSON form knows: **the one place a new kind is registered**
/// (`Docs/networks.md`, "Checklist: adding a layer kind").
public enum LayerRegistry {
    /// Every kind's specification type, in the order `Docs/networks.md` lists them.
    public static let specifications: [any LayerSpecification.Type] = [
        Dense.Specification.self,
        ActivationLayer.Specification.self,
        Flatten.Specification.self,
        Conv2D.Specification.self,
        AvgPool2D.Specification.self,
        MaxPool2D.Specification.self,
        GlobalAvgPool.Specification.self,
        LayerNorm.Specification.self,
        Sequential.Specification.self,
        Residual.Specification.self,
    ]

    /// Every `kind` name, in registry order.
    public static var kinds: [String] { specifications.flatMap { $0.kinds } }

    /// The specification type that reads `kind`, or nil.
    public static func specification(for kind: String) -> (any LayerSpecification.Type)? {
        specifications.first { $0.kinds.contains(kind) }
    }
}
