import Foundation
import Testing
import PKNetworks
import PKNumerics
@testable import PKAnalysis

/// Contract §1b: the empirical NTK of finite networks (the project's own initialization) against
/// the analytic NTK, an independent route to the recursion (Jacobians, no expectations).
@Suite("Empirical NTK converges to the analytic NTK")
struct InfiniteWidthConvergenceTests {
    static let inputs = InfiniteWidthKernelTests.inputs
    /// §1b: every gap at m = 4096 below these (relu; erf and tanh).
    static let reluGapBound = 0.12
    static let smoothGapBound = 0.08
    /// §1b: mean gap at 1024 over mean gap at 4096 (1/√m predicts 2).
    static let ratioRange = 1.15...3.5

    /// The gap of `spec`'s network at raw parameters `w` on the oracle inputs.
    static func gap(_ spec: ModelSpec, _ w: [Double]) throws -> Double {
        let analytic = try InfiniteWidthKernel(spec: spec).kernels(inputs).ntk
        return try InfiniteWidthKernel.empiricalGap(network: try MLP(spec: spec), weights: w, inputs, nil, analytic: analytic).gap
    }

    /// The project's initialization under `standard` from the one under `ntk` (the same standard
    /// normals ξ, Docs/networks.md): weights `ξ·σ_w/√fan-in`, biases `ξ·σ_b`. Saves a draw of
    /// 17M normals per seed; checked against `initialParameters` below.
    static func standardParameters(_ ntk: [Double], _ network: MLP, _ spec: ModelSpec) -> [Double] {
        var w = ntk
        for tensor in network.layout {
            let scale = tensor.name.hasSuffix(".weight") ? spec.sigmaW / Double(tensor.shape[1]).squareRoot() : spec.sigmaB
            for k in tensor.offset..<(tensor.offset + tensor.count) { w[k] *= scale }
        }
        return w
    }

    @Test func standardParametersAreTheProjectsInitialization() throws {
        let ntk = InfiniteWidthKernelTests.spec(.relu, .ntk, layers: [3, 7, 5, 2])
        var standard = ntk
        standard.parameterization = .standard
        let network = try MLP(spec: ntk)
        let derived = Self.standardParameters(network.initialParameters(seed: 3), network, standard)
        let drawn = try MLP(spec: standard).initialParameters(seed: 3)
        #expect(zip(derived, drawn).allSatisfy { abs($0 - $1) <= 4 * Double.ulpOfOne * abs($1) })
    }

    /// Whether to run the contract's test at its own widths (1024 and 4096: about a minute of a
    /// debug build, mostly drawing 4 × 17M normals): `PATHKERNEL_FULL_ORACLES=1`.
    static let fullSize = ProcessInfo.processInfo.environment["PATHKERNEL_FULL_ORACLES"] == "1"

    /// The contract's test as stated: seeds 1–4 at m = 1024 and 4096.
    @Test(.enabled(if: fullSize, "set PATHKERNEL_FULL_ORACLES=1 for the widths 1024/4096 (about a minute)"))
    func gapsWithinTheContractsBounds() throws {
        try Self.checkGaps(narrow: 1024, wide: 4096, boundScale: 1)
    }

    /// The same at a quarter of the widths (256 and 1024, a few seconds), the bounds doubled
    /// (gaps grow like 1/√m; §1b's max gap at 1024 is 0.129 for relu, 0.054 for erf).
    @Test func gapsWithinTheContractsBoundsAtQuarterWidth() throws {
        try Self.checkGaps(narrow: 256, wide: 1024, boundScale: 2)
    }

    /// Seeds 1–4 at widths `narrow` and `wide` (one draw of the raw parameters per seed and width,
    /// shared by the activations and parameterizations, as the project's initialization allows):
    /// gaps at `wide` below 0.12·boundScale (relu, ntk and standard) or 0.08·boundScale (erf and
    /// tanh, ntk), and each mean gap shrinking like 1/√m (ratio in [1.15, 3.5] for a 4× width).
    static func checkGaps(narrow: Int, wide: Int, boundScale: Double) throws {
        let cases: [(Activation, Parameterization, Double)] = [
            (.relu, .ntk, boundScale * reluGapBound), (.relu, .standard, boundScale * reluGapBound),
            (.erf, .ntk, boundScale * smoothGapBound), (.tanh, .ntk, boundScale * smoothGapBound),
        ]
        var mean = [[Double]](repeating: [0, 0], count: cases.count)
        for seed: UInt64 in 1...4 {
            for (wi, m) in [narrow, wide].enumerated() {
                let base = InfiniteWidthKernelTests.spec(.relu, .ntk, layers: [3, m, m, 1])
                let network = try MLP(spec: base)
                let xi = network.initialParameters(seed: seed)
                for (ci, (a, p, bound)) in cases.enumerated() {
                    var spec = base
                    spec.activation = a
                    spec.parameterization = p
                    let w = p == .ntk ? xi : standardParameters(xi, network, spec)
                    let g = try gap(spec, w)
                    mean[ci][wi] += g / 4
                    if m == wide { #expect(g < bound, "\(a) \(p) seed \(seed): gap \(g) at \(wide)") }
                }
            }
        }
        for (ci, (a, p, _)) in cases.enumerated() {
            let ratio = mean[ci][0] / mean[ci][1]
            #expect(ratioRange.contains(ratio), "\(a) \(p): mean gaps \(mean[ci]), ratio \(ratio)")
        }
    }

    /// Several outputs: the empirical kernel is (n·C) × (n·C); its off-diagonal output blocks
    /// count against the gap (the analytic kernel is Θ ⊗ I_C), and each output's block is close.
    @Test func severalOutputs() throws {
        let spec = InfiniteWidthKernelTests.spec(.relu, .ntk, layers: [3, 1024, 1024, 3])
        let analytic = try InfiniteWidthKernel(spec: spec).kernels(Self.inputs).ntk
        let network = try MLP(spec: spec)
        let r = try InfiniteWidthKernel.empiricalGap(network: network, weights: network.initialParameters(seed: 5),
                                                     Self.inputs, nil, analytic: analytic)
        #expect(r.empirical.rows == 12 && r.empirical.cols == 12)
        #expect(r.outputGaps.count == 3)
        for g in r.outputGaps { #expect(g < Self.reluGapBound * 1.5, "output gap \(g)") }
        #expect(r.gap < Self.reluGapBound * 1.5 && r.gap > 0)
        // Against a wrong analytic kernel (Θ scaled by 2) the gap is about 1/2: the check can fail.
        let wrong = try InfiniteWidthKernel.empiricalGap(network: network, weights: network.initialParameters(seed: 5),
                                                         Self.inputs, nil, analytic: 2 * analytic)
        #expect(wrong.gap > 0.4)
    }
}
