import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a file can be written at a path, said in one line before any work is done, and a
/// text writer whose failures read the same way (the directory does not exist, is a file, is
/// not writable, the disk is full) instead of Foundation's error dumps.
public enum OutputPath {
    /// Throws an `OutputError` when a file cannot be created (or replaced) at `path`: its
    /// directory is missing or is a file, the directory or an existing file is not writable
    /// (permissions, a read-only file system), or `path` is a directory. The directory is tested
    /// by creating (and removing) an empty file in it, so that a location that refuses even root
    /// (a read-only mount, /proc, /sys) is caught here too, with the system's reason.
    public static func check(_ path: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw OutputError(path: path, detail: "this is a directory; give a file name")
        }
        let dir = directory(of: path)
        guard fm.fileExists(atPath: dir, isDirectory: &isDir) else {
            // The nearest existing ancestor: a file there is the real problem.
            var ancestor = PathNames.deletingLastComponent(dir)
            while !ancestor.isEmpty && !fm.fileExists(atPath: ancestor, isDirectory: &isDir) {
                ancestor = PathNames.deletingLastComponent(ancestor)
            }
            if !ancestor.isEmpty && !isDir.boolValue {
                throw OutputError(path: path, detail: "\(ancestor) is a file, not a directory; choose another location")
            }
            throw OutputError(path: path, detail: "the directory \(dir) does not exist; create it first (mkdir -p \(dir)) or choose another location")
        }
        guard isDir.boolValue else {
            throw OutputError(path: path, detail: "\(dir) is a file, not a directory; choose another location")
        }
        let probe = PathNames.appending(".pathkernel-write-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", to: dir)
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd < 0 {
            let code = errno
            // ENOENT for an existing directory: its file system takes no new files (/proc).
            let why = code == ENOENT ? "its file system does not allow new files" : explain(errno: code)
            throw OutputError(path: path, detail: "the directory \(dir) is not writable (\(why)); choose a writable location or change its permissions")
        }
        close(fd)
        unlink(probe)
        if fm.fileExists(atPath: path), access(path, W_OK) != 0 {
            throw OutputError(path: path, detail: "the file is not writable (\(explain(errno: errno))); choose another location or change its permissions")
        }
    }

    /// Writes `text` to `path` (atomically, through a temporary file in the same directory),
    /// after `check`; a failure names its cause in one line.
    public static func write(_ text: String, to path: String) throws {
        try check(path)
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw OutputError(path: path, detail: "cannot write the file: \(explain(error))")
        }
    }

    /// Writes `bytes` to `path` (atomically, through a temporary file in the same directory),
    /// after `check`; a failure names its cause in one line.
    public static func write(_ bytes: Data, to path: String) throws {
        try check(path)
        do {
            try bytes.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw OutputError(path: path, detail: "cannot write the file: \(explain(error))")
        }
    }

    /// The directory a file at `path` goes into ("." for a bare name).
    static func directory(of path: String) -> String {
        let dir = PathNames.deletingLastComponent(path)
        return dir.isEmpty ? "." : dir
    }

    /// A POSIX error number in words, with what to do where there is something to do.
    public static func explain(errno code: Int32) -> String {
        switch code {
        case EACCES, EPERM: return "permission denied"
        case EROFS: return "read-only file system"
        case ENOSPC: return "disk full; free space and try again"
        case EDQUOT: return "disk quota exceeded; free space and try again"
        case ENOENT: return "no such file or directory"
        case ENOTDIR: return "a component of the path is not a directory"
        case EISDIR: return "it is a directory"
        default: return String(cString: strerror(code))
        }
    }

    /// Foundation's file errors in words (their POSIX cause when they carry one).
    static func explain(_ error: Error) -> String {
        if let posix = error as? POSIXError { return explain(errno: posix.code.rawValue) }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return explain(errno: Int32(ns.code)) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? Error {
            let u = underlying as NSError
            if u.domain == NSPOSIXErrorDomain { return explain(errno: Int32(u.code)) }
        }
        return ns.localizedDescription
    }
}

/// A file that cannot be written where asked, in one line: the path, why, and what to do.
public struct OutputError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let detail: String
    public init(path: String, detail: String) {
        self.path = path
        self.detail = detail
    }
    public var description: String { "\(path): \(detail)" }
}
