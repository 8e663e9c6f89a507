import PKNumerics

/// `path-km-self` (math §3): as `path-km`, with Domingos' coefficient evaluated at the training
/// point itself, `a_i(x_i) = −K^p(x_i, x_i)⁻¹ N(x_i, i)`.
struct PathKMSelf: KernelMachineRule {
    let name = "path-km-self"
    let needsFullScope = true
    let needsKernelForm = true

    func description(in context: KernelMachineContext) -> String { "path kernel, coefficients a_i(x_i)" }

    func predict(_ context: KernelMachineContext) -> KernelMachineOutcome {
        let C = context.outputs, blocks = context.blocks
        var selfKM = context.f0
        let aSelf = PathAnalyzer.selfCoefficients(kp: context.kp, nDiag: context.nDiag, nT: context.heldOut, outputs: C, blocks: blocks)
        for q in 0..<context.queries {
            let ps = PathAnalyzer.kernelTimes(context.kp, row: q, coefficients: aSelf, blocks: blocks, outputs: C)
            for c in 0..<C { selfKM[q, c] += ps[c] }
        }
        return .prediction(selfKM)
    }
}

extension PathAnalyzer {
    /// `a_i(x_i) = −K^p(x_i, x_i)⁻¹ N(x_i, i)`: the exact coefficient evaluated at the training point
    /// itself (`nDiag` row i is `N(x_i, i)`, n × C).
    static func selfCoefficients(kp: Matrix, nDiag: Matrix, nT: Int, outputs C: Int, blocks: Int) -> Matrix {
        let n = nDiag.rows
        var a = Matrix(rows: n, cols: C)
        for i in 0..<n {
            let q = nT + i
            let rhs = (0..<C).map { -nDiag[i, $0] }
            if blocks == 1 {
                // Trace kernel (or C = 1): the block is (tr/C)·I.
                let k = kp[q, i] / Double(C)
                if abs(k) > 0 { for c in 0..<C { a[i, c] = rhs[c] / k } }
            } else {
                var block = Matrix(rows: C, cols: C)
                for c in 0..<C { for k in 0..<C { block[c, k] = kp[q * C + c, i * C + k] } }
                if let sol = try? LinearAlgebra.solve(block, Matrix(rows: C, cols: 1, data: rhs)) {
                    for c in 0..<C { a[i, c] = sol[c, 0] }
                }
            }
        }
        return a
    }
}
