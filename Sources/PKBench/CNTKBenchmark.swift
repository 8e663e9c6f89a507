import Foundation
import PKAnalysis
import PKData
import PKNumerics

/// W7's CNTK part (issue 12): the exact CNTK (gap readout, 2 relu conv layers 3×3 `same`,
/// `σ_w = √2`, no bias) Gram matrix, NNGP and NTK, of the first `images` Fashion-MNIST training
/// images of seed 1 (28×28×1, pixels/255): `n(n+1)/2` image pairs of `2·784²` pixel-pair
/// expectations each. Reports wall and CPU seconds, the expectation rate and a check: the cross
/// kernel of the first three images against themselves equals the Gram's upper triangle there
/// (the same arithmetic, with the self pairs' variances read by the other route: 0 when the two
/// routes agree to the bit, as exact self pairs need; the lower triangle is the transposed
/// computation and differs by round-off).
public enum CNTKBenchmark {
    public struct Result: Codable, Sendable {
        public let images: Int
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
        public let ntkTrace: Double

        public func text() -> String {
            "W7-cntk  CNTK Gram of \(images) Fashion-MNIST images, \(net)\n"
                + "    \(imagePairs) image pairs × \(expectationsPerPair) expectations: \(String(format: "%.2f", seconds)) s wall, "
                + "\(String(format: "%.2f", cpuSeconds)) s CPU on \(threads) threads, \(String(format: "%.3g", expectationsPerSecond)) expectations/s\n"
                + "    check: cross kernel vs Gram, upper triangle \(String(format: "%.1e", crossCheck)) (0: exact self pairs); tr Θ \(String(format: "%.12g", ntkTrace))\n\n"
        }
    }

    public static let architecture = ConvolutionalKernel.Architecture(height: 28, width: 28, channels: 1, convLayers: 2, filter: 3,
                                                                      padding: .same, readout: .gap, activation: .relu)

    /// Throws a `DataError` when Fashion-MNIST is not installed, an `InfiniteWidthError` for a bad count.
    public static func run(images: Int = 100, log: (String) -> Void = { _ in }) throws -> Result {
        guard images >= 3 else { throw InfiniteWidthError("W7-cntk needs at least 3 images, got \(images)") }
        let split = try DataSpec(kind: "idx", train: images, test: 0).load(seed: 1)
        let kernel = try ConvolutionalKernel(architecture)
        log("W7-cntk: \(images) images, \(images * (images + 1) / 2) image pairs")
        var gram: ConvolutionalKernels? = nil
        let t = try Measure.cpuAndWallSeconds { gram = try kernel.kernels(split.train.x) }
        let first = split.train.x.rows(0..<3)
        let cross = try kernel.kernels(first, first)
        var worst = 0.0, scale = 0.0
        for i in 0..<3 {
            for j in i..<3 {
                worst = max(worst, abs(cross.ntk![i, j] - gram!.ntk![i, j]), abs(cross.nngp[i, j] - gram!.nngp[i, j]))
                scale = max(scale, abs(gram!.ntk![i, j]))
            }
        }
        let pairs = images * (images + 1) / 2
        let per = kernel.expectationsPerPair()
        return Result(images: images, net: architecture.summary, imagePairs: pairs, expectationsPerPair: per, seconds: t.wall,
                      cpuSeconds: t.cpu, threads: Parallel.threads, expectationsPerSecond: Double(pairs * per) / t.wall,
                      crossCheck: worst / scale, ntkTrace: (0..<images).reduce(0.0) { $0 + gram!.ntk![$1, $1] })
    }
}
