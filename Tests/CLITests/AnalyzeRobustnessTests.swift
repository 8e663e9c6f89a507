import Foundation
import Testing
import PKTrace

/// `analyze` killed while it works, and two `analyze` processes on one trace at once.
@Suite("analyze under SIGKILL and concurrency", .serialized)
struct CLIAnalyzeRobustnessTests {
    static func trace(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("m.sqlite").path
        let t = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "6", "--out", path, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        return path
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["PATHKERNEL_PRESETS"] = CLI.repoRoot.appendingPathComponent("Traces/presets").path
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// The settings (`max_queries`) of the analysis `report` shows; fails unless it is complete.
    static func reportedMaxQueries(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
        let r = try CLI.run(["report", path, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)", sourceLocation: sourceLocation)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
                               "the stored analysis is not complete JSON", sourceLocation: sourceLocation)
        #expect(obj["kernel_machines"] != nil && obj["reconstruction"] != nil, sourceLocation: sourceLocation)
        return (obj["settings"] as? [String: Any])?["max_queries"] as? Int
    }

    /// SIGKILL while analyze runs, at several moments: right when its results start reaching
    /// the -wal (the save), and at fixed times during the analysis. Each time the trace stays
    /// valid and the report shows the old analysis or the complete new one, never a partial one.
    @Test func killedAnalyzeLeavesTheOldOrTheNewAnalysis() throws {
        let dir = try temporaryDirectory()
        let path = try Self.trace(in: dir)
        let first = try CLI.run(["analyze", path, "--max-queries", "4", "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        var killedDuringSave = false
        // The kill at the save is a race with a fast save: up to three tries to land one (each
        // try is checked like the others).
        for delay in [nil, nil, nil, 0.5, 2.0] as [Double?] {
            if delay == nil && killedDuringSave { continue }
            let p = try Self.start(["analyze", path, "--max-queries", "6", "--force", "--quiet"])
            let deadline = Date().addingTimeInterval(120)
            if let delay {
                usleep(UInt32(delay * 1e6))
            } else {
                // Until the save writes its first frame into the (empty) -wal.
                while p.isRunning && Date() < deadline && Self.size(path + "-wal") == 0 { usleep(200) }
                killedDuringSave = p.isRunning
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let shown = try Self.reportedMaxQueries(path)
            #expect(shown == 4 || shown == 6, "delay \(String(describing: delay)): report shows \(String(describing: shown))")
            let i = try CLI.run(["inspect", path, "--json"])
            #expect(i.status == 0, "\(i.stderr)")
            let obj = try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any]
            #expect((obj?["problems"] as? [Any])?.isEmpty == true)
        }
        #expect(killedDuringSave, "the kill at the save came too late (the process had finished)")
        // A later analyze folds whatever the killed ones left and stores a complete analysis.
        let last = try CLI.run(["analyze", path, "--max-queries", "6", "--force", "--quiet"])
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try Self.reportedMaxQueries(path) == 6)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["m.sqlite"])
    }

    /// Two analyze processes on one trace at once, on a trace of the previous schema version (so
    /// both also upgrade it): both exit cleanly, and the trace holds complete analyses.
    @Test(.enabled(if: CLI.hasSQLite3, "needs the sqlite3 tool"))
    func twoAnalyzeProcessesAtOnce() throws {
        let dir = try temporaryDirectory()
        let path = try Self.trace(in: dir)
        // Back to schema v2, as an older pathkernel wrote it.
        try CLI.sqlite(path, """
            ALTER TABLE analysis DROP COLUMN basis_status; ALTER TABLE analysis DROP COLUMN basis_last_step;
            ALTER TABLE analysis DROP COLUMN basis_last_checkpoint; ALTER TABLE analysis DROP COLUMN basis_checkpoint_checksum;
            DROP TABLE parameter_mask;
            DELETE FROM schema_migrations WHERE version IN (3, 4);
            """)
        #expect(try TraceReader.open(path).schemaVersion == 2)
        for argsB in [["--max-queries", "5"], ["--max-queries", "7"]] {   // same settings, then different ones
            let outA = dir.appendingPathComponent("a.err"), outB = dir.appendingPathComponent("b.err")
            FileManager.default.createFile(atPath: outA.path, contents: nil)
            FileManager.default.createFile(atPath: outB.path, contents: nil)
            func launch(_ extra: [String], _ err: URL) throws -> Process {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: CLI.binary)
                p.arguments = ["analyze", path, "--force", "--quiet"] + extra
                p.standardOutput = FileHandle.nullDevice
                p.standardError = try FileHandle(forWritingTo: err)
                try p.run()
                return p
            }
            let a = try launch(["--max-queries", "5"], outA)
            let b = try launch(argsB, outB)
            a.waitUntilExit()
            b.waitUntilExit()
            let errA = try String(contentsOf: outA, encoding: .utf8), errB = try String(contentsOf: outB, encoding: .utf8)
            #expect(a.terminationStatus == 0 && errA.isEmpty, "\(errA)")
            #expect(b.terminationStatus == 0 && errB.isEmpty, "\(errB)")
            let reader = try TraceReader.open(path)
            #expect(reader.schemaVersion == 4)   // both migrations applied (v3 basis, v4 parameter_mask)
            let stored = try reader.analyses()
            #expect(stored.count == Set(["5", argsB[1]]).count, "one analysis per settings key")
            #expect(stored.allSatisfy { $0.basis != nil })
            #expect(try reader.validate().problems == [])
            reader.close()
            let shown = try Self.reportedMaxQueries(path)
            #expect(shown == 5 || shown == 7)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("m.sqlite") } == ["m.sqlite"])
    }
}
