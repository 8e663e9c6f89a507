import Foundation
import Testing
@testable import PKTrace

/// A fresh directory under the system temporary directory (one per test).
func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-trace-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A fresh trace path (the file does not exist yet).
func freshPath(_ name: String = "t.sqlite") throws -> String {
    try temporaryDirectory().appendingPathComponent(name).path
}

/// Runs SQL on a trace with a read-write connection, as a user with the sqlite3 tool would.
func rawSQL(_ path: String, _ sql: String) throws {
    let db = try SQLiteConnection(path: path, readOnly: false)
    defer { db.close() }
    try db.exec(sql, "test SQL")
}

enum Fixture {
    static func run(precision: Precision = .float64, task: String = "binary", outputs: Int = 1) -> RunInfo {
        RunInfo(toolVersion: "0.1.0-test", name: "fixture", seed: 0xFEDC_BA98_7654_3210, status: .running,
                statusMessage: nil, createdAt: "2025-01-31T12:00:00Z", updatedAt: "2025-01-31T12:00:00Z",
                finishedAt: nil, task: task, numOutputs: outputs, modelJSON: #"{"layers":[3,4,1]}"#,
                lossJSON: #"{"kind":"logistic"}"#, optimizerJSON: #"{"kind":"gd","learningRate":0.5}"#,
                configJSON: #"{"name":"fixture","ünïcode":"✓"}"#, precision: precision, checkpointEvery: 2,
                plannedSteps: 6)
    }

    /// 5 training and 3 test rows of 3 features, binary labels; values include awkward doubles.
    static func data() -> TraceData {
        let awkward: [Double] = [0.1, -0.0, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude, -2.5, 1.0 / 3.0]
        let trainX = (0..<15).map { i in i < awkward.count ? awkward[i] : Double(i) * 0.37 - 1 }
        return TraceData(trainX: DataArray(shape: [5, 3], values: trainX),
                         trainY: DataArray(shape: [5], values: [0, 1, 1, 0, 1]),
                         testX: DataArray(shape: [3, 3], values: (0..<9).map { sin(Double($0)) }),
                         testY: DataArray(shape: [3], values: [1, 0, 1]))
    }

    /// A 3-4-1 MLP: P = 12 + 4 + 4 + 1 = 21.
    static let layout: [TensorLayout] = [
        TensorLayout(name: "W1", shape: [4, 3], offset: 0, count: 12),
        TensorLayout(name: "b1", shape: [4], offset: 12, count: 4),
        TensorLayout(name: "W2", shape: [1, 4], offset: 16, count: 4),
        TensorLayout(name: "b2", shape: [1], offset: 20, count: 1),
    ]
    static let parameterCount = 21

    /// Deterministic parameters for checkpoint `step`, with values that do not fit Float32 exactly.
    static func parameters(step: Int, count: Int = parameterCount) -> [Double] {
        (0..<count).map { i in sin(Double(i * 31 + step * 7 + 1)) * 1.000000123 }
    }

    static func step(_ s: Int, batch: [Int32] = [0, 2, 4]) -> StepRecord {
        StepRecord(step: s, epoch: s / 2, learningRate: 0.5 / Double(s + 1), batch: batch, loss: 0.7 - 0.01 * Double(s))
    }

    /// A closed trace with steps 0..<steps and checkpoints every 2 steps plus the last.
    @discardableResult
    static func trace(at path: String, steps: Int = 6, precision: Precision = .float64) throws -> TraceWriter {
        let w = try TraceWriter.create(at: path, run: run(precision: precision), data: data(), layout: layout)
        for s in 0..<steps {
            if s % 2 == 0 { try w.appendCheckpoint(step: s, parameters: parameters(step: s)) }
            try w.appendStep(step(s))
        }
        try w.appendCheckpoint(step: steps, parameters: parameters(step: steps))
        try w.setStatus(.finished, message: nil)
        w.close()
        return w
    }
}

/// Runs `body`, expecting a `TraceError`; returns it (records a failure and returns nil otherwise).
func expectTraceError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> TraceError? {
    do {
        try body()
        Issue.record("expected a TraceError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as TraceError {
        return e
    } catch {
        Issue.record("expected a TraceError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The error's description is one line and contains each word (case-insensitive).
/// With `PK_PRINT_ERRORS` set in the environment, prints each description (to review wording).
func expectOneLine(_ e: TraceError?, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    guard let e else { return }
    let d = e.description
    if ProcessInfo.processInfo.environment["PK_PRINT_ERRORS"] != nil { print("ERR: \(d)") }
    #expect(!d.contains("\n"), "description spans lines: \(d)", sourceLocation: sourceLocation)
    for w in words {
        #expect(d.lowercased().contains(w.lowercased()), "'\(w)' not in: \(d)", sourceLocation: sourceLocation)
    }
}

/// Makes a directory and the files in it read-only for this process, in a way that holds for
/// root too (tests run as root, where `chmod` stops nothing): as root, `chattr +i` sets the
/// immutable attribute (no entry can be created or removed in the directory and no file
/// written, whoever asks; ext4 and most local file systems support it); otherwise `chmod`.
/// This is what a read-only medium or another user's directory looks like to SQLite.
enum ReadOnlyDirectory {
    /// Applies it; returns the undo, or nil when it could not be made real here.
    static func make(_ dir: URL) -> (() -> Void)? {
        let fm = FileManager.default
        let files = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).map { dir.appendingPathComponent($0).path }
        let undo: () -> Void
        if geteuid() == 0 {
            guard run("/usr/bin/chattr", ["+i"] + files + [dir.path]) else { return nil }
            undo = { _ = run("/usr/bin/chattr", ["-i", dir.path] + files) }
        } else {
            for f in files { chmod(f, 0o444) }
            chmod(dir.path, 0o555)
            undo = { chmod(dir.path, 0o755); for f in files { chmod(f, 0o644) } }
        }
        // It must be real: neither a new file nor a write to an existing one may succeed.
        let probe = dir.appendingPathComponent("probe-\(UUID().uuidString)").path
        let created = fm.createFile(atPath: probe, contents: Data([1]))
        let writable = files.contains { FileHandle(forWritingAtPath: $0) != nil }
        if created || writable {
            try? fm.removeItem(atPath: probe)
            undo()
            return nil
        }
        return undo
    }

    /// Whether `make` works on this machine (probed once on a scratch directory).
    static let isAvailable: Bool = {
        guard let dir = try? temporaryDirectory() else { return false }
        FileManager.default.createFile(atPath: dir.appendingPathComponent("f").path, contents: Data([0]))
        guard let undo = make(dir) else { return false }
        undo()
        return true
    }()

    private static func run(_ tool: String, _ args: [String]) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: tool) else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}

/// Strings appended from several threads.
final class LockedStrings: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
