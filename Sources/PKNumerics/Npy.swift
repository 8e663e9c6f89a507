import Foundation
import PKNumerics

/// NumPy `.npy` files (format version 1.0, little-endian, C order): `pathkernel ntk --out K.npy`
/// and the benchmarks' exports to peer tools. Writes only.
///
/// The layout (NumPy's `format.py`, version 1.0): the magic `\x93NUMPY`, the version bytes
/// `1 0`, the header length as a little-endian `UInt16`, then an ASCII header
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (r, c), }` padded with spaces and ended by
/// `\n` so that the data starts at a multiple of 64 bytes, then the values row-major.
public enum Npy {
    /// The bytes of a `.npy` file holding `data` with `shape` (`<f8` or `<f4`).
    public static func encode<S: BLASScalar>(_ data: [S], shape: [Int]) -> Data {
        precondition(data.count == shape.reduce(1, *), "npy: \(data.count) values for shape \(shape)")
        let descr = S.self == Float.self ? "<f4" : "<f8"
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        // Magic (6) + version (2) + header length (2) + header, padded with spaces to 64 bytes, ending in \n.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let len = UInt16(header.utf8.count)
        out.append(contentsOf: [UInt8(len & 0xFF), UInt8(len >> 8)])
        out.append(contentsOf: Array(header.utf8))
        // The host's byte order is little-endian on every platform the package builds for (x86-64, arm64).
        if !data.isEmpty { data.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * MemoryLayout<S>.size)) } }
        return out
    }

    public static func write<S: BLASScalar>(_ m: DenseMatrix<S>, to url: URL) throws {
        try encode(m.data, shape: [m.rows, m.cols]).write(to: url)
    }

    public static func write(_ v: [Double], to url: URL) throws {
        try encode(v, shape: [v.count]).write(to: url)
    }
}
