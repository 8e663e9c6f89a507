import Foundation
import Testing
import PKNetworks
import PKNumerics

extension Tolerance {
    /// The batched `Layer.jacobians` against `jacobiansOneByOne` (Double), relative to the largest
    /// entry: the same products, some through GEMMs of another row count (a convolution's `∂W` for
    /// an example's `C` rows at once, a Dense input cotangent for the whole chunk). Measured ≤ 2.2e-16
    /// (30 of the 32 cases bit for bit; the default rule bit for bit).
    static let batchedAgainstOneByOne = 1e-13
}

/// A layer that hides the kind it wraps: it forwards `forward`, `pullback` and `jvp` but not
/// `pullbackRows`, so it gets the protocol's default (a new kind that has not written the batched
/// rule yet).
struct WithoutBatchedRule: Layer {
    let inner: any Layer
    var inputShape: TensorShape { inner.inputShape }
    var outputShape: TensorShape { inner.outputShape }
    var parameters: [LayerParameter] { inner.parameters }
    var isPiecewiseLinear: Bool { inner.isPiecewiseLinear }
    func forward<S: BLASScalar>(_ x: DenseMatrix<S>, parameters w: [S]) -> (output: DenseMatrix<S>, cache: LayerCache) {
        inner.forward(x, parameters: w)
    }
    func pullback<S: BLASScalar>(_ cotangent: DenseMatrix<S>, cache: LayerCache, needsInputCotangent: Bool) -> (input: DenseMatrix<S>?, parameters: [S]) {
        inner.pullback(cotangent, cache: cache, needsInputCotangent: needsInputCotangent)
    }
    func jvp<S: BLASScalar>(inputTangent: DenseMatrix<S>?, parameterTangent: [S], cache: LayerCache) -> DenseMatrix<S>? {
        inner.jvp(inputTangent: inputTangent, parameterTangent: parameterTangent, cache: cache)
    }

    /// `layer` with every leaf wrapped (compositions rebuilt around wrapped children, names kept).
    static func wrappingLeaves(_ layer: any Layer) throws -> any Layer {
        if let s = layer as? Sequential {
            return try Sequential(children: try s.children.map { Sequential.Child(name: $0.name, layer: try wrappingLeaves($0.layer)) })
        }
        if let r = layer as? Residual {
            return try Residual(block: try wrappingLeaves(r.block), shortcut: try r.shortcut.map { try wrappingLeaves($0) })
        }
        return WithoutBatchedRule(inner: layer)
    }
}

/// The batched per-example Jacobians (`Layer.jacobians`, `pullbackRows`) against the one-example-at-
/// a-time oracle (`Layer.jacobiansOneByOne`) for every layer kind of `LayerDerivativeTests` and the
/// compositions there and in `LayerJacobianTests`: rows and outputs in Double
/// (`batchedAgainstOneByOne`), Float32 against the Double oracle (`Tolerance.floatAgainstDouble`),
/// every chunk size and the tiled variant, bit-identical results on 1 and 2 threads, and the
/// default rule of a kind without its own.
@Suite("Batched per-example Jacobians")
struct LayerBatchedJacobianTests {
    static let all: [LayerCase] = LayerDerivativeTests.all + LayerJacobianTests.networks

    /// Nine examples (three batches of the case's inputs), enough for two thread blocks
    /// (`Parallel.ranges(9, minimum: 4)`) and for chunks that do not divide the batch.
    static func inputs(_ c: LayerCase, seed: UInt64) -> Matrix {
        let parts = (0..<3).map { c.input(seed: seed + $0) }
        return Matrix(rows: 9, cols: parts[0].cols, data: parts.flatMap(\.data))
    }

    @Test("batched rows and outputs equal the one-by-one oracle, for every chunk size", arguments: all)
    func batchedEqualsOneByOne(_ c: LayerCase) {
        let layer = c.layer
        let x = Self.inputs(c, seed: 51), w = c.parameters(seed: 52)
        let oracle = layer.jacobiansOneByOne(w, x)
        var worst = 0.0
        for (chunk, tiled) in [(LayerJacobians<Double>.defaultExamplesPerPass, false), (1, false), (2, false), (4, true)] as [(Int, Bool)] {
            let batched = chunk == LayerJacobians<Double>.defaultExamplesPerPass && !tiled
                ? layer.jacobians(w, x) : layer.jacobians(w, x, examplesPerPass: chunk, tiled: tiled)
            #expect(batched.count == oracle.count && batched.channels == oracle.channels && batched.parameterCount == oracle.parameterCount)
            let rows = relativeError(batched.rows.data, oracle.rows.data)
            let outputs = relativeError(batched.outputs.data, oracle.outputs.data)
            #expect(rows <= Tolerance.batchedAgainstOneByOne, "\(c) chunk \(chunk) tiled \(tiled): rows \(rows)")
            #expect(outputs <= Tolerance.batchedAgainstOneByOne, "\(c) chunk \(chunk) tiled \(tiled): outputs \(outputs)")
            worst = max(worst, rows, outputs)
        }
        Self.report("double \(c)", worst)
    }

    @Test("Float32 batched rows agree with the Double oracle", arguments: all)
    func floatAgreesWithDoubleOracle(_ c: LayerCase) {
        let layer = c.layer
        let x = Self.inputs(c, seed: 53), w = c.parameters(seed: 54)
        let oracle = layer.jacobiansOneByOne(w, x), batched = layer.jacobians(w.map(Float.init), FloatMatrix(x))
        let rows = floatError(batched.rows.data, oracle.rows.data), outputs = floatError(batched.outputs.data, oracle.outputs.data)
        #expect(rows < Tolerance.floatAgainstDouble, "\(c): rows \(rows)")
        #expect(outputs < Tolerance.floatAgainstDouble, "\(c): outputs \(outputs)")
        Self.report("float \(c)", max(rows, outputs))
    }

    @Test("the same bits on 1 and 2 threads, Double and Float32", arguments: all)
    func threadCountDoesNotChangeBits(_ c: LayerCase) {
        let layer = c.layer
        let x = Self.inputs(c, seed: 55), w = c.parameters(seed: 56)
        let hold = Parallel.holdThreadCount()   // no other test switches the count meanwhile
        defer { hold.release() }
        var prints: [[UInt64]] = [], floatPrints: [[UInt32]] = []
        for threads in [1, 2] {
            Parallel.threads = threads
            let J = layer.jacobians(w, x), Jf = layer.jacobians(w.map(Float.init), FloatMatrix(x))
            prints.append((J.rows.data + J.outputs.data).map(\.bitPattern))
            floatPrints.append((Jf.rows.data + Jf.outputs.data).map(\.bitPattern))
        }
        #expect(prints[0] == prints[1], "\(c): Double differs between 1 and 2 threads")
        #expect(floatPrints[0] == floatPrints[1], "\(c): Float32 differs between 1 and 2 threads")
    }

    @Test("a kind without its own pullbackRows gets the default rule", arguments: all)
    func defaultRule(_ c: LayerCase) throws {
        let wrapped = try WithoutBatchedRule.wrappingLeaves(c.layer)
        #expect(wrapped.layout == c.layer.layout)
        let x = Self.inputs(c, seed: 57), w = c.parameters(seed: 58)
        let oracle = c.layer.jacobiansOneByOne(w, x), viaDefault = wrapped.jacobians(w, x)
        let error = max(relativeError(viaDefault.rows.data, oracle.rows.data), relativeError(viaDefault.outputs.data, oracle.outputs.data))
        #expect(error <= Tolerance.batchedAgainstOneByOne, "\(c): \(error)")
        let tiled = wrapped.jacobians(w, x, examplesPerPass: 3, tiled: true)
        #expect(relativeError(tiled.rows.data, oracle.rows.data) <= Tolerance.batchedAgainstOneByOne, "\(c) tiled")
        Self.report("default \(c)", error)
    }

    @Test("no examples, and a network without parameters")
    func degenerate() throws {
        let net = try LayerJacobianTests.smallCNN()
        let w = net.initialParameters(seed: 1)
        let empty = net.jacobians(w, randomMatrix(rows: 0, cols: net.inputShape.count, seed: 2))
        #expect(empty.rows.rows == 0 && empty.rows.cols == net.parameterCount && empty.outputs.rows == 0)
        let pool = try AvgPool2D(inputShape: [2, 4, 4], kernel: (2, 2))
        let x = randomMatrix(rows: 5, cols: 32, seed: 3)
        let J = pool.jacobians([Double](), x)
        #expect(J.rows.rows == 5 * 8 && J.rows.cols == 0)
        #expect(J.outputs == pool.jacobiansOneByOne([Double](), x).outputs)
    }

    /// Prints a measured error when `PATHKERNEL_PRINT_MEASURED` is set (for the tolerances' comments).
    static func report(_ what: String, _ value: Double) {
        if ProcessInfo.processInfo.environment["PATHKERNEL_PRINT_MEASURED"] != nil { print("measured \(what): \(value)") }
    }
}
