import CSQLite
import Foundation
import Testing
@testable import PKTrace

/// Where a trace or a report cannot be written, the message says why in one line.
/// Tests run as root, which `chmod` does not stop; a path under a regular *file* stands in for a
/// directory that cannot take files, and `/sys` (sysfs refuses new files even to root) for a
/// read-only directory where it exists.
@Suite("unwritable locations")
struct OutputPathTests {
    static func oneLine(_ e: Error, mentions words: [String]) {
        let text = "\(e)"
        #expect(!text.contains("\n"), "\(text)")
        for w in words { #expect(text.contains(w), "'\(w)' not in: \(text)") }
    }

    /// True where `/sys` exists and refuses a new file (checked by trying).
    static var sysRefusesFiles: Bool {
        let probe = "/sys/.pathkernel-test-\(getpid())"
        guard FileManager.default.fileExists(atPath: "/sys") else { return false }
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd >= 0 { close(fd); unlink(probe); return false }
        return true
    }

    @Test func missingDirectory() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("missing/dir/x.txt").path
        #expect { try OutputPath.write("hi", to: path) } throws: { e in
            Self.oneLine(e, mentions: ["the directory", "missing/dir does not exist", "mkdir -p"]); return e is OutputError
        }
    }

    @Test func aFileWhereADirectoryShouldBe() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: file)
        for path in [file.appendingPathComponent("x.txt").path, file.appendingPathComponent("a/b/x.txt").path] {
            #expect { try OutputPath.check(path) } throws: { e in
                Self.oneLine(e, mentions: ["plain-file is a file, not a directory"]); return true
            }
        }
        // The trace writer says the same, as a TraceError, before creating anything.
        let trace = file.appendingPathComponent("t.sqlite").path
        #expect { try TraceWriter.create(at: trace, run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout) } throws: { e in
            Self.oneLine(e, mentions: ["cannot write the trace", "is a file, not a directory"])
            if case .notWritable? = e as? TraceError { return true }
            return false
        }
    }

    @Test func aDirectoryIsNotAFileName() throws {
        let dir = try temporaryDirectory()
        #expect { try OutputPath.check(dir.path) } throws: { e in Self.oneLine(e, mentions: ["is a directory"]); return true }
    }

    /// A directory that refuses new files even to root: named as not writable, with the reason.
    @Test(.enabled(if: OutputPathTests.sysRefusesFiles, "needs a /sys that refuses new files"))
    func readOnlyDirectory() throws {
        #expect { try OutputPath.write("hi", to: "/sys/pathkernel-report.txt") } throws: { e in
            Self.oneLine(e, mentions: ["/sys is not writable"]); return true
        }
        #expect { try TraceWriter.create(at: "/sys/pathkernel.sqlite", run: Fixture.run(), data: Fixture.data(), layout: Fixture.layout) } throws: { e in
            Self.oneLine(e, mentions: ["cannot write the trace", "/sys is not writable"]); return true
        }
    }

    /// Without root, a chmod 0555 directory.
    @Test(.enabled(if: getuid() != 0, "root writes through chmod"))
    func chmodReadOnlyDirectory() throws {
        let dir = try temporaryDirectory()
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path) }
        #expect { try OutputPath.check(dir.appendingPathComponent("x.txt").path) } throws: { e in
            Self.oneLine(e, mentions: ["is not writable", "permission denied"]); return true
        }
    }

    /// SQLite's codes for a writer: SQLITE_FULL reads "disk full" with what to do; SQLITE_CANTOPEN,
    /// SQLITE_READONLY and SQLITE_PERM name the path and the permission problem.
    @Test func sqliteCodesReadAsTheirCause() throws {
        let path = try freshPath()
        let db = try SQLiteConnection(path: path, readOnly: false, create: true)
        defer { db.close() }
        let full = db.makeError(SQLITE_FULL, "appending a step")
        #expect(full == .diskFull(path: path))
        Self.oneLine(full, mentions: [path, "disk full", "free space"])
        for code in [SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM] {
            let e = db.makeError(code, "opening the file")
            guard case .notWritable = e else { Issue.record("code \(code) gave \(e)"); continue }
            Self.oneLine(e, mentions: [path, "cannot write the trace", "choose a writable location"])
        }
        Self.oneLine(db.makeError(SQLITE_READONLY, "appending a step"), mentions: ["read-only"])
        // Opening where a path component is a file: the system's reason, not "SQLite error 14".
        let file = try temporaryDirectory().appendingPathComponent("f")
        try Data().write(to: file)
        #expect { _ = try SQLiteConnection(path: file.appendingPathComponent("t.sqlite").path, readOnly: false, create: true) } throws: { e in
            Self.oneLine(e, mentions: ["cannot write the trace", "not a directory"])
            return !"\(e)".contains("SQLite error")
        }
    }
}
