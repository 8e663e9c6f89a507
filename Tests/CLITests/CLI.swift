import Foundation
import Testing

/// Runs the built `pathkernel` executable as a child process.
enum CLI {
    /// `$PATHKERNEL_BIN`, else `pathkernel` next to the test bundle, else `.build/debug/pathkernel`.
    static var binary: String {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["PATHKERNEL_BIN"], fm.isExecutableFile(atPath: env) { return env }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 {
            let c = dir.appendingPathComponent("pathkernel").path
            if fm.isExecutableFile(atPath: c) { return c }
            dir = dir.deletingLastPathComponent()
        }
        return repoRoot.appendingPathComponent(".build/debug/pathkernel").path
    }

    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var terminatedBySignal: Bool
    }

    /// Runs to completion (or kills after `timeout` seconds and records a failure).
    @discardableResult
    static func run(_ args: [String], timeout: Double = 120, cwd: URL? = nil, environment: [String: String] = [:]) throws -> Result {
        try execute(binary, args, timeout: timeout, cwd: cwd, environment: environment, what: "pathkernel \(args.joined(separator: " "))")
    }

    /// Runs `executable` with the presets' environment plus `environment`, draining both pipes
    /// concurrently (a chatty child never blocks); kills it after `timeout` s (and records a failure).
    static func execute(_ executable: String, _ args: [String], timeout: Double = 120, cwd: URL? = nil,
                        environment: [String: String], what: String) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        var env = ProcessInfo.processInfo.environment
        env["PATHKERNEL_PRESETS"] = repoRoot.appendingPathComponent("Traces/presets").path
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let outData = LockedData(), errData = LockedData()
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                sink.set(pipe.fileHandleForReading.readDataToEndOfFile())
                group.leave()
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            Issue.record("\(what) did not finish within \(timeout) s")
        }
        p.waitUntilExit()
        group.wait()
        return Result(status: p.terminationStatus, stdout: outData.string, stderr: errData.string,
                      terminatedBySignal: p.terminationReason == .uncaughtSignal)
    }

    /// Runs `sqlite3 FILE SQL` (the Debian `sqlite3` tool), for corrupting traces in tests.
    @discardableResult
    static func sqlite(_ file: String, _ sql: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sqlite3", file, sql]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs `script` (sh) in a private mount namespace where a tmpfs of `kilobytes` is mounted
    /// at `$DIR`: a real small or full disk, invisible to other processes and gone when the
    /// script ends. `$PK` is the pathkernel binary; `$LOG` a directory outside the small disk.
    static func onSmallDisk(kilobytes: Int, log: URL, _ script: String) throws -> Result {
        let mountPoint = try temporaryDirectory()
        return try shell("""
            set -u
            mount -t tmpfs -o size=\(kilobytes)k tmpfs "$DIR" || exit 99
            \(script)
            """, unshare: true, environment: ["DIR": mountPoint.path, "PK": binary, "LOG": log.path])
    }

    /// Whether `onSmallDisk` works here (root with mount namespaces: `unshare -m` and tmpfs).
    static let canMountSmallDisk: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), let log = try? temporaryDirectory(),
              let r = try? onSmallDisk(kilobytes: 64, log: log, "touch \"$DIR/x\" && df \"$DIR\" | grep -q tmpfs") else { return false }
        return r.status == 0
    }()

    static func shell(_ script: String, unshare: Bool, environment: [String: String]) throws -> Result {
        try execute(unshare ? "/usr/bin/unshare" : "/bin/sh", unshare ? ["-m", "/bin/sh", "-c", script] : ["-c", script],
                    timeout: 600, environment: environment, what: "sh script")
    }

    static var hasSQLite3: Bool {
        ["/usr/bin/sqlite3", "/usr/local/bin/sqlite3", "/opt/homebrew/bin/sqlite3"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    var string: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

/// A fresh temporary folder per test.
func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pathkernel-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
