import PKNumerics

/// What a layer kind contributes to the event sweep (`LayerNetwork.segmentSweptJacobians`,
/// path-kernel math §1.1, "The event sweep"): its sparse structure, from which the sweep derives
/// every cone rule of the kind (the polynomial forward, the sparse forward delta, the sparse
/// pullback delta and, for a layer with parameters, the moment-weighted sparse outer product into
/// J̄). A new layer kind joins the sweep by conforming to `EventSweepLayer` in its own file
/// (returning one of these); a kind that does not conform keeps the network on the node route.
public enum SweepStage: Sendable {
    /// `z = s_W·lin(a, W) + s_b·b`, bilinear in the input and the weights (dense, convolution).
    case bilinear(SweepConnections)
    /// `z = M a`, linear without parameters (average pooling, flatten, the identity).
    case linear(SweepLinearMap)
    /// `z_u = σ_u a_u`, `σ_u = 1` where `a_u > 0`, else `slope` (relu: 0; leaky relu: α).
    case rectifier(slope: Double)
    /// `z_w = a[arg-max of window w]`, the first entry on ties (max pooling; windows list input
    /// entries in the forward pass's order, padding left out).
    case maxPool(windows: [[Int]])
}

/// A layer kind the event sweep covers (see `SweepStage`); nil: not this instance (the sweep
/// then refuses the network).
public protocol EventSweepLayer: Layer {
    /// Whether `sweepStage` is non-nil, without building it (a conv's connections are
    /// `O·Ho·Wo·C·kh·kw` triples: built only when a sweep runs). Default true.
    var sweepCovered: Bool { get }
    var sweepStage: SweepStage? { get }
}

extension EventSweepLayer {
    public var sweepCovered: Bool { true }
}

/// The connections of a bilinear layer: output `o` is `s_W Σ W[k]·a[i] + s_b b[bias[o]]` over the
/// triples `(o, i, k)` (k: the weight's index in the layer's parameters), stored by output and
/// by input (CSR), so that a sparse change of either side touches only its cone.
public final class SweepConnections: Sendable {
    public let inputs: Int, outputs: Int
    public let weightScale: Double, biasScale: Double
    /// By output o: entries `outputStart[o]..<outputStart[o + 1]` of `outputInput`, `outputWeight`.
    let outputStart: [Int], outputInput: [Int32], outputWeight: [Int32]
    /// By input i: entries `inputStart[i]..<inputStart[i + 1]` of `inputOutput`, `inputWeight`.
    let inputStart: [Int], inputOutput: [Int32], inputWeight: [Int32]
    /// Per output: its bias's index in the layer's parameters, −1 without a bias.
    let bias: [Int32]
    /// A convolution's geometry (its triples are those of `Window2D.im2col`, weights `[O, K]`
    /// row-major, K = C·kh·kw): the sweep's full passes then run as im2col + GEMM.
    let convolution: (window: Window2D, inputChannels: Int, outputChannels: Int)?

    /// `triples(o)` lists output o's `(input, weight index)` pairs.
    public init(inputs: Int, outputs: Int, weightScale: Double, biasScale: Double, bias: [Int32],
                convolution: (window: Window2D, inputChannels: Int, outputChannels: Int)? = nil,
                triples: (Int) -> [(input: Int, weight: Int)]) {
        precondition(bias.count == outputs, "sweep connections: one bias index per output")
        self.convolution = convolution
        self.inputs = inputs
        self.outputs = outputs
        self.weightScale = weightScale
        self.biasScale = biasScale
        self.bias = bias
        var oStart = [0], oInput: [Int32] = [], oWeight: [Int32] = []
        for o in 0..<outputs {
            for (i, k) in triples(o) { oInput.append(Int32(i)); oWeight.append(Int32(k)) }
            oStart.append(oInput.count)
        }
        let byInput = transposedCSR(outputStart: oStart, outputInput: oInput, inputs: inputs)
        outputStart = oStart; outputInput = oInput; outputWeight = oWeight
        inputStart = byInput.start; inputOutput = byInput.output; inputWeight = byInput.entry.map { oWeight[$0] }
    }
}

/// Entries stored by output (CSR: output o's entries `outputStart[o]..<outputStart[o + 1]`, the
/// input of each in `outputInput`) regrouped by input: the by-input starts (`inputs + 1`), and per
/// by-input slot its by-output entry and its output, outputs ascending within an input.
func transposedCSR(outputStart: [Int], outputInput: [Int32], inputs: Int) -> (start: [Int], entry: [Int], output: [Int32]) {
    var start = [Int](repeating: 0, count: inputs + 1)
    for i in outputInput { start[Int(i) + 1] += 1 }
    for i in 0..<inputs { start[i + 1] += start[i] }
    var entry = [Int](repeating: 0, count: outputInput.count), output = [Int32](repeating: 0, count: outputInput.count)
    var fill = start
    for o in 0..<(outputStart.count - 1) {
        for e in outputStart[o]..<outputStart[o + 1] {
            let i = Int(outputInput[e])
            entry[fill[i]] = e; output[fill[i]] = Int32(o)
            fill[i] += 1
        }
    }
    return (start, entry, output)
}

/// A linear map without parameters, `z[o] = Σ value·a[i]`, stored by output and by input (CSR).
public final class SweepLinearMap: Sendable {
    public let inputs: Int, outputs: Int
    let outputStart: [Int], outputInput: [Int32], outputValue: [Double]
    let inputStart: [Int], inputOutput: [Int32], inputValue: [Double]

    public init(inputs: Int, outputs: Int, entries: (Int) -> [(input: Int, value: Double)]) {
        self.inputs = inputs
        self.outputs = outputs
        var oStart = [0], oInput: [Int32] = [], oValue: [Double] = []
        for o in 0..<outputs {
            for (i, v) in entries(o) { oInput.append(Int32(i)); oValue.append(v) }
            oStart.append(oInput.count)
        }
        let byInput = transposedCSR(outputStart: oStart, outputInput: oInput, inputs: inputs)
        outputStart = oStart; outputInput = oInput; outputValue = oValue
        inputStart = byInput.start; inputOutput = byInput.output; inputValue = byInput.entry.map { oValue[$0] }
    }

    /// The identity on `width` entries (flatten, identity activation).
    public static func identity(_ width: Int) -> SweepLinearMap {
        SweepLinearMap(inputs: width, outputs: width) { [($0, 1)] }
    }
}

extension Window2D {
    /// The input entries (channel `c` of `channels` maps) read by output `(c, oy, ox)`, in the
    /// forward pass's order (kernel row, then column), padding left out, each with its kernel
    /// position `i·kw + j`.
    func sweepWindow(channel c: Int, _ oy: Int, _ ox: Int) -> [(input: Int, position: Int)] {
        var out: [(input: Int, position: Int)] = []
        for i in 0..<kernelHeight {
            let yy = oy * strideHeight - padTop + i
            guard yy >= 0 && yy < inputHeight else { continue }
            for j in 0..<kernelWidth {
                let xx = ox * strideWidth - padLeft + j
                guard xx >= 0 && xx < inputWidth else { continue }
                out.append((c * inputPositions + yy * inputWidth + xx, i * kernelWidth + j))
            }
        }
        return out
    }
}
