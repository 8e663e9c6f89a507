import Foundation
import PKNetworks
import PKNumerics

extension ConvolutionalKernel.Architecture {
    /// The CNTK architecture of a layer network of its form: `L_c` blocks of [`conv2d` q×q
    /// (odd q, stride 1, `same` or `valid` padding), an activation], `globalavgpool` or `flatten`,
    /// one `dense` layer; `ntk` parameterization; the same activation, `σ_w` and `σ_b` in every
    /// layer, biases in all of them or in none (none: `σ_b = 0`). Throws an `InfiniteWidthError`
    /// naming the first layer that does not fit.
    public init(network: LayerNetwork) throws {
        let children = network.root.children
        guard let image = network.inputShape.image else {
            throw InfiniteWidthError("the network's input \(network.inputShape) is not an image [C, H, W]; the CNTK needs conv2d layers")
        }
        func refuse(_ i: Int, _ why: String) -> InfiniteWidthError {
            InfiniteWidthError("layer \(i) (\(children[i].name)): \(why); the CNTK covers [conv2d (odd square kernel, stride 1, same or valid), activation] × L_c, globalavgpool or flatten, dense, all ntk with one σ_w, σ_b and activation")
        }
        var i = 0
        var convs: [Conv2D] = []
        var activations: [ActivationLayer] = []
        while i + 1 < children.count, let conv = children[i].layer as? Conv2D {
            let w = conv.window
            guard w.kernelHeight == w.kernelWidth, w.kernelHeight % 2 == 1 else { throw refuse(i, "kernel \(w.kernelHeight)×\(w.kernelWidth)") }
            guard w.strideHeight == 1, w.strideWidth == 1 else { throw refuse(i, "stride \(w.strideHeight)×\(w.strideWidth)") }
            let pad = (w.kernelHeight - 1) / 2
            let pads = [w.padTop, w.padLeft, w.padBottom, w.padRight]
            guard pads.allSatisfy({ $0 == 0 }) || pads.allSatisfy({ $0 == pad }) else { throw refuse(i, "padding \(conv.padding)") }
            guard let act = children[i + 1].layer as? ActivationLayer else { throw refuse(i + 1, "not an activation after conv2d") }
            convs.append(conv)
            activations.append(act)
            i += 2
        }
        guard let first = convs.first else { throw refuse(0, "not a conv2d") }
        guard i + 2 == children.count else { throw refuse(min(i, children.count - 1), "the readout must be followed by exactly one dense layer") }
        let readout: ConvolutionalKernel.Readout
        switch children[i].layer {
        case is GlobalAvgPool: readout = .gap
        case is Flatten: readout = .flatten
        default: throw refuse(i, "not globalavgpool or flatten")
        }
        guard let dense = children[i + 1].layer as? Dense else { throw refuse(i + 1, "not a dense layer") }
        let q = first.window.kernelHeight
        let same = first.window.padTop > 0 || q == 1
        let bias = first.hasBias
        for (k, conv) in convs.enumerated() {
            guard conv.window.kernelHeight == q else { throw refuse(2 * k, "kernel \(conv.window.kernelHeight), the first conv2d's is \(q)") }
            guard (conv.window.padTop > 0 || q == 1) == same else { throw refuse(2 * k, "padding differs from the first conv2d's") }
            guard conv.parameterization == .ntk, conv.sigmaW == first.sigmaW, conv.hasBias == bias, !bias || conv.sigmaB == first.sigmaB else {
                throw refuse(2 * k, "parameterization, σ_w, σ_b or bias differ from the first conv2d's (or not ntk)")
            }
            guard activations[k].activation == activations[0].activation, activations[k].leakySlope == activations[0].leakySlope else {
                throw refuse(2 * k + 1, "activation differs from the first one")
            }
        }
        guard dense.parameterization == .ntk, dense.sigmaW == first.sigmaW, dense.hasBias == bias, !bias || dense.sigmaB == first.sigmaB else {
            throw refuse(i + 1, "parameterization, σ_w, σ_b or bias differ from the conv2d layers'")
        }
        self.init(height: image.height, width: image.width, channels: image.channels, convLayers: convs.count, filter: q,
                  padding: same ? .same : .valid, readout: readout, activation: activations[0].activation,
                  leakySlope: activations[0].leakySlope, sigmaW: first.sigmaW, sigmaB: bias ? first.sigmaB : 0)
    }
}
