import Foundation
import PKNetworks
import PKNumerics

/// The empirical NTK of a finite MLP at given weights next to the analytic one (contract §1,
/// `pathkernel kernel --trace T --step k --compare`; §1b for what to expect).
public struct EmpiricalKernelGap: Sendable, Equatable {
    /// `Θ̂_w(X₁, X₂) = J(X₁; w) J(X₂; w)ᵀ`, `(n₁C) × (n₂C)`: row `r·C + c`, column `r'·C + c'`
    /// (the layout of `MLP.jacobians`).
    public let empirical: Matrix
    /// `‖Θ̂ − Θ ⊗ I_C‖_F / ‖Θ ⊗ I_C‖_F` over the whole kernel (off-diagonal output blocks included,
    /// where the analytic kernel is 0).
    public let gap: Double
    /// Per output `c`: `‖Θ̂_cc − Θ‖_F / ‖Θ‖_F` over the `(c, c)` blocks (`C` entries; one for `C = 1`).
    public let outputGaps: [Double]
}

extension InfiniteWidthKernel {
    /// The empirical NTK of `network` at weights `w` between the rows of `x1` and `x2` (`x1`'s
    /// Gram when nil) and its relative gap to `analytic` (`n₁ × n₂`, this spec's NTK of the same
    /// rows). `network` must be the analytic kernel's network (this spec's MLP, or the conv net
    /// of a CNTK) and `w` of its parameter count.
    public static func empiricalGap(network: any Network, weights w: [Double], _ x1: Matrix, _ x2: Matrix?,
                                    analytic: Matrix) throws -> EmpiricalKernelGap {
        guard w.count == network.parameterCount else {
            throw InfiniteWidthError("the weights have \(w.count) entries, the model has \(network.parameterCount) parameters")
        }
        let y = x2 ?? x1
        guard x1.cols == network.inputDim, y.cols == network.inputDim,
              analytic.rows == x1.rows, analytic.cols == y.rows else {
            throw InfiniteWidthError("the inputs (\(x1.rows) × \(x1.cols), \(y.rows) × \(y.cols)) do not match the model (\(network.inputDim) inputs) or the analytic kernel (\(analytic.rows) × \(analytic.cols))")
        }
        let a: TangentFeatures<Double> = network.features(w, x1)
        let b = x2 == nil ? a : network.features(w, y)
        let e = TangentFeatures<Double>.kernel(a, b, mode: .full)
        let c = network.outputDim
        var diff = 0.0
        var blockDiff = [Double](repeating: 0, count: c)
        var analyticNorm = 0.0
        for i in 0..<x1.rows {
            for j in 0..<y.rows {
                let t = analytic[i, j]
                analyticNorm += t * t
                for p in 0..<c {
                    for q in 0..<c {
                        let expected = p == q ? t : 0
                        let d = e[i * c + p, j * c + q] - expected
                        diff += d * d
                        if p == q { blockDiff[p] += d * d }
                    }
                }
            }
        }
        let norm = analyticNorm * Double(c)
        guard norm > 0 else {
            throw InfiniteWidthError("the analytic NTK of these inputs is zero: no relative gap")
        }
        return EmpiricalKernelGap(empirical: e, gap: (diff / norm).squareRoot(),
                                  outputGaps: blockDiff.map { ($0 / analyticNorm).squareRoot() })
    }
}
