import PKNetworks
import PKNumerics
import PKOptim

/// `ntkinf-km` (ntk-family contract §2; Docs/path-kernel.md §3): the kernel machine of the
/// analytic, infinite-width NTK `Θ` of the run's MLP spec (Docs/ntk-family.md), trained like the
/// network in function space. From the network's own outputs at `w_0` at every query, each
/// recorded step `t` (batch `B_t`, rate `η_t`) applies
///
///     f(x) ← f(x) − (η_t/|B_t|) Σ_{i ∈ B_t} Θ(x, x_i) g_i,     g_i = ∂ℓ(f(x_i), y_i)/∂f
///
/// with the run's loss (`Θ` is one number per pair: each output moves with its own `g`). This is
/// what `ntk0-km` does with the empirical kernel at `w_0`, with the kernel of infinite width: the
/// difference between the two is the finite-width part of the run's linearization. For full-batch
/// gradient descent at a constant rate on MSE it equals §2's closed form
/// `f₀(x) + Θ(x, X) G_T (Y − F₀)` at `t = T` (a test). Skipped, with a note, for other networks
/// and for updates that are not plain (S)GD steps on the loss (momentum, Adam, RMSProp, weight
/// decay, clipping, parameter groups), and on the quadrature route (tanh, sigmoid, softplus) when
/// `Θ(queries, X)` over the hidden layers exceeds `quadraturePairLimit` pairs.
struct NTKInfKM: KernelMachineRule {
    let name = "ntkinf-km"
    let needsFullScope = true
    let needsKernelForm = false

    /// Most query × training pairs, summed over the hidden layers, on the quadrature route (about
    /// `M² = 9,409` activation products each): 2·10⁸ products, a fraction of a second in a release
    /// build (sine-tanh's 128 × 64 × 2 layers fit; moons-mlp's 400 × 200 × 2 do not: 200,000
    /// pairs took minutes in a debug build).
    static let quadraturePairLimit = 20_000

    func description(in context: KernelMachineContext) -> String {
        "the analytic (infinite-width) NTK's kernel machine, trained like the network"
    }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        if let why = Self.inapplicable(context) { return .skipped(note: "\(name) skipped: \(why)") }
        do {
            let run = context.run
            let theta = try InfiniteWidthKernel(spec: context.model.spec).kernels(context.xq, run.trainX).ntk
            context.analyticNTK.kernel = theta
            return .prediction(Self.train(kernel: theta, initial: context.f0, heldOut: context.heldOut, run: run))
        } catch {
            return .skipped(note: "\(name) skipped: \(error)")
        }
    }

    /// Why the machine does not apply to this run, nil when it does.
    static func inapplicable(_ context: KernelMachineContext) -> String? {
        inapplicable(spec: context.model.spec, optimizer: context.run.optimizer, queries: context.queries, train: context.train)
    }

    /// Why the machine does not apply to a run of `spec` and `o` with these queries and training
    /// points, nil when it does (also the cost model's test).
    static func inapplicable(spec: ModelSpec, optimizer o: OptimizerSpec, queries: Int, train: Int) -> String? {
        guard spec.kind == "mlp" else { return "the analytic NTK covers MLPs (model.kind \"mlp\")" }
        var why: [String] = []
        if ![.gd, .sgd].contains(o.kind) { why.append(o.kind.rawValue) }
        if o.momentum != 0 { why.append("momentum") }
        if o.weightDecay != 0 { why.append("weight decay") }
        if o.clipNorm != nil { why.append("gradient clipping") }
        if !o.groups.isEmpty { why.append("parameter groups") }
        if !why.isEmpty {
            return "its function-space update is plain (S)GD's; this run uses \(why.joined(separator: ", "))"
        }
        let hidden = spec.layers.count - 2
        if !GaussianExpectation.hasClosedForm(spec.activation) && queries * train * hidden > quadraturePairLimit {
            return "Θ(queries, X) of \(spec.activation.rawValue) needs the quadrature on \(queries) × \(train) pairs × \(hidden) hidden layers, more than \(quadraturePairLimit) (`pathkernel predict-linear --kernel analytic` computes it on its own)"
        }
        return nil
    }

    /// The machine's outputs at every query after the run's recorded steps: `kernel` is
    /// `Θ(queries, X)` (nQ × n), `initial` the outputs at `w_0` (nQ × C), training point `i` is
    /// query row `heldOut + i`.
    ///
    /// Per step one GEMM of `Θ(queries, B_t)` with the batch's `g`: the kernel's batch columns are
    /// gathered by rows on every thread into a buffer kept across steps, and not at all when the
    /// batch is every training point in order (full-batch gradient descent: `Θ` itself). The
    /// gather was a scalar loop through the matrix's subscript until session 26: 3.5 s of
    /// beyond-kernels' 3.7-s machines phase (1,000 full-batch steps, 1,200 × 800 kernel values each).
    static func train(kernel: Matrix, initial: Matrix, heldOut: Int, run: TraceRun) -> Matrix {
        var f = initial
        let nQ = kernel.rows, n = kernel.cols
        var kb = Matrix(rows: 0, cols: 0)
        for record in run.stepRecords.prefix(run.steps) {
            let batch = record.batch.map(Int.init)
            let (_, g) = run.loss.evaluate(outputs: f.rows(at: batch.map { heldOut + $0 }), targets: run.trainY.rows(at: batch))
            let whole = batch.count == n && batch.elementsEqual(0..<n)
            if !whole {
                let nb = batch.count
                if kb.rows != nQ || kb.cols != nb { kb = Matrix(rows: nQ, cols: nb) }
                kernel.data.withUnsafeBufferPointer { source in
                    kb.data.withUnsafeMutableBufferPointer { target in
                        guard let from = source.baseAddress, let to = target.baseAddress else { return }
                        let parts = Parallel.ranges(nQ, minimum: max(1, 16_384 / max(nb, 1)))
                        Parallel.forEach(parts.count) { part in
                            for q in parts[part] {
                                let row = from + q * n, out = to + q * nb
                                for j in 0..<nb { out[j] = row[batch[j]] }
                            }
                        }
                    }
                }
            }
            let step = Matrix.product(whole ? kernel : kb, g)
            let scale = record.learningRate / Double(batch.count)
            for k in f.data.indices { f.data[k] -= scale * step.data[k] }
        }
        return f
    }
}
