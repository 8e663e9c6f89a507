import PKTrace

extension WeightPath {
    /// The weights `w_k` of a recorded run at step `k`: the stored checkpoint when there is one,
    /// else replayed from step 0 through the recorded steps (the step check's replay, which
    /// continues from every stored checkpoint on the way, so the result is the last checkpoint
    /// before `k` plus the recorded updates after it). `replayed` says which.
    ///
    /// Throws an `AnalysisError` naming the usable range when `k` is outside `0…run.steps`, and
    /// when `k` lies between checkpoints of a run whose steps cannot be replayed (a stateful
    /// optimizer with sparse checkpoints and no stored state), naming the stored checkpoints.
    public static func weights(atStep k: Int, run: TraceRun, reader: TraceReader) throws -> (weights: [Double], replayed: Bool) {
        guard (0...run.steps).contains(k) else {
            throw AnalysisError("\(run.path): step \(k) is out of range: the trace's usable steps are 0…\(run.steps) (checkpoints at \(describe(run.checkpoints)))")
        }
        if run.checkpoints.contains(k) { return (try reader.checkpoint(step: k), false) }
        var path = try WeightPath(run: run, reader: reader)
        guard !path.checkpointResolution else {
            throw AnalysisError("\(run.path): step \(k) is not a stored checkpoint, and the steps between checkpoints cannot be replayed (the optimizer keeps state and the trace stores none between checkpoints); choose one of the checkpoints at \(describe(run.checkpoints))")
        }
        while path.t < k {
            guard try path.next() != nil else { break }
        }
        guard path.t == k else {
            throw AnalysisError("\(run.path): the replay stopped at step \(path.t) before step \(k)")
        }
        return (path.current, true)
    }

    /// `0, 1, 2` or `0, 50, …, 400` for a long list.
    static func describe(_ steps: [Int]) -> String {
        steps.count <= 6 ? steps.map(String.init).joined(separator: ", ")
            : (steps.prefix(3).map(String.init) + ["…"] + steps.suffix(2).map(String.init)).joined(separator: ", ")
    }
}
