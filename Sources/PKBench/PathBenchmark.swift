import Foundation
import PKAnalysis
import PKNetworks
import PKTrace
import PKTraining

/// W2 and W3: a recorded full-batch GD run of W1's network on 1,000 teacher points (100 steps),
/// then its path analysis, timed against the training run itself.
///
/// W2: 1 output, MSE; the analysis is `--scope exact` with q = 4 and 200 held-out queries (the
/// exact decomposition and K^p(queries, X)), in float64 and float32. W3: 10 outputs, cross-entropy
/// (teacher classification), `--kernel trace` and `--kernel full`, float64.
public enum PathBenchmark {
    public static func config(outputs: Int) -> RunConfig {
        let classes = outputs > 1
        let json = """
        {"name": "bench-w\(classes ? 3 : 2)", "seed": 1,
         "data": {"kind": "teacher", "train": 1000, "test": 200, "inputDim": 64, "teacherWidths": [64],
                  "outputDim": \(outputs)\(classes ? ", \"task\": \"multiclass\"" : "")},
         "model": {"kind": "mlp", "layers": [64, 512, 512, 512, \(outputs)], "activation": "relu",
                   "parameterization": "ntk", "sigmaW": 1.4142135623730951, "sigmaB": 0.1},
         "loss": {"kind": "\(classes ? "cross-entropy" : "mse")"},
         "optimizer": {"kind": "gd", "learningRate": \(classes ? 1.0 : 0.5)},
         "training": {"steps": 100, "checkpointEvery": 1}}
        """
        return try! RunConfig.decode(Data(json.utf8), source: "bench")
    }

    public struct Analysis: Codable, Sendable {
        public var seconds: Double
        public var peakMemoryBytes: Int?
        /// `seconds / training seconds`.
        public var ratioToTraining: Double
        /// Relative reconstruction residual on the held-out queries (JVP route).
        public var residual: Double?
        /// Largest |f_T − exact| on the held-out queries (kernel route).
        public var kernelFormMaxAbs: Double?
    }

    public struct W2: Codable, Sendable {
        public var trainingSeconds: Double
        public var recordingSeconds: Double
        /// The float64 analysis (`f64` repeated at the top level, as the issue names them).
        public var seconds: Double
        public var peakMemoryBytes: Int?
        public var ratioToTraining: Double
        public var f64: Analysis
        public var f32: Analysis
    }

    public struct W3: Codable, Sendable {
        public var trainingSeconds: Double
        public var recordingSeconds: Double
        public var trace: Analysis
        public var full: Analysis
    }

    /// Trains `config` once without and once with recording; returns the times and the trace.
    static func train(_ config: RunConfig, in dir: URL, log: (String) -> Void) throws -> (seconds: Double, recording: Double, path: String) {
        let trainer = try Trainer(config: config)
        log("\(config.name): training \(config.training.steps) steps (\(trainer.model.parameterCount) parameters)")
        let seconds = Measure.seconds { trainer.run(observers: []) }
        let path = dir.appendingPathComponent("\(config.name).sqlite").path
        let recorder = TraceRecorder(path: path)
        let recording = try Measure.seconds {
            trainer.run(observers: [recorder])
            try recorder.finish()
        }
        return (seconds, recording, path)
    }

    static func analyze(_ path: String, _ settings: AnalysisSettings, training: Double, log: (String) -> Void) throws -> Analysis {
        log("analyzing: kernel \(settings.kernel?.rawValue ?? "auto"), \(settings.precision.rawValue)")
        let reader = try TraceReader.open(path)
        Measure.resetPeakMemory()
        var result: AnalysisResult? = nil
        let seconds = try Measure.seconds { result = try PathAnalyzer(settings: settings).analyze(reader: reader) }
        let test = result?.reconstruction.test
        return Analysis(seconds: seconds, peakMemoryBytes: Measure.peakMemory(), ratioToTraining: seconds / training,
                        residual: test?.relativeResidual, kernelFormMaxAbs: test?.kernelFormMaxAbs)
    }

    /// A scratch folder for one benchmark process's traces (the caller removes it).
    public static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pathkernel-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func settings(kernel: KernelMode, precision: AnalysisSettings.Precision) -> AnalysisSettings {
        AnalysisSettings(nodes: 4, queries: .test, maxQueries: 200, kernel: kernel, precision: precision, scope: .exact)
    }

    public static func runW2(log: (String) -> Void = { _ in }) throws -> W2 {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (training, recording, path) = try train(config(outputs: 1), in: dir, log: log)
        let f64 = try analyze(path, settings(kernel: .full, precision: .f64), training: training, log: log)
        let f32 = try analyze(path, settings(kernel: .full, precision: .f32), training: training, log: log)
        return W2(trainingSeconds: training, recordingSeconds: recording, seconds: f64.seconds, peakMemoryBytes: f64.peakMemoryBytes,
                  ratioToTraining: f64.ratioToTraining, f64: f64, f32: f32)
    }

    public static func runW3(log: (String) -> Void = { _ in }) throws -> W3 {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (training, recording, path) = try train(config(outputs: 10), in: dir, log: log)
        let trace = try analyze(path, settings(kernel: .trace, precision: .f64), training: training, log: log)
        let full = try analyze(path, settings(kernel: .full, precision: .f64), training: training, log: log)
        return W3(trainingSeconds: training, recordingSeconds: recording, trace: trace, full: full)
    }
}
