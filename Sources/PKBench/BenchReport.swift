import Foundation
import PKTraining

/// What `pathkernel bench` prints: a table, or JSON with keys `W1`, `W2`, `W3`, `W4`, `W5`, `W6`, `W7-cntk`, `W7-mlp`, `recording`, `layer-jacobians`, `plan`.
public struct BenchReport {
    public var w1: KernelBenchmark.Result?
    public var w2: PathBenchmark.W2?
    public var w3: PathBenchmark.W3?
    public var w4: CNNKernelBenchmark.Result?
    public var recording: RecordingBenchmark?
    public var layerJacobians: LayerJacobianBenchmark.Result?
    /// W7's CNTK part.
    public var cntk: CNTKBenchmark.Result?
    /// W7's MLP part.
    public var mlpKernel: MLPKernelBenchmark.Result?
    /// W5, W6.
    public var realistic: [RealisticBenchmark.Result] = []
    /// `plan`: the estimate and ETA against the real analysis, preset by preset.
    public var plan: PlanBenchmark.Result?

    public init() {}

    public func json() throws -> String {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        func object<T: Encodable>(_ v: T) throws -> Any { try JSONSerialization.jsonObject(with: enc.encode(v)) }
        var out: [String: Any] = [:]
        if let w1 { out["W1"] = try object(w1) }
        if let w2 { out["W2"] = try object(w2) }
        if let w3 { out["W3"] = try object(w3) }
        if let w4 { out["W4"] = try object(w4) }
        if let recording { out["recording"] = try object(recording) }
        if let layerJacobians { out["layer-jacobians"] = try object(layerJacobians) }
        if let cntk { out["W7-cntk"] = try object(cntk) }
        if let mlpKernel { out["W7-mlp"] = try object(mlpKernel) }
        for r in realistic { out[r.workload] = try object(r) }
        if let plan { out["plan"] = try object(plan) }
        return String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
    }

    public func text() -> String {
        var s = ""
        func f(_ x: Double, _ d: Int = 3) -> String { String(format: "%.\(d)f", x) }
        func mem(_ b: Int?) -> String { b.map { TraceSummary.bytes($0) } ?? "n/a" }
        func sci(_ x: Double?) -> String { x.map { String(format: "%.1e", $0) } ?? "n/a" }
        if let w1 {
            s += "W1  empirical NTK, \(w1.model) (\(w1.parameters) parameters), \(w1.queries) × \(w1.train), \(w1.threads) threads\n"
            s += "    precision   seconds   GFLOP/s   of GEMM   explicit J·Jᵀ   ratio    error vs explicit\n"
            for (name, p) in [("f64", w1.f64), ("f32", w1.f32)] {
                s += "    \(name)       \(String(format: "%8.4f", p.seconds))  \(String(format: "%8.1f", p.gflops))   \(String(format: "%5.0f", 100 * p.gemmFraction)) %   \(String(format: "%9.3f", p.referenceSeconds)) s   \(String(format: "%6.4f", p.referenceRatio))   \(sci(p.relativeErrorVsReference))\n"
            }
            s += "    machine GEMM (same run, \(w1.threads) threads): DGEMM \(f(w1.f64.gemmGflops, 1)) GFLOP/s, SGEMM \(f(w1.f32.gemmGflops, 1)) GFLOP/s; f32 vs f64 kernel: \(sci(w1.f32.relativeErrorVsF64))\n"
            s += "    \(w1.blas.summary)\n\n"
        }
        if let w2 {
            s += "W2  path analysis of a 100-step full-batch GD run (q = 4, 200 queries, scope exact)\n"
            s += "    training \(f(w2.trainingSeconds, 2)) s (with recording \(f(w2.recordingSeconds, 2)) s)\n"
            for (name, a) in [("f64", w2.f64), ("f32", w2.f32)] {
                s += "    \(name)  \(String(format: "%7.2f", a.seconds)) s  = \(f(a.ratioToTraining, 2)) × training   peak \(mem(a.peakMemoryBytes))   residual \(sci(a.residual))   kernel form \(sci(a.kernelFormMaxAbs))\n"
            }
            s += "\n"
        }
        if let w3 {
            s += "W3  W2 with 10 outputs and cross-entropy (float64)\n"
            s += "    training \(f(w3.trainingSeconds, 2)) s (with recording \(f(w3.recordingSeconds, 2)) s)\n"
            for (name, a) in [("trace", w3.trace), ("full", w3.full)] {
                s += "    --kernel \(name)  \(String(format: "%7.2f", a.seconds)) s  = \(f(a.ratioToTraining, 2)) × training   peak \(mem(a.peakMemoryBytes))   residual \(sci(a.residual))   kernel form \(sci(a.kernelFormMaxAbs))\n"
            }
            s += "\n"
        }
        if let w4 { s += w4.text() }
        if let recording { s += recording.text() }
        if let layerJacobians { s += layerJacobians.text() }
        if let cntk { s += cntk.text() }
        if let mlpKernel { s += mlpKernel.text() }
        for r in realistic { s += r.text() }
        if let plan { s += plan.text() }
        return s
    }
}
