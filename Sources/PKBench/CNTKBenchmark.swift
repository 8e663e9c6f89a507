import Foundation
import PKAnalysis
import PKData
import PKNumerics

/// W7's CNTK part (issue 12): the exact CNTK (2 relu conv layers 3×3 `same`, `σ_w = √2`, no bias;
/// `gap` readout by default, `flatten` on request), NNGP and NTK, of Fashion-MNIST images of
/// seed 1 (28×28×1, pixels/255): the Gram matrix of the first `images` training images
/// (`n(n+1)/2` image pairs), or with `queries` the cross kernel between the first `queries`
/// held-out images (rows) and the `images` training images (columns), `queries·images` image
/// pairs — the shape neural-tangents' `kernel_fn(x1, x2)` computes, for Tools/compare. An image
/// pair costs `2·784²` pixel-pair expectations with `gap`, `2·784` with `flatten`. Reports wall
/// and CPU seconds of the kernel call alone (not the data loading), the expectation rate and a
/// check: the cross kernel of the first three training images against themselves equals their
/// Gram's upper triangle (the same arithmetic, with the self pairs' variances read by the other
/// route: 0 when the two routes agree to the bit, as exact self pairs need; the lower triangle is
/// the transposed computation and differs by round-off).
public enum CNTKBenchmark {
    public struct Result: Codable, Sendable {
        public let images: Int
        /// Held-out images of the cross kernel (its rows); nil for the Gram matrix.
        public let queries: Int?
        public let readout: String
        public let net: String
        public let imagePairs: Int
        public let expectationsPerPair: Int
        public let seconds: Double
        public let cpuSeconds: Double
        public let threads: Int
        /// Pixel-pair expectations per wall second.
        public let expectationsPerSecond: Double
        /// `max |cross − Gram|` over the upper triangle of the first three images' block, relative
        /// to its largest entry: 0 when the self variances of both routes agree to the bit.
        public let crossCheck: Double
        /// `tr Θ` of the Gram matrix; for a cross kernel, the sum of its first `min(n₁, n₂)`
        /// diagonal entries.
        public let ntkTrace: Double
        /// The 1-minute load average before and after the kernel call (`/proc/loadavg`).
        public let loadBefore: Double?
        public let loadAfter: Double?
        /// The BLAS library and OpenBLAS core as this process loaded them (the CNTK's recursion
        /// calls no BLAS routine; reported so that a comparison can say what it ran with).
        public let blas: BLASInfo

        public func text() -> String {
            let what = queries.map { "cross kernel of \($0) held-out × \(images) training" } ?? "Gram of \(images)"
            let load = loadBefore.map { b in "; load \(String(format: "%.2f", b)) before, " + (loadAfter.map { String(format: "%.2f", $0) } ?? "?") + " after" } ?? ""
            return "W7-cntk  CNTK \(what) Fashion-MNIST images, \(net)\n"
                + "    \(imagePairs) image pairs × \(expectationsPerPair) expectations: \(String(format: "%.2f", seconds)) s wall, "
                + "\(String(format: "%.2f", cpuSeconds)) s CPU on \(threads) threads, \(String(format: "%.3g", expectationsPerSecond)) expectations/s\(load)\n"
                + "    \(blas.summary) (the recursion calls no BLAS)\n"
                + "    check: cross kernel vs Gram, upper triangle \(String(format: "%.1e", crossCheck)) (0: exact self pairs); tr Θ \(String(format: "%.12g", ntkTrace))\n\n"
        }
    }

    /// The benchmark's network with `readout` (`gap` unless asked otherwise).
    public static func architecture(readout: ConvolutionalKernel.Readout = .gap) -> ConvolutionalKernel.Architecture {
        ConvolutionalKernel.Architecture(height: 28, width: 28, channels: 1, convLayers: 2, filter: 3,
                                         padding: .same, readout: readout, activation: .relu)
    }

    /// Training images (`--images`) and held-out images (`--queries`) the bench accepts.
    public static let imagesRange = 3...2000
    public static let queriesRange = 1...2000

    /// Throws a `DataError` when Fashion-MNIST is not installed, an `InfiniteWidthError` for a bad
    /// count. `export` writes `x1.npy` (the kernel's rows: the held-out images, or the training
    /// images for a Gram matrix), `x2.npy` (its columns: the training images), `nngp.npy`,
    /// `ntk.npy` (float64, `n₁ × n₂`; images as rows of 784 values, `h·28 + w`, channel last) and
    /// `w7cntk.json` (the architecture, the counts and whether it is a Gram matrix), for
    /// Tools/compare/neural_tangents_w7_cntk.py.
    public static func run(images: Int = 100, queries: Int? = nil, readout: ConvolutionalKernel.Readout = .gap,
                           export: URL? = nil, log: (String) -> Void = { _ in }) throws -> Result {
        guard imagesRange.contains(images) else {
            throw InfiniteWidthError("W7-cntk needs \(imagesRange.lowerBound)…\(imagesRange.upperBound) images, got \(images)")
        }
        if let queries, !queriesRange.contains(queries) {
            throw InfiniteWidthError("W7-cntk --queries must be \(queriesRange.lowerBound)…\(queriesRange.upperBound), got \(queries)")
        }
        let architecture = architecture(readout: readout)
        let split = try DataSpec(kind: "idx", train: images, test: queries ?? 0).load(seed: 1)
        let kernel = try ConvolutionalKernel(architecture)
        let pairs = queries.map { $0 * images } ?? images * (images + 1) / 2
        log("W7-cntk: \(readout.rawValue), " + (queries.map { "\($0) held-out × \(images) training images" } ?? "\(images) images")
            + ", \(pairs) image pairs")
        var result: ConvolutionalKernels? = nil
        let before = loadAverage()
        let t = try Measure.cpuAndWallSeconds {
            result = try queries == nil ? kernel.kernels(split.train.x) : kernel.kernels(split.test.x, split.train.x)
        }
        let after = loadAverage()
        let k = result!
        let first = split.train.x.rows(0..<3)
        let gram = try kernel.kernels(first)
        let cross = try kernel.kernels(first, first)
        var worst = 0.0, scale = 0.0
        for i in 0..<3 {
            for j in i..<3 {
                worst = max(worst, abs(cross.ntk![i, j] - gram.ntk![i, j]), abs(cross.nngp[i, j] - gram.nngp[i, j]))
                scale = max(scale, abs(gram.ntk![i, j]))
            }
        }
        if let export {
            try FileManager.default.createDirectory(at: export, withIntermediateDirectories: true)
            try Npy.write(queries == nil ? split.train.x : split.test.x, to: export.appendingPathComponent("x1.npy"))
            try Npy.write(split.train.x, to: export.appendingPathComponent("x2.npy"))
            try Npy.write(k.nngp, to: export.appendingPathComponent("nngp.npy"))
            try Npy.write(k.ntk!, to: export.appendingPathComponent("ntk.npy"))
            let a = architecture
            let meta: [String: Any] = [
                "height": a.height, "width": a.width, "channels": a.channels, "conv_layers": a.convLayers, "filter": a.filter,
                "padding": a.padding.rawValue, "readout": a.readout.rawValue, "activation": a.activation.rawValue,
                "sigma_w": a.sigmaW, "sigma_b": a.sigmaB, "images": images, "queries": queries ?? NSNull(), "gram": queries == nil,
                "layout": "rows of height·width·channels values, (h·width + w)·channels + c", "net": a.summary,
            ]
            try JSONSerialization.data(withJSONObject: meta, options: [.prettyPrinted, .sortedKeys])
                .write(to: export.appendingPathComponent("w7cntk.json"))
        }
        let per = kernel.expectationsPerPair()
        let n = min(k.ntk!.rows, k.ntk!.cols)
        return Result(images: images, queries: queries, readout: readout.rawValue, net: architecture.summary, imagePairs: pairs,
                      expectationsPerPair: per, seconds: t.wall, cpuSeconds: t.cpu, threads: Parallel.threads,
                      expectationsPerSecond: Double(pairs * per) / t.wall, crossCheck: worst / scale,
                      ntkTrace: (0..<n).reduce(0.0) { $0 + k.ntk![$1, $1] }, loadBefore: before, loadAfter: after, blas: .current)
    }

    static func loadAverage() -> Double? {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)).flatMap { $0.split(separator: " ").first.flatMap { Double($0) } }
    }
}
