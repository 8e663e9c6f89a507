import Foundation
import Testing
import PKNetworks
import PKNumerics

/// The Jacobian rows written in the consumer's layout in one array (`Layer.jacobianRows`,
/// `LayerNetwork.tangentFeatures`), against the former route as the oracle: the example-major rows
/// of `Layer.jacobians`, permuted to channel-major in a second matrix, and their JVPs by
/// `LayerJacobians.product`. Bit for bit (no tolerance: the same arithmetic at other addresses;
/// the JVPs, dot products at other places of a GEMM, to the rounding of a dot product),
/// for every layer kind and composition of the batched tests, a CNN shaped like `fmnist-cnn` and a
/// residual network shaped like `fmnist-resnet`, in float64 and float32, fresh or rewriting a
/// reused (NaN-filled) array.
@Suite("Jacobian rows in the consumer's layout")
struct LayerJacobianLayoutTests {
    /// conv(4)-relu-maxpool-conv(8)-relu-maxpool-dense(10), as `fmnist-cnn` on 8×8 inputs.
    static let cnn = #"""
    {"kind": "sequential", "input": [1, 8, 8], "layers": [
      {"kind": "conv2d", "out": 4, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"kind": "relu"}, {"kind": "maxpool2d", "kernel": 2},
      {"kind": "flatten"}, {"kind": "dense", "out": 10}]}
    """#
    /// conv(8, stride 2)-gelu-avgpool, a residual block (layer norm, conv, gelu, conv), global
    /// average pool, dense(10), as `fmnist-resnet` on 8×8 inputs.
    static let resnet = #"""
    {"kind": "sequential", "input": [1, 8, 8], "layers": [
      {"kind": "conv2d", "out": 8, "kernel": 3, "stride": 2, "padding": "same"}, {"kind": "gelu"}, {"kind": "avgpool2d", "kernel": 2},
      {"kind": "residual", "block": {"kind": "sequential", "layers": [
        {"kind": "layernorm"}, {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}, {"kind": "gelu"},
        {"kind": "conv2d", "out": 8, "kernel": 3, "padding": "same"}]}},
      {"kind": "globalavgpool"}, {"kind": "dense", "out": 10}]}
    """#

    /// The first index where two bit patterns differ (or the shorter length), nil when equal: a
    /// failure names one index instead of diffing two long arrays.
    static func firstDifference(_ a: [UInt64], _ b: [UInt64]) -> Int? {
        if let i = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) { return i }
        return a.count == b.count ? nil : min(a.count, b.count)
    }

    /// Widening to Double is exact, so equal widened bits are equal bits.
    static func bits<S: BLASScalar>(_ a: [S]) -> [UInt64] { a.map { Double($0).bitPattern } }

    static func network(_ json: String) throws -> LayerNetwork {
        try LayerNetwork(spec: JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)))
    }

    /// Example-major rows (`r·C + c`) moved to channel-major (`c·n + r`): the former second matrix.
    static func permuted<S: BLASScalar>(_ rows: DenseMatrix<S>, count n: Int, channels C: Int) -> [S] {
        let P = rows.cols
        var out = [S](repeating: 0, count: rows.data.count)
        for r in 0..<n { for c in 0..<C { for k in 0..<P { out[(c * n + r) * P + k] = rows.data[(r * C + c) * P + k] } } }
        return out
    }

    @Test("channel-major and example-major rows are the batched rows, bit for bit", arguments: LayerBatchedJacobianTests.all)
    func rowOrders(_ c: LayerCase) {
        let layer = c.layer
        let x = LayerBatchedJacobianTests.inputs(c, seed: 61), w = c.parameters(seed: 62)
        let n = x.rows, C = layer.outputShape.count, count = n * C * layer.parameterCount
        let oracle = layer.jacobians(w, x)
        let stale = [Double](repeating: .nan, count: count)   // a reused array: every entry must be rewritten
        for reusing in [nil, stale] {
            var a = reusing, b = reusing
            let byExample = layer.jacobianRows(w, x, order: .exampleMajor, reusing: &a)
            let byChannel = layer.jacobianRows(w, x, order: .channelMajor, reusing: &b)
            #expect(a == nil && b == nil, "the array was moved out")
            #expect(Self.firstDifference(Self.bits(byExample.rows.data), Self.bits(oracle.rows.data)) == nil, "\(c): example-major")
            #expect(Self.firstDifference(Self.bits(byChannel.rows.data), Self.bits(Self.permuted(oracle.rows, count: n, channels: C))) == nil,
                    "\(c): channel-major, reusing \(reusing != nil)")
            #expect(byChannel.rows.rows == n * C && byChannel.rows.cols == layer.parameterCount)
            // Every entry written (the oracle shares the allocation, so it would share a hole).
            #expect(!byChannel.rows.data.contains(where: \.isNaN) && !byExample.rows.data.contains(where: \.isNaN), "\(c): an entry not written")
            #expect(Self.firstDifference(Self.bits(byChannel.outputs.data), Self.bits(oracle.outputs.data)) == nil, "\(c): outputs")
        }
    }

    /// The former `LayerNetwork.tangentFeatures`: example-major rows, a permuted copy, JVPs by
    /// `LayerJacobians.product`.
    static func formerFeatures<S: BLASScalar>(_ net: LayerNetwork, _ w: [Double], _ x: Matrix, _ tangents: [[Double]],
                                              as _: S.Type) -> (signals: [S], outputs: [S], tangents: [[S]]) {
        let jac = net.root.jacobians(w.map { S($0) }, DenseMatrix<S>(x))
        return (permuted(jac.rows, count: x.rows, channels: net.outputDim), jac.outputs.data,
                tangents.map { v in jac.product(v.map { S($0) }).data })
    }

    /// Batch sizes: one example, one thread block, and blocks and GEMM row counts that are not
    /// multiples of the chunk (8) or of a kernel's unroll (4).
    static let counts = [1, 5, 13, 22]

    @Test("tangentFeatures in one array equals the former two-step rows and JVPs, bit for bit",
          arguments: [cnn, resnet], counts)
    func oneBufferEqualsTwoSteps(json: String, n: Int) throws {
        let net = try Self.network(json)
        let w = net.initialParameters(seed: 71), x = randomMatrix(rows: n, cols: net.inputDim, seed: 72)
        let tangents = [randomVector(net.parameterCount, seed: 73), randomVector(net.parameterCount, seed: 74)]
        func check<S: BLASScalar>(_: S.Type) {
            let former = Self.formerFeatures(net, w, x, tangents, as: S.self)
            // Fresh, at other weights, and back: the same bits each time at w.
            let fresh = net.tangentFeatures(w, x, as: S.self, tangents: tangents)
            var other = w
            Vec.axpy(0.5, tangents[0], &other)
            _ = net.tangentFeatures(other, x, as: S.self, tangents: [])
            let again = net.tangentFeatures(w, x, as: S.self, tangents: tangents)
            for f in [fresh, again] {
                #expect(f.signals.count == 1 && f.signals[0].rows == net.outputDim * n && f.signals[0].cols == net.parameterCount)
                #expect(Self.firstDifference(Self.bits(f.signals[0].data), Self.bits(former.signals)) == nil, "\(S.self) n = \(n): rows")
                #expect(Self.firstDifference(Self.bits(f.outputs.data), Self.bits(former.outputs)) == nil, "\(S.self) n = \(n): outputs")
                #expect(f.outputTangents.count == former.tangents.count)
                // J·v: the same dot products, from rows at other places of a GEMM. OpenBLAS's
                // kernels may sum a row in another order at another place (its generic Prescott
                // kernels do: measured on a model-207 Xeon), so these agree to the rounding of a
                // dot product of P terms, not bit for bit.
                for (j, (a, b)) in zip(f.outputTangents, former.tangents).enumerated() {
                    let rowsF64 = former.signals.map { Double($0) }, v = tangents[j]
                    let P = net.parameterCount, C = net.outputDim
                    for r in 0..<n { for c in 0..<C {
                        let row = (c * n + r) * P
                        var scale = 0.0
                        for k in 0..<P { scale += abs(rowsF64[row + k] * v[k]) }
                        let tolerance = Double(P) * Double(S.ulpOfOne) * scale
                        #expect(abs(Double(a.data[r * C + c]) - Double(b[r * C + c])) <= tolerance, "\(S.self) n = \(n): J·v (\(r), \(c))")
                    } }
                }
            }
            // An array handed to the rows (`reusing`) is rewritten in place: no second reference
            // is left anywhere that would make the first write copy it.
            var storage: [S]? = net.tangentFeatures(other, x, as: S.self, tangents: []).signals[0].data
            let address = storage!.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
            let rows = net.root.jacobianRows(w.map { S($0) }, DenseMatrix<S>(x), order: .channelMajor, reusing: &storage).rows
            #expect(storage == nil, "the array was taken")
            #expect(rows.data.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } == address,
                    "\(S.self) n = \(n): the array handed over was copied")
            #expect(Self.firstDifference(Self.bits(rows.data), Self.bits(fresh.signals[0].data)) == nil)
        }
        check(Double.self)
        check(Float.self)
    }
}
