import Foundation
import PKNetworks
import PKNumerics
import PKOptim

/// The NTT optimization (ntk-family contract §7): start from `s = w_T` and the magnitude mask of
/// `w_T`, take Adam steps on `L(s)` over shuffled mini-batches, and every `k_M` iterations, except
/// within the last `k_M`, recompute the mask from the current raw `|s|` (pruned entries keep their
/// values, so they can come back).
///
/// Adam follows Docs/optimizers.md (`Transform.make(kind: "adam")`, torch.optim.Adam's
/// arithmetic). The update is masked as the gradient is: a pruned entry does not move even when
/// Adam's first moment from before a mask update is non-zero (its moments are kept, not reset).
public struct NeuralTangentTransfer: Sendable {
    public struct Settings: Sendable, Equatable {
        /// `ρ ∈ (0, 1]`.
        public var density: Double
        /// `λ_K` (authors' MLP demo: 1e-3).
        public var lambdaKernel = 1e-3
        /// `λ₂` (authors: 1e-4).
        public var lambdaL2 = 1e-4
        /// `k_M`: iterations between mask updates.
        public var maskEvery = 100
        /// Passes over the inputs.
        public var epochs = 20
        /// Mini-batch size (authors: 64); each batch is split into halves for the kernel term.
        public var batchSize = 64
        /// Adam's learning rate (authors: 5e-4), β = (0.9, 0.999), ε = 1e-8.
        public var learningRate = 5e-4
        public var seed: UInt64 = 0

        public init(density: Double) { self.density = density }

        /// A one-line error for a bad value, or nil.
        public func problem() -> String? {
            if !(density > 0 && density <= 1) { return "density must be in (0, 1], got \(density)" }
            if !(lambdaKernel >= 0 && lambdaKernel.isFinite) { return "--lambda-kernel must be finite and ≥ 0, got \(lambdaKernel)" }
            if !(lambdaL2 >= 0 && lambdaL2.isFinite) { return "--lambda-l2 must be finite and ≥ 0, got \(lambdaL2)" }
            if maskEvery < 1 { return "--mask-every must be ≥ 1, got \(maskEvery)" }
            if epochs < 0 { return "--ntt-epochs must be ≥ 0, got \(epochs)" }
            if batchSize < 2 { return "the NTT batch size must be ≥ 2 (the kernel term needs two halves), got \(batchSize)" }
            if !(learningRate > 0 && learningRate.isFinite) { return "the NTT learning rate must be finite and > 0, got \(learningRate)" }
            return nil
        }
    }

    /// One point of the history: after `iteration` Adam steps, the terms on the held-out batch,
    /// and the mask changes per weight tensor when a mask update happened there.
    public struct Record: Sendable, Equatable {
        public var iteration: Int
        public var heldOut: NTTObjective.Terms
        public var maskChanges: [Int]?
    }

    public struct Result: Sendable {
        /// The raw student `s` (pruned entries hold their last values) and its mask.
        public var student: [Double]
        public var mask: [Bool]
        /// Iteration 0 (the magnitude-pruned teacher), every mask update, and the end.
        public var history: [Record]
        public var iterations: Int
    }

    /// Adam on `L` with a fixed mask for one step: the new `s` and state. Gradient and update are
    /// both masked.
    public static func adamStep(_ objective: NTTObjective, student s: [Double], mask: [Bool], batch x: Matrix,
                                optimizer: Chain, state: OptimizerState, learningRate: Double)
        -> (student: [Double], state: OptimizerState, terms: NTTObjective.Terms) {
        let (terms, g) = objective.termsAndGradient(student: s, mask: mask, batch: x)
        let r = optimizer.update(g, state: state, parameters: s, learningRate: learningRate)
        var next = s
        for k in next.indices where mask[k] { next[k] += r.updates[k] }
        return (next, r.state, terms)
    }

    /// Runs NTT from teacher `w_T` on the rows of `inputs` (labels unused), with the terms
    /// measured on `heldOut` (≥ 2 rows). `progress(done, total)` is called after each iteration.
    public static func run(network: MLP, teacher: [Double], inputs: Matrix, heldOut: Matrix, settings: Settings,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        // Single-threaded BLAS, the project's policy: NTT's GEMMs (a batch of 64 against layers of
        // 784 × 300) gain no wall time from OpenBLAS's threads, whose waiting doubles the CPU time
        // (ntt-fmnist, 3 epochs at ρ = 0.1, quiet machine: 7.0 s wall, 14.6 CPU s with 2 BLAS
        // threads; 7.6 s, 7.6 CPU s with one).
        return try BLASThreads.with(1) {
            if let p = settings.problem() { throw AnalysisError(p) }
            guard inputs.rows >= 2, heldOut.rows >= 2 else {
                throw AnalysisError("NTT needs at least 2 training inputs and 2 held-out inputs")
            }
            let objective = NTTObjective(network: network, teacher: teacher, lambdaKernel: settings.lambdaKernel,
                                         lambdaL2: settings.lambdaL2, density: settings.density)
            let optimizer = try Transform.make(kind: "adam")
            var state = optimizer.initialState(parameterCount: network.parameterCount)
            var s = teacher
            var mask = MagnitudeMask.make(network, weights: teacher, density: settings.density)
            let held = objective.teacherKernel(heldOut)
            func heldOutTerms() -> NTTObjective.Terms {
                objective.evaluate(student: s, mask: mask, batch: heldOut, gradient: false, teacherValues: held).terms
            }
            var history = [Record(iteration: 0, heldOut: heldOutTerms(), maskChanges: nil)]
            let n = inputs.rows
            let batch = min(settings.batchSize, n)
            let perEpoch = n / batch   // full batches only: every batch has two halves of the same size
            let total = perEpoch * settings.epochs
            var rng = PortableRandom.stream(seed: settings.seed, label: 0x4E5454)   // "NTT"
            var t = 0
            for _ in 0..<settings.epochs {
                let order = rng.permutation(n)
                for b in 0..<perEpoch {
                    let x = inputs.rows(at: order[(b * batch)..<((b + 1) * batch)])
                    let step = adamStep(objective, student: s, mask: mask, batch: x, optimizer: optimizer,
                                        state: state, learningRate: settings.learningRate)
                    guard step.terms.loss.isFinite, step.student.allSatisfy(\.isFinite) else {
                        throw AnalysisError("NTT diverged at iteration \(t + 1) (loss \(step.terms.loss)): lower the learning rate or λ_K")
                    }
                    s = step.student
                    state = step.state
                    t += 1
                    if t % settings.maskEvery == 0 && t <= total - settings.maskEvery {
                        let next = MagnitudeMask.make(network, weights: s, density: settings.density)
                        let changes = MagnitudeMask.changes(network, from: mask, to: next)
                        mask = next
                        history.append(Record(iteration: t, heldOut: heldOutTerms(), maskChanges: changes))
                    }
                    progress?(t, total)
                }
            }
            if history.last?.iteration != t { history.append(Record(iteration: t, heldOut: heldOutTerms(), maskChanges: nil)) }
            return Result(student: s, mask: mask, history: history, iterations: t)
        }
    }
}
