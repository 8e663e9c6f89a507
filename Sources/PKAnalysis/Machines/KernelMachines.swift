import PKNetworks
import PKNumerics

/// A kernel machine of the report (path-kernel math §3): its name, its description, when it
/// applies, and its predictions at every query from what the analysis accumulated.
///
/// Adding one is one file under `Machines/` with a type conforming to this protocol, plus one
/// line in `KernelMachines.all` (Docs/path-kernel.md, "Checklist: adding a kernel machine").
protocol KernelMachineRule: Sendable {
    /// The name in the report and the JSON (`kernel_machines[].name`).
    var name: String { get }
    /// The report's description (it may depend on the route, as `exact`'s does).
    func description(in context: KernelMachineContext) -> String
    /// Needs the training points as queries (`--scope full`): K^p(X, X), N(x_i, i), f(X).
    var needsFullScope: Bool { get }
    /// Needs the kernel form (K^p, N): not computed nor reported for runs analyzed by the JVP route only.
    var needsKernelForm: Bool { get }
    /// The machine's predictions at every query (rows as in `context.xq`), or why it is skipped.
    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome
}

/// What a kernel machine gives.
enum KernelMachineOutcome {
    /// Predictions, nQ × C.
    case prediction(Matrix)
    /// A ridge machine's fit (λ and the negative spectral mass go to the report) and predictions.
    case ridge(PathAnalyzer.RidgeFit, prediction: Matrix)
    /// Not computed: the note says why; the report lists the machine without figures.
    case skipped(note: String)
}

/// Everything a kernel machine may read: the run, the settings, the weights at both ends, the
/// network's outputs and the accumulators of the analysis (see `PathAnalyzer`'s doc). Matrices are
/// copy-on-write: the context shares their storage with the analyzer.
struct KernelMachineContext {
    let run: TraceRun
    let model: any Network
    let settings: AnalysisSettings
    /// Outputs C, training points n, held-out queries nT, queries nQ (nT held-out, then, scope
    /// full, every training point).
    let outputs: Int, train: Int, heldOut: Int, queries: Int
    /// `full` (C×C blocks, `blocks` = C) or `trace` (`blocks` = 1).
    let mode: KernelMode
    let blocks: Int
    /// The run has a kernel form (K^p and N are accumulated), else the JVP route only.
    let kernelForm: Bool
    /// The query inputs, nQ × d.
    let xq: Matrix
    /// Weights at step 0, at step T, and of the linearized network trained like the network (ntk0-km).
    let w0: [Double], wT: [Double], wLin: [Double]
    /// Network outputs at the queries at both ends and their difference (nQ × C).
    let f0: Matrix, fT: Matrix, change: Matrix
    /// The path kernel (rows: queries × blocks, columns: n × blocks).
    let kp: Matrix
    /// Row sums `Σ_i N(x, i)` (nQ × C), the diagonal `N(x_i, i)` (n × C, scope full).
    let nSum: Matrix, nDiag: Matrix
    /// The weight-decay term R_wd and the JVP sum `Σ_t J̄_t Δw_t` (nQ × C).
    let rwd: Matrix, jvpSum: Matrix
    /// `Σ_t c_{i,t}` (n) and `Σ_t c_{i,t} g_{i,t}` (n × C).
    let cSum: [Double], gSum: Matrix
    /// Where `ntkinf-km` leaves the analytic NTK `Θ(queries, X)` it computed (nQ × n), for the
    /// over-parameterization diagnostics to read instead of computing it again.
    var analyticNTK = AnalyticKernelBox()

    /// `f_T(X) − f_0(X)` on the training queries (rows nT..<nQ): the ridge machines' target.
    var trainingChange: Matrix { change.rows(at: Array(heldOut..<queries)) }
}

/// A slot for a kernel computed by one machine (`ntkinf-km`) and read after the machines, which
/// run side by side: no machine reads it.
final class AnalyticKernelBox: @unchecked Sendable {
    var kernel: Matrix?
    init() {}
}

enum KernelMachines {
    /// Every kernel machine, in the report's order.
    static let all: [any KernelMachineRule] = [
        ExactMachine(),
        PathKM(),
        PathKMSelf(),
        PathKRR(),
        NTK0Lin(),
        NTK0KM(),
        NTKInfKM(),
        NTKTKRR(),
    ]

    /// The machines that apply to an analysis, in the report's order.
    static func applicable(fullScope: Bool, kernelForm: Bool) -> [any KernelMachineRule] {
        all.filter { (fullScope || !$0.needsFullScope) && (kernelForm || !$0.needsKernelForm) }
    }

    /// A ridge machine whose training system could not be solved.
    static func ridgeSkippedNote(_ name: String, _ context: KernelMachineContext) -> String {
        "\(name) skipped: its symmetrized kernel on the \(context.train * context.blocks) training rows is not positive definite with the stated ridge (systems above \(PathAnalyzer.eigenRidgeLimit) rows are solved by Cholesky, not on their PSD part)"
    }
}
