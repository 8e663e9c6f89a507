import PKNumerics

/// Padding of a 2-D sliding window (Conv2D, AvgPool2D, MaxPool2D).
///
/// - `valid`: no padding; output size `⌊(H − k)/s⌋ + 1` (PyTorch's `padding=0`, `'valid'`).
/// - `same`: output size `⌈H/s⌉`, total padding `max((⌈H/s⌉ − 1)·s + k − H, 0)` split with the
///   smaller half on top/left (TensorFlow's and neural-tangents' `'SAME'`). At stride 1 this is
///   PyTorch's `padding='same'` (`k − 1` in all, `⌊(k − 1)/2⌋` on top/left); PyTorch refuses
///   `'same'` with a stride above 1.
/// - `explicit(height:width:)`: `height` rows above and below, `width` columns left and right
///   (PyTorch's `padding=(ph, pw)`); output size `⌊(H + 2p − k)/s⌋ + 1`.
public enum Padding2D: Sendable, Hashable, CustomStringConvertible {
    case valid
    case same
    case explicit(height: Int, width: Int)

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .same: return "same"
        case .explicit(let h, let w): return "[\(h), \(w)]"
        }
    }
}

/// The geometry of a `kernelHeight × kernelWidth` window sliding over an `inputHeight × inputWidth`
/// map with a stride and padding: the output size and where each window starts.
///
/// Window `(oy, ox)` covers input rows `oy·strideHeight − padTop + i`, `i < kernelHeight`, and
/// columns `ox·strideWidth − padLeft + j`, `j < kernelWidth`; positions outside the map are padding.
/// Shared by the convolution and the pools, which add their own arithmetic.
public struct Window2D: Sendable, Hashable {
    public let inputHeight: Int, inputWidth: Int
    public let kernelHeight: Int, kernelWidth: Int
    public let strideHeight: Int, strideWidth: Int
    public let padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public let outputHeight: Int, outputWidth: Int

    /// Throws (naming `layer`) when a size is not positive or the padded map is smaller than the kernel.
    public init(input: (height: Int, width: Int), kernel: (height: Int, width: Int), stride: (height: Int, width: Int),
                padding: Padding2D, layer: String) throws {
        guard kernel.height >= 1, kernel.width >= 1 else { throw LayerError("\(layer): kernel must be at least 1×1, got \(kernel.height)×\(kernel.width)") }
        guard stride.height >= 1, stride.width >= 1 else { throw LayerError("\(layer): stride must be at least 1, got \(stride.height)×\(stride.width)") }
        guard input.height >= 1, input.width >= 1 else { throw LayerError("\(layer): input map must be at least 1×1, got \(input.height)×\(input.width)") }
        /// `(before, after)` padding of one axis of size `n` under `valid` or `same`.
        func automaticPads(_ n: Int, _ k: Int, _ s: Int) -> (Int, Int) {
            guard padding == .same else { return (0, 0) }
            let out = (n + s - 1) / s
            let total = max((out - 1) * s + k - n, 0)
            return (total / 2, total - total / 2)
        }
        var (top, bottom) = automaticPads(input.height, kernel.height, stride.height)
        var (left, right) = automaticPads(input.width, kernel.width, stride.width)
        if case .explicit(let h, let w) = padding {
            guard h >= 0, w >= 0 else { throw LayerError("\(layer): padding must be ≥ 0, got \(padding)") }
            (top, bottom, left, right) = (h, h, w, w)
        }
        let paddedHeight = input.height + top + bottom, paddedWidth = input.width + left + right
        guard paddedHeight >= kernel.height, paddedWidth >= kernel.width else {
            throw LayerError("\(layer): the \(kernel.height)×\(kernel.width) kernel does not fit the \(paddedHeight)×\(paddedWidth) padded input (\(input.height)×\(input.width), padding \(padding))")
        }
        inputHeight = input.height; inputWidth = input.width
        kernelHeight = kernel.height; kernelWidth = kernel.width
        strideHeight = stride.height; strideWidth = stride.width
        padTop = top; padBottom = bottom; padLeft = left; padRight = right
        outputHeight = (paddedHeight - kernel.height) / stride.height + 1
        outputWidth = (paddedWidth - kernel.width) / stride.width + 1
    }

    public var outputPositions: Int { outputHeight * outputWidth }
    public var inputPositions: Int { inputHeight * inputWidth }
    public var kernelPositions: Int { kernelHeight * kernelWidth }

    // MARK: im2col

    /// Writes the patches of one example (`channels` maps of `inputHeight × inputWidth`, NCHW) as
    /// a `(channels·kh·kw) × (outputHeight·outputWidth)` row-major matrix: row `(c·kh + i)·kw + j`,
    /// column `oy·outputWidth + ox` holds `x[c, oy·sh − padTop + i, ox·sw − padLeft + j]` (0 in the
    /// padding). The row order is PyTorch's `nn.Unfold` / `F.unfold`, so that a weight
    /// `[out, in, kh, kw]` read row-major is the `out × (in·kh·kw)` left factor.
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func im2col<S: BLASScalar>(_ x: UnsafePointer<S>, channels: Int, into cols: UnsafeMutablePointer<S>) {
        let H = inputHeight, W = inputWidth, Ho = outputHeight, Wo = outputWidth, sw = strideWidth
        for c in 0..<channels {
            for i in 0..<kernelHeight {
                for j in 0..<kernelWidth {
                    let dst = cols + ((c * kernelHeight + i) * kernelWidth + j) * Ho * Wo
                    let (lo, hi) = columnRange(j)
                    for oy in 0..<Ho {
                        let y = oy * strideHeight - padTop + i
                        let row = dst + oy * Wo
                        guard y >= 0 && y < H else {
                            row.update(repeating: 0, count: Wo)
                            continue
                        }
                        let src = x + (c * H + y) * W, shift = j - padLeft   // column ox reads src[ox·sw + shift]
                        if lo > 0 { row.update(repeating: 0, count: lo) }
                        if sw == 1 {
                            if hi > lo { (row + lo).update(from: src + (lo + shift), count: hi - lo) }
                        } else {
                            for ox in lo..<hi { row[ox] = src[ox * sw + shift] }
                        }
                        if hi < Wo { (row + hi).update(repeating: 0, count: Wo - hi) }
                    }
                }
            }
        }
    }

    /// The output columns `lo..<hi` whose kernel column `j` reads inside the map:
    /// `0 ≤ ox·strideWidth − padLeft + j < inputWidth` (the others read padding).
    func columnRange(_ j: Int) -> (lo: Int, hi: Int) {
        let sw = strideWidth, a = padLeft - j, b = inputWidth - 1 + padLeft - j
        // ⌈a / sw⌉ and ⌊b / sw⌋ + 1 for integers of either sign.
        let lo = a <= 0 ? 0 : (a + sw - 1) / sw
        let hi = b < 0 ? 0 : b / sw + 1
        return (min(lo, outputWidth), max(min(hi, outputWidth), min(lo, outputWidth)))
    }

    /// The adjoint of `im2col`: adds every patch entry back onto the input position it was read
    /// from (padding entries are dropped). `dx` must be zeroed (or hold what to add to).
    @_specialize(where S == Double)
    @_specialize(where S == Float)
    func col2im<S: BLASScalar>(_ cols: UnsafePointer<S>, channels: Int, into dx: UnsafeMutablePointer<S>) {
        let H = inputHeight, W = inputWidth, Ho = outputHeight, Wo = outputWidth, sw = strideWidth
        for c in 0..<channels {
            for i in 0..<kernelHeight {
                for j in 0..<kernelWidth {
                    let src = cols + ((c * kernelHeight + i) * kernelWidth + j) * Ho * Wo
                    let (lo, hi) = columnRange(j)
                    for oy in 0..<Ho {
                        let y = oy * strideHeight - padTop + i
                        guard y >= 0 && y < H else { continue }
                        let row = src + oy * Wo, dst = dx + (c * H + y) * W, shift = j - padLeft
                        if sw == 1 {
                            // Stride 1 (the usual case): a contiguous run, the same additions in the same order.
                            let d = dst + shift
                            for ox in lo..<hi { d[ox] += row[ox] }
                        } else {
                            for ox in lo..<hi { dst[ox * sw + shift] += row[ox] }
                        }
                    }
                }
            }
        }
    }
}
