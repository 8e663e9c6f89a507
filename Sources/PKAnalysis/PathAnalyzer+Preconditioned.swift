import Foundation
import PKNetworks
import PKNumerics
import PKOptim

/// The exact two-time path kernels of momentum and Adam-type updates (path-kernel math §5).
///
/// SGD with momentum, Adam, AdamW and RMSProp (with or without momentum) all update as
///
///     Δw_t = −η_t Σ_{s≤t} a_t b_s ρ^{t−s} · Dq_t ⊙ Dx_s ⊙ u_s   (+ AdamW's −η_t λ w_t)
///
/// with `u_s` the (clipped) batch gradient plus coupled L2 decay `λ w_s`, and the recorded
/// diagonal preconditioner `D = 1/(√v̂ + ε)` on the query side (`Dq_t`, Adam: it scales the
/// first moment after averaging) or on the training side (`Dx_s`, RMSProp: it scales each
/// gradient before the momentum sum). Adam: `ρ = β₁`, `a_t = 1/(1 − β₁^{t+1})`,
/// `b = 1 − β₁`; RMSProp: `ρ = μ` (0 without momentum), `a = b = 1`; SGD momentum (PyTorch's
/// heavy ball): `ρ = μ`, `a = 1`, `b_0 = 1`, `b_s = 1 − dampening`, no D. Nesterov adds `u_t`
/// itself: `Δw_t = −η_t (u_t + μ Σ_{s≤t} μ^{t−s} b_s u_s)`, so its training side meets
/// `V_s = μ b_s R_s + η_s J̄_s = (1 + μ b_s) R_s − μ R_{s+1}` instead of `b_s R_s`. Parameter
/// groups with their own learning rates multiply every update by the constant `M = diag(m_k)`,
/// which the chain's preconditioner already holds: Adam's `Dq_t ⊙ M`, RMSProp's `Dx_s ⊙ M`, and
/// for (S)GD and momentum `Dq_t = M` (`KernelForm.learningRateScale`).
///
/// Substituting into math §1 gives, per query x and training point i,
///
///     K^p(x, x_i) = Σ_s b_s (s_s/|B_s|) R_s(x) (Dx_s ⊙ J(x_i; w_s))ᵀ,
///     R_s(x)      = Σ_{t≥s} η_t a_t ρ^{t−s} J̄_t(x) ⊙ Dq_t = ρ R_{s+1}(x) + η_s a_s J̄_s(x) ⊙ Dq_s,
///
/// an exact sum (no truncated tail): the query side `R_s` is kept as explicit P-vectors and
/// run backwards in time, each step meeting only its own batch's Jacobians. Cost per step:
/// one pass over `R` (queries · C · P) and the products with the batch.
struct PreconditionedForm {
    struct Step {
        let start: [Double]
        /// `D_t` from the optimizer state after update t.
        let preconditioner: [Double]
        let batch: [Int]
        let learningRate: Double
        /// `s_t/|B_t|`: clip scale over batch size.
        let scale: Double
        let nodes: [(s: Double, w: Double)]
        /// Exact quadrature (math §1.1): the queries that leave `nodes` for nodes of their own.
        var piecewise: PiecewiseNodes? = nil
    }

    let name: String
    let rho: Double
    /// `b` of Adam (1 − β₁) and RMSProp (1); momentum's `b_s` is `b(_:)`.
    let bConstant: Double
    /// SGD momentum: PyTorch's dampening and Nesterov (D only with group learning rates: M).
    var momentum = false
    var dampening = 0.0
    var nesterov = false
    /// Adam's β₁ for `a_t = 1/(1 − β₁^{t+1})`; nil: `a_t = 1`.
    let biasCorrectionBeta: Double?
    /// Adam: D with the query (`Dq_t`); RMSProp: with the training side (`Dx_s`).
    let preconditionQuery: Bool
    /// Coupled L2 decay (part of `u_s`).
    let coupledDecay: Double
    /// AdamW's decoupled decay: the term `−η_t λ w_t` of Δw_t outside the sum (its JVPs give R_wd).
    let decoupledDecay: Double
    /// The chain's kernel form (its per-parameter decays with parameter groups).
    let kernelForm: KernelForm
    var steps: [Step] = []
    var end: [Double] = []

    /// The backward-in-time form of an optimizer chain's kernel form (momentum, Adam, AdamW,
    /// RMSProp), or nil for plain (S)GD (§2's kernel, summed forwards). `recordedKind` names it
    /// only: `KernelForm.name`, except that a run recorded as `adamw` stays AdamW when its λ is 0
    /// (its chain, and so its form, is then Adam's).
    init?(_ form: KernelForm, recordedKind: OptimizerSpec.Kind) {
        switch form.update {
        case .plain:
            return nil
        case let .momentum(rho, dampening, nesterov), let .preconditionedMomentum(rho, dampening, nesterov):
            self.rho = rho
            bConstant = 1
            momentum = true
            self.dampening = dampening
            self.nesterov = nesterov
            biasCorrectionBeta = nil
            preconditionQuery = true
            if case .momentum = form.update { hasPreconditioner = false }
        case let .preconditioned(side, rho, beta, b):
            self.rho = rho
            bConstant = b
            biasCorrectionBeta = beta
            preconditionQuery = side == .query
        }
        name = recordedKind == .adamw ? "AdamW" : form.name
        coupledDecay = form.coupledDecay
        decoupledDecay = form.decoupledDecay
        kernelForm = form
    }

    /// Whether the update has a diagonal preconditioner D, read per step from the optimizer state
    /// (all but SGD momentum without group learning rates).
    private(set) var hasPreconditioner = true

    /// The parameter groups' learning-rate multipliers are part of D (`KernelForm.learningRateScale`).
    var groupRates: Bool { kernelForm.learningRateScale != nil }

    /// `b_s`: momentum's `1` for s = 0 and `1 − dampening` after; else the constant.
    func b(_ s: Int) -> Double { momentum ? (s == 0 ? 1 : 1 - dampening) : bConstant }

    /// The kernel's name in the report's `kernel` line.
    var kernelName: String {
        let groups = groupRates ? ", group learning rates M" : ""
        return momentum ? "two-time path kernel (momentum \(rho)\(nesterov ? ", Nesterov" : "")\(groups)), exact"
                        : "preconditioned path kernel (\(name)\(groups)): J̄_t(x) D J(x_i; w_s)ᵀ, exact"
    }

    func a(_ t: Int) -> Double {
        guard let beta = biasCorrectionBeta else { return 1 }
        return 1 / (1 - Foundation.pow(beta, Double(t + 1)))
    }

    /// The report's note on this kernel.
    var description: String {
        let groupM = "M = diag(η_k/η), the parameter groups' learning-rate multipliers"
        if momentum {
            let c = nesterov ? "η_t (μ^{t−s+1} b_s + [s = t])" : "η_t μ^{t−s} b_s"
            let kernel = groupRates ? "J̄_t(x) M J(x_i; w_s)ᵀ (\(groupM))" : "J̄_t(x)·J(x_i; w_s)ᵀ"
            return "\(name) \(rho): two-time path kernel \(kernel) weighted by \(c) (b_0 = 1, b_s = 1 − dampening), summed exactly backwards in time (no truncated tail)"
        }
        let weights = biasCorrectionBeta != nil
            ? "η_t(1−β₁)β₁^{t−s}/(1−β₁^{t+1}), β₁ = \(rho)"
            : (rho > 0 ? "η_t μ^{t−s}, μ = \(rho)" : "η_t (s = t)")
        let kernel = preconditionQuery ? "J̄_t(x) D_t J(x_i; w_s)ᵀ" : "J̄_t(x) D_s J(x_i; w_s)ᵀ"
        // (S)GD with group rates: `.preconditioned` without bias correction with the query, D = M.
        let d = kernelForm.name == "SGD" ? "D = \(groupM)"
                                         : "the recorded D = 1/(√v̂ + ε)\(groupRates ? " times \(groupM)" : "")"
        return "\(name): preconditioned path kernel \(kernel) with \(d), weighted by \(weights), summed exactly (no truncation)"
    }
}

extension PathAnalyzer {
    /// Whether `accumulatePreconditioned` keeps `layer`'s R factored as `u xᵀ`: an MLP's first
    /// layer (its input is the data) when no D scales either side (SGD momentum).
    static func isFactored(_ layer: DenseLayer, model: any Network, form: PreconditionedForm) -> Bool {
        layer.index == 0 && model is MLP && !form.hasPreconditioner
    }

    /// Whether `accumulatePreconditioned` keeps `layer`'s R compact over each query's nonzero
    /// inputs: an MLP's first layer (its input is the data) when it is not factored (a D scales a
    /// side: Adam, AdamW, RMSProp, group learning rates). Every Jacobian in a query's rows of R is
    /// `δ x_qᵀ`, so R's scalars at the query's zero inputs stay 0: Fashion-MNIST's images are half
    /// zeros, and W6's first layer is 85 % of R (Docs/path-kernel.md §5). `compactInputOverride`
    /// false (tests) keeps the full layout.
    static func isCompact(_ layer: DenseLayer, model: any Network, form: PreconditionedForm) -> Bool {
        layer.index == 0 && model is MLP && form.hasPreconditioner && compactInputOverride != false
    }

    /// Tests: false keeps every layer of R in the full layout (the oracle of the compact one); nil
    /// (the default) compacts the first layer where `isCompact` says. Task-local, like the other
    /// test overrides below (`$compactInputOverride.withValue(false) { … }` binds it for one test's
    /// own calls on its thread): as a process-wide value it changed the cost model of another
    /// test's Adam analysis running meanwhile (its progress total then missed its plan's, a CI
    /// failure of session 21). Read where an analysis sets up, never on `Parallel`'s workers.
    @TaskLocal static var compactInputOverride: Bool? = nil

    /// The most bytes of query side R one query block holds (`accumulatePreconditioned`; the cost
    /// model's memory estimate uses the same bound).
    static let querySideBlockBytes = 512 << 20
    /// One layer's rows of R in a thread's chunk, in bytes: each step of a group updates them and
    /// multiplies them with the batch while they are in L2, beside OpenBLAS's packed copy of them
    /// and Y'. 512 KB (Zen 3's L2; 2 MB until session 14): on a 2-vCPU Emerald Rapids (2 MB L2,
    /// likely one core's two hyperthreads) W5's 20-step analysis took 25.4–28.1 s in four runs
    /// against 27.8–31.9 s in five at 2 MB, and its kernel phase 20.8–22.2 s against 22.4–24.6 s
    /// (interleaved, load 0.7–1.9 from the runs themselves); 256 KB and 1 MB were no better. The
    /// rows' count per GEMM changes with it, so the bits move at round-off with this constant
    /// (W6: 7e-17 in the reconstruction's error), never with the thread count.
    static let backwardChunkBytes = 512 << 10

    /// `P_R`: the scalars of the query side R per query and output channel (P, less the factored
    /// layer's `in·out` plus its `out`; a compact layer's `in·out` is `nonzeroInputs·out` for a
    /// query with that many nonzero inputs, nil: all of them).
    static func querySideScalars(model: any Network, form: PreconditionedForm, nonzeroInputs: Int? = nil) -> Int {
        model.featureBlocks.reduce(0) { sum, layer in
            let weights = isFactored(layer, model: model, form: form) ? layer.outputs
                : (isCompact(layer, model: model, form: form) ? layer.outputs * (nonzeroInputs ?? layer.inputs) : layer.weightCount)
            return sum + weights + (layer.biasOffset == nil ? 0 : layer.outputs)
        }
    }

    /// `querySideScalars` averaged over the queries `x` (one per row; `rows` of it, nil: all),
    /// each with its own nonzero inputs: the cost model's `P_R`.
    static func meanQuerySideScalars(model: any Network, form: PreconditionedForm, queries x: Matrix, rows: Range<Int>? = nil) -> Double {
        let rows = rows ?? 0..<x.rows
        guard !rows.isEmpty, model.featureBlocks.contains(where: { isCompact($0, model: model, form: form) }) else {
            return Double(querySideScalars(model: model, form: form))
        }
        var sum = 0.0
        forEachNonzeroCount(x, rows: rows) { sum += Double(querySideScalars(model: model, form: form, nonzeroInputs: $0)) }
        return sum / Double(rows.count)
    }

    /// The compact layer's shape for the cost model (`isCompact`): its outputs and inputs and the
    /// queries' `x` (`rows` of it, nil: all) mean count of nonzero inputs, or nil when no layer is compact.
    static func compactShape(model: any Network, form: PreconditionedForm, queries x: Matrix,
                             rows: Range<Int>? = nil) -> (outputs: Int, inputs: Int, support: Double)? {
        let rows = rows ?? 0..<x.rows
        guard !rows.isEmpty, let layer = model.featureBlocks.first(where: { isCompact($0, model: model, form: form) }) else { return nil }
        var nonzero = 0
        forEachNonzeroCount(x, rows: rows) { nonzero += $0 }
        return (layer.outputs, layer.inputs, Double(nonzero) / Double(rows.count))
    }

    /// Calls `body` with each row's count of nonzero entries, in row order, reading `x` in place
    /// (the plans called these on a copy of the query rows, 15 MB for W6, several times per plan).
    private static func forEachNonzeroCount(_ x: Matrix, rows: Range<Int>, _ body: (Int) -> Void) {
        let cols = x.cols
        x.data.withUnsafeBufferPointer { p in
            for r in rows {
                var nonzero = 0
                for k in 0..<cols where p[r * cols + k] != 0 { nonzero += 1 }
                body(nonzero)
            }
        }
    }

    /// Accumulates the preconditioned kernel form of `form`'s recorded steps into `acc`.
    /// `xq`: all queries (held-out first, `nT` of them, then the training points unless
    /// `exactOnly`); `attrIndex`: query row → attributed row. `progress(done, total)` counts
    /// (query row, step) pairs over all query blocks (a block of fewer rows takes less time).
    ///
    /// Per step the query side R is the whole memory traffic (queries · C · P doubles), so each
    /// thread takes a chunk of query rows and, layer by layer and channel by channel, updates its
    /// rows of R and at once (while they are in cache) multiplies them with the batch: with
    /// `∂f_k(x_i)/∂W_l = s_l δ_{k,i} a_iᵀ`, `Y = A_b R_l[rows]ᵀ` (one GEMM), then per example i
    /// a small GEMM of Y's row i (rows × out) with the C signals of x_i and its δ^g.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    static func accumulatePreconditioned<S: BLASScalar>(_: S.Type, _ form: PreconditionedForm, model: any Network, run: TraceRun, xq: Matrix, nT: Int,
                                         rows queryRows: Range<Int>? = nil, exactOnly: Bool, mode: KernelMode, attrIndex: [Int: Int],
                                         into acc: inout KernelAccumulators, progress: (Int, Int) -> Void) {
        let C = model.outputDim, T = form.steps.count, n = run.trainX.rows
        let blocks = mode == .full ? C : 1
        let nQ = xq.rows
        let layers = model.featureBlocks
        let bytes = MemoryLayout<S>.size
        // A block whose input does not depend on w (an MLP's first layer: its input is x) keeps R
        // factored when no D scales the query side or the training side (SGD momentum): every term
        // of R_s(x) is s_W δ(x; w) x_qᵀ, so R_s = u_s x_qᵀ with u_s = ρ u_{s+1} + s_W Σ_j ω_j δ_j(x)
        // (out scalars per query and channel instead of out·in), and its product with the batch's
        // Jacobian s_W δ_{k,i} x_iᵀ is s_W (u_s·δ_{k,i}) (x_q·x_i).
        let factored = layers.map { isFactored($0, model: model, form: form) }
        // Scalars of R per query row and channel, per layer (weights only; biases are `out` more).
        // (A compact layer's rows vary with the query: `out` times its nonzero inputs, below.)
        let rowWidth = layers.map { factored[$0.index] ? $0.outputs : $0.weightCount }
        let compact = layers.map { isCompact($0, model: model, form: form) }
        // The query rows computed here: all, or a shard's (`AnalysisContext.rows`).
        let computed = queryRows ?? 0..<nQ
        // A compact layer's support per query: the indices of its nonzero inputs (as S), ascending.
        let din0 = layers.first?.inputs ?? 0
        let supports: [[Int32]] = compact.contains(true)
            ? xq.data.withUnsafeBufferPointer { xp in
                (0..<nQ).map { q in computed.contains(q) ? (0..<din0).filter { S(xp[q * din0 + $0]) != 0 }.map(Int32.init) : [] }
            }
            : []
        func scalars(_ q: Int, _ layer: DenseLayer) -> Int {
            compact[layer.index] ? layer.outputs * supports[q].count : rowWidth[layer.index]
        }
        // Query rows per block: R stays under `querySideBlockBytes`, rows added while they fit
        // (a compact layer's rows vary). The blocks depend on the sizes only, never on the thread
        // count; R's own sums do not depend on the block, the queries' features at the nodes (GEMMs
        // of the block's rows) may round otherwise in another block size (W6: 3e-19 in the
        // reconstruction residual of 1e-13).
        var queryBlocks: [Range<Int>] = []
        if let forced = queryBlockRowsOverride.map({ max(1, $0) }) {
            queryBlocks = stride(from: computed.lowerBound, to: computed.upperBound, by: forced).map { $0..<min($0 + forced, computed.upperBound) }
        } else {
            let budget = querySideBlockBytes / bytes
            var start = computed.lowerBound, used = 0
            for q in computed {
                let need = C * layers.reduce(0) { $0 + scalars(q, $1) + ($1.biasOffset == nil ? 0 : $1.outputs) }
                if q > start && used + need > budget {
                    queryBlocks.append(start..<q)
                    start = q
                    used = 0
                }
                used += need
            }
            if start < computed.upperBound { queryBlocks.append(start..<computed.upperBound) }
        }
        let perBlock = queryBlocks.map(\.count).max() ?? 1
        // Each layer's R scalars per channel in a block (its query rows' widths summed).
        func blockScalars(_ rows: Range<Int>, _ layer: DenseLayer) -> Int {
            compact[layer.index] ? rows.reduce(0) { $0 + scalars($1, layer) } : rows.count * rowWidth[layer.index]
        }
        // Query rows per thread chunk: one layer's rows of a chunk stay near `backwardChunkBytes`.
        let largest = rowWidth.max() ?? 1
        let widest = layers.map { $0.outputs }.max() ?? 1
        var done = 0
        // R (row c·m + r: R_s(x_r) for output c), layer by layer: weights (C·m·out) × in (factored:
        // (C·m) × out), biases (C·m) × out. Allocated once for the largest block and zeroed per
        // block (a fresh mapping per block would page-fault all of R again each time).
        let rW = layers.map { layer in
            UnsafeMutablePointer<S>.allocate(capacity: max(1, C * (queryBlocks.map { blockScalars($0, layer) }.max() ?? 0)))
        }
        let rB = layers.map { layer -> UnsafeMutablePointer<S>? in
            layer.biasOffset == nil ? nil : UnsafeMutablePointer<S>.allocate(capacity: C * perBlock * layer.outputs)
        }
        defer {
            rW.forEach { $0.deallocate() }
            rB.forEach { $0?.deallocate() }
        }
        for (blockIndex, rows) in queryBlocks.enumerated() {
            let xb = xq.rows(rows), m = rows.count
            // Where row c·m + r of each layer's R starts: a full layer's rows are `rowWidth` wide, a
            // compact layer's `out·|support_r|` (channel c's rows after the c channels before it).
            let compactWidth = compact.contains(true) ? rows.map { supports[$0].count } : []
            var compactStart = [Int](repeating: 0, count: m + 1)
            if compact.contains(true) { for r in 0..<m { compactStart[r + 1] = compactStart[r] + compactWidth[r] } }
            // The supports of this block's rows, end to end (row r's from `compactStart[r]` on).
            let supportFlat = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, compactStart[m]))
            defer { supportFlat.deallocate() }
            if compact.contains(true) {
                for (r, q) in rows.enumerated() {
                    supports[q].withUnsafeBufferPointer { sp in
                        if let base = sp.baseAddress { (supportFlat + compactStart[r]).update(from: base, count: sp.count) }
                    }
                }
            }
            func offset(_ layer: DenseLayer, _ row: Int) -> Int {
                guard compact[layer.index] else { return row * rowWidth[layer.index] }
                return layer.outputs * ((row / m) * compactStart[m] + compactStart[row % m])
            }
            for layer in layers {
                rW[layer.index].initialize(repeating: 0, count: C * blockScalars(rows, layer))
                rB[layer.index]?.initialize(repeating: 0, count: C * m * layer.outputs)
            }
            let per = max(1, min((m + 1) / 2, backwardChunkBytes / (bytes * max(largest, 1))))
            let chunks = stride(from: 0, to: m, by: per).map { $0..<min($0 + per, m) }
            var rsum = 0.0                                   // Σ_{t≥s} η_t a_t ρ^{t−s}
            // Scratch for the whole block, allocated once (not per step: buffers above the
            // allocator's mmap threshold would page-fault afresh every step), sized for the largest
            // batch. Per step: K(x_r, x_i) per channel pair (full: (C·m) × (C·nb), row c·m + r holding
            // channel k's nb examples at k·nb, the layout of Z's rows, so that each layer's Z is added
            // in one contiguous pass; trace: m × nb),
            // N's Σ_k K_ck g_ik, and R_s·(Dx_s ⊙ λ w_s) for the coupled decay; per chunk: R's
            // previous rows (Nesterov), its modified rows, Y', the coefficients and Z.
            let maxBatch = form.steps.map(\.batch.count).max() ?? 1
            // Steps taken together (`backwardStepGroup`): one set of these per step of a group.
            let group = backwardStepGroup(model: model, bytes: bytes, queries: m, nodes: form.steps.map(\.nodes.count).max() ?? 1)
            let kFullSlots = (0..<group).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: max(1, mode == .full ? C * m * maxBatch * C : 0)) }
            let kTraceSlots = (0..<group).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: max(1, mode == .full ? 0 : m * maxBatch)) }
            let nBlockSlots = (0..<group).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: C * m * maxBatch) }
            let rvSlots = (0..<group).map { _ in UnsafeMutablePointer<Double>.allocate(capacity: C * m) }
            defer { for list in [kFullSlots, kTraceSlots, nBlockSlots, rvSlots] { list.forEach { $0.deallocate() } } }
            // (Explicit allocations: pointers into Swift arrays must not outlive the array's last
            // use, which the optimizer may move; see DeterminismTests.)
            func scratch(_ count: (Range<Int>) -> Int) -> [UnsafeMutablePointer<S>] {
                chunks.map { rr in UnsafeMutablePointer<S>.allocate(capacity: max(1, count(rr))) }
            }
            let generic = model is LayerNetwork
            // The signal channels each product needs: full, every channel and δ^g; trace, its own and δ^g.
            let allChannels = (0...C).map(Int32.init), channelPairs = (0..<C).map { [Int32($0), Int32(C)] }
            let tmpScratch = scratch { $0.count * largest }, oldScratch = scratch { $0.count * largest }
            let gatherScratch = scratch { _ in compact.contains(true) ? 4 * din0 : 1 }
            let tmpBScratch = scratch { $0.count * widest }, oldBScratch = scratch { $0.count * widest }
            let yScratch = scratch { generic ? 1 : $0.count * widest * maxBatch }
            let coefficientScratch = scratch { _ in maxBatch }, zScratch = scratch { $0.count * (C + 1) * maxBatch }
            let zAllScratch = scratch { generic ? $0.count * maxBatch * (C + 1) : 1 }
            defer {
                for list in [tmpScratch, oldScratch, tmpBScratch, oldBScratch, yScratch, coefficientScratch, zScratch, zAllScratch, gatherScratch] {
                    list.forEach { $0.deallocate() }
                }
            }
            var groupStart = T - 1
            while groupStart >= 0 {
                // The steps of this group, newest first: each step's query features and batch side
                // are prepared, then every chunk of R takes all of them while its rows are in cache,
                // then each step's products are added up in step order (the order of every sum is
                // that of one step at a time, so the bits do not depend on the group size).
                let groupSteps = Array(stride(from: groupStart, through: max(0, groupStart - group + 1), by: -1))
                groupStart -= group
                var works: [BackwardStep<S>] = []
                defer { works.forEach { $0.release() } }
                for (slot, s) in groupSteps.enumerated() {
                let st = form.steps[s]
                let next = s + 1 < T ? form.steps[s + 1].start : form.end
                let delta = zip(next, st.start).map { $0 - $1 }
                let coef = st.learningRate * form.a(s)
                // The queries' features at the nodes, with the fused JVPs of Δw_s (the reconstruction)
                // and of AdamW's decoupled part −η_s λ w_s (R_wd).
                var tangents = [delta]
                if form.decoupledDecay > 0 { tangents.append(form.kernelForm.decay(of: st.start, times: -st.learningRate, lambda: form.decoupledDecay)) }
                // Exact quadrature (math §1.1): the block's queries with breakpoints on this segment
                // take their own nodes, rows of one feature set (`own`, K rows) at their own points;
                // `ownNodes[r]`: local query r's rows of it (nil: r takes the shared nodes). Their R
                // rows accumulate `Σ_k ω_k J(x_r; w_s + t_kΔw_s)` instead of the shared nodes' sum.
                var ownNodes = [Range<Int>?](repeating: nil, count: m)
                var own: TangentFeatures<S>? = nil
                // Per local query with own nodes: (its row k of `own`, η_s a_s ω_k).
                var ownSources = [[(row: Int, weight: Double)]](repeating: [], count: m)
                // This step's JVP terms for `acc` (Σ J̄Δw and R_wd), added when the step is summed up.
                var pending: [(q: Int, c: Int, jvp: Double, rwd: Double?)] = []
                // One row per query of `queries` (J̄ summed over its own nodes, or the sweep's), row k of `f`.
                func takeOwnRows(_ queries: [Int], _ f: TangentFeatures<S>, _ jvps: [Matrix]) {
                    for (k, q) in queries.enumerated() {
                        for c in 0..<C {
                            pending.append((q, c, jvps[0][k, c], tangents.count > 1 ? jvps[1][k, c] : nil))
                        }
                        ownNodes[q - rows.lowerBound] = 0..<1
                        ownSources[q - rows.lowerBound] = [(k, coef)]
                    }
                    own = f
                }
                if let pw = st.piecewise, let (swept, tally) = pw.sweep, let network = model as? LayerNetwork {
                    // The event sweep (a layer network it covers): each query's exact J̄, one row
                    // per query (`LayerNetwork.segmentSweptJacobians`), no shared nodes.
                    let queries = Array(rows.clamped(to: swept))
                    if !queries.isEmpty, let (f, jvps, counts) = network.segmentSweptJacobians(start: st.start, delta: delta, xq.rows(at: queries),
                                                                                               as: S.self, tangents: tangents) {
                        tally.add(counts)
                        takeOwnRows(queries, f, jvps)
                    }
                } else if let pw = st.piecewise, generic {
                    // A layer network's features are Jacobian rows, C·P scalars per node, and a
                    // CNN's queries cross kinks nearly every step (Docs/path-kernel.md §1.1): only
                    // each query's weighted sum over its own nodes is kept (the R update is linear in
                    // the rows), one row per query (`LayerNetwork.segmentIntegratedJacobians`).
                    let range = pw.kinkedNodes(of: rows)
                    if !range.isEmpty, let network = model as? LayerNetwork {
                        var queries: [Int] = [], lists: [[(t: Double, weight: Double)]] = []
                        for node in pw.kinked[range] {
                            if queries.last != node.row { queries.append(node.row); lists.append([]) }
                            lists[lists.count - 1].append((node.t, node.weight))
                        }
                        let (f, jvps) = network.segmentIntegratedJacobians(start: st.start, delta: delta, xq.rows(at: queries),
                                                                           nodes: lists, as: S.self, tangents: tangents)
                        takeOwnRows(queries, f, jvps)
                    }
                } else if let pw = st.piecewise {
                    let range = pw.kinkedNodes(of: rows)
                    if !range.isEmpty {
                        let list = Array(pw.kinked[range])
                        let f = model.segmentFeatures(start: st.start, delta: delta, xq.rows(at: list.map(\.row)),
                                                      at: list.map(\.t), as: S.self, tangents: tangents)
                        var lower = 0
                        for k in 1...list.count where k == list.count || list[k].row != list[lower].row {
                            ownNodes[list[lower].row - rows.lowerBound] = lower..<k
                            lower = k
                        }
                        for (k, node) in list.enumerated() {
                            ownSources[node.row - rows.lowerBound].append((k, coef * node.weight))
                            for c in 0..<C {
                                pending.append((node.row, c, node.weight * Double(f.outputTangents[0][k, c]),
                                                tangents.count > 1 ? node.weight * Double(f.outputTangents[1][k, c]) : nil))
                            }
                        }
                        own = f
                    }
                }
                // (No shared nodes when every query of the block has its own rows: the sweep.)
                let nodes = (generic && ownNodes.allSatisfy { $0 != nil } ? [] : st.nodes).map { node -> (features: TangentFeatures<S>, weight: Double) in
                    var ws = st.start
                    Vec.axpy(node.s, delta, &ws)
                    let f = model.tangentFeatures(ws, xb, as: S.self, tangents: tangents)
                    for r in 0..<m where ownNodes[r] == nil {
                        for c in 0..<C {
                            pending.append((rows.lowerBound + r, c, node.w * Double(f.outputTangents[0][r, c]),
                                            tangents.count > 1 ? node.w * Double(f.outputTangents[1][r, c]) : nil))
                        }
                    }
                    return (f, coef * node.w)
                }
                rsum = form.rho * rsum + coef

                // The batch's side at w_s: features, g, and δ^g (the g-contracted signals).
                let batch = st.batch, nb = batch.count
                let xs = run.trainX.rows(at: batch)
                let fb = model.tangentFeatures(st.start, xs, as: S.self, tangents: [])
                let g = run.loss.evaluate(outputs: Matrix(fb.outputs), targets: run.trainY.rows(at: batch)).perExampleGradient
                let fg = fb.contracted(with: g)
                // Per-example weight of the training side; Nesterov's V_s already holds b_s.
                let bs = form.nesterov ? 1 : form.b(s)
                let weight = bs * st.scale
                let vNew = S(1 + form.rho * form.b(s)), vOld = S(form.rho)   // V_s = vNew R_s − vOld R_{s+1}
                let decay: [S] = form.coupledDecay > 0 ? form.kernelForm.decay(of: st.start, times: 1, lambda: form.coupledDecay).map { S($0) } : []
                let dS: [S] = form.hasPreconditioner ? st.preconditioner.map { S($0) } : []
                kFullSlots[slot].update(repeating: 0, count: mode == .full ? C * m * maxBatch * C : 0)
                kTraceSlots[slot].update(repeating: 0, count: mode == .full ? 0 : m * maxBatch)
                nBlockSlots[slot].update(repeating: 0, count: C * m * maxBatch)
                rvSlots[slot].update(repeating: 0, count: C * m)
                // A layer network's one block has its input fixed at 1 (its signals are the Jacobian
                // rows): Y_i = R for every example, so the per-example products become one GEMM per
                // chunk and channel against the batch's C signals and δ^g stacked, row i·(C+1) + k.
                let stackedWidth = generic ? layers[0].outputs : 0
                let stacked = UnsafeMutablePointer<S>.allocate(capacity: max(1, nb * (C + 1) * stackedWidth))
                if generic {
                    precondition(layers.count == 1 && layers[0].inputs == 1 && layers[0].biasOffset == nil, "a layer network has one block")
                    let dout = stackedWidth
                    fb.signals[0].data.withUnsafeBufferPointer { dp in
                        fg.signals[0].data.withUnsafeBufferPointer { gp in
                            for i in 0..<nb {
                                for k in 0..<C { (stacked + (i * (C + 1) + k) * dout).update(from: dp.baseAddress! + (k * nb + i) * dout, count: dout) }
                                (stacked + (i * (C + 1) + C) * dout).update(from: gp.baseAddress! + i * dout, count: dout)
                            }
                        }
                    }
                }
                // The dense blocks: per layer the batch's C signals and δ^g transposed, (C+1) × out × nb
                // (the example index fastest, so that the products below run along it).
                let signalsT: [UnsafeMutablePointer<S>] = generic ? [] : layers.map { layer in
                    let l = layer.index, dout = layer.outputs
                    let p = UnsafeMutablePointer<S>.allocate(capacity: (C + 1) * dout * nb)
                    fb.signals[l].data.withUnsafeBufferPointer { dp in
                        fg.signals[l].data.withUnsafeBufferPointer { gp in
                            for k in 0..<C { for i in 0..<nb { for j in 0..<dout { p[(k * dout + j) * nb + i] = dp[(k * nb + i) * dout + j] } } }
                            for i in 0..<nb { for j in 0..<dout { p[(C * dout + j) * nb + i] = gp[i * dout + j] } }
                        }
                    }
                    return p
                }
                // A dense block that is not factored: the batch's inputs transposed, in × nb, for
                // R's product with them (`rowsTimesBatch`).
                // 64-byte aligned rows of a whole number of 64-byte lines: unaligned, the kernel's
                // vector loads ran at 0.63× (a microbenchmark of W5's shape).
                let inputsT: [BatchTranspose<S>?] = layers.map { layer in
                    guard !generic && !factored[layer.index] else { return nil }
                    let din = layer.inputs
                    let t = BatchTranspose<S>(rows: din, columns: nb)
                    fb.inputs[layer.index].data.withUnsafeBufferPointer { ap in
                        for i in 0..<nb { for k in 0..<din { t.pointer[k * t.stride + i] = ap[i * din + k] } }
                    }
                    return t
                }
                // A factored block: the Gram of the queries' and the batch's inputs (m × nb), and with
                // coupled decay the queries' inputs through λ ⊙ W (m × out), for R_s·(λ w_s) = u·((λ⊙W) x_q).
                // (Explicit allocations, freed at the end of the step: see the scratch note below.)
                let inputGram: [UnsafeMutablePointer<S>?] = layers.map { layer in
                    guard factored[layer.index] else { return nil }
                    var gram = DenseMatrix<S>(rows: m, cols: nb)
                    DenseMatrix.gemm(nodes[0].features.inputs[layer.index], rows: 0..<m, fb.inputs[layer.index], rows: 0..<nb, into: &gram)
                    let p = UnsafeMutablePointer<S>.allocate(capacity: m * nb)
                    gram.data.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: m * nb) }
                    return p
                }
                let decayedInputs: [UnsafeMutablePointer<S>?] = layers.map { layer in
                    guard factored[layer.index] && !decay.isEmpty else { return nil }
                    let dW = DenseMatrix<S>(rows: layer.outputs, cols: layer.inputs,
                                            data: Array(decay[layer.weightOffset..<(layer.weightOffset + layer.weightCount)]))
                    var wx = DenseMatrix<S>(rows: m, cols: layer.outputs)
                    DenseMatrix.gemm(nodes[0].features.inputs[layer.index], rows: 0..<m, dW, rows: 0..<layer.outputs, into: &wx)
                    let p = UnsafeMutablePointer<S>.allocate(capacity: m * layer.outputs)
                    wx.data.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: m * layer.outputs) }
                    return p
                }
                works.append(BackwardStep(s: s, nodes: nodes, ownNodes: ownNodes, ownSources: ownSources, own: own, pending: pending,
                                          batch: batch, fb: fb, g: g, rsum: rsum, bs: bs, weight: weight, vNew: vNew, vOld: vOld,
                                          decay: decay, dS: dS, stacked: stacked, signalsT: signalsT, inputsT: inputsT, inputGram: inputGram,
                                          decayedInputs: decayedInputs, kFull: mode == .full ? kFullSlots[slot] : nil,
                                          kTrace: mode == .full ? nil : kTraceSlots[slot], nBlock: nBlockSlots[slot], rv: rvSlots[slot]))
                }
                let stepsOfGroup = works
                    Parallel.forEach(chunks.count) { ci in
                        let rr = chunks[ci]
                        let tmp = tmpScratch[ci], old = oldScratch[ci], tmpB = tmpBScratch[ci], oldB = oldBScratch[ci]
                        // Dense blocks: Y' = R[rows] A_bᵀ ((rows·out) × nb), then per query row and needed
                        // channel k, Σ_j (s_W Y'[j, i] + s_b R_b[j]) S_k[j, i] along the examples i.
                        let yT = yScratch[ci], coefficient = coefficientScratch[ci], zAcc = zScratch[ci]
                        for layer in layers {
                            let l = layer.index, din = layer.inputs, dout = layer.outputs, width = rr.count * dout
                            let fac = factored[l], cmp = compact[l]
                            let gather = gatherScratch[ci]
                            let sw = S(layer.weightScale), sb = S(layer.biasScale)
                            let zAll = generic ? zAllScratch[ci] : nil
                            for c in 0..<C {
                                let qr = (c * m + rr.lowerBound)..<(c * m + rr.upperBound)
                                // The chunk's scalars of this layer and channel, from `first` on.
                                let first = offset(layer, qr.lowerBound), chunkScalars = offset(layer, qr.upperBound) - first
                                for w in stepsOfGroup {
                                let kf = w.kFull, kt = w.kTrace, nbk = w.nBlock, rvk = w.rv, nb = w.nb
                                let ownRows = w.ownNodes, ownSourceList = w.ownSources, ownFeatures = w.own, nodes = w.nodes
                                let signalsT = w.signalsT, inputGram = w.inputGram, decayedInputs = w.decayedInputs
                                let stacked = w.stacked, vNew = w.vNew, vOld = w.vOld, decay = w.decay
                                w.dS.withUnsafeBufferPointer { dxp in
                                w.decay.withUnsafeBufferPointer { decp in
                                let dx: UnsafePointer<S>? = form.preconditionQuery ? nil : dxp.baseAddress!
                                // The query side's D (nil where it is 1: R's update then does not read it).
                                let queryScale: UnsafePointer<S>? = form.preconditionQuery && form.hasPreconditioner ? dxp.baseAddress! : nil
                                if form.nesterov {
                                    // R_{s+1}'s rows, for V_s.
                                    old.update(from: rW[l] + first, count: chunkScalars)
                                    if let b = rB[l] { oldB.update(from: b + qr.lowerBound * dout, count: width) }
                                }
                                // R_s = ρ R_{s+1} + η_s a_s Σ_j ω_j J_j: runs of queries on the shared nodes
                                // in one call each; a query with nodes of its own (exact quadrature) from its
                                // rows of `ownFeatures`.
                                var at = rr.lowerBound
                                while at < rr.upperBound {
                                    if let ownFeatures, ownRows[at] != nil {
                                        let sources = ownSourceList[at].map { (row: c * ownFeatures.count + $0.row, weight: $0.weight) }
                                        let row = c * m + at
                                        if fac {
                                            layer.accumulateFactoredJacobianRow(ownFeatures, block: l, sources: sources, decay: form.rho,
                                                                                weights: rW[l] + offset(layer, row), bias: rB[l].map { $0 + row * dout })
                                        } else if cmp {
                                            let K = ownFeatures.count
                                            layer.accumulateCompactJacobianRow(sources.map { (ownFeatures, $0.row, $0.row % K, $0.weight) }, block: l,
                                                                               support: supportFlat + compactStart[at], count: compactWidth[at],
                                                                               scale: queryScale, decay: form.rho, weights: rW[l] + offset(layer, row),
                                                                               bias: rB[l].map { $0 + row * dout }, scratch: gather)
                                        } else {
                                            layer.accumulateJacobianRow(ownFeatures, block: l, sources: sources, scale: queryScale,
                                                                        decay: form.rho, weights: rW[l] + offset(layer, row),
                                                                        bias: rB[l].map { $0 + row * dout })
                                        }
                                        at += 1
                                        continue
                                    }
                                    var end = at + 1
                                    while end < rr.upperBound && ownRows[end] == nil { end += 1 }
                                    let shared = (c * m + at)..<(c * m + end)
                                    if fac {
                                        layer.accumulateFactoredJacobians(nodes, block: l, rows: shared, decay: form.rho, weights: rW[l], bias: rB[l])
                                    } else if cmp {
                                        // (Nodes' feature rows: signal row c·m + r, input row r.)
                                        if !nodes.isEmpty {
                                            for row in shared {
                                                let r = row % m
                                                layer.accumulateCompactJacobianRow(nodes.map { ($0.features, row, r, $0.weight) }, block: l,
                                                                                   support: supportFlat + compactStart[r], count: compactWidth[r],
                                                                                   scale: queryScale, decay: form.rho, weights: rW[l] + offset(layer, row),
                                                                                   bias: rB[l].map { $0 + row * dout }, scratch: gather)
                                            }
                                        }
                                    } else {
                                        layer.accumulateJacobians(nodes, block: l, rows: shared, scale: queryScale, decay: form.rho,
                                                                  weights: rW[l], bias: rB[l])
                                    }
                                    at = end
                                }
                                // These rows of R_s, with RMSProp's D_s moved onto them (D is diagonal).
                                var src = UnsafePointer(rW[l] + first)
                                var srcB: UnsafePointer<S>? = rB[l].map { UnsafePointer($0 + qr.lowerBound * dout) }
                                if form.nesterov {
                                    for e in 0..<chunkScalars { tmp[e] = vNew * src[e] - vOld * old[e] }
                                    src = UnsafePointer(tmp)
                                    if let sB = srcB {
                                        for e in 0..<width { tmpB[e] = vNew * sB[e] - vOld * oldB[e] }
                                        srcB = UnsafePointer(tmpB)
                                    }
                                } else if let dx {
                                    // Row by row of the weight block (no integer division per scalar).
                                    if cmp {
                                        for r in rr {
                                            let n = compactWidth[r], idx = supportFlat + compactStart[r]
                                            for i in 0..<dout {
                                                let o = offset(layer, c * m + r) - first + i * n, d = dx + layer.weightOffset + i * din
                                                for k in 0..<n { tmp[o + k] = src[o + k] * d[Int(idx[k])] }
                                            }
                                        }
                                    } else {
                                        for j in 0..<width {
                                            let o = j * din, d = dx + layer.weightOffset + (j % dout) * din
                                            for k in 0..<din { tmp[o + k] = src[o + k] * d[k] }
                                        }
                                    }
                                    src = UnsafePointer(tmp)
                                    if let sB = srcB, let bo = layer.biasOffset {
                                        for kr in 0..<rr.count {
                                            for i in 0..<dout { tmpB[kr * dout + i] = sB[kr * dout + i] * dx[bo + i] }
                                        }
                                        srcB = UnsafePointer(tmpB)
                                    }
                                }
                                if let zAll {
                                    // Z = s_W · R[rows] · stackedᵀ: rows × nb·(C+1).
                                    let wide = nb * (C + 1)
                                    S.gemm(transposeA: false, transposeB: true, m: rr.count, n: wide, k: dout, alpha: sw,
                                           a: src, lda: dout, b: UnsafePointer(stacked), ldb: dout, beta: 0, c: zAll, ldc: wide)
                                    for i in 0..<nb {
                                        for (kr, r) in rr.enumerated() {
                                            let row = c * m + r, zr = kr * wide + i * (C + 1)
                                            nbk[row * nb + i] += Double(zAll[zr + C])
                                            if let kf {
                                                for kk in 0..<C { kf[(row * C + kk) * nb + i] += Double(zAll[zr + kk]) }
                                            } else if let kt {
                                                kt[r * nb + i] += Double(zAll[zr + c])
                                            }
                                        }
                                    }
                                } else {
                                    if cmp {
                                        // Each query row over its own nonzero inputs: R's compact rows meet
                                        // the batch's inputs at those indices (the same sums less zeros).
                                        let bt = w.inputsT[l]!
                                        for (kr, r) in rr.enumerated() {
                                            S.rowsTimesBatch(yT + kr * dout * nb, rows: src + (offset(layer, c * m + r) - first),
                                                             batchT: UnsafePointer(bt.pointer), ldb: bt.stride,
                                                             batchRows: supportFlat + compactStart[r], alpha: sw, m: dout, k: compactWidth[r], nb: nb)
                                        }
                                    } else if !fac {
                                        // Y' = s_W R[rows] A_bᵀ: (rows·out) × nb, by our own kernel on R where
                                        // it is (OpenBLAS would pack R again for every product).
                                        let bt = w.inputsT[l]!
                                        S.rowsTimesBatch(yT, rows: src, batchT: UnsafePointer(bt.pointer), ldb: bt.stride, alpha: sw, m: width, k: din, nb: nb)
                                    }
                                    let channels = mode == .full ? allChannels : channelPairs[c]
                                    let sT = signalsT[l]
                                    // Z_k[·] = Σ_j (s_W Y'[j, ·] (factored: s_W u_j (x_r·x_i)) + s_b R_b[j]) S_k[j, ·],
                                    // every row of the chunk in one call (row kr's Z at zAcc + kr·(C+1)·nb).
                                    let zs = (C + 1) * nb
                                    channels.withUnsafeBufferPointer { cp in
                                        S.signalContractionRows(zAcc, zStride: zs, channels: cp.baseAddress!, count: cp.count, rows: rr.count,
                                                                y: fac ? nil : UnsafePointer(yT), yStride: dout * nb,
                                                                u: fac ? src : nil, uStride: dout,
                                                                gram: fac ? UnsafePointer(inputGram[l]! + rr.lowerBound * nb) : nil, gramStride: nb,
                                                                sw: sw, bias: srcB, biasStride: dout, sb: sb, signals: UnsafePointer(sT),
                                                                dout: dout, nb: nb, scratch: coefficient)
                                    }
                                    for (kr, r) in rr.enumerated() {
                                        let row = c * m + r, z = zAcc + kr * zs
                                        S.addWidened(nbk + row * nb, UnsafePointer(z + C * nb), count: nb)
                                        if let kf {
                                            S.addWidened(kf + row * C * nb, UnsafePointer(z), count: C * nb)
                                        } else if let kt {
                                            S.addWidened(kt + r * nb, UnsafePointer(z + c * nb), count: nb)
                                        }
                                    }
                                }
                                // Coupled decay: R_s[row]·(Dx_s ⊙ λ w_s), this layer's share (factored:
                                // u·((λ⊙W) x_r)).
                                if !decay.isEmpty {
                                    let dec = decp.baseAddress!
                                    for (kr, r) in rr.enumerated() {
                                        var v = 0.0
                                        if fac {
                                            let wx = decayedInputs[l]! + r * dout
                                            var part: S = 0
                                            for i in 0..<dout { part += src[kr * dout + i] * wx[i] }
                                            v += Double(part)
                                        } else if cmp {
                                            let n = compactWidth[r], idx = supportFlat + compactStart[r]
                                            for i in 0..<dout {
                                                let o = src + (offset(layer, c * m + r) - first + i * n), w = dec + layer.weightOffset + i * din
                                                var part: S = 0
                                                for k in 0..<n { part += o[k] * w[Int(idx[k])] }
                                                v += Double(part)
                                            }
                                        } else {
                                            for i in 0..<dout {
                                                let o = src + (kr * dout + i) * din, w = dec + layer.weightOffset + i * din
                                                var part: S = 0
                                                for k in 0..<din { part += o[k] * w[k] }
                                                v += Double(part)
                                            }
                                        }
                                        if let srcB, let bo = layer.biasOffset {
                                            for i in 0..<dout { v += Double(srcB[kr * dout + i] * dec[bo + i]) }
                                        }
                                        rvk[c * m + r] += v
                                    }
                                }
                                } }
                                }
                            }
                        }
                    }

                for w in works {
                let s = w.s, st = form.steps[s], batch = w.batch, nb = w.nb, weight = w.weight, bs = w.bs, g = w.g, rsum = w.rsum
                for e in w.pending {
                    acc.jvpSum[e.q, e.c] += e.jvp
                    if let r = e.rwd { acc.rwd[e.q, e.c] += r }
                }
                let kfp = w.kFull, ktp = w.kTrace
                acc.kp.data.withUnsafeMutableBufferPointer { kpp in
                    // Each query row's entries of K^p are its own, and each entry takes at most one
                    // addition per batch position, in batch order: the rows in parts on every thread
                    // give the bits of one thread. (On one thread this scatter into the n_q·C × n·C
                    // matrix took 13 % of fmnist-adamw's backward pass, perf, session 21.)
                    let width = n * blocks, kp = kpp.baseAddress!
                    // The batch positions by example (ties in batch order): each row of K^p is
                    // written left to right.
                    let order = batch.indices.sorted { (batch[$0], $0) < (batch[$1], $1) }
                    let parts = Parallel.ranges(m, minimum: 16)
                    Parallel.forEach(parts.count) { part in
                        for r in parts[part] {
                            let q = rows.lowerBound + r
                            if mode == .full, let kf = kfp {
                                for c in 0..<C {
                                    let out = kp + (q * blocks + c) * width
                                    let row = kf + (c * m + r) * C * nb
                                    for i in order {
                                        let to = out + batch[i] * blocks
                                        for kk in 0..<C { to[kk] += weight * row[kk * nb + i] }
                                    }
                                }
                            } else if let kt = ktp {
                                let out = kp + q * width, from = kt + r * nb
                                for i in order { out[batch[i]] += weight * from[i] }
                            }
                        }
                    }
                }
                for r in 0..<m {
                    let q = rows.lowerBound + r
                    let diag = (!exactOnly && q >= nT) ? q - nT : -1
                    let attr = attrIndex[q]
                    for c in 0..<C {
                        var rowSum = 0.0
                        for (i, ex) in batch.enumerated() {
                            let v = weight * w.nBlock[(c * m + r) * nb + i]
                            rowSum += v
                            if ex == diag { acc.nDiag[ex, c] += v }
                            if let attr { acc.nAttr[attr][c, ex] += v }
                        }
                        acc.nSum[q, c] += rowSum
                        // Coupled decay: R_wd −= b R_s (Dx_s ⊙ λ w_s).
                        acc.rwd[q, c] -= bs * w.rv[c * m + r]
                    }
                }
                // Scalar weights of the fixed coefficients (once, not per query block).
                if blockIndex == 0 {
                    // c_{i,s} = b_s (s_s/|B_s|) Σ_{t≥s} η_t a_t ρ^{t−s}; Nesterov: (s_s/|B_s|)(μ b_s Σ + η_s).
                    let cs = form.nesterov ? st.scale * (form.rho * form.b(s) * rsum + st.learningRate) : weight * rsum
                    for (i, ex) in batch.enumerated() {
                        acc.cSum[ex] += cs
                        for c in 0..<C { acc.gSum[ex, c] += cs * g[i, c] }
                    }
                }
                // Work in (query row, step) pairs: the last block is often smaller than the others.
                done += m
                }
                // Once per group (its steps' work ends together: one report per step would show the
                // group's time as its first step's, an ETA several times too long).
                progress(done, T * computed.count)
            }
        }
    }

    /// How many steps `accumulatePreconditioned` takes through one pass over R: R's rows are read
    /// and written once per group instead of once per step (R is the whole memory traffic of the
    /// backward pass, and on two threads its streaming was a quarter to a third of the time of W5
    /// and W6). Up to 4, while the extra steps' query features stay within 256 MB.
    static func backwardStepGroup(model: any Network, bytes: Int, queries: Int, nodes: Int) -> Int {
        if let forced = stepGroupOverride { return max(1, forced) }
        return max(1, min(4, 1 + (256 << 20) / max(1, backwardStepFeatureBytes(model: model, bytes: bytes, queries: queries, nodes: nodes))))
    }

    /// Tests: the step group every backward pass takes instead of its own (nil: its own). Any
    /// value gives the same bits (DeterminismTests), so analyses of other tests running meanwhile
    /// are not disturbed.
    /// Task-local (see `compactInputOverride`).
    @TaskLocal static var stepGroupOverride: Int? = nil
    /// Tests: the query rows of every block of R instead of what `querySideBlockBytes` allows
    /// (nil: that). Each query row's sums do not depend on its block (DeterminismTests).
    /// Task-local (see `compactInputOverride`).
    @TaskLocal static var queryBlockRowsOverride: Int? = nil

    /// The bytes one step's query features hold in `accumulatePreconditioned`, about: twice each
    /// node's inputs and C signal rows of every block, for `queries` rows (the features keep more
    /// than those: W5's peak grew by 77 MB a step held, for 44 MB of inputs and signals).
    static func backwardStepFeatureBytes(model: any Network, bytes: Int, queries: Int, nodes: Int) -> Int {
        let widths = model.featureBlocks.reduce(0) { $0 + $1.inputs + model.outputDim * $1.outputs }
        return 2 * bytes * queries * max(nodes, 1) * widths
    }
}

/// One step of a group in `accumulatePreconditioned`: its query features at the nodes, its batch
/// side, and its accumulators, held until the group's products are summed up.
struct BackwardStep<S: BLASScalar> {
    let s: Int
    let nodes: [(features: TangentFeatures<S>, weight: Double)]
    let ownNodes: [Range<Int>?]
    let ownSources: [[(row: Int, weight: Double)]]
    let own: TangentFeatures<S>?
    /// The step's JVP terms (query, channel, Σ J̄Δw, R_wd), added to the accumulators in order.
    let pending: [(q: Int, c: Int, jvp: Double, rwd: Double?)]
    let batch: [Int]
    var nb: Int { batch.count }
    let fb: TangentFeatures<S>
    let g: Matrix
    let rsum: Double, bs: Double, weight: Double
    let vNew: S, vOld: S
    let decay: [S], dS: [S]
    let stacked: UnsafeMutablePointer<S>
    let signalsT: [UnsafeMutablePointer<S>]
    let inputsT: [BatchTranspose<S>?]
    let inputGram: [UnsafeMutablePointer<S>?]
    let decayedInputs: [UnsafeMutablePointer<S>?]
    let kFull: UnsafeMutablePointer<Double>?, kTrace: UnsafeMutablePointer<Double>?
    let nBlock: UnsafeMutablePointer<Double>, rv: UnsafeMutablePointer<Double>

    /// Frees the step's own buffers (not the accumulators, which belong to the query block).
    func release() {
        stacked.deallocate()
        signalsT.forEach { $0.deallocate() }
        inputsT.forEach { $0?.deallocate() }
        inputGram.forEach { $0?.deallocate() }
        decayedInputs.forEach { $0?.deallocate() }
    }
}

/// A batch's inputs transposed (`rows` = in × `columns` = n_b) for `rowsTimesBatch`: 64-byte
/// aligned, each row `stride` scalars, a whole number of 64-byte lines.
struct BatchTranspose<S: BLASScalar> {
    let raw: UnsafeMutableRawPointer
    let pointer: UnsafeMutablePointer<S>
    let stride: Int

    init(rows: Int, columns: Int) {
        let perLine = 64 / MemoryLayout<S>.stride
        stride = max(perLine, (columns + perLine - 1) / perLine * perLine)
        raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * stride) * MemoryLayout<S>.stride, alignment: 64)
        pointer = raw.bindMemory(to: S.self, capacity: max(1, rows * stride))
        pointer.initialize(repeating: 0, count: max(1, rows * stride))
    }

    func deallocate() { raw.deallocate() }
}
