import Foundation
import Testing
import PKTrace

/// `PathNames` against the values `NSString`'s path methods give where they do not crash (on
/// Linux they crashed on one-character names: `pathkernel report T --out p`).
@Suite("Path names without NSString")
struct PathNamesTests {
    @Test func deletingLastComponent() {
        let cases = [("p", ""), ("ab", ""), ("/p", "/"), ("a/b", "a"), ("a/b/", "a"), ("/", "/"), ("", ""), ("a//b", "a"),
                     ("/x/y/z.sqlite", "/x/y"), ("./p", ".")]
        for (path, dir) in cases { #expect(PathNames.deletingLastComponent(path) == dir, "\(path)") }
    }

    @Test func lastComponentAndExtension() {
        let cases = [("p", "p", ""), ("/a/b.npy", "b.npy", "npy"), ("a/b/", "b", ""), ("/", "/", ""), (".bashrc", ".bashrc", ""),
                     ("k.tar.gz", "k.tar.gz", "gz"), ("x.", "x.", "")]
        for (path, last, ext) in cases {
            #expect(PathNames.lastComponent(path) == last, "\(path)")
            #expect(PathNames.fileExtension(path) == ext, "\(path)")
        }
        #expect(PathNames.appending("f", to: ".") == "./f" && PathNames.appending("f", to: "/") == "/f" && PathNames.appending("f", to: "") == "f")
    }

    /// `OutputPath.check` of a bare one-character name in the working directory.
    @Test func oneCharacterOutputName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-names-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(dir)
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        try OutputPath.check("p")
        try OutputPath.write("x", to: "q")
        #expect(try String(contentsOfFile: "\(dir)/q", encoding: .utf8) == "x")
    }
}
