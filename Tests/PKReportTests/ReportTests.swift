import Foundation
import Testing
@testable import PKAnalysis
@testable import PKReport

/// Golden files live next to this file in `Golden/`. They are re-recorded only on request:
/// `PATHKERNEL_RECORD_GOLDEN=1 swift test --filter PKReportTests`, never silently.
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static var recording: Bool { ProcessInfo.processInfo.environment["PATHKERNEL_RECORD_GOLDEN"] == "1" }

    static func result() throws -> AnalysisResult {
        try AnalysisStore.decode(String(contentsOf: directory.appendingPathComponent("result.json"), encoding: .utf8))
    }

    static func check(_ text: String, against name: String) throws {
        let url = directory.appendingPathComponent(name)
        if recording {
            try text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        if text != expected {
            let a = text.split(separator: "\n", omittingEmptySubsequences: false)
            let b = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }
            Issue.record("report differs from Golden/\(name) at line \((first?.offset ?? min(a.count, b.count)) + 1): got '\(first?.element.0 ?? "")', expected '\(first?.element.1 ?? "")' (re-record with PATHKERNEL_RECORD_GOLDEN=1 if the change is intended)")
        }
    }
}

@Suite("Reports")
struct ReportTests {
    @Test func textReportMatchesGolden() throws {
        let text = Report.render(try Golden.result(), format: .text)
        try Golden.check(text, against: "report.txt")
        for line in text.split(separator: "\n") { #expect(line.count <= 80, "line wider than 80 columns: \(line)") }
    }

    /// The kernel used for the optimizer gets its own line (text and Markdown) and JSON key;
    /// results from before it was recorded print none.
    @Test func pathKernelIsNamed() throws {
        var r = try Golden.result()
        #expect(!Report.render(r, format: .text).contains("\nkernel     "))
        r.settings.pathKernel = "preconditioned path kernel (Adam): J̄_t(x) D J(x_i; w_s)ᵀ, exact"
        for format in [ReportFormat.text, .markdown] {
            let lines = Report.render(r, format: format).split(separator: "\n").map(String.init)
            let i = try #require(lines.firstIndex { $0.contains("kernel     preconditioned path kernel (Adam)") })
            #expect(lines[i - 1].contains("settings"))
        }
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(Report.render(r, format: .json).utf8)) as? [String: Any])
        #expect((obj["settings"] as? [String: Any])?["path_kernel"] as? String == r.settings.pathKernel)
    }

    /// `--scope exact` computes no dynamics, no training-point fidelity and no train accuracy:
    /// the text and Markdown reports leave those sections, columns and words out instead of
    /// printing empty ones or dashes.
    @Test func sectionsWithoutDataAreOmitted() throws {
        var r = try Golden.result()
        r.dynamics = []
        r.run.networkTrainAccuracy = nil
        r.kernelMachines = r.kernelMachines.filter { ["exact", "path-km"].contains($0.name) }
        for i in r.kernelMachines.indices { r.kernelMachines[i].train = nil }
        for format in [ReportFormat.text, .markdown] {
            let text = Report.render(r, format: format)
            #expect(!text.contains("Along training"), "\(text)")
            #expect(!text.contains("accuracy – train") && !text.contains(" train,"), "\(text)")
            #expect(text.contains("Kernel machines against the network") && text.contains("path-km"))
            let machineLines = text.split(separator: "\n").filter { $0.contains("path-km") || $0.hasPrefix("exact") || $0.hasPrefix("| exact") }
            for line in machineLines { #expect(!line.contains("–"), "an empty column in: \(line)") }
            #expect(!text.contains("train rel err"))
        }
        // Held-out accuracy alone.
        if r.run.networkTestAccuracy != nil {
            #expect(Report.render(r, format: .text).contains("network    accuracy \(Report.pct(r.run.networkTestAccuracy)) held out"))
        }
        // No machine measured at all: no machines section.
        r.kernelMachines = []
        #expect(!Report.render(r, format: .text).contains("Kernel machines"))
    }

    @Test func markdownReportMatchesGolden() throws {
        try Golden.check(Report.render(try Golden.result(), format: .markdown), against: "report.md")
    }

    @Test func jsonReportHasTheDocumentedKeys() throws {
        let json = Report.render(try Golden.result(), format: .json)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let rec = try #require(obj["reconstruction"] as? [String: Any])
        for split in ["train", "test"] {
            let s = try #require(rec[split] as? [String: Any], "reconstruction.\(split)")
            #expect(s["relative_residual"] is Double && s["max_abs_residual"] is Double)
        }
        let kms = try #require(obj["kernel_machines"] as? [[String: Any]])
        #expect(Set(kms.compactMap { $0["name"] as? String }).isSuperset(of: ["exact", "path-km", "path-krr", "ntk0-lin", "ntk0-km", "ntkT-krr"]))
        for km in kms {
            for split in ["train", "test"] {
                let f = try #require(km[split] as? [String: Any])
                for key in ["relative_error", "rmse", "max_abs_error", "r2", "pearson"] { #expect(f[key] is Double, "\(key)") }
                for key in ["argmax_agreement", "accuracy"] { #expect(f[key] is Double, "\(key) (classification)") }
            }
        }
        let dyn = try #require(obj["dynamics"] as? [[String: Any]])
        #expect(!dyn.isEmpty)
        for d in dyn { for key in ["step", "kernel_distance", "alignment", "weight_travel"] { #expect(d[key] != nil, "\(key)") } }
        let attr = try #require(obj["attribution"] as? [[String: Any]])
        let top = try #require(attr.first?["top"] as? [[String: Any]])
        #expect(attr.first?["query"] is Int && top.first?["train_index"] is Int && top.first?["share"] is Double)
        let settings = try #require(obj["settings"] as? [String: Any])
        #expect(settings["nodes"] is Int && settings["queries"] is String && settings["kernel"] is String)
    }

    /// Attribution in output units (Docs/path-kernel.md §4): the largest contributions on each
    /// side with their sums, the other examples and what no example carries, which add up to the
    /// change as printed; 80 columns; results without contributions keep the shares.
    @Test func attributionInOutputUnits() throws {
        var r = try Golden.result()
        let old = Report.render(r, format: .text)
        #expect(old.contains("top examples (share of f_T − f_0)"))
        let c = { (i: Int, v: Double, y: Double) in AnalysisResult.Contribution(trainIndex: i, value: v, label: y) }
        r.attribution = [AnalysisResult.Attribution(split: "test", query: 2, output: [2.112], change: [1.5], top: [],
                                                    component: "output", componentChange: 1.5, examplesSum: 1.25, examples: 200,
                                                    pushedUp: [c(193, 4.25, 0), c(5, 2.5, 0), c(176, 1.0, 1), c(9, 0.5, 1)],
                                                    pushedDown: [c(55, -3.0, 1), c(79, -2.0, 1)])]
        for format in [ReportFormat.text, .markdown] {
            let text = Report.render(r, format: format)
            #expect(!text.contains("share of f_T"))
            #expect(text.contains("test #2: output 2.112, change +1.5"), "\(text)")
            #expect(text.contains("up    #193 y=0 +4.25, #5 y=0 +2.5, #176 y=1 +1  (sum +7.75)"), "\(text)")
            #expect(text.contains("down  #55 y=1 −3, #79 y=1 −2  (sum −5)"), "\(text)")
            // 1.25 − 7.75 + 5 = −1.5 over the 195 unlisted examples; 1.5 − 1.25 = +0.25 from no example.
            #expect(text.contains("the other 195 examples −1.5; not from examples +0.25"), "\(text)")
            if format == .text {
                for line in text.split(separator: "\n") { #expect(line.count <= 80, "line wider than 80 columns: \(line)") }
            }
        }
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(Report.render(r, format: .json).utf8)) as? [String: Any])
        let attr = try #require((obj["attribution"] as? [[String: Any]])?.first)
        #expect(attr["component"] as? String == "output" && attr["examples_sum"] as? Double == 1.25)
        #expect((attr["pushed_up"] as? [[String: Any]])?.first?["value"] as? Double == 4.25)
    }

    /// The paragraph's numbers come from the result: change one and the text changes.
    @Test func paragraphUsesTheNumbers() throws {
        var r = try Golden.result()
        let before = Report.paragraph(r)
        let i = r.kernelMachines.firstIndex { $0.name == "path-km" }!
        r.kernelMachines[i].test!.relativeError = 0.4321
        let after = Report.paragraph(r)
        #expect(before != after)
        #expect(after.contains("43.2%"))
    }

    /// `text` with every run of white space (line breaks and the indentation after them) as one space.
    static func squeezed(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    }

    /// The beyond-kernel comparison in words: below, above and equal, relative to each
    /// predictor's loss; a predictor with zero loss is left out; the paragraph's verdict only when
    /// every predictor falls on the same side.
    @Test func beyondKernelComparisons() throws {
        var b = AnalysisResult.BeyondKernel(heldOut: 10, loss: "mse", networkLoss: 0.5)
        b.linearizationLoss = 0.4     // (0.5 − 0.4)/0.4 = +25%
        b.closedFormLoss = 0.5        // equal
        b.analyticLoss = 0            // left out
        let c = Report.beyondKernelComparisons(b)
        #expect(c.map(\.name) == ["ntk0-lin", "the closed form"])
        #expect(c.map(\.change) == ["25.0% higher than", "equal to"])
        var r = try Golden.result()
        var d = AnalysisResult.Diagnostics(points: 10, subset: false, kernelRows: 10, travel: [])
        d.beyondKernel = b
        r.diagnostics = d
        let text = Self.squeezed(Report.render(r, format: .text))
        #expect(text.contains("the network's held-out loss is 25.0% higher than ntk0-lin's, equal to the closed form's"))
        #expect(text.contains("On the held-out points the network's loss is 25.0% higher than ntk0-lin's"))
        #expect(!text.contains("beats its kernels") && !text.contains("predict the held-out data better"))
        b.closedFormLoss = 0.45
        d.beyondKernel = b
        r.diagnostics = d
        #expect(Self.squeezed(Report.render(r, format: .text)).contains("its kernels predict the held-out data better than the trained network"))
    }

    @Test func sparklineSpansTheRange() {
        let s = Report.sparkline([0, 1, 2, 3, 4, 5, 6, 7])
        #expect(s == "▁▂▃▄▅▆▇█")
        #expect(Report.sparkline([1, 1, 1]) == "▁▁▁")
    }

    /// The over-parameterization block (ntk-family contract §5): absent from results without
    /// diagnostics (the golden file), printed within 80 columns with every figure and note in
    /// text and Markdown, carried by the JSON with snake_case keys.
    @Test func overParameterizationBlock() throws {
        var r = try Golden.result()
        #expect(!Report.render(r, format: .text).contains("Over-parameterization"))
        var d = AnalysisResult.Diagnostics(points: 100, subset: true, kernelRows: 300, travel: [
            .init(tensor: "layers.0.weight", change: 0.123, initialNorm: 12.5, relative: 0.00984),
            .init(tensor: "layers.0.bias", change: 0.05, initialNorm: 0, relative: nil),
            .init(tensor: "layers.12.some_very_long_parameter_tensor_name.weight", change: 1.5e-7, initialNorm: 40, relative: 3.75e-9),
        ])
        d.lambdaMinStart = 0.0123
        d.lambdaMinEnd = 4.56e-7
        d.analyticLambdaMin = 0.5223673878563
        d.separation = 0.0871
        d.kernelChange = 0.17
        d.kernelDistance = 0.0042
        d.totalTravel = 0.0312
        d.patternChange = (1...6).map { .init(layer: $0, units: 4096, examples: 60000, flipped: 12345, fraction: 1.0e-4 * Double($0)) }
        var b = AnalysisResult.BeyondKernel(heldOut: 1000, loss: "cross_entropy", networkLoss: 0.412)
        b.linearizationLoss = 0.5
        b.linearizationGap = -0.088
        b.closedFormLoss = 0.45
        b.closedFormGap = -0.038
        b.closedFormSource = "computed"
        b.closedFormNote = String(repeating: "a long departure note ", count: 8)
        b.analyticLoss = 0.48
        b.analyticGap = -0.068
        b.networkAccuracy = 0.9
        b.linearizationAccuracy = 0.8
        b.closedFormAccuracy = 0.85
        b.analyticAccuracy = 0.9
        d.beyondKernel = b
        d.analyticNote = "never printed with a value, but a note must wrap: " + String(repeating: "word ", count: 30)
        r.diagnostics = d
        for format in [ReportFormat.text, .markdown] {
            let text = Report.render(r, format: format)
            for needle in ["Over-parameterization", "kernels on 100 evenly spaced training points, Θ̂ 300 × 300",
                           "Θ̂ at w_0 0.0123, at w_T 4.56e-07; analytic Θ 0.522", "δ = 0.0871", "= 17.0%, cosine distance 0.0042",
                           "‖w_T − w_0‖/‖w_0‖ = 3.12%", "layer 1 0.01%", "layer 4 0.04%", "layer 6 0.06%", "network 0.412 (cross_entropy, 1000 queries)",
                           "ntk0-lin 0.5, network − ntk0-lin −0.088", "closed form Θ̂_{w_0} 0.45, network − it −0.038",
                           "layers.0.bias", "– (W_0 = 0)", "a long departure note",
                           "ntkinf-km (analytic Θ) 0.48, network − it −0.068"] {
                #expect(text.contains(needle), "\(format): no '\(needle)' in\n\(text)")
            }
            if format == .text {
                for line in text.split(separator: "\n") { #expect(line.count <= 80, "line wider than 80 columns: \(line)") }
            }
            // The summary paragraph says it in words (wrapped: compared with runs of white space as one space).
            let flat = Self.squeezed(text)
            // By how much the network beats each predictor, (0.412 − L_k)/L_k, and the accuracies.
            for needle in ["beyond kernel the network's held-out loss is 17.6% lower than ntk0-lin's, 8.44% lower than the closed form's, 14.2% lower than ntkinf-km's",
                           "accuracy network 90.0%, ntk0-lin 80.0% (+10.0 points), the closed form 85.0% (+5.0 points), ntkinf-km 90.0% (±0 points)"] {
                #expect(flat.contains(needle), "\(format): no '\(needle)' in\n\(text)")
            }
            #expect(flat.contains("On the held-out points the network's loss is 17.6% lower than ntk0-lin's (the network linearized at w_0), 8.44% lower than the closed-form kernel predictor's with Θ̂_{w_0} and 14.2% lower than ntkinf-km's (the analytic NTK's machine): the trained network beats its kernels on held-out data."), "\(format): no beyond-kernel sentence in\n\(text)")
        }
        // The HTML report: its own section, after the dynamics, with the same lines, table and notes.
        let html = Report.html(r)
        #expect(html.contains("<section id=\"diagnostics\"><h2>Over-parameterization</h2>"))
        for needle in ["Θ̂ at w_0 0.0123, at w_T 4.56e-07; analytic Θ 0.522", "<td>layers.0.bias</td>", "– (W_0 = 0)",
                       "<li>closed form: a long departure note", "<li>analytic λ_min: never printed"] {
            #expect(html.contains(needle), "html: no '\(needle)'")
        }
        let summary = try #require(html.range(of: "<section id=\"summary\""))
        #expect(try #require(html.range(of: "<section id=\"diagnostics\"")).lowerBound < summary.lowerBound)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(Report.render(r, format: .json).utf8)) as? [String: Any])
        let diag = try #require(obj["diagnostics"] as? [String: Any])
        #expect(diag["lambda_min_start"] as? Double == 0.0123 && diag["kernel_rows"] as? Int == 300)
        let beyond = try #require(diag["beyond_kernel"] as? [String: Any])
        #expect(beyond["linearization_gap"] as? Double == -0.088)
        #expect(beyond["analytic_loss"] as? Double == 0.48 && beyond["analytic_gap"] as? Double == -0.068)
        #expect(beyond["network_accuracy"] as? Double == 0.9 && beyond["linearization_accuracy"] as? Double == 0.8)
        #expect(beyond["closed_form_accuracy"] as? Double == 0.85 && beyond["analytic_accuracy"] as? Double == 0.9)
        #expect((diag["travel"] as? [[String: Any]])?[1]["relative"] == nil)
        #expect((diag["pattern_change"] as? [[String: Any]])?.count == 6)
    }
}
