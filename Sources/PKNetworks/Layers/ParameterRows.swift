import PKNumerics

/// Where `Layer.pullbackRows` writes its per-row parameter cotangents: row `i` of a layer's block
/// starts at `base + (i / groupSize)·groupStride + (i % groupSize)·stride` and holds the layer's
/// `parameterCount` scalars. With `groupSize` 1 (`init(base:stride:)`) that is `base + i·stride`.
/// `Layer.jacobians` points it at the layer's columns of the Jacobian matrix: example-major, row
/// `r·C + c` at `(r·C + c)·P` (`stride` = the network's `P`); channel-major, the `C` rows of example
/// `r` (a group) at `(c·n + r)·P` (`stride` = `n·P`, `groupStride` = `P`). A composition hands each
/// child the same rows moved right by the child's offset (`offset(by:)`).
///
/// A view into memory its maker owns for the duration of one call; it is never kept.
public struct ParameterRows<S: BLASScalar> {
    /// Row 0, column 0 of this layer's block; nil only when there are no columns at all (`P = 0`).
    public let base: UnsafeMutablePointer<S>?
    /// Scalars from one row to the next within a group.
    public let stride: Int
    /// Consecutive rows per group (`Layer.jacobians`: one example's `C` rows), at least 1.
    public let groupSize: Int
    /// Scalars from one group's first row to the next group's.
    public let groupStride: Int

    /// Rows `stride` scalars apart.
    public init(base: UnsafeMutablePointer<S>?, stride: Int) {
        self.init(base: base, stride: stride, groupSize: 1, groupStride: stride)
    }

    /// Rows in groups of `groupSize`: `stride` apart within a group, `groupStride` from group to group.
    public init(base: UnsafeMutablePointer<S>?, stride: Int, groupSize: Int, groupStride: Int) {
        precondition(groupSize >= 1, "parameter rows: groups of \(groupSize) rows")
        self.base = base
        self.stride = stride
        self.groupSize = groupSize
        self.groupStride = groupStride
    }

    /// The same rows, `columns` further right (a child's block inside its parent's).
    public func offset(by columns: Int) -> ParameterRows {
        ParameterRows(base: base.map { $0 + columns }, stride: stride, groupSize: groupSize, groupStride: groupStride)
    }

    /// The start of row `i`. Only layers with parameters call it, and then `base` is not nil.
    @inlinable
    public func row(_ i: Int) -> UnsafeMutablePointer<S> {
        guard let base else { preconditionFailure("parameter rows without storage: a layer with parameters in a network of none") }
        return base + (i / groupSize) * groupStride + (i % groupSize) * stride
    }
}

extension Layer {
    /// The rule for kinds without their own (see the requirement): a layer without parameters
    /// runs `repeats` batch pullbacks (rows `c, c + repeats, …` together, one row per example),
    /// a layer with parameters runs each example alone, as `jacobiansOneByOne` does for a whole
    /// network: one 1-row forward pass of `x_r` and `repeats` 1-row pullbacks reusing its cache.
    /// Correct for any kind that keeps the `Layer` contract; kinds in this module override it.
    public func pullbackRows<S: BLASScalar>(_ cotangent: DenseMatrix<S>, repeats: Int, cache: LayerCache, parameters w: [S],
                                            input: () -> DenseMatrix<S>, needsInputCotangent: Bool,
                                            parameterRows: ParameterRows<S>) -> DenseMatrix<S>? {
        let m = cotangent.rows, R = repeats, inCount = inputShape.count, outCount = outputShape.count
        precondition(R >= 1 && m % R == 0 && cotangent.cols == outCount,
                     "\(Self.self).pullbackRows: cotangent is \(m)×\(cotangent.cols), expected a multiple of \(R) rows of \(outCount)")
        let n = m / R
        if parameterCount == 0 {
            guard needsInputCotangent else { return nil }
            if R == 1 { return pullback(cotangent, cache: cache, needsInputCotangent: true).input }
            var dx = DenseMatrix<S>(rows: m, cols: inCount)
            for c in 0..<R {
                let part = pullback(cotangent.rows(at: Swift.stride(from: c, to: m, by: R)), cache: cache, needsInputCotangent: true).input!
                for r in 0..<n {
                    dx.data.replaceSubrange(((r * R + c) * inCount)..<((r * R + c + 1) * inCount),
                                            with: part.data[(r * inCount)..<((r + 1) * inCount)])
                }
            }
            return dx
        }
        let x = input()
        precondition(x.rows == n, "\(Self.self).pullbackRows: input has \(x.rows) rows, the cotangent \(m) = \(n) × \(R)")
        var dx = DenseMatrix<S>(rows: needsInputCotangent ? m : 0, cols: inCount)
        let P = parameterCount
        for r in 0..<n {
            let (_, single) = forward(x.rows(r..<(r + 1)), parameters: w)
            for c in 0..<R {
                let i = r * R + c
                let (d, g) = pullback(cotangent.rows(i..<(i + 1)), cache: single, needsInputCotangent: needsInputCotangent)
                let row = parameterRows.row(i)
                for k in 0..<P { row[k] = g[k] }
                if let d { dx.data.replaceSubrange((i * inCount)..<((i + 1) * inCount), with: d.data) }
            }
        }
        return needsInputCotangent ? dx : nil
    }
}
