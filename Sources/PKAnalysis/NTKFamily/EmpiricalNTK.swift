import Foundation
import PKNetworks
import PKNumerics
import PKTrace

/// The empirical NTK of a recorded run at one step, as a product (`pathkernel ntk`;
/// ntk-family contract §0, Docs/ntk-family.md "The empirical NTK at a checkpoint").
///
///     Θ̂_w(x, x') = J(x; w) J(x'; w)ᵀ      a C×C block per pair of examples
///
/// `full` keeps every block: `(nC) × (nC)`, row `r·C + c`, column `r'·C + c'` (the layout of
/// `Network.jacobians`). `trace` keeps each block's trace `Σ_c Θ̂_cc(x, x')`: `n × n` (the
/// analyzer's `--kernel trace`). Sums over outputs are never averaged. The kernel comes from the
/// network's own tangent features (`Network.features`, `TangentFeatures.kernel`): the same code
/// as the analyzer's NTK machines, whose oracle is the explicit Jacobian product.
public struct EmpiricalNTK: Sendable {
    /// Which examples of the trace are the kernel's rows (and columns).
    public enum QuerySet: String, CaseIterable, Sendable {
        /// The training examples.
        case train
        /// The held-out examples.
        case test
        /// The training examples, then the held-out ones.
        case both
    }

    /// The trace file.
    public let path: String
    /// The network in one line (`MLP 3-8-8-2 tanh`).
    public let model: String
    /// The step `k` of the weights `w_k`.
    public let step: Int
    /// True when `w_k` was replayed from an earlier checkpoint (not stored).
    public let replayed: Bool
    public let queries: QuerySet
    /// Examples `n` (rows of the query set) and outputs `C`.
    public let examples: Int, outputs: Int
    public let mode: KernelMode
    /// `(nC) × (nC)` (`full`) or `n × n` (`trace`).
    public let kernel: Matrix
    /// The spectrum of `kernel`, when asked for.
    public let spectrum: KernelSpectrum?

    /// Most kernel entries computed: 200 MB of float64.
    public static let maxEntries = 25_000_000

    /// `Θ̂_w(X, X)` of `network` at `w` between the rows of `x`, `full` or `trace`.
    public static func gram(_ network: any Network, weights w: [Double], _ x: Matrix, mode: KernelMode) -> Matrix {
        let features = network.features(w, x)
        return TangentFeatures<Double>.kernel(features, features, mode: mode)
    }

    /// The empirical NTK of the trace at `path` at step `step` (default 0) between the examples
    /// of `queries`, with its spectrum when `spectrum`. Throws an `AnalysisError` (or the trace
    /// store's error) in one line: an unreadable trace, a step out of range or not replayable, an
    /// empty query set, a kernel above `maxEntries`.
    public static func compute(trace path: String, step: Int?, queries: QuerySet, mode: KernelMode,
                               spectrum: Bool) throws -> EmpiricalNTK {
        let reader = try TraceReader.open(path)
        defer { reader.close() }
        let run = try TraceRun.load(reader)
        let x: Matrix
        switch queries {
        case .train: x = run.trainX
        case .test: x = run.testX
        case .both: x = Matrix(rows: run.trainX.rows + run.testX.rows, cols: run.trainX.cols, data: run.trainX.data + run.testX.data)
        }
        guard x.rows > 0 else {
            throw AnalysisError("\(path) has no \(queries == .test ? "held-out examples" : "examples") for --queries \(queries.rawValue)")
        }
        let model = run.model
        let c = model.outputDim
        let side = mode == .full ? x.rows * c : x.rows
        guard side * side <= maxEntries else {
            throw AnalysisError("the kernel would be \(side) × \(side) = \(side * side) entries, more than \(maxEntries) (200 MB)\(mode == .full && c > 1 ? "; --kernel trace keeps one entry per pair of examples" : ""); choose fewer examples (--queries)")
        }
        let k = step ?? 0
        let (w, replayed) = try WeightPath.weights(atStep: k, run: run, reader: reader)
        let theta = gram(model, weights: w, x, mode: mode)
        guard theta.isFinite else {
            throw AnalysisError("\(path): the kernel at step \(k) is not finite (the weights overflow the network)")
        }
        return EmpiricalNTK(path: path, model: model.summary, step: k, replayed: replayed, queries: queries,
                            examples: x.rows, outputs: c, mode: mode, kernel: theta,
                            spectrum: try spectrum ? KernelSpectrum(theta) : nil)
    }
}

/// A kernel matrix written to a file whose extension names the format: `.npy` (NumPy format
/// 1.0, little-endian float64, C order, shape `(rows, cols)`; `Npy`) or `.csv` (one matrix row
/// per line, values separated by commas, each the shortest decimal that reads back to the same
/// float64; no header).
public enum KernelFile {
    public enum Format: String, Sendable { case npy, csv }

    /// The format `path`'s extension names (case-insensitive), nil for any other.
    public static func format(of path: String) -> Format? {
        Format(rawValue: PathNames.fileExtension(path).lowercased())
    }

    /// Writes `m` to `path` in its extension's format (an `OutputError` when the file cannot be
    /// written, an `AnalysisError` for an unknown extension).
    public static func write(_ m: Matrix, to path: String) throws {
        switch format(of: path) {
        case .npy: try OutputPath.write(Npy.encode(m.data, shape: [m.rows, m.cols]), to: path)
        case .csv: try OutputPath.write(csv(m), to: path)
        case nil: throw AnalysisError("\(path): the kernel file must end in .npy or .csv")
        }
    }

    /// The CSV text of `m`.
    public static func csv(_ m: Matrix) -> String {
        var out = ""
        out.reserveCapacity(m.rows * m.cols * 20)
        for i in 0..<m.rows {
            out += (0..<m.cols).map { "\(m[i, $0])" }.joined(separator: ",")
            out += "\n"
        }
        return out
    }
}
