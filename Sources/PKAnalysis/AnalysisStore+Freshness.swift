import Foundation
import PKTrace

extension AnalysisStore {
    /// nil when `stored` still describes the trace whose basis is now `now`; else one clause
    /// saying what the analysis covered and what the trace holds now.
    ///
    /// Analyses stored with a basis (schema v3) compare it with `now` (`TraceBasis.changes`).
    /// Older ones are compared by what their result says: the steps analyzed against the last
    /// checkpoint, and the run's status.
    public static func staleness(of stored: StoredAnalysis, result: AnalysisResult, now: TraceBasis) -> String? {
        if let basis = stored.basis { return now.changes(since: basis) }
        if result.run.steps == now.lastCheckpoint && result.run.status == now.status.rawValue { return nil }
        return "it covers \(result.run.steps) steps of a trace that was \(result.run.status); the trace is now \(now.summary)"
    }

    /// A clause saying why `stored`, found under the key of `settings`, is not what these settings
    /// compute now, or nil: a relu or leaky-relu MLP analyzed with the default settings before
    /// exact quadrature (math §1.1) was their default (on the (S)GD route first, then on every
    /// route) has Gauss quadrature's residual (its result names no quadrature).
    public static func predatesExactQuadrature(_ result: AnalysisResult, settings: AnalysisSettings) -> String? {
        guard settings.quadrature == nil, settings.adaptiveTolerance == nil, result.settings.quadrature == nil,
              result.settings.adaptiveTolerance == nil, result.reconstruction.exact == nil else { return nil }
        let words = result.run.model.split(separator: " ")
        guard words.first == "MLP", let activation = words.last, ["relu", "leaky-relu"].contains(activation) else { return nil }
        return "it was integrated with q = \(result.settings.nodes) Gauss–Legendre nodes, from before exact quadrature through the kinks was the default for \(activation) MLPs"
    }

    /// `pathkernel analyze PATH [options] --force` for the settings `stored` was computed with
    /// (the options are left out when its settings cannot be read).
    public static func refreshCommand(path: String, stored: StoredAnalysis) -> String {
        let settings = try? JSONDecoder().decode(AnalysisSettings.self, from: Data(stored.settingsJSON.utf8))
        return (["pathkernel", "analyze", path] + (settings?.commandLineArguments ?? []) + ["--force"]).joined(separator: " ")
    }
}
