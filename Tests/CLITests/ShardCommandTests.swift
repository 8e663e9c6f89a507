import Foundation
import Testing

/// `analyze --shard I/N --out PART` and `merge` end to end (Docs/scale-out.md), and every
/// subcommand's help at 80 columns.
@Suite("pathkernel analyze --shard and merge", .serialized)
struct ShardCommandTests {
    /// Every number of the merged report against the single-process one, relative to
    /// max(|value|, 1) (as ShardMergeTests in the library).
    static let tolerance = 1e-12

    static func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// The largest relative difference over the numbers of two JSON values (`seconds`,
    /// `sharding` and `tool_version` left out); nil when anything but a number differs.
    static func largestDifference(_ x: Any, _ y: Any) -> Double? {
        let ignored: Set<String> = ["seconds", "sharding", "tool_version"]
        if let a = x as? [String: Any], let b = y as? [String: Any] {
            guard Set(a.keys).subtracting(ignored) == Set(b.keys).subtracting(ignored) else { return nil }
            var worst = 0.0
            for k in a.keys where !ignored.contains(k) {
                guard let d = largestDifference(a[k]!, b[k]!) else { return nil }
                worst = max(worst, d)
            }
            return worst
        }
        if let a = x as? [Any], let b = y as? [Any] {
            guard a.count == b.count else { return nil }
            var worst = 0.0
            for (u, v) in zip(a, b) {
                guard let d = largestDifference(u, v) else { return nil }
                worst = max(worst, d)
            }
            return worst
        }
        if let a = x as? NSNumber, let b = y as? NSNumber, !(x is String) {
            let (u, v) = (a.doubleValue, b.doubleValue)
            return u == v ? 0 : abs(u - v) / max(abs(u), abs(v), 1)
        }
        return "\(x)" == "\(y)" ? 0 : nil
    }

    @Test func shardsMergeToTheSingleProcessAnalysis() throws {
        let dir = try temporaryDirectory()
        let trace = dir.appendingPathComponent("m.sqlite").path, copy = dir.appendingPathComponent("single.sqlite").path
        let t = try CLI.run(["train", "--preset", "teacher-adam", "--steps", "5", "--out", trace, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        try FileManager.default.copyItem(atPath: trace, toPath: copy)
        let options = ["--max-queries", "20"]
        let single = try CLI.run(["analyze", copy, "--quiet"] + options)
        #expect(single.status == 0, "\(single.stderr)")
        var parts: [String] = []
        for i in 0..<3 {
            let part = dir.appendingPathComponent("part-\(i).sqlite").path
            let s = try CLI.run(["analyze", trace, "--shard", "\(i)/3", "--out", part, "--quiet"] + options)
            #expect(s.status == 0 && s.stdout.contains("shard \(i)/3"), "\(s.stdout)\(s.stderr)")
            parts.append(part)
        }
        // The shards only read the trace: nothing stored yet.
        #expect(try CLI.run(["report", trace]).status != 0)
        let incomplete = try CLI.run(["merge", trace, parts[0], parts[2]])
        #expect(incomplete.status != 0 && incomplete.stderr.contains("1 of 3 shards missing (1/3)"), "\(incomplete.stderr)")
        let twice = try CLI.run(["merge", trace, parts[0], parts[1], parts[1], parts[2]])
        #expect(twice.status != 0 && twice.stderr.contains("given twice"), "\(twice.stderr)")
        let m = try CLI.run(["merge", trace, parts[2], parts[0], parts[1]])
        #expect(m.status == 0 && m.stdout.contains("analysis of 3 shards stored in"), "\(m.stdout)\(m.stderr)")
        let a = try Self.json(try CLI.run(["report", copy, "--format", "json"]).stdout)
        let b = try Self.json(try CLI.run(["report", trace, "--format", "json"]).stdout)
        let d = try #require(Self.largestDifference(a, b), "the reports differ in more than numbers")
        #expect(d <= Self.tolerance, "largest relative difference \(d)")
        let sharding = try #require((b as? [String: Any])?["sharding"] as? [String: Any])
        #expect(sharding["shards"] as? Int == 3)
        // With the same options, `analyze` now finds the merged analysis stored.
        let again = try CLI.run(["analyze", trace] + options)
        #expect(again.status == 0 && again.stderr.contains("using the stored analysis"), "\(again.stderr)")
        // A part of another trace is refused, naming it.
        let other = dir.appendingPathComponent("other.sqlite").path
        #expect(try CLI.run(["train", "--preset", "teacher-adam", "--steps", "4", "--out", other, "--quiet"]).status == 0)
        let foreign = try CLI.run(["merge", other] + parts)
        #expect(foreign.status != 0 && foreign.stderr.contains("part-0.sqlite is a part of another trace"), "\(foreign.stderr)")
        let notPart = try CLI.run(["merge", trace, parts[0], parts[1], other])
        #expect(notPart.status != 0 && notPart.stderr.contains("not a pathkernel analysis part"), "\(notPart.stderr)")
    }

    @Test func badShardOptionsAreRefused() throws {
        let dir = try temporaryDirectory()
        let trace = dir.appendingPathComponent("m.sqlite").path
        #expect(try CLI.run(["train", "--preset", "moons-mlp", "--steps", "2", "--out", trace, "--quiet"]).status == 0)
        for (args, words) in [(["--shard", "3/3", "--out", "p"], ["0 to N − 1"]), (["--shard", "1/2"], ["--out PART"]),
                              (["--out", "p"], ["--shard I/N"]), (["--shard", "x", "--out", "p"], ["I/N"]),
                              (["--shard", "0/2", "--out", "p", "--adaptive", "1e-6"], ["--adaptive"]),
                              (["--shard", "0/100000", "--out", "p"], ["N ≤ 10000"])] {
            let r = try CLI.run(["analyze", trace] + args)
            #expect(r.status != 0, "\(args)")
            for w in words { #expect(r.stderr.contains(w), "\(args): \(r.stderr)") }
        }
        let none = try CLI.run(["merge", trace])
        #expect(none.status != 0 && none.stderr.contains("merge needs the parts"), "\(none.stderr)")
    }

    /// Every command's help fits 80 columns.
    @Test func everyHelpFitsEightyColumns() throws {
        let top = try CLI.run(["--help"])
        #expect(top.status == 0)
        let commands = ["demo", "train", "inspect", "analyze", "merge", "report", "presets", "bench", "kernel", "ntk", "predict-linear", "ntrf", "cntk", "bandit", "sweep", "ntt"]
        for command in [nil] + commands.map(Optional.some) {
            let r = try CLI.run((command.map { [$0] } ?? []) + ["--help"])
            #expect(r.status == 0, "\(command ?? "pathkernel")")
            for line in r.stdout.split(separator: "\n") {
                #expect(line.count <= 80, "\(command ?? "pathkernel") --help: \(line.count) columns: \(line)")
            }
        }
    }
}
