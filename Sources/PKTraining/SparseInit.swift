import Foundation
import PKNetworks
import PKTrace

/// A sparse starting point for `pathkernel train --init FILE`: the parameters `w_0 = M ⊙ s` of a
/// network and its fixed mask `M` (what `pathkernel ntt` writes; Docs/bandits-and-pruning.md).
///
/// The file is JSON (Docs/bandits-and-pruning.md, "The init file"):
///
///     { "format": "pathkernel-sparse-init", "version": 1, "method": "ntt",
///       "model": {…model spec…}, "density": 0.1, "parameterCount": P,
///       "parameters": "<base64>", "parametersCRC32": n, "mask": "<base64>", "maskCRC32": n,
///       "notes": "…" }
///
/// `parameters` is base64 of P little-endian float64 (flat order of Docs/networks.md; exact:
/// no decimal round trip), `mask` base64 of P bytes, 1 = kept (trained), 0 = pruned (0 in
/// `parameters`, never trained); each with the CRC-32 of its bytes (the trace's checksum).
/// Biases are always kept. Reading checks all of it and says what is wrong in one line.
public struct SparseInit: Sendable, Equatable {
    public static let format = "pathkernel-sparse-init"
    public static let version = 1

    /// How the mask and parameters were made: `ntt`, `magnitude` (magnitude pruning of the
    /// initialization, no NTT) or `random` (a uniform random mask on a fresh initialization).
    public var method: String
    public var model: ModelSpec
    public var density: Double
    /// `M ⊙ s`, P entries (pruned ones 0).
    public var parameters: [Double]
    /// P entries, `true` = kept.
    public var mask: [Bool]
    /// Free text (the NTT settings), not read back.
    public var notes: String

    public init(method: String, model: ModelSpec, density: Double, parameters: [Double], mask: [Bool], notes: String = "") {
        precondition(parameters.count == mask.count, "SparseInit: \(parameters.count) parameters, \(mask.count) mask entries")
        self.method = method
        self.model = model
        self.density = density
        self.parameters = zip(parameters, mask).map { $1 ? $0 : 0 }
        self.mask = mask
        self.notes = notes
    }

    private struct File: Codable {
        var format: String
        var version: Int
        var method: String
        var model: ModelSpec
        var density: Double
        var parameterCount: Int
        var parameters: String
        var parametersCRC32: UInt32
        var mask: String
        var maskCRC32: UInt32
        var notes: String?
    }

    static func float64Bytes(_ v: [Double]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 * v.count)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    /// The file's bytes (sorted keys: the same init gives the same file).
    public func encoded() throws -> Data {
        let p = Self.float64Bytes(parameters), m = mask.map { UInt8($0 ? 1 : 0) }
        let f = File(format: Self.format, version: Self.version, method: method, model: model, density: density,
                     parameterCount: parameters.count, parameters: Data(p).base64EncodedString(),
                     parametersCRC32: CRC32.checksum(p), mask: Data(m).base64EncodedString(),
                     maskCRC32: CRC32.checksum(m), notes: notes)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try enc.encode(f)
    }

    /// Writes the file (replacing it only when `force`).
    public func write(to path: String, force: Bool) throws {
        if FileManager.default.fileExists(atPath: path) && !force {
            throw ConfigError("\(path) exists; choose another --out or pass --force to replace it")
        }
        try OutputPath.check(path)
        do { try encoded().write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw ConfigError("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Reads and checks an init file; every problem is a `ConfigError` naming the file.
    public static func load(path: String) throws -> SparseInit {
        func bad(_ s: String) -> ConfigError { ConfigError("init file \(path): \(s)") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw bad("cannot be read (missing or unreadable); make one with `pathkernel ntt --out \(path)`")
        }
        let f: File
        do { f = try JSONDecoder().decode(File.self, from: data) } catch {
            throw bad("is not a pathkernel sparse-init file (JSON with format \"\(format)\"): \(Self.describe(error))")
        }
        guard f.format == format else { throw bad("format is \"\(f.format)\", expected \"\(format)\"") }
        guard f.version >= 1 && f.version <= version else {
            throw bad("version \(f.version) is not understood by this pathkernel (it reads version \(version)); upgrade pathkernel")
        }
        let network: MLP
        do { network = try MLP(spec: f.model) } catch { throw bad("model: \(error)") }
        let P = network.parameterCount
        guard f.parameterCount == P else { throw bad("parameterCount \(f.parameterCount), the model has \(P) parameters") }
        guard f.density > 0 && f.density <= 1 else { throw bad("density \(f.density) is not in (0, 1]") }
        guard let p = Data(base64Encoded: f.parameters), let m = Data(base64Encoded: f.mask) else {
            throw bad("parameters or mask is not valid base64 (the file is damaged)")
        }
        guard p.count == 8 * P else { throw bad("parameters hold \(p.count) bytes, \(P) float64 need \(8 * P) (the file is damaged)") }
        guard m.count == P else { throw bad("the mask holds \(m.count) bytes, the model has \(P) parameters (the file is damaged)") }
        let pb = [UInt8](p), mb = [UInt8](m)
        guard CRC32.checksum(pb) == f.parametersCRC32 else { throw bad("parameters fail their CRC-32 (the file is damaged)") }
        guard CRC32.checksum(mb) == f.maskCRC32 else { throw bad("the mask fails its CRC-32 (the file is damaged)") }
        if let i = mb.firstIndex(where: { $0 > 1 }) { throw bad("mask byte \(i) is \(mb[i]), must be 0 or 1") }
        var values = [Double](repeating: 0, count: P)
        for k in 0..<P {
            var bits: UInt64 = 0
            for b in 0..<8 { bits |= UInt64(pb[8 * k + b]) << (8 * b) }
            values[k] = Double(bitPattern: bits)
        }
        if let k = values.firstIndex(where: { !$0.isFinite }) { throw bad("parameter \(k) is not finite") }
        let mask = mb.map { $0 == 1 }
        if let k = mask.indices.first(where: { !mask[$0] && values[$0] != 0 }) { throw bad("parameter \(k) is pruned but not 0") }
        for layer in network.layers {
            if let bo = layer.biasOffset, (bo..<(bo + layer.outputs)).contains(where: { !mask[$0] }) {
                throw bad("a bias of layers.\(layer.index) is masked; masks prune weights only")
            }
        }
        return SparseInit(method: f.method, model: f.model, density: f.density, parameters: values, mask: mask, notes: f.notes ?? "")
    }

    /// Refuses a config whose network is not the init file's.
    public func check(against config: RunConfig, path: String) throws {
        guard config.model == model else {
            let a = config.model, b = model
            var why = "the config's model differs from the init file's"
            if a.kind != b.kind || a.layers != b.layers {
                why = "the config's network \(a.kind) \(a.layers.map(String.init).joined(separator: "-")) is not the init file's \(b.kind) \(b.layers.map(String.init).joined(separator: "-"))"
            } else if a.activation != b.activation {
                why = "the config's activation \(a.activation.rawValue) is not the init file's \(b.activation.rawValue)"
            } else if a.parameterization != b.parameterization || a.sigmaW != b.sigmaW || a.sigmaB != b.sigmaB || a.bias != b.bias {
                why = "the config's parameterization, σ_w, σ_b or bias differ from the init file's"
            }
            throw ConfigError("--init \(path): \(why); use the config the file was made from")
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "the key \"\(k.stringValue)\" is missing"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}
