import Foundation
import Testing
import PKNumerics
@testable import PKData

/// A fresh, empty folder under the system temporary directory.
func temporaryDirectory(_ function: String = #function) throws -> String {
    let name = "pkdata-\(function.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))"
    let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func write(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

func decodeSpec(_ json: String) throws -> DataSpec {
    try JSONDecoder().decode(DataSpec.self, from: Data(json.utf8))
}

func bits(_ m: Matrix) -> [UInt64] { m.data.map(\.bitPattern) }

/// Runs `body`, expects a `DataError`, and returns it (nil when none was thrown).
@discardableResult
func expectDataError(_ body: () throws -> Any, mentions parts: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) -> DataError? {
    do {
        _ = try body()
        Issue.record("expected a DataError mentioning \(parts), got success", sourceLocation: sourceLocation)
        return nil
    } catch let e as DataError {
        let text = e.description
        for p in parts {
            #expect(text.contains(p), "\"\(text)\" should mention \"\(p)\"", sourceLocation: sourceLocation)
        }
        #expect(!text.contains("\n"), "DataError must be one line: \(text)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected a DataError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
