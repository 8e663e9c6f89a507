import Foundation
import PKNumerics

/// What the event sweep met on one query's segment.
public struct EventSweepCounts: Sendable, Equatable {
    /// Events that changed J (a rectifier flip or a pool switch with a nonzero correction), at
    /// distinct times (simultaneous ones count once): the breakpoints of J on the segment.
    public var breakpoints = 0
    /// Events that changed J, simultaneous ones each.
    public var events = 0
    /// Events that changed no state J depends on (a watched root where the state read after it is
    /// the same, a fused window's switch between negative entries).
    public var silent = 0
    public init() {}
}

/// `LayerNetwork`'s event-sweep plan, built on first use.
final class EventSweepPlanCache: @unchecked Sendable {
    private let lock = NSLock()
    private var built: EventSweepPlan?? = nil
    func plan(_ make: () -> EventSweepPlan?) -> EventSweepPlan? {
        lock.lock()
        defer { lock.unlock() }
        if let built { return built }
        let p = make()
        built = .some(p)
        return p
    }
}

/// The event sweep compiled from a `Sequential` root: one stage per layer, a rectifier directly
/// followed by a max pool (slope ≥ 0) fused into one stage (the pool compares the rectifier's
/// inputs: `max_i φ(z_i) = φ(max_i z_i)`). Boundary `b` is stage `b`'s input, boundary
/// `stages.count` the output.
final class EventSweepPlan: Sendable {
    enum Stage: Sendable {
        case bilinear(SweepConnections, offset: Int)
        case linear(SweepLinearMap)
        case rectifier(slope: Double)
        /// `slope` nil: a plain max pool; else the fused rectifier → max pool.
        case pool(windows: [[Int]], entryWindows: [[Int32]], slope: Double?)
    }
    let stages: [Stage]
    /// Per boundary: entries, and the degrees in t of its activations (bilinear stages below) and
    /// of its output cotangents (bilinear stages above).
    let width: [Int], actDegree: [Int], cotDegree: [Int]
    /// The output boundary of the lowest bilinear stage: cotangents are kept at and above it.
    let lowestCotangent: Int
    let firstBilinear: Int
    /// Per stage: its watchers' first global id (rectifier units, pool windows; others none).
    let watcherBase: [Int]
    let watcherCount: Int
    /// Per watcher: its stage.
    let watcherStage: [Int32]
    let outputs: Int, parameters: Int

    /// The leaf layers of `root`, nested sequentials flattened, each with its parameters' offset;
    /// nil when a child is another composite (a residual block).
    static func leaves(_ root: Sequential) -> [(layer: any Layer, offset: Int)]? {
        var layers: [(layer: any Layer, offset: Int)] = []
        func collect(_ s: Sequential, _ base: Int) {
            for (i, child) in s.children.enumerated() {
                if let inner = child.layer as? Sequential {
                    collect(inner, base + s.offsets[i])
                } else {
                    layers.append((child.layer, base + s.offsets[i]))
                }
            }
        }
        collect(root, 0)
        return layers
    }

    /// Whether every leaf is a kind the sweep covers (`EventSweepLayer.sweepCovered`) and one has
    /// parameters (a network without any has J = 0): cheap, nothing built.
    static func covers(_ root: Sequential) -> Bool {
        guard let layers = leaves(root) else { return false }
        return layers.allSatisfy { ($0.layer as? any EventSweepLayer)?.sweepCovered == true } && layers.contains { $0.layer.parameterCount > 0 }
    }

    init?(root: Sequential) {
        // The children, nested sequentials flattened, each with its parameters' offset.
        var layers: [(layer: any Layer, offset: Int)] = []
        func collect(_ s: Sequential, _ base: Int) -> Bool {
            for (i, child) in s.children.enumerated() {
                if let inner = child.layer as? Sequential {
                    guard collect(inner, base + s.offsets[i]) else { return false }
                } else {
                    layers.append((child.layer, base + s.offsets[i]))
                }
            }
            return true
        }
        guard collect(root, 0) else { return nil }
        var stages: [Stage] = [], width = [root.inputShape.count]
        var i = 0
        while i < layers.count {
            guard let sweeping = layers[i].layer as? any EventSweepLayer, let stage = sweeping.sweepStage else { return nil }
            let out = layers[i].layer.outputShape.count
            switch stage {
            case .bilinear(let c):
                guard c.inputs == width.last!, c.outputs == out else { return nil }
                stages.append(.bilinear(c, offset: layers[i].offset))
            case .linear(let m):
                guard m.inputs == width.last!, m.outputs == out else { return nil }
                stages.append(.linear(m))
            case .rectifier(let slope):
                if slope >= 0, i + 1 < layers.count, let next = (layers[i + 1].layer as? any EventSweepLayer)?.sweepStage,
                   case .maxPool(let windows) = next {
                    stages.append(Self.pool(windows, inputs: width.last!, slope: slope))
                    width.append(layers[i + 1].layer.outputShape.count)
                    i += 2
                    continue
                }
                stages.append(.rectifier(slope: slope))
            case .maxPool(let windows):
                stages.append(Self.pool(windows, inputs: width.last!, slope: nil))
            }
            width.append(out)
            i += 1
        }
        var firstBilinear = -1
        for (s, stage) in stages.enumerated() { if case .bilinear = stage { firstBilinear = s; break } }
        guard firstBilinear >= 0 else { return nil }
        var actDegree = [0], base: [Int] = [], watchers = 0, watcherStage: [Int32] = []
        for (s, stage) in stages.enumerated() {
            var d = actDegree[s]
            if case .bilinear = stage { d += 1 }
            actDegree.append(d)
            base.append(watchers)
            var count = 0
            switch stage {
            case .rectifier: count = width[s]
            case .pool: count = width[s + 1]
            default: break
            }
            watchers += count
            watcherStage += repeatElement(Int32(s), count: count)
        }
        let D = actDegree.last!
        self.stages = stages
        self.width = width
        self.actDegree = actDegree
        self.cotDegree = actDegree.map { D - $0 }
        self.firstBilinear = firstBilinear
        self.lowestCotangent = firstBilinear + 1
        self.watcherBase = base
        self.watcherCount = watchers
        self.watcherStage = watcherStage
        self.outputs = width.last!
        self.parameters = root.parameterCount
    }

    static func pool(_ windows: [[Int]], inputs: Int, slope: Double?) -> Stage {
        var entryWindows = [[Int32]](repeating: [], count: inputs)
        for (w, entries) in windows.enumerated() { for e in entries { entryWindows[e].append(Int32(w)) } }
        return .pool(windows: windows, entryWindows: entryWindows, slope: slope)
    }
}

extension LayerNetwork {
    /// Whether `segmentSweptJacobians` covers this network: a `Sequential` root (nested ones
    /// flattened) of dense, conv2d, relu, leaky-relu, identity, max and average pooling and
    /// flatten layers with at least one layer with parameters. Residual blocks, layer norm and
    /// the smooth activations are not covered (the node route integrates those networks).
    public var eventSweepEligible: Bool { sweepCovered }

    /// The plan, built once (under a lock) on first use.
    var sweepPlan: EventSweepPlan? {
        guard sweepCovered else { return nil }
        return sweepPlanCache.plan { EventSweepPlan(root: root) }
    }

    /// Per row r of `x`, `J̄_r = ∫₀¹ J(x_r; start + t·delta) dt` exactly (path-kernel math §1.1,
    /// "The event sweep"), in the format of `segmentIntegratedJacobians` (row `c·n + r` of the
    /// features' one block is `∂f_c(x_r)/∂w` integrated; `tangents[j]` the JVPs `J̄_r·u_j`, from the
    /// float64 rows), with each row's event counts; nil when `eventSweepEligible` is false.
    ///
    /// Per row: the activation polynomials in t of every boundary under the pattern just after
    /// t = 0 (exact coefficients, as `affineSegmentPieces`), the output cotangent polynomials down
    /// to the lowest layer with parameters, `∫₀¹ J_{P0}` by the moments `1/(j + 1)`; then the
    /// events in time order (a heap of every watcher's next sign change: rectifier units, pool
    /// windows), each adding `∫_{t_k}^1 (J_{P_k} − J_{P_{k−1}})`: the flipped unit's forward cone
    /// for the layers with parameters above it, its backward cone for those below, exactly by the
    /// moments `(1 − t_k^{j+1})/(j + 1)`. All in float64; rows in fixed blocks on the threads (the
    /// same bits on any thread count).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    public func segmentSweptJacobians<S: BLASScalar>(start w: [Double], delta v: [Double], _ x: Matrix, as _: S.Type = Double.self,
                                                     tangents: [[Double]] = [])
        -> (features: TangentFeatures<S>, tangents: [Matrix], counts: [EventSweepCounts])? {
        guard let plan = sweepPlan else { return nil }
        checkSizes(w, x)
        precondition(v.count == parameterCount, "delta has \(v.count) entries, the network has \(parameterCount) parameters")
        for u in tangents { precondition(u.count == parameterCount, "tangent has \(u.count) entries, the network has \(parameterCount) parameters") }
        let n = x.rows, C = outputDim, P = parameterCount, J = tangents.count
        var signals = DenseMatrix<S>(rows: C * n, cols: P)
        var products = [Double](repeating: 0, count: J * n * C)   // tangent j, row r, output c
        var counts = [EventSweepCounts](repeating: EventSweepCounts(), count: n)
        if n > 0 && C > 0 && P > 0 {
            let blocks = Parallel.ranges(n, minimum: 2)
            signals.data.withUnsafeMutableBufferPointer { sp in
                products.withUnsafeMutableBufferPointer { pp in
                    counts.withUnsafeMutableBufferPointer { cp in
                        let (sBase, pBase, cBase) = (sp.baseAddress!, pp.baseAddress, cp.baseAddress!)
                        Parallel.forEach(blocks.count) { b in
                            let sweep = EventSweep(plan: plan, start: w, delta: v)
                            for r in blocks[b] {
                                cBase[r] = sweep.run(x.rows(r..<(r + 1)).data)
                                let jbar = sweep.jbar
                                for c in 0..<C {
                                    let dst = sBase + (c * n + r) * P
                                    for k in 0..<P { dst[k] = S(jbar[c * P + k]) }
                                }
                                for (j, u) in tangents.enumerated() {
                                    for c in 0..<C {
                                        var dot = 0.0
                                        for k in 0..<P { dot += jbar[c * P + k] * u[k] }
                                        pBase![(j * n + r) * C + c] = dot
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let features = TangentFeatures(count: n, channels: C, inputs: [DenseMatrix(rows: n, cols: 1, repeating: 1)], signals: [signals],
                                       weightScaleSquared: [1], biasScaleSquared: [0], outputs: DenseMatrix(rows: n, cols: C))
        let jvps = (0..<J).map { j in Matrix(rows: n, cols: C, data: Array(products[(j * n * C)..<((j + 1) * n * C)])) }
        return (features, jvps, counts)
    }
}

/// A heap entry: a watcher's next event time, with the watcher's version when it was pushed
/// (lazy invalidation: a popped entry whose version is stale is dropped).
private struct SweepEvent {
    var t: Double, id: Int32, version: Int32
    /// Time order, then watcher id (a fixed order for simultaneous events).
    @inline(__always) func precedes(_ o: SweepEvent) -> Bool { t < o.t || (t == o.t && id < o.id) }
}

/// A sparse change of one boundary: entries `index[e]`, each with `stride` values
/// (`(degree + 1)·channels`, coefficient-major: value `k·channels + c` at `e·stride`).
private struct SparseDelta {
    var index: [Int] = []
    var values: [Double] = []
    var degree = 0
    var channels = 1
    var stride: Int { (degree + 1) * channels }

    mutating func reset(degree d: Int, channels ch: Int) {
        index.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        degree = d
        channels = ch
    }

    /// The entry for unit u (a new zero one when absent), via `slot` (−1: absent), which the
    /// caller clears with `clear(slot:)`.
    @inline(__always) mutating func entry(_ u: Int, _ slot: inout [Int]) -> Int {
        if slot[u] >= 0 { return slot[u] }
        let e = index.count
        slot[u] = e
        index.append(u)
        values.append(contentsOf: repeatElement(0, count: stride))
        return e
    }

    func clear(slot: inout [Int]) { for u in index { slot[u] = -1 } }
}

/// A fixed-size buffer of one sweep state (pointer semantics: no copy-on-write or exclusivity
/// checks in the inner loops); freed by its owner.
struct SweepBuffer<T> {
    let base: UnsafeMutablePointer<T>
    let count: Int
    init(_ count: Int, _ value: T) {
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: value, count: max(count, 1))
        self.count = count
    }
    var indices: Range<Int> { 0..<count }
    @inline(__always) subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<T>) -> R) -> R { body(UnsafeBufferPointer(start: base, count: count)) }
    func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<T>) -> R) -> R {
        body(UnsafeMutableBufferPointer(start: base, count: count))
    }
    func free() { base.deallocate() }
}

/// One thread's sweep state, reused row after row.
private final class EventSweep {
    let plan: EventSweepPlan
    let w: [Double], v: [Double]
    let C: Int, P: Int, D: Int
    /// `act[b][k·width + u]`: coefficient k of entry u at boundary b.
    let act: [SweepBuffer<Double>]
    /// `cot[b][(k·C + c)·width + u]` for b ≥ `lowestCotangent` (empty below).
    let cot: [SweepBuffer<Double>]
    /// Per stage: rectifier slopes per unit; pool arg-max and slope per window.
    let slope: [SweepBuffer<Double>], argmax: [SweepBuffer<Int>]
    /// Per watcher: its state code (see `state`) and version.
    let code: SweepBuffer<Int>, version: SweepBuffer<Int32>
    var heap: [SweepEvent] = []
    /// J̄ of the current row, C × P.
    let jbar: SweepBuffer<Double>
    let mu: SweepBuffer<Double>
    // Scratch.
    var slots: [[Int]]
    let dirty: SweepBuffer<Bool>
    var dirtyList: [Int] = []
    var fwd = SparseDelta(), fwdNext = SparseDelta(), bwd = SparseDelta(), bwdNext = SparseDelta()
    var roots: [Double] = [], poly: [Double] = [], cols: [Double] = []
    /// Moment-contracted coefficients (Hankel contractions).
    let h: SweepBuffer<Double>

    init(plan: EventSweepPlan, start: [Double], delta: [Double]) {
        self.plan = plan
        w = start
        v = delta
        C = plan.outputs
        P = plan.parameters
        D = plan.actDegree.last!
        act = plan.width.indices.map { SweepBuffer((plan.actDegree[$0] + 1) * plan.width[$0], 0) }
        cot = plan.width.indices.map { SweepBuffer($0 >= plan.lowestCotangent ? (plan.cotDegree[$0] + 1) * plan.outputs * plan.width[$0] : 0, 0) }
        slope = plan.stages.indices.map { s in
            switch plan.stages[s] {
            case .rectifier: return SweepBuffer(plan.width[s], 0)
            case .pool: return SweepBuffer(plan.width[s + 1], 0)
            default: return SweepBuffer(0, 0)
            }
        }
        argmax = plan.stages.indices.map { s in
            if case .pool = plan.stages[s] { return SweepBuffer(plan.width[s + 1], 0) }
            return SweepBuffer(0, 0)
        }
        code = SweepBuffer(plan.watcherCount, 0)
        version = SweepBuffer(plan.watcherCount, 0)
        jbar = SweepBuffer(plan.outputs * plan.parameters, 0)
        mu = SweepBuffer(2 * D + 2, 0)
        h = SweepBuffer((D + 1) * max(plan.width.max()!, plan.outputs), 0)
        slots = plan.width.map { [Int](repeating: -1, count: $0) }
        dirty = SweepBuffer(plan.watcherCount, false)
    }

    deinit {
        (act + cot + slope + [jbar]).forEach { $0.free() }
        argmax.forEach { $0.free() }
        code.free(); version.free(); dirty.free(); mu.free(); h.free()
    }

    // MARK: Watchers

    /// Entry u of boundary b at t (Horner).
    @inline(__always) func value(_ b: Int, _ u: Int, at t: Double) -> Double {
        let a = act[b], n = plan.width[b]
        var s = 0.0
        for k in stride(from: plan.actDegree[b], through: 0, by: -1) { s = s * t + a[k * n + u] }
        return s
    }

    /// The watcher's stage and its local index.
    @inline(__always) func locate(_ id: Int) -> (stage: Int, local: Int) {
        let s = Int(plan.watcherStage[id])
        return (s, id - plan.watcherBase[s])
    }

    /// The state code of watcher `local` of stage s at t, read from the polynomials: a rectifier
    /// unit 1 (input > 0) or 0; a pool window its first arg-max e (the forward pass's tie rule),
    /// fused: `2e + 1` when the maximum is > 0, else `2e` (leaky) or −1 (relu: below 0 the window
    /// is 0 whichever entry is the arg-max).
    func state(_ s: Int, _ local: Int, at t: Double) -> Int {
        switch plan.stages[s] {
        case .rectifier: return value(s, local, at: t) > 0 ? 1 : 0
        case .pool(let windows, _, let fused):
            let entries = windows[local]
            var best = entries[0], top = value(s, best, at: t)
            for e in entries.dropFirst() {
                let y = value(s, e, at: t)
                if y > top { best = e; top = y }
            }
            guard let fused else { return best }
            if top > 0 { return 2 * best + 1 }
            return fused == 0 ? -1 : 2 * best
        default: return 0
        }
    }

    /// Appends the sign changes in (lo, 1) of entry u of boundary b, or of u − u2.
    func appendRoots(_ b: Int, _ u: Int, minus u2: Int? = nil, after lo: Double) {
        let a = act[b], n = plan.width[b], d = plan.actDegree[b]
        poly.removeAll(keepingCapacity: true)
        for k in 0...d { poly.append(a[k * n + u] - (u2.map { a[k * n + $0] } ?? 0)) }
        Polynomial.appendSignChanges(poly, in: lo, 1, to: &roots)
    }

    /// Cuts closer than this to the current time are the current event's (ulps apart in exact
    /// arithmetic): the state is read after them.
    static let coincident = 16 * Double.ulpOfOne

    /// The watcher's next switching time after t (1: none on the segment) and its state between:
    /// the first sign change of its switching polynomials more than `coincident` after t, the
    /// state read at the midpoint.
    func next(_ s: Int, _ local: Int, after t: Double) -> (state: Int, time: Double) {
        roots.removeAll(keepingCapacity: true)
        switch plan.stages[s] {
        case .rectifier: appendRoots(s, local, after: t)
        case .pool(let windows, _, let fused):
            let entries = windows[local]
            for i in entries.indices {
                if fused != nil { appendRoots(s, entries[i], after: t) }
                for j in (i + 1)..<entries.count { appendRoots(s, entries[j], minus: entries[i], after: t) }
            }
        default: break
        }
        var r = 1.0
        for x in roots where x > t + Self.coincident && x < r { r = x }
        return (state(s, local, at: 0.5 * (t + r)), r)
    }

    /// Schedules watcher id (stage s) from time t: an immediate event when its state just after t
    /// is not the current one (an upstream change at an exact degeneracy), else its next root.
    func schedule(_ id: Int, _ s: Int, _ local: Int, at t: Double) {
        version[id] &+= 1
        let (after, time) = next(s, local, after: t)
        if after != code[id] {
            push(SweepEvent(t: t, id: Int32(id), version: version[id]))
        } else if time < 1 {
            push(SweepEvent(t: time, id: Int32(id), version: version[id]))
        }
    }

    func push(_ e: SweepEvent) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard heap[i].precedes(heap[p]) else { break }
            heap.swapAt(i, p)
            i = p
        }
    }

    func pop() -> SweepEvent? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && heap[l].precedes(heap[m]) { m = l }
                if r < heap.count && heap[r].precedes(heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    /// Sets the rectifier slope / pool routing of stage s's watcher from its state code.
    func setState(_ s: Int, _ local: Int, _ c: Int) {
        code[plan.watcherBase[s] + local] = c
        switch plan.stages[s] {
        case .rectifier(let alpha): slope[s][local] = c == 1 ? 1 : alpha
        case .pool(let windows, _, let fused):
            if let fused {
                if c < 0 { argmax[s][local] = windows[local][0]; slope[s][local] = 0 } else {
                    argmax[s][local] = c / 2
                    slope[s][local] = c % 2 == 1 ? 1 : fused
                }
            } else {
                argmax[s][local] = c
                slope[s][local] = 1
            }
        default: break
        }
    }

    // MARK: One row

    /// J̄ of one example (`jbar`, C × P) and its counts.
    func run(_ x: [Double]) -> EventSweepCounts {
        var counts = EventSweepCounts()
        for i in jbar.indices { jbar[i] = 0 }
        heap.removeAll(keepingCapacity: true)
        for i in version.indices { version[i] = 0 }
        // The forward polynomials under the pattern just after 0, the watchers' first events.
        for u in 0..<plan.width[0] { act[0][u] = x[u] }
        for (s, stage) in plan.stages.enumerated() {
            let nIn = plan.width[s], nOut = plan.width[s + 1], dIn = plan.actDegree[s], dOut = plan.actDegree[s + 1]
            switch stage {
            case .bilinear(let c, let offset):
                let sW = c.weightScale, sB = c.biasScale
                for i in act[s + 1].indices { act[s + 1][i] = 0 }
                act[s].withUnsafeBufferPointer { a in
                    act[s + 1].withUnsafeMutableBufferPointer { z in
                        for o in 0..<nOut {
                            for e in c.outputStart[o]..<c.outputStart[o + 1] {
                                let i = Int(c.outputInput[e]), k = offset + Int(c.outputWeight[e])
                                let wk = sW * w[k], vk = sW * v[k]
                                for d in 0...dIn {
                                    let ad = a[d * nIn + i]
                                    z[d * nOut + o] += wk * ad
                                    z[(d + 1) * nOut + o] += vk * ad
                                }
                            }
                            let bk = c.bias[o]
                            if bk >= 0 {
                                z[o] += sB * w[offset + Int(bk)]
                                z[nOut + o] += sB * v[offset + Int(bk)]
                            }
                        }
                    }
                }
            case .linear(let m):
                for i in act[s + 1].indices { act[s + 1][i] = 0 }
                for o in 0..<nOut {
                    for e in m.outputStart[o]..<m.outputStart[o + 1] {
                        let i = Int(m.outputInput[e]), val = m.outputValue[e]
                        for d in 0...dIn { act[s + 1][d * nOut + o] += val * act[s][d * nIn + i] }
                    }
                }
            case .rectifier:
                for u in 0..<nIn {
                    let id = plan.watcherBase[s] + u
                    let (after, time) = next(s, u, after: 0)
                    setState(s, u, after)
                    if time < 1 { push(SweepEvent(t: time, id: Int32(id), version: 0)) }
                    let sl = slope[s][u]
                    for d in 0...dIn { act[s + 1][d * nOut + u] = sl * act[s][d * nIn + u] }
                }
            case .pool:
                for win in 0..<nOut {
                    let id = plan.watcherBase[s] + win
                    let (after, time) = next(s, win, after: 0)
                    setState(s, win, after)
                    if time < 1 { push(SweepEvent(t: time, id: Int32(id), version: 0)) }
                    let sl = slope[s][win], e = argmax[s][win]
                    for d in 0...dOut { act[s + 1][d * nOut + win] = sl * act[s][d * nIn + e] }
                }
            }
        }
        // The output cotangents: the identity at the output, pulled down to the lowest layer with parameters.
        let L = plan.stages.count
        for i in cot[L].indices { cot[L][i] = 0 }
        for c in 0..<C { cot[L][c * C + c] = 1 }
        if L - 1 >= plan.lowestCotangent {
            for s in stride(from: L - 1, through: plan.lowestCotangent, by: -1) { pullCotangents(s) }
        }
        // ∫₀¹ J_{P0}.
        setMoments(0)
        for (s, stage) in plan.stages.enumerated() {
            guard case .bilinear(let c, let offset) = stage else { continue }
            integrateFull(s, c, offset)
        }
        // The events.
        var lastBreak = -1.0
        while let e = pop() {
            let id = Int(e.id)
            guard e.version == version[id] else { continue }
            let (s, local) = locate(id)
            let (after, _) = next(s, local, after: e.t)
            if after == code[id] {
                counts.silent += 1
                schedule(id, s, local, at: e.t)
                continue
            }
            let changed = apply(s, local, newState: after, at: e.t)
            if changed {
                counts.events += 1
                if e.t != lastBreak { counts.breakpoints += 1; lastBreak = e.t }
            } else {
                counts.silent += 1
            }
            schedule(id, s, local, at: e.t)
            for d in dirtyList {
                dirty[d] = false
                if d == id { continue }
                let (sd, ld) = locate(d)
                schedule(d, sd, ld, at: e.t)
            }
            dirtyList.removeAll(keepingCapacity: true)
        }
        return counts
    }

    /// `cot[s]` from `cot[s + 1]` through stage s under the current pattern (full).
    func pullCotangents(_ s: Int) {
        let nIn = plan.width[s], nOut = plan.width[s + 1], dOut = plan.cotDegree[s + 1], dIn = plan.cotDegree[s]
        for i in cot[s].indices { cot[s][i] = 0 }
        switch plan.stages[s] {
        case .bilinear(let c, let offset) where c.convolution != nil:
            // im2col form: per coefficient d and channel ch, `s_W Wᵀ G_d` (K × positions) added back
            // by col2im into coefficient d, `s_W ΔWᵀ G_d` into d + 1.
            let (window, cin, O) = c.convolution!
            let K = cin * window.kernelPositions, positions = window.outputPositions
            if cols.count < K * positions { cols = [Double](repeating: 0, count: K * positions) }
            w.withUnsafeBufferPointer { wp in
                v.withUnsafeBufferPointer { vp in
                    cot[s + 1].withUnsafeBufferPointer { g in
                        cot[s].withUnsafeMutableBufferPointer { gi in
                            cols.withUnsafeMutableBufferPointer { cp in
                                for d in 0...dOut {
                                    for ch in 0..<C {
                                        for (factor, shift) in [(wp.baseAddress! + offset, 0), (vp.baseAddress! + offset, 1)] {
                                            Double.gemm(transposeA: true, transposeB: false, m: K, n: positions, k: O, alpha: c.weightScale,
                                                        a: factor, lda: K, b: g.baseAddress! + (d * C + ch) * nOut, ldb: positions,
                                                        beta: 0, c: cp.baseAddress!, ldc: positions)
                                            window.col2im(cp.baseAddress!, channels: cin, into: gi.baseAddress! + ((d + shift) * C + ch) * nIn)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        case .bilinear(let c, let offset):
            let sW = c.weightScale
            cot[s + 1].withUnsafeBufferPointer { g in
                cot[s].withUnsafeMutableBufferPointer { gi in
                    for o in 0..<nOut {
                        for e in c.outputStart[o]..<c.outputStart[o + 1] {
                            let i = Int(c.outputInput[e]), k = offset + Int(c.outputWeight[e])
                            let wk = sW * w[k], vk = sW * v[k]
                            for d in 0...dOut {
                                for ch in 0..<C {
                                    let gd = g[(d * C + ch) * nOut + o]
                                    gi[(d * C + ch) * nIn + i] += wk * gd
                                    gi[((d + 1) * C + ch) * nIn + i] += vk * gd
                                }
                            }
                        }
                    }
                }
            }
        case .linear(let m):
            for o in 0..<nOut {
                for e in m.outputStart[o]..<m.outputStart[o + 1] {
                    let i = Int(m.outputInput[e]), val = m.outputValue[e]
                    for d in 0...dOut { for ch in 0..<C { cot[s][(d * C + ch) * nIn + i] += val * cot[s + 1][(d * C + ch) * nOut + o] } }
                }
            }
        case .rectifier:
            for u in 0..<nIn {
                let sl = slope[s][u]
                for d in 0...dIn { for ch in 0..<C { cot[s][(d * C + ch) * nIn + u] = sl * cot[s + 1][(d * C + ch) * nOut + u] } }
            }
        case .pool:
            for win in 0..<nOut {
                let sl = slope[s][win], e = argmax[s][win]
                for d in 0...dIn { for ch in 0..<C { cot[s][(d * C + ch) * nIn + e] += sl * cot[s + 1][(d * C + ch) * nOut + win] } }
            }
        }
    }

    /// `mu[j] = ∫_t^1 τ^j dτ = (1 − t^{j+1})/(j + 1)`.
    func setMoments(_ t: Double) {
        var p = t
        for j in mu.indices {
            mu[j] = (1 - p) / Double(j + 1)
            p *= t
        }
    }

    /// Adds `∫_t^1` of bilinear stage s's rows under the current state (t in `mu`):
    /// `s_W Σ_{a,b} G_a[c, o] μ_{a+b} A_b[i]` into weight k of every triple (o, i, k), and
    /// `s_b Σ_a G_a[c, o] μ_a` into the biases.
    func integrateFull(_ s: Int, _ c: SweepConnections, _ offset: Int) {
        let nIn = plan.width[s], nOut = plan.width[s + 1], dA = plan.actDegree[s], dG = plan.cotDegree[s + 1]
        let sW = c.weightScale, sB = c.biasScale
        // h[a·nIn + i] = Σ_b μ_{a+b} A_b[i].
        var hn = 0
        for a in 0...dG { for i in 0..<nIn {
            var sum = 0.0
            for b in 0...dA { sum += mu[a + b] * act[s][b * nIn + i] }
            h[hn] = sum; hn += 1
        } }
        let P = self.P
        if let (window, cin, O) = c.convolution {
            // im2col form: per coefficient a and channel ch, `s_W G_a H_aᵀ` (O × K, H_a = im2col(h_a))
            // added into the rows of channel ch.
            let K = cin * window.kernelPositions, positions = window.outputPositions
            if cols.count < K * positions { cols = [Double](repeating: 0, count: K * positions) }
            cot[s + 1].withUnsafeBufferPointer { g in
                h.withUnsafeBufferPointer { hp in
                    jbar.withUnsafeMutableBufferPointer { jb in
                        cols.withUnsafeMutableBufferPointer { cp in
                            for a in 0...dG {
                                window.im2col(hp.baseAddress! + a * nIn, channels: cin, into: cp.baseAddress!)
                                for ch in 0..<C {
                                    Double.gemm(transposeA: false, transposeB: true, m: O, n: K, k: positions, alpha: sW,
                                                a: g.baseAddress! + (a * C + ch) * nOut, lda: positions, b: cp.baseAddress!, ldb: positions,
                                                beta: 1, c: jb.baseAddress! + ch * P + offset, ldc: K)
                                }
                            }
                        }
                    }
                }
            }
        }
        let triples = c.convolution == nil
        cot[s + 1].withUnsafeBufferPointer { g in
            h.withUnsafeBufferPointer { hp in
                jbar.withUnsafeMutableBufferPointer { jb in
                    for o in 0..<nOut {
                        for e in (triples ? c.outputStart[o]..<c.outputStart[o + 1] : 0..<0) {
                            let i = Int(c.outputInput[e]), k = offset + Int(c.outputWeight[e])
                            for ch in 0..<C {
                                var sum = 0.0
                                for a in 0...dG { sum += g[(a * C + ch) * nOut + o] * hp[a * nIn + i] }
                                jb[ch * P + k] += sW * sum
                            }
                        }
                        let bk = c.bias[o]
                        if bk >= 0 {
                            for ch in 0..<C {
                                var sum = 0.0
                                for a in 0...dG { sum += g[(a * C + ch) * nOut + o] * mu[a] }
                                jb[ch * P + offset + Int(bk)] += sB * sum
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Events

    /// Applies watcher `local` of stage s's change to `newState` at t: the state, the activation
    /// and cotangent polynomials in its cones, and `∫_t^1` of the change of J into `jbar`;
    /// collects the watchers whose polynomials changed in `dirtyList`. False when J did not change
    /// (a zero correction: a relu-fused window switching between negative entries).
    func apply(_ s: Int, _ local: Int, newState: Int, at t: Double) -> Bool {
        let nIn = plan.width[s], nOut = plan.width[s + 1], dA = plan.actDegree[s], dG = plan.cotDegree[s + 1]
        let hasCot = s + 1 >= plan.lowestCotangent && s > plan.firstBilinear
        fwd.reset(degree: plan.actDegree[s + 1], channels: 1)
        bwd.reset(degree: plan.cotDegree[s], channels: C)
        var nonzero = false
        switch plan.stages[s] {
        case .rectifier:
            let old = slope[s][local]
            setState(s, local, newState)
            let ds = slope[s][local] - old
            guard ds != 0 else { return false }
            nonzero = true
            let e = fwd.entry(local, &slots[s + 1]) * fwd.stride
            for d in 0...dA { fwd.values[e + d] = ds * act[s][d * nIn + local] }
            if hasCot {
                let eb = bwd.entry(local, &slots[s]) * bwd.stride
                for d in 0...dG { for ch in 0..<C { bwd.values[eb + d * C + ch] = ds * cot[s + 1][(d * C + ch) * nOut + local] } }
            }
        case .pool:
            let (i, si) = (argmax[s][local], slope[s][local])
            setState(s, local, newState)
            let (j, sj) = (argmax[s][local], slope[s][local])
            guard si != 0 || sj != 0 else { return false }
            nonzero = true
            let e = fwd.entry(local, &slots[s + 1]) * fwd.stride
            for d in 0...dA { fwd.values[e + d] = sj * act[s][d * nIn + j] - si * act[s][d * nIn + i] }
            if hasCot {
                for (u, sl) in [(j, sj), (i, -si)] where sl != 0 {
                    let eb = bwd.entry(u, &slots[s]) * bwd.stride
                    for d in 0...dG { for ch in 0..<C { bwd.values[eb + d * C + ch] += sl * cot[s + 1][(d * C + ch) * nOut + local] } }
                }
            }
        default: return false
        }
        fwd.clear(slot: &slots[s + 1])
        bwd.clear(slot: &slots[s])
        setMoments(t)
        // The forward cone: the activations above, the rows of the layers with parameters above.
        add(fwd, toActivations: s + 1)
        var b = s + 1
        while b < plan.stages.count && !fwd.index.isEmpty {
            forward(b)
            swap(&fwd, &fwdNext)
            b += 1
            add(fwd, toActivations: b)
        }
        // The backward cone: the cotangents below, the rows of the layers with parameters below.
        if hasCot {
            add(bwd, toCotangents: s)
            var b = s - 1
            while b >= plan.firstBilinear && !bwd.index.isEmpty {
                backward(b)
                if b == plan.firstBilinear { break }
                swap(&bwd, &bwdNext)
                add(bwd, toCotangents: b)
                b -= 1
            }
        }
        return nonzero
    }

    func add(_ delta: SparseDelta, toActivations b: Int) {
        let n = plan.width[b]
        for (e, u) in delta.index.enumerated() {
            for d in 0...delta.degree { act[b][d * n + u] += delta.values[e * delta.stride + d] }
        }
    }

    func add(_ delta: SparseDelta, toCotangents b: Int) {
        let n = plan.width[b]
        for (e, u) in delta.index.enumerated() {
            for d in 0...delta.degree { for ch in 0..<C { cot[b][(d * C + ch) * n + u] += delta.values[e * delta.stride + d * C + ch] } }
        }
    }

    func markDirty(_ id: Int) {
        if !dirty[id] { dirty[id] = true; dirtyList.append(id) }
    }

    /// `fwdNext` = stage s applied to the change `fwd` of its input (the frozen pattern), with
    /// stage s's own correction of J̄ when it has parameters and its watchers marked.
    func forward(_ s: Int) {
        let nOut = plan.width[s + 1], dIn = fwd.degree
        switch plan.stages[s] {
        case .bilinear(let c, let offset):
            fwdNext.reset(degree: dIn + 1, channels: 1)
            let sW = c.weightScale, dG = plan.cotDegree[s + 1], P = self.P
            for (e, i) in fwd.index.enumerated() {
                let base = e * fwd.stride
                // h_a = Σ_b μ_{a+b} ΔA_b[i]
                var hn = 0
                for a in 0...dG {
                    var sum = 0.0
                    for b in 0...dIn { sum += mu[a + b] * fwd.values[base + b] }
                    h[hn] = sum; hn += 1
                }
                for q in c.inputStart[i]..<c.inputStart[i + 1] {
                    let o = Int(c.inputOutput[q]), k = offset + Int(c.inputWeight[q])
                    for ch in 0..<C {
                        var sum = 0.0
                        for a in 0...dG { sum += cot[s + 1][(a * C + ch) * nOut + o] * h[a] }
                        jbar[ch * P + k] += sW * sum
                    }
                    let wk = sW * w[k], vk = sW * v[k]
                    let eo = fwdNext.entry(o, &slots[s + 1]) * fwdNext.stride
                    for d in 0...dIn {
                        let ad = fwd.values[base + d]
                        fwdNext.values[eo + d] += wk * ad
                        fwdNext.values[eo + d + 1] += vk * ad
                    }
                }
            }
        case .linear(let m):
            fwdNext.reset(degree: dIn, channels: 1)
            for (e, i) in fwd.index.enumerated() {
                for q in m.inputStart[i]..<m.inputStart[i + 1] {
                    let o = Int(m.inputOutput[q]), val = m.inputValue[q]
                    let eo = fwdNext.entry(o, &slots[s + 1]) * fwdNext.stride
                    for d in 0...dIn { fwdNext.values[eo + d] += val * fwd.values[e * fwd.stride + d] }
                }
            }
        case .rectifier:
            fwdNext.reset(degree: dIn, channels: 1)
            for (e, u) in fwd.index.enumerated() {
                markDirty(plan.watcherBase[s] + u)
                let sl = slope[s][u]
                guard sl != 0 else { continue }
                let eo = fwdNext.entry(u, &slots[s + 1]) * fwdNext.stride
                for d in 0...dIn { fwdNext.values[eo + d] += sl * fwd.values[e * fwd.stride + d] }
            }
        case .pool(_, let entryWindows, _):
            fwdNext.reset(degree: dIn, channels: 1)
            for (e, u) in fwd.index.enumerated() {
                for win32 in entryWindows[u] {
                    let win = Int(win32)
                    markDirty(plan.watcherBase[s] + win)
                    let sl = slope[s][win]
                    guard argmax[s][win] == u, sl != 0 else { continue }
                    let eo = fwdNext.entry(win, &slots[s + 1]) * fwdNext.stride
                    for d in 0...dIn { fwdNext.values[eo + d] += sl * fwd.values[e * fwd.stride + d] }
                }
            }
        }
        fwdNext.clear(slot: &slots[s + 1])
    }

    /// Stage s's correction of J̄ for the change `bwd` of its output cotangent (when it has
    /// parameters), and `bwdNext` = that change pulled back through it (frozen pattern).
    func backward(_ s: Int) {
        let nIn = plan.width[s], dOut = bwd.degree
        let needsInput = s > plan.firstBilinear
        switch plan.stages[s] {
        case .bilinear(let c, let offset):
            bwdNext.reset(degree: dOut + 1, channels: C)
            let sW = c.weightScale, sB = c.biasScale, dA = plan.actDegree[s], P = self.P
            for (e, o) in bwd.index.enumerated() {
                let base = e * bwd.stride
                // h[b·C + ch] = Σ_a ΔG_a[ch] μ_{a+b}
                var hn = 0
                for b in 0...dA { for ch in 0..<C {
                    var sum = 0.0
                    for a in 0...dOut { sum += bwd.values[base + a * C + ch] * mu[a + b] }
                    h[hn] = sum; hn += 1
                } }
                for q in c.outputStart[o]..<c.outputStart[o + 1] {
                    let i = Int(c.outputInput[q]), k = offset + Int(c.outputWeight[q])
                    for ch in 0..<C {
                        var sum = 0.0
                        for b in 0...dA { sum += h[b * C + ch] * act[s][b * nIn + i] }
                        jbar[ch * P + k] += sW * sum
                    }
                    if needsInput {
                        let wk = sW * w[k], vk = sW * v[k]
                        let ei = bwdNext.entry(i, &slots[s]) * bwdNext.stride
                        for d in 0...dOut { for ch in 0..<C {
                            let g = bwd.values[base + d * C + ch]
                            bwdNext.values[ei + d * C + ch] += wk * g
                            bwdNext.values[ei + (d + 1) * C + ch] += vk * g
                        } }
                    }
                }
                let bk = c.bias[o]
                if bk >= 0 {
                    for ch in 0..<C {
                        var sum = 0.0
                        for a in 0...dOut { sum += bwd.values[base + a * C + ch] * mu[a] }
                        jbar[ch * P + offset + Int(bk)] += sB * sum
                    }
                }
            }
        case .linear(let m):
            bwdNext.reset(degree: dOut, channels: C)
            for (e, o) in bwd.index.enumerated() {
                for q in m.outputStart[o]..<m.outputStart[o + 1] {
                    let i = Int(m.outputInput[q]), val = m.outputValue[q]
                    let ei = bwdNext.entry(i, &slots[s]) * bwdNext.stride
                    for z in 0..<bwd.stride { bwdNext.values[ei + z] += val * bwd.values[e * bwd.stride + z] }
                }
            }
        case .rectifier:
            bwdNext.reset(degree: dOut, channels: C)
            for (e, u) in bwd.index.enumerated() {
                let sl = slope[s][u]
                guard sl != 0 else { continue }
                let ei = bwdNext.entry(u, &slots[s]) * bwdNext.stride
                for z in 0..<bwd.stride { bwdNext.values[ei + z] += sl * bwd.values[e * bwd.stride + z] }
            }
        case .pool:
            bwdNext.reset(degree: dOut, channels: C)
            for (e, win) in bwd.index.enumerated() {
                let sl = slope[s][win]
                guard sl != 0 else { continue }
                let ei = bwdNext.entry(argmax[s][win], &slots[s]) * bwdNext.stride
                for z in 0..<bwd.stride { bwdNext.values[ei + z] += sl * bwd.values[e * bwd.stride + z] }
            }
        }
        bwdNext.clear(slot: &slots[s])
    }
}
