/// File-name arithmetic on path strings, in Swift: Foundation's `NSString` path methods crash on
/// some one-character paths on Linux (`pathkernel report T --out p` died in
/// `deletingLastPathComponent`), so the tools use these instead.
public enum PathNames {
    /// `path` without its last component, as `NSString.deletingLastPathComponent` gives it:
    /// trailing slashes ignored, "" for a bare name, "/" for a file at the root.
    public static func deletingLastComponent(_ path: String) -> String {
        var s = Substring(path)
        while s.count > 1 && s.hasSuffix("/") { s = s.dropLast() }
        guard let slash = s.lastIndex(of: "/") else { return "" }
        if slash == s.startIndex { return "/" }
        var dir = s[..<slash]
        while dir.count > 1 && dir.hasSuffix("/") { dir = dir.dropLast() }
        return String(dir)
    }

    /// The last component of `path` (trailing slashes ignored).
    public static func lastComponent(_ path: String) -> String {
        var s = Substring(path)
        while s.count > 1 && s.hasSuffix("/") { s = s.dropLast() }
        if s == "/" { return "/" }
        return String(s.split(separator: "/", omittingEmptySubsequences: true).last ?? "")
    }

    /// The extension of the last component, without the dot ("" when none; a leading dot does
    /// not start one: ".bashrc" has none).
    public static func fileExtension(_ path: String) -> String {
        let name = lastComponent(path)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return String(name[name.index(after: dot)...])
    }

    /// `directory/name` (no doubled slash).
    public static func appending(_ name: String, to directory: String) -> String {
        directory.isEmpty ? name : directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
