// Optimizers as pure value transformations, in optax's design (see Docs/optimizers.md).
//
// A `GradientTransformation` maps an update vector `u` (P doubles) and a state to a new update
// vector and a new state. Composed with `Transform.chain`, the last component of a full optimizer
// scales by `−η`, so the chain's output is the parameter change itself: `w_{t+1} = w_t + Δw_t`.
// Every state is a value (named P-long buffers and a step counter), so a run can be stored at a
// checkpoint and replayed from there bit for bit.

/// The state of a gradient transformation: named buffers of `parameterCount` doubles each, in a
/// fixed order, and the number of updates applied so far.
///
/// Stored in a trace as one blob of `k × P` doubles (`flattened()`) plus the `k` names; restored
/// with `init(count:names:values:parameterCount:)`, bit for bit.
public struct OptimizerState: Codable, Sendable, Equatable {
    /// Updates applied so far (0 for a fresh state). Adam's bias corrections use `count + 1` during
    /// an update; SGD momentum's first update is the one with `count == 0`.
    public var count: Int
    /// P, the length of every buffer.
    public let parameterCount: Int
    /// Buffer names, unique, in storage order. A chain prefixes each component's names with its
    /// index: `"1.exp_avg"`.
    public private(set) var names: [String]
    /// The buffers, `buffers[k]` named `names[k]`, each `parameterCount` long.
    public private(set) var buffers: [[Double]]

    /// A state from named buffers (each `parameterCount` long, names unique).
    public init(count: Int = 0, parameterCount: Int, names: [String] = [], buffers: [[Double]] = []) {
        precondition(count >= 0, "optimizer state: negative step count \(count)")
        precondition(names.count == buffers.count, "optimizer state: \(names.count) names for \(buffers.count) buffers")
        precondition(Set(names).count == names.count, "optimizer state: duplicate buffer names in \(names)")
        for (name, b) in zip(names, buffers) {
            precondition(b.count == parameterCount, "optimizer state: buffer \(name) has \(b.count) entries, expected \(parameterCount)")
        }
        self.count = count
        self.parameterCount = parameterCount
        self.names = names
        self.buffers = buffers
    }

    /// Restores a state from `flattened()`'s output: `values` holds `names.count` consecutive
    /// blocks of `parameterCount` doubles, block `k` being the buffer `names[k]`.
    public init(count: Int, names: [String], values: [Double], parameterCount: Int) throws {
        guard count >= 0 else { throw OptimError("optimizer state: negative step count \(count)") }
        guard parameterCount >= 0, values.count == names.count * parameterCount else {
            throw OptimError("optimizer state: \(values.count) values for \(names.count) buffers of \(parameterCount) parameters")
        }
        guard Set(names).count == names.count else { throw OptimError("optimizer state: duplicate buffer names in \(names)") }
        self.count = count
        self.parameterCount = parameterCount
        self.names = names
        self.buffers = (0..<names.count).map { Array(values[($0 * parameterCount)..<(($0 + 1) * parameterCount)]) }
    }

    /// The names and all buffers concatenated in name order (`names.count × parameterCount`
    /// doubles). The step counter is stored separately (`count`).
    public func flattened() -> (names: [String], values: [Double]) {
        var values = [Double]()
        values.reserveCapacity(names.count * parameterCount)
        for b in buffers { values.append(contentsOf: b) }
        return (names, values)
    }

    /// The buffer named `name`, if there is one.
    public subscript(name: String) -> [Double]? {
        names.firstIndex(of: name).map { buffers[$0] }
    }

    /// The buffer at `index` (components read their own buffers by position).
    func buffer(_ index: Int) -> [Double] { buffers[index] }
}

/// What one update did, beyond the update vector, for the trace and the kernel analysis.
public struct UpdateInfo: Sendable, Equatable {
    /// The factor gradient clipping multiplied the updates by: `min(1, maxNorm/‖g‖)`; 1 when no
    /// clipping component is present (the product over clipping components if several).
    public var clipScale: Double
    /// `‖g‖₂` as the (last) clipping component saw it; nil without clipping.
    public var gradientNorm: Double?
    /// The decoupled weight-decay part of the update, `−η λ w_t` (AdamW, or any chain ending in
    /// `addDecoupledWeightDecay`); nil otherwise. The rest of the update is `updates − decoupledDecay`.
    public var decoupledDecay: [Double]?
    /// Adam's bias-corrected first-moment coefficient `1/(1 − β₁^{t+1})` of this update (so
    /// `Δw = −η · firstMomentScale · D_t ⊙ m_t`); nil for other optimizers.
    public var firstMomentScale: Double?

    public init(clipScale: Double = 1, gradientNorm: Double? = nil, decoupledDecay: [Double]? = nil,
                firstMomentScale: Double? = nil) {
        self.clipScale = clipScale
        self.gradientNorm = gradientNorm
        self.decoupledDecay = decoupledDecay
        self.firstMomentScale = firstMomentScale
    }

    /// `self` followed by `later` in a chain: clip scales multiply, later values win otherwise.
    func merged(with later: UpdateInfo) -> UpdateInfo {
        UpdateInfo(clipScale: clipScale * later.clipScale,
                   gradientNorm: later.gradientNorm ?? gradientNorm,
                   decoupledDecay: later.decoupledDecay ?? decoupledDecay,
                   firstMomentScale: later.firstMomentScale ?? firstMomentScale)
    }
}

/// The result of one `update`.
public struct UpdateResult: Sendable {
    /// The transformed updates. For a full optimizer (a chain ending in `scaleByLearningRate`,
    /// and possibly `addDecoupledWeightDecay`) this is the parameter change `Δw_t`, learning rate
    /// included: `w_{t+1} = w_t + updates`.
    public var updates: [Double]
    /// The state after the update (`count` one higher).
    public var state: OptimizerState
    public var info: UpdateInfo

    public init(updates: [Double], state: OptimizerState, info: UpdateInfo = UpdateInfo()) {
        self.updates = updates
        self.state = state
        self.info = info
    }
}

/// A pure update rule: `(u, state, w, η) → (u', state')`. Implementations keep no mutable
/// state of their own, so the same value can drive any number of runs and replays.
public protocol GradientTransformation: Sendable, CustomStringConvertible {
    /// Names of the P-long buffers this transformation keeps, in storage order (empty when
    /// stateless). Unique within the transformation.
    var bufferNames: [String] { get }

    /// A fresh state: `count` 0, every buffer zero.
    func initialState(parameterCount: Int) -> OptimizerState

    /// Transforms `updates` (the loss gradient, for the first component of a chain) at parameters
    /// `w` with learning rate `η_t` (used only by the components that scale by it).
    func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult

    /// The diagonal preconditioner `D_t` that the state (after update t) implies, for adaptive
    /// optimizers (Adam, RMSProp): the update is `−η D_t ⊙ (first moment or gradient)`; and the
    /// constant learning-rate multipliers `M` of parameter groups (`ScaleByLearningRate`). nil
    /// for the others.
    func preconditioner(_ state: OptimizerState) -> [Double]?

    /// This transformation's part of the kernel form (`KernelForm`): the form of the components
    /// before it in a chain is `prefix`; the result is the form with this one applied, or nil when
    /// the combination has no kernel form. Default: nil (an unknown transformation has none).
    func kernelForm(after prefix: KernelForm.Partial) -> KernelForm.Partial?
}

extension GradientTransformation {
    public func initialState(parameterCount: Int) -> OptimizerState {
        OptimizerState(count: 0, parameterCount: parameterCount, names: bufferNames,
                       buffers: bufferNames.map { _ in [Double](repeating: 0, count: parameterCount) })
    }

    public func preconditioner(_ state: OptimizerState) -> [Double]? { nil }

    /// A stored state (`flattened()` output and its step count) checked against this
    /// transformation: throws when the names are not this transformation's `bufferNames`, in
    /// order (e.g. a trace written with other optimizer settings), or the sizes disagree.
    public func restoreState(count: Int, names: [String], values: [Double], parameterCount: Int) throws -> OptimizerState {
        guard names == bufferNames else {
            throw OptimError("optimizer state holds buffers \(names), but \(description) keeps \(bufferNames)")
        }
        return try OptimizerState(count: count, names: names, values: values, parameterCount: parameterCount)
    }

    /// Checks the shapes every component relies on.
    func checkShapes(_ u: [Double], _ state: OptimizerState, _ w: [Double]) {
        precondition(u.count == state.parameterCount && w.count == state.parameterCount,
                     "\(description): updates have \(u.count) entries, parameters \(w.count), state \(state.parameterCount)")
        precondition(state.names == bufferNames,
                     "\(description): state holds buffers \(state.names), expected \(bufferNames)")
    }

    /// The next state: the same names, the new buffers, `count + 1`.
    func advanced(_ state: OptimizerState, _ buffers: [[Double]] = []) -> OptimizerState {
        OptimizerState(count: state.count + 1, parameterCount: state.parameterCount, names: state.names, buffers: buffers)
    }
}

/// Components applied in order, each to the previous one's output (optax's `chain`). Each
/// component's buffers are stored under `"<index>.<name>"`, so two components with the same
/// buffer names never collide; all components share the chain's step counter.
public struct Chain: GradientTransformation {
    public let components: [any GradientTransformation]

    public init(_ components: [any GradientTransformation]) { self.components = components }

    public var bufferNames: [String] {
        components.enumerated().flatMap { i, c in c.bufferNames.map { "\(i).\($0)" } }
    }

    public var description: String { "chain(" + components.map(\.description).joined(separator: ", ") + ")" }

    /// Component `i`'s own state inside the chain's state (names without the prefix).
    public func componentState(_ i: Int, of state: OptimizerState) -> OptimizerState {
        let names = components[i].bufferNames
        let buffers = names.map { n -> [Double] in
            guard let b = state["\(i).\(n)"] else { preconditionFailure("chain state has no buffer \(i).\(n)") }
            return b
        }
        return OptimizerState(count: state.count, parameterCount: state.parameterCount, names: names, buffers: buffers)
    }

    public func update(_ updates: [Double], state: OptimizerState, parameters w: [Double], learningRate eta: Double) -> UpdateResult {
        checkShapes(updates, state, w)
        var u = updates
        var info = UpdateInfo()
        var buffers = [[Double]]()
        buffers.reserveCapacity(state.names.count)
        for i in components.indices {
            let r = components[i].update(u, state: componentState(i, of: state), parameters: w, learningRate: eta)
            u = r.updates
            info = info.merged(with: r.info)
            buffers.append(contentsOf: r.state.buffers)
        }
        return UpdateResult(updates: u, state: advanced(state, buffers), info: info)
    }

    /// The product of the components' preconditioners, in chain order (Adam's or RMSProp's D
    /// times group learning rates' M: `D ⊙ M`); one component's own when only one has one (bit
    /// for bit), nil when none has.
    public func preconditioner(_ state: OptimizerState) -> [Double]? {
        var product: [Double]? = nil
        for i in components.indices {
            guard let d = components[i].preconditioner(componentState(i, of: state)) else { continue }
            if let p = product {
                precondition(p.count == d.count, "chain preconditioner: \(p.count) and \(d.count) entries")
                product = zip(p, d).map { $0 * $1 }
            } else {
                product = d
            }
        }
        return product
    }

    /// The components' parts folded in order (a nested chain folds its own).
    public func kernelForm(after prefix: KernelForm.Partial) -> KernelForm.Partial? {
        var p = prefix
        for c in components {
            guard let next = c.kernelForm(after: p) else { return nil }
            p = next
        }
        return p
    }

    /// The first component of type `T` (e.g. `ScaleByMomentum`, to read μ and the dampening).
    public func first<T: GradientTransformation>(_ type: T.Type) -> T? {
        for c in components {
            if let t = c as? T { return t }
            if let nested = c as? Chain, let t = nested.first(type) { return t }
        }
        return nil
    }
}
