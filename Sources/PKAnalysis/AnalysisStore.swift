import Foundation
import PKTrace

/// Stores analyses in their trace, keyed by their settings (canonical JSON), through PKTrace's
/// analysis tables.
public enum AnalysisStore {
    /// The canonical key of a settings value: key-sorted JSON.
    public static func key(_ s: AnalysisSettings) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(s)) ?? Data(), as: UTF8.self)
    }

    /// The JSON encoder of analysis results: snake_case keys, non-finite numbers as strings.
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return enc
    }

    public static func encode(_ r: AnalysisResult, pretty: Bool = false) -> String {
        String(decoding: (try? encoder(pretty: pretty).encode(r)) ?? Data(), as: UTF8.self)
    }

    public static func decode(_ json: String) throws -> AnalysisResult {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try dec.decode(AnalysisResult.self, from: Data(json.utf8)) } catch {
            throw AnalysisError("the stored analysis cannot be read (\(error)); run `pathkernel analyze --force` to recompute it")
        }
    }

    /// Throws when an analysis could not be stored in the trace at `path` (its directory or the
    /// file is not writable); called before computing one.
    public static func checkWritable(_ path: String) throws {
        do {
            try OutputPath.check(path)
        } catch let e as OutputError {
            throw AnalysisError("\(path): analyses are stored in the trace, and it cannot be written: \(e.detail) (or copy the trace to a writable directory)")
        }
    }


    /// Stores `r`, computed from a trace whose basis was `basis` (`TraceReader.basis()` read
    /// before the analysis started), and folds the trace's WAL into its main file, so that the
    /// main file alone holds the analysis. Returns a warning when the fold could not be done
    /// (the analysis is stored, but only in `PATH-wal` for now).
    @discardableResult
    public static func save(_ r: AnalysisResult, key: String, basis: TraceBasis?, into writer: AnalysisWriter) throws -> String? {
        try writer.save(StoredAnalysis(key: key, settingsJSON: key, resultJSON: encode(r),
                                       createdAt: ISO8601DateFormatter().string(from: Date()), toolVersion: r.toolVersion,
                                       basis: basis))
        do {
            try writer.foldWAL()
            return nil
        } catch {
            let path = writer.path
            return "the analysis is stored in \(path)-wal but could not be folded into \(path) yet (\(error)); copy both files together until a later `pathkernel analyze` folds it"
        }
    }

    /// `save` through a writer of its own.
    @discardableResult
    public static func save(_ r: AnalysisResult, key: String, settings: AnalysisSettings, path: String,
                            basis: TraceBasis? = nil) throws -> String? {
        let writer = try AnalysisWriter.open(path)
        defer { writer.close() }
        return try save(r, key: key, basis: basis, into: writer)
    }
}
