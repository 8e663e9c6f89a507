// swift-tools-version:6.0
// pathkernel: turn a gradient-descent training run into an explicit kernel machine.
//
// Dependencies point one way (top depends on bottom, never back):
//
//   pathkernel (CLI) ── PKTraining ── PKStep ── PKNetworks ── PKNumerics ── CBLAS, CKernels
//                                            └─ PKOptim ── PKNumerics
//                                  └─ PKData ── PKNumerics
//                     └─ PKTrace ── CSQLite, CCRC32    (the trace store knows SQLite alone, and one C CRC-32 kernel)
//   PKTraining, PKAnalysis ── PKTraceCheck ── PKNetworks, PKOptim, PKTrace   (a trace's contents checked once)
//                     └─ PKBench ── PKTraining, PKAnalysis  (benchmarks only)
//                     └─ PKSweep ── PKTraining, PKAnalysis, PKReport  (width sweeps: train, then diagnose)
//
// PKOptim (losses, optimizers as value transformations) knows no network; PKStep, one gradient
// step of a network, joins them for training and the analyzer's replay.
// PKAnalysis depends on PKNetworks, PKOptim, PKStep and PKTrace, never on PKTraining;
// PKReport depends on PKAnalysis alone (reports are pure functions of analysis results, and for
// HTML of the plain values the CLI reads from the trace beside it, `ReportData`).
import PackageDescription

let package = Package(
    name: "pathkernel",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pathkernel", targets: ["pathkernel"]),
        .library(name: "PathKernel", targets: ["PKNumerics", "PKNetworks", "PKData", "PKOptim", "PKStep", "PKTrace", "PKTraceCheck", "PKTraining",
                                               "PKAnalysis", "PKReport", "PKBench", "PKSweep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        /// CRC-32 by carry-less multiplication (x86-64 PCLMULQDQ; elsewhere PKTrace's table loop).
        .target(name: "CCRC32"),
        /// Elementwise kernels of the analyzer's hot loops (baseline and AVX2, the same bits).
        .target(name: "CKernels"),

        // MARK: - Public API
        /// Dense matrices, GEMM through CBLAS, Gauss–Legendre rules, the portable RNG.
        .target(name: "PKNumerics", dependencies: [
            .target(name: "CBLAS", condition: .when(platforms: [.linux])),
            "CKernels",
            .product(name: "RealModule", package: "swift-numerics"),
        ]),
        /// Model specs, MLPs, forward/backward passes, Jacobians.
        .target(name: "PKNetworks", dependencies: ["PKNumerics"]),
        /// Losses, optimizers (pure value transformations), learning-rate schedules. No network.
        .target(name: "PKOptim", dependencies: ["PKNumerics"]),
        /// One gradient step of a network on a batch: the single definition training and the
        /// analyzer's replay share (so a replay reproduces a recorded run bit for bit).
        .target(name: "PKStep", dependencies: ["PKNumerics", "PKNetworks", "PKOptim"]),
        /// Dataset generators and file loaders (CSV, IDX).
        .target(name: "PKData", dependencies: ["PKNumerics", "CZlib"]),
        /// The SQLite trace store. Depends on SQLite alone.
        .target(name: "PKTrace", dependencies: ["CSQLite", "CCRC32"]),
        /// The rules of a trace's contents that need the model, loss and optimizer (layout, task,
        /// targets, step rows): one check shared by `inspect` and `analyze` (and the one conversion
        /// of its data arrays to matrices, `DataArray.matrix`).
        .target(name: "PKTraceCheck", dependencies: ["PKNumerics", "PKNetworks", "PKOptim", "PKTrace"]),
        /// Run configs, presets, the training loop and its observers (progress, recording).
        .target(name: "PKTraining", dependencies: ["PKNumerics", "PKNetworks", "PKOptim", "PKStep", "PKData", "PKTrace", "PKTraceCheck"]),
        /// The path-kernel analyzer: replay, path integration, kernel machines, fidelity.
        /// Never links the training loop.
        .target(name: "PKAnalysis", dependencies: ["PKNumerics", "PKNetworks", "PKOptim", "PKStep", "PKTrace", "PKTraceCheck"]),
        /// Benchmarks (`pathkernel bench`): W1–W3 and their export for peer tools. Never in tests' timing.
        .target(name: "PKBench", dependencies: ["PKNumerics", "PKNetworks", "PKData", "PKTrace", "PKTraining", "PKAnalysis"]),
        /// Width sweeps (`pathkernel sweep`): train a config at several hidden widths and seeds,
        /// diagnose every run with the analyzer's code, tabulate the scaling (ntk-family §5).
        .target(name: "PKSweep", dependencies: ["PKNumerics", "PKTraining", "PKTrace", "PKAnalysis", "PKReport"]),
        /// Reports: pure functions of analysis results (text, Markdown, JSON; HTML with inline SVG figures).
        .target(name: "PKReport", dependencies: ["PKAnalysis"]),
        /// The command line: thin, calls library code only.
        .executableTarget(name: "pathkernel", dependencies: [
            "PKTraining", "PKTrace", "PKAnalysis", "PKReport", "PKBench", "PKSweep",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: - Unit test bundles
        .testTarget(name: "PKNumericsTests", dependencies: ["PKNumerics"]),
        .testTarget(name: "PKNetworksTests", dependencies: ["PKNetworks", "PKOptim"]),
        .testTarget(name: "PKOptimTests", dependencies: ["PKOptim"]),
        .testTarget(name: "PKDataTests", dependencies: ["PKData"]),
        .testTarget(name: "PKTraceTests", dependencies: ["PKTrace"]),
        .testTarget(name: "PKTrainingTests", dependencies: ["PKTraining"]),
        .testTarget(name: "PKAnalysisTests", dependencies: ["PKAnalysis", "PKTraining"]),
        .testTarget(name: "PKReportTests", dependencies: ["PKReport"], exclude: ["Golden"]),
        .testTarget(name: "PKBenchTests", dependencies: ["PKBench", "PKNetworks", "PKNumerics", "PKAnalysis"]),
        .testTarget(name: "PKSweepTests", dependencies: ["PKSweep", "PKAnalysis", "PKReport", "PKTraining"]),
        .testTarget(name: "CLITests", dependencies: ["PKTraining", "PKTrace", "PKData"]),
    ],
    swiftLanguageModes: [.v6]
)
