#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import Foundation

/// The BLAS this process computes with, for benchmark reports: OpenBLAS's core (the kernels a
/// DYNAMIC_ARCH build picked at load time, from the CPU or from `OPENBLAS_CORETYPE`), its build
/// string, and the two environment variables that steer it. OpenBLAS reads them once, when the
/// library loads, so a process cannot change its own choice: a clean run unsets them for the
/// command (`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE pathkernel bench …`).
public struct BLASInfo: Codable, Sendable, Equatable {
    /// "OpenBLAS" or "Accelerate".
    public var library: String
    /// `openblas_get_corename()`, e.g. "Haswell", "Zen", "SkylakeX"; nil where unknown.
    public var coreName: String?
    /// `openblas_get_config()`, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64".
    public var config: String?
    /// `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` in this process's environment; nil when unset.
    public var openblasCoretype: String?
    public var openblasL2Size: String?

    public init(library: String, coreName: String?, config: String?, openblasCoretype: String?, openblasL2Size: String?) {
        self.library = library
        self.coreName = coreName
        self.config = config
        self.openblasCoretype = openblasCoretype
        self.openblasL2Size = openblasL2Size
    }

    /// This process's BLAS.
    public static var current: BLASInfo {
        let env = ProcessInfo.processInfo.environment
        #if canImport(Accelerate)
        return BLASInfo(library: "Accelerate", coreName: nil, config: nil,
                        openblasCoretype: env["OPENBLAS_CORETYPE"], openblasL2Size: env["OPENBLAS_L2_SIZE"])
        #else
        func string(_ p: UnsafePointer<CChar>?) -> String? {
            p.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        return BLASInfo(library: "OpenBLAS", coreName: string(pathkernel_openblas_corename()),
                        config: string(pathkernel_openblas_config()),
                        openblasCoretype: env["OPENBLAS_CORETYPE"], openblasL2Size: env["OPENBLAS_L2_SIZE"])
        #endif
    }

    /// One line: "OpenBLAS core Zen (OPENBLAS_CORETYPE unset, OPENBLAS_L2_SIZE unset)".
    public var summary: String {
        func variable(_ name: String, _ value: String?) -> String { value.map { "\(name)=\($0)" } ?? "\(name) unset" }
        return "\(library) core \(coreName ?? "unknown") (\(variable("OPENBLAS_CORETYPE", openblasCoretype)), "
            + "\(variable("OPENBLAS_L2_SIZE", openblasL2Size)))"
    }

    enum CodingKeys: String, CodingKey { case library, coreName, config, openblasCoretype, openblasL2Size }

    /// Writes every key, an unknown or unset value as null (the synthesized encoder would drop it).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(library, forKey: .library)
        try c.encode(coreName, forKey: .coreName)
        try c.encode(config, forKey: .config)
        try c.encode(openblasCoretype, forKey: .openblasCoretype)
        try c.encode(openblasL2Size, forKey: .openblasL2Size)
    }
}
