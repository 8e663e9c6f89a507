import Foundation
import Testing

/// Real small and full disks: a tmpfs of a few hundred kilobytes mounted in a private mount
/// namespace (`CLI.onSmallDisk`). Each test runs its commands in one script inside it and
/// checks their exit status and their one-line errors, kept in a log directory outside.
@Suite("full disks on the command line", .serialized,
       .enabled(if: CLI.canMountSmallDisk, "needs root and mount namespaces (unshare -m) to mount a small tmpfs"))
struct CLIFullDiskTests {
    static func read(_ log: URL, _ name: String) -> String {
        (try? String(contentsOf: log.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    /// One `error: ` line that names disk full and none of the wrong stories.
    static func expectDiskFull(_ err: String, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = err.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1 && err.hasPrefix("error: "), "expected one error line, got: \(err)", sourceLocation: sourceLocation)
        for w in ["disk full"] + words {
            #expect(err.lowercased().contains(w.lowercased()), "'\(w)' not in: \(err)", sourceLocation: sourceLocation)
        }
        #expect(!err.contains("I/O error"), "a full disk reads as disk full: \(err)", sourceLocation: sourceLocation)
    }

    /// No room for the initial rows: the partial file is removed and the message says so
    /// (it used to say that the trace holds everything committed).
    @Test func tinyDiskAtCreationRemovesTheFileAndSaysSo() throws {
        let log = try temporaryDirectory()
        let r = try CLI.onSmallDisk(kilobytes: 64, log: log, """
            "$PK" train --preset moons-mlp --steps 20 --out "$DIR/t.sqlite" --quiet 2> "$LOG/train.err"; echo $? > "$LOG/train.rc"
            ls -A "$DIR" > "$LOG/ls"
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.read(log, "train.rc") == "1\n")
        let err = Self.read(log, "train.err")
        Self.expectDiskFull(err, mentions: ["creating", "removed"])
        #expect(!err.contains("holds everything"))
        #expect(Self.read(log, "ls") == "", "nothing is left on the disk")
    }

    /// The disk fills up during the run: the trace keeps every committed checkpoint and reads.
    @Test func fullDiskMidRunKeepsTheCommittedPrefix() throws {
        let log = try temporaryDirectory()
        let r = try CLI.onSmallDisk(kilobytes: 3 * 1024, log: log, """
            "$PK" train --preset moons-mlp --steps 300 --checkpoint-every 1 --out "$DIR/t.sqlite" --quiet 2> "$LOG/train.err"; echo $? > "$LOG/train.rc"
            "$PK" inspect "$DIR/t.sqlite" --json > "$LOG/inspect.json" 2> "$LOG/inspect.err"; echo $? > "$LOG/inspect.rc"
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.read(log, "train.rc") == "1\n")
        Self.expectDiskFull(Self.read(log, "train.err"), mentions: ["writing", "keeps everything committed"])
        #expect(Self.read(log, "inspect.rc") == "0\n", "\(Self.read(log, "inspect.err"))")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(Self.read(log, "inspect.json").utf8)) as? [String: Any])
        #expect((obj["checkpoints"] as? Int ?? 0) >= 1)
        #expect((obj["problems"] as? [Any])?.isEmpty == true)
    }

    /// A full disk with a closed trace on it: SQLite cannot create the -shm index to read it
    /// (this read "SQLite error 4874 … disk I/O error"); the reader opens it immutable instead.
    /// Storing an analysis then fails with "disk full", and no analysis is reported.
    @Test func fullDiskWhileReadingAndAnalyzing() throws {
        let log = try temporaryDirectory()
        let trace = log.appendingPathComponent("t.sqlite").path
        let t = try CLI.run(["train", "--preset", "moons-mlp", "--steps", "10", "--out", trace, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: trace)[.size] as? NSNumber).intValue
        // The trace plus 8 KiB: less than the 32 KiB -shm index SQLite needs to read a WAL file.
        let r = try CLI.onSmallDisk(kilobytes: (size + 1023) / 1024 + 8, log: log, """
            cp "$LOG/t.sqlite" "$DIR/t.sqlite" || exit 98
            "$PK" inspect "$DIR/t.sqlite" > /dev/null 2> "$LOG/inspect.err"; echo $? > "$LOG/inspect.rc"
            "$PK" analyze "$DIR/t.sqlite" --max-queries 5 --quiet 2> "$LOG/analyze.err"; echo $? > "$LOG/analyze.rc"
            "$PK" report "$DIR/t.sqlite" > /dev/null 2> "$LOG/report.err"; echo $? > "$LOG/report.rc"
            "$PK" inspect "$DIR/t.sqlite" --json > "$LOG/inspect.json" 2> "$LOG/inspect2.err"
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.read(log, "inspect.rc") == "0\n", "\(Self.read(log, "inspect.err"))")
        #expect(Self.read(log, "analyze.rc") == "1\n")
        Self.expectDiskFull(Self.read(log, "analyze.err"), mentions: ["free space"])
        #expect(Self.read(log, "report.rc") == "1\n")
        #expect(Self.read(log, "report.err").contains("no analysis yet"))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(Self.read(log, "inspect.json").utf8)) as? [String: Any],
                               "\(Self.read(log, "inspect2.err"))")
        #expect((obj["problems"] as? [Any])?.isEmpty == true, "the failed analysis left the trace valid")
    }
}
