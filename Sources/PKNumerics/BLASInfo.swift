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

    /// The CPU's widest vector extension as `pathkernel_cpu_vector_level` reads it: 2 AVX-512,
    /// 1 AVX2 with FMA, 0 neither (or not x86, or Accelerate).
    public static var cpuVectorLevel: Int {
        #if canImport(Accelerate)
        return 0
        #else
        return Int(pathkernel_cpu_vector_level())
        #endif
    }

    /// OpenBLAS's kernels that use neither AVX2 nor AVX-512: the cores of CPUs before Haswell,
    /// and `Prescott`, the generic SSE3 kernels a DYNAMIC_ARCH build falls back to on a CPU it
    /// does not know (Debian's 0.3.21 on Intel's Emerald Rapids, model 207, measured here: DGEMM
    /// 15 GFLOP/s per core against 64 with `OPENBLAS_CORETYPE=SkylakeX`).
    static let preAVX2Cores: Set<String> = [
        "Prescott", "Katmai", "Coppermine", "Northwood", "Banias", "Core2", "Penryn", "Dunnington",
        "Nehalem", "Atom", "Sandybridge", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat",
        "Bulldozer", "Piledriver",
    ]

    /// What to do when OpenBLAS chose kernels far below the CPU (pre-AVX2 kernels on a CPU with
    /// AVX2 or AVX-512), nil otherwise, or when `OPENBLAS_CORETYPE` is set (the user's choice):
    /// the core type to set for the command (`SkylakeX` for AVX-512, `Haswell` for AVX2), which
    /// OpenBLAS reads when it loads, so the process cannot change it itself.
    public static func slowCoreAdvice(coreName: String?, coretype: String?, vectorLevel: Int) -> String? {
        guard coretype == nil, let core = coreName, preAVX2Cores.contains(core), vectorLevel > 0 else { return nil }
        let (isa, fix) = vectorLevel >= 2 ? ("AVX-512", "SkylakeX") : ("AVX2", "Haswell")
        return "OpenBLAS chose its \(core) kernels (no AVX2) on a CPU with \(isa): its matrix products run several times "
            + "slower than they can (this OpenBLAS may not know the CPU). Set OPENBLAS_CORETYPE=\(fix) for pathkernel's "
            + "commands, e.g. `OPENBLAS_CORETYPE=\(fix) pathkernel analyze …` (Docs/benchmarks.md, \"OpenBLAS's core\")"
    }

    /// `slowCoreAdvice` for this process.
    public var slowCoreAdvice: String? {
        Self.slowCoreAdvice(coreName: coreName, coretype: openblasCoretype, vectorLevel: Self.cpuVectorLevel)
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
