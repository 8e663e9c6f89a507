import Foundation
import PKNumerics

/// A network made of layers (`{"kind": "sequential"}`): the spec's layer list as a `Sequential`
/// (children named `0`, `1`, …, as PyTorch's `nn.Sequential`), used as a whole network.
///
/// Priorities: the same numbers as the layers' own rules (forward, VJP, JVP are the root layer's,
/// in float64), exact tangent kernels for any layer, then speed. Its tangent features are the
/// explicit per-example Jacobian rows (`Layer.jacobians`) as one factor block: block 0 has one
/// input fixed at 1 and `P` outputs, so `TangentFeatures.kernel` contracts the rows (`J_A J_Bᵀ`)
/// and the preconditioned route builds its query side from them, unchanged. Memory is `C·P`
/// scalars per example (`featureScalarsPerExample`).
public struct LayerNetwork: Network {
    public let spec: ModelSpec
    /// The layer list as one layer.
    public let root: Sequential
    public let layout: [ParameterTensor]
    public let parameterCount: Int
    /// Whether the event sweep covers every layer (`eventSweepEligible`), and its stages, built on
    /// first use (`segmentSweptJacobians`).
    let sweepCovered: Bool
    let sweepPlanCache: EventSweepPlanCache

    public init(spec: ModelSpec) throws {
        try spec.validate()
        self.spec = spec
        root = try LayerNetwork.buildRoot(spec)
        layout = root.layout
        parameterCount = root.parameterCount
        sweepCovered = EventSweepPlan.covers(root)
        sweepPlanCache = EventSweepPlanCache()
    }

    /// The spec's layers built for its input shape; a `ModelSpecError` names the first bad layer
    /// (`model.layers[2]: conv2d: …`) or a network that is too large.
    static func buildRoot(_ spec: ModelSpec) throws -> Sequential {
        guard let input = spec.input, !input.isEmpty else {
            throw ModelSpecError("model.input is required for a sequential model: the shape of one example, [C, H, W] for images or [d]")
        }
        let shape = TensorShape(input)
        guard shape.isValid, shape.count <= ConfigLimits.maxWidth * 64 else {
            throw ModelSpecError("model.input \(input) must have positive sizes and at most \(ConfigLimits.maxWidth * 64) scalars")
        }
        guard let list = spec.layerList, !list.isEmpty else {
            throw ModelSpecError("model.layers of a sequential model needs at least one layer")
        }
        var children: [Sequential.Child] = []
        var current = shape
        for (i, layerSpec) in list.enumerated() {
            do {
                let layer = try layerSpec.build(input: current, defaults: spec.layerDefaults)
                children.append(.init(name: String(i), layer: layer))
                current = layer.outputShape
            } catch let e as LayerError {
                throw ModelSpecError("model.\(e.within("layers[\(i)]"))")
            }
        }
        let root: Sequential
        do { root = try Sequential(children: children) } catch let e as LayerError { throw ModelSpecError("model: \(e)") }
        guard root.outputShape.dimensions.count == 1 else {
            throw ModelSpecError("model: the last layer gives \(root.outputShape), a network's output must be a vector [C]; end with flatten, globalavgpool or dense")
        }
        guard root.parameterCount <= ConfigLimits.maxParameters else {
            throw ModelSpecError("model: \(root.parameterCount) parameters, more than the limit of \(ConfigLimits.maxParameters) (800 MB per copy of the weights); use fewer channels or units")
        }
        return root
    }

    public var inputShape: TensorShape { root.inputShape }
    public var inputDim: Int { root.inputShape.count }
    public var outputDim: Int { root.outputShape.count }
    public var isPiecewiseLinear: Bool { root.isPiecewiseLinear }

    /// `sequential [1, 28, 28]: conv2d(4, 3) relu avgpool2d(2) … dense(10)`.
    public var summary: String {
        "sequential \(inputShape): " + (spec.layerList ?? []).map(LayerNetwork.describe).joined(separator: " ")
    }

    /// One layer object in a few characters: its kind and its main sizes.
    static func describe(_ layer: LayerSpec) -> String {
        let encoder = JSONEncoder()
        guard let data = try? encoder.encode(layer),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let kind = object["kind"] as? String else { return "?" }
        func text(_ v: Any?) -> String? {
            switch v {
            case let i as Int: return String(i)
            case let a as [Any]: return a.map { "\($0)" }.joined(separator: "×")
            case let d as Double where d == d.rounded(): return String(Int(d))
            case let s as String: return s
            default: return nil
            }
        }
        switch kind {
        case "residual":
            let parts = ["block", "shortcut"].compactMap { key -> String? in
                guard let sub = object[key], let d = try? JSONSerialization.data(withJSONObject: sub),
                      let spec = try? JSONDecoder().decode(LayerSpec.self, from: d) else { return nil }
                return describe(spec)
            }
            return "residual(\(parts.joined(separator: " + ")))"
        case "sequential":
            let items = (object["layers"] as? [Any] ?? []).compactMap { sub -> String? in
                guard let d = try? JSONSerialization.data(withJSONObject: sub),
                      let spec = try? JSONDecoder().decode(LayerSpec.self, from: d) else { return nil }
                return describe(spec)
            }
            return "[\(items.joined(separator: " "))]"
        default:
            var sizes = ["out", "kernel"].compactMap { text(object[$0]) }
            if let stride = text(object["stride"]), stride != "1", kind == "conv2d" { sizes.append("stride \(stride)") }
            if let stride = text(object["stride"]), stride != text(object["kernel"]), kind.hasSuffix("pool2d") { sizes.append("stride \(stride)") }
            let noBias = (object["bias"] as? Bool) == false ? ", no bias" : ""
            return sizes.isEmpty && noBias.isEmpty ? kind : "\(kind)(\(sizes.joined(separator: ", "))\(noBias))"
        }
    }

    /// One block: the Jacobian rows (`P` columns) against an input fixed at 1.
    public var featureBlocks: [DenseLayer] {
        [DenseLayer(index: 0, inputs: 1, outputs: parameterCount, weightOffset: 0, biasOffset: nil, weightScale: 1, biasScale: 1)]
    }
    public var featureScalarsPerExample: Int { 1 + outputDim * parameterCount }
    public var activationsPerExample: Int { LayerNetwork.activations(root) }
    /// The forward pass and C pullbacks (each about twice a forward pass) at about 1/6 of the
    /// GEMM rate (small per-example GEMMs, im2col/col2im, the layers' own loops), plus writing
    /// the `C·P` rows and their JVPs (memory-bound: 25 flop-equivalents per scalar).
    /// Calibrated on the fmnist-cnn and fmnist-resnet presets so that `analyze --plan` meets
    /// their real time (Docs/path-kernel.md §7). Session 12 (the rows written channel-major into
    /// one reused array, no zero-fill, the heap policy keeping freed blocks): 6.25 and 25, the
    /// former 14 and 56 scaled to the backward phases of the quiet runs (fmnist-cnn 16 s,
    /// fmnist-resnet 19 s), with the steps phase at `AnalysisCostModel.layerStepsFactor` times
    /// this; 4 and 16 before session 9.
    public var featureCostPerExample: Double {
        6.25 * (1 + 2 * Double(outputDim)) * root.forwardFlops + 25 * Double(outputDim * parameterCount)
    }

    public var smoothActivationUnits: [Activation: Int] { LayerNetwork.smoothUnits(in: root) }

    /// The units of every smooth activation layer under `layer` (see `Network.smoothActivationUnits`).
    public static func smoothUnits(in layer: any Layer) -> [Activation: Int] {
        switch layer {
        case let s as Sequential:
            return s.children.reduce(into: [:]) { units, child in units.merge(smoothUnits(in: child.layer), uniquingKeysWith: +) }
        case let r as Residual:
            return smoothUnits(in: r.block).merging(r.shortcut.map { smoothUnits(in: $0) } ?? [:], uniquingKeysWith: +)
        case let a as ActivationLayer:
            return a.activation.isSmooth ? [a.activation: a.outputShape.count] : [:]
        default:
            return [:]
        }
    }

    /// Scalars a forward pass keeps per example: the input and every leaf's output.
    static func activations(_ layer: any Layer) -> Int {
        switch layer {
        case let s as Sequential: return s.children.reduce(s.inputShape.count) { $0 + activations($1.layer) - $1.layer.inputShape.count }
        case let r as Residual: return activations(r.block) + (r.shortcut.map(activations) ?? 0) + r.outputShape.count
        default: return layer.inputShape.count + layer.outputShape.count
        }
    }

    public func initialParameters(seed: UInt64) -> [Double] { root.initialParameters(seed: seed) }

    public func forward(_ w: [Double], _ x: Matrix) -> Matrix {
        checkSizes(w, x)
        return root.apply(x, parameters: w)
    }

    public func forwardWithPullback(_ w: [Double], _ x: Matrix) -> (output: Matrix, pullback: @Sendable (Matrix) -> [Double]) {
        checkSizes(w, x)
        let (output, cache) = root.forward(x, parameters: w)
        let root = self.root
        return (output, { u in root.pullback(u, cache: cache, needsInputCotangent: false).parameters })
    }

    public func vjp(_ w: [Double], _ x: Matrix, cotangent: Matrix) -> [Double] {
        forwardWithPullback(w, x).pullback(cotangent)
    }

    public func jvp(_ w: [Double], _ x: Matrix, tangent v: [Double]) -> Matrix {
        checkSizes(w, x)
        return root.jvp(w, x, tangent: v)
    }

    public func jacobians(_ w: [Double], _ x: Matrix) -> Matrix {
        checkSizes(w, x)
        return root.jacobians(w, x).rows
    }

    /// The Jacobian rows in precision `S` as one factor block: `inputs[0]` is `n × 1` of ones,
    /// `signals[0]` the rows stacked channel-major (row `c·n + r` = `∂f_c(x_r)/∂w`), scales 1 and
    /// no bias; `outputTangents` are `J·v` from the same rows.
    ///
    /// The rows' `n·C·P` scalars are written channel-major straight into one new array that is not
    /// zero-filled first (`Layer.jacobianRows`); once freed, its pages are reused by the next call's
    /// allocation through the process's heap policy (`AllocatorPolicy`: no block is mapped on its
    /// own), so no pool of these arrays is kept (Docs/benchmarks.md, "ArrayPool removed"). The
    /// same bits as computing the rows example-major and permuting them: each entry is the same
    /// arithmetic at another address, and `J·v` is one GEMM over the `C·n` rows (each row's dot
    /// product does not depend on its place in the GEMM; tested bit for bit against the
    /// example-major route).
    public func tangentFeatures<S: BLASScalar>(_ w: [Double], _ x: Matrix, as _: S.Type, tangents: [[Double]]) -> TangentFeatures<S> {
        checkSizes(w, x)
        for v in tangents { precondition(v.count == parameterCount, "tangent has \(v.count) entries, the network has \(parameterCount) parameters") }
        let n = x.rows, C = outputDim
        var storage: [S]? = nil
        let (signals, outputs) = root.jacobianRows(w.map { S($0) }, DenseMatrix<S>(x), order: .channelMajor, reusing: &storage)
        return TangentFeatures(count: n, channels: C, inputs: [DenseMatrix(rows: n, cols: 1, repeating: 1)], signals: [signals],
                               weightScaleSquared: [1], biasScaleSquared: [0], outputs: outputs,
                               outputTangents: tangents.map { v in LayerNetwork.channelMajorProduct(signals, count: n, channels: C, v.map { S($0) }) })
    }

    /// `J·v` of channel-major rows (`(C·n) × P`, row `c·n + r`): `n × C`, entry `(r, c)` = row
    /// `c·n + r` dotted with `v`, by one GEMM over all rows (as `LayerJacobians.product`).
    static func channelMajorProduct<S: BLASScalar>(_ rows: DenseMatrix<S>, count n: Int, channels C: Int, _ v: [S]) -> DenseMatrix<S> {
        precondition(rows.rows == n * C && v.count == rows.cols, "Jacobian product: \(rows.rows)×\(rows.cols) rows, \(v.count) entries")
        var column = DenseMatrix<S>(rows: C * n, cols: 1)
        DenseMatrix.gemm(rows, DenseMatrix(rows: rows.cols, cols: 1, data: v), into: &column)
        var out = DenseMatrix<S>(rows: n, cols: C)
        for r in 0..<n { for c in 0..<C { out.data[r * C + c] = column.data[c * n + r] } }
        return out
    }

    public func kinkPattern(_ w: [Double], _ x: Matrix) -> [Double] {
        guard isPiecewiseLinear else { return [] }
        var pattern: [Double] = []
        _ = root.kinkPattern(x, parameters: w, into: &pattern)
        return pattern
    }
}
