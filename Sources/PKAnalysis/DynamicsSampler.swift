import PKNetworks
import PKNumerics

/// The training dynamics of the report (path-kernel math §7, "Dynamics"): on `m = min(n, 100)`
/// evenly spaced training points, the tangent kernel Θ_t at about 40 sampled steps (every
/// `max(1, ⌊T/40⌋)`-th, and T), its distance from Θ_0, its alignment with the targets, the
/// weights' travel, and, when the route sums K^p forwards, path-km's error against the network
/// at w_t from the sums so far. None in scope exact.
struct DynamicsSampler {
    let context: AnalysisContext
    /// The dynamics subset (training indices), its inputs and its targets' Gram YYᵀ.
    let indices: [Int]
    let x: Matrix
    let targetGram: Matrix
    /// Steps between samples.
    let every: Int
    let w0: [Double]
    /// The route has K^p during the forward pass: path-km's error is measured.
    let pathKM: Bool
    private var theta0: Matrix? = nil
    private(set) var points: [AnalysisResult.DynamicsPoint] = []
    /// Per point, path-km's squared error and the squared change summed over this process's
    /// fidelity rows (a shard's share; the merge adds the shards' and takes the root of the
    /// ratio); nil where the error is not measured.
    private(set) var pathKmSums: [[Double]?] = []

    init(context: AnalysisContext, w0: [Double], pathKM: Bool) {
        self.context = context
        let run = context.run, n = context.train
        indices = PathAnalyzer.evenlySpaced(n, count: min(n, 100))
        x = run.trainX.rows(at: indices)
        targetGram = PathAnalyzer.targetGram(run.trainY.rows(at: indices), task: run.info.task, outputs: context.outputs)
        every = max(1, context.steps / 40)
        self.w0 = w0
        self.pathKM = pathKM
    }

    /// Samples at the segment's start when the segment holds a sampled step (at checkpoint
    /// resolution a segment spans several).
    mutating func sample(segment seg: WeightPath.Segment, _ acc: KernelAccumulators) {
        let t = seg.step
        if (t..<(t + seg.span)).contains(where: { $0 % every == 0 }) { sample(step: t, w: seg.start, acc) }
    }

    /// Samples at `w` (the weights at `step`), with the accumulators summed over steps 0..<step.
    mutating func sample(step: Int, w: [Double], _ acc: KernelAccumulators) {
        guard !context.exactOnly else { return }
        let model = context.model, C = context.outputs
        let f = model.features(w, x)
        let theta = TangentFeatures.kernel(f, f, mode: .trace)
        if theta0 == nil { theta0 = theta }
        let dist = 1 - PathAnalyzer.cosine(theta0!, theta)
        let align = PathAnalyzer.cosine(theta, targetGram)
        let travel = Vec.norm(zip(w, w0).map { $0 - $1 }) / max(Vec.norm(w0), .leastNormalMagnitude)
        var pkm: Double? = nil
        var sums: [Double]? = nil
        if step > 0 && pathKM {
            let a = PathAnalyzer.fixedCoefficients(cSum: acc.cSum, gSum: acc.gSum)
            var num = 0.0, den = 0.0
            for q in context.fidelityRows where context.rows.contains(q) {
                let pred = PathAnalyzer.kernelTimes(acc.kp, row: q, coefficients: a, blocks: context.blocks, outputs: C)
                for c in 0..<C {
                    let ft = acc.jvpSum[q, c]   // f_t − f_0 up to quadrature
                    num += (pred[c] - ft) * (pred[c] - ft)
                    den += ft * ft
                }
            }
            pkm = den > 0 ? (num / den).squareRoot() : nil
            sums = [num, den]
        }
        points.append(.init(step: step, kernelDistance: dist, alignment: align, weightTravel: travel, pathKmError: pkm))
        pathKmSums.append(sums)
    }
}
