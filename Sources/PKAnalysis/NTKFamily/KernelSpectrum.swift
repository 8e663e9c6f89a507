import Foundation
import PKNumerics

/// The spectrum of a symmetric kernel matrix and the numbers `pathkernel ntk --spectrum` reads
/// from it (Docs/ntk-family.md, "The empirical NTK at a checkpoint").
///
/// The eigenvalues are those of the symmetrized matrix `(K + Kᵀ)/2` (LAPACK `dsyevd`): an
/// empirical NTK is symmetric up to round-off. With `λ₊ = max(λ, 0)`:
///
///     λ_max, λ_min                     the largest and smallest eigenvalue
///     κ = λ_max / λ_min                 (none when λ_min ≤ 0: singular to working precision)
///     erank = exp(−Σ_j p_j log p_j),    p_j = λ₊_j / Σ_k λ₊_k    (0 log 0 = 0)
///
/// The effective rank is Roy & Vetterli's (2007, "The effective rank: a measure of effective
/// dimensionality"): the exponential of the Shannon entropy of the normalized spectrum. It is `r`
/// for `r` equal nonzero eigenvalues and the rest zero, lies in `[1, m]` for a nonzero PSD matrix
/// of size `m`, and is 0 for the zero matrix. Does *not* hold: it is not an integer, and
/// negative eigenvalues (round-off, or an indefinite matrix) are left out of it.
public struct KernelSpectrum: Sendable, Equatable {
    /// Eigenvalues of `(K + Kᵀ)/2`, descending (largest first).
    public let eigenvalues: [Double]

    /// The spectrum of the symmetric part of the square matrix `k`; throws when LAPACK fails.
    public init(_ k: Matrix) throws {
        precondition(k.rows == k.cols, "the spectrum of a \(k.rows) × \(k.cols) matrix")
        var s = k
        let m = k.rows
        for i in 0..<m {
            for j in 0..<i {
                let v = 0.5 * (k[i, j] + k[j, i])
                s[i, j] = v
                s[j, i] = v
            }
        }
        self.init(eigenvalues: try LinearAlgebra.symmetricEigenvalues(s))
    }

    /// A spectrum from its eigenvalues (any order).
    public init(eigenvalues: [Double]) {
        self.eigenvalues = eigenvalues.sorted(by: >)
    }

    /// The largest eigenvalue (0 for an empty matrix).
    public var lambdaMax: Double { eigenvalues.first ?? 0 }
    /// The smallest eigenvalue (0 for an empty matrix).
    public var lambdaMin: Double { eigenvalues.last ?? 0 }

    /// `λ_max/λ_min`, nil when `λ_min ≤ 0`.
    public var conditionNumber: Double? { lambdaMin > 0 ? lambdaMax / lambdaMin : nil }

    /// `exp(−Σ p_j log p_j)` with `p_j = λ₊_j / Σ λ₊` (Roy & Vetterli 2007); 0 when no
    /// eigenvalue is positive.
    public var effectiveRank: Double {
        let total = eigenvalues.reduce(0) { $0 + max($1, 0) }
        guard total > 0 else { return 0 }
        var entropy = 0.0
        for v in eigenvalues where v > 0 {
            let p = v / total
            entropy -= p * log(p)
        }
        return exp(entropy)
    }
}
