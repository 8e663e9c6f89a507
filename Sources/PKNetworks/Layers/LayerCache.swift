/// What a layer's `forward` keeps for its `pullback` and `jvp`: an opaque box around the layer's
/// own `Cache<S>` value (its input, `φ'`, the arg-max indices, …).
///
/// Only the layer that made a cache can read it, in the precision it was made in; handing it to
/// another layer or reading it as another precision stops with a message naming both.
public struct LayerCache: Sendable {
    let value: any Sendable

    public init(_ value: any Sendable) { self.value = value }

    /// The cache of a layer that keeps nothing.
    public static let empty = LayerCache(())

    /// The contents as `T`.
    public func contents<T>(as _: T.Type) -> T {
        guard let v = value as? T else {
            preconditionFailure("a layer cache holds \(type(of: value)), this layer expects \(T.self): pass each layer the cache its own forward pass made")
        }
        return v
    }
}
