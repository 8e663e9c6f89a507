import Foundation
import PKNumerics

/// The name, shape and place of one parameter tensor in the flat parameter vector.
///
/// Part of the trace format: traces store the layout next to the checkpoints.
public struct ParameterTensor: Sendable, Equatable {
    /// `layers.l.weight` or `layers.l.bias`.
    public var name: String
    /// `[out, in]` for weights (row-major), `[out]` for biases.
    public var shape: [Int]
    public var offset: Int
    public var count: Int

    public init(name: String, shape: [Int], offset: Int, count: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
        self.count = count
    }
}

/// A fully connected network `f(x; w) = z_{L−1}`, `z_l = DenseLayer_l(a_l)`, `a_0 = x`,
/// `a_{l+1} = φ(z_l)`; the output layer is linear.
///
/// Parameters are one flat `[Double]` of length `parameterCount`, in the order of `layout`:
/// for each layer `l = 0..<depth`, `layers.l.weight` (`[out, in]`, row-major) then
/// `layers.l.bias` (`[out]`, when the spec has biases). That order is fixed here, in `init`, and
/// nowhere else.
///
/// Batches are matrices with one example per row: inputs `n × inputDim`, outputs `n × outputDim`.
/// Every dense product is one GEMM over the whole batch.
///
/// Priorities, in order: exact agreement with the math in `Docs/networks.md` (checked against
/// finite differences), one forward pass per call, GEMM-bound cost, then clarity of the code.
public struct MLP: Sendable {
    public let spec: ModelSpec
    /// The dense layers, in order, with their parameter offsets and scales.
    public let layers: [DenseLayer]
    /// The parameter tensors, in flattening order.
    public let layout: [ParameterTensor]
    public let parameterCount: Int

    public var inputDim: Int { spec.layers[0] }
    public var outputDim: Int { spec.layers[spec.layers.count - 1] }
    /// Number of dense layers `L`.
    public var depth: Int { layers.count }
    public var activation: Activation { spec.activation }

    /// Validates the spec and fixes the parameter layout.
    public init(spec: ModelSpec) throws {
        try spec.validate()
        guard spec.kind == "mlp" else {
            throw ModelSpecError("model.kind \"\(spec.kind)\" is not an MLP; build it with Networks.make")
        }
        self.spec = spec
        var layers: [DenseLayer] = []
        var layout: [ParameterTensor] = []
        var offset = 0
        for l in 0..<(spec.layers.count - 1) {
            let fanIn = spec.layers[l], fanOut = spec.layers[l + 1]
            let weightOffset = offset
            layout.append(ParameterTensor(name: "layers.\(l).weight", shape: [fanOut, fanIn],
                                          offset: offset, count: fanOut * fanIn))
            offset += fanOut * fanIn
            var biasOffset: Int? = nil
            if spec.bias {
                biasOffset = offset
                layout.append(ParameterTensor(name: "layers.\(l).bias", shape: [fanOut], offset: offset, count: fanOut))
                offset += fanOut
            }
            let ntk = spec.parameterization == .ntk
            layers.append(DenseLayer(index: l, inputs: fanIn, outputs: fanOut,
                                     weightOffset: weightOffset, biasOffset: biasOffset,
                                     weightScale: ntk ? spec.sigmaW / Double(fanIn).squareRoot() : 1,
                                     biasScale: ntk ? spec.sigmaB : 1))
        }
        self.layers = layers
        self.layout = layout
        self.parameterCount = offset
    }

    func checkShapes(_ w: [Double], _ x: Matrix, function: StaticString = #function) {
        precondition(w.count == parameterCount, "\(function): \(w.count) parameters, the network has \(parameterCount)")
        precondition(x.cols == inputDim, "\(function): inputs have \(x.cols) columns, the network takes \(inputDim)")
    }

    /// `f(x_r; w)` for every row: `x` is `n × inputDim`, the result `n × outputDim`.
    public func forward(_ w: [Double], _ x: Matrix) -> Matrix {
        checkShapes(w, x)
        var a = x
        for layer in layers {
            let z = layer.forward(layer.weight(w), w, a)
            if layer.index == depth - 1 { return z }
            a = activation.values(z, leakySlope: spec.leakySlope)
        }
        preconditionFailure("an MLP has at least one layer")
    }
}
