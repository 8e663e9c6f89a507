import Foundation
import PKAnalysis

extension Report {
    /// The text report: fits an 80-column terminal. With `markdown`, the same content as Markdown.
    static func text(_ r: AnalysisResult, markdown md: Bool) -> String {
        var out: [String] = []
        func h(_ s: String) {
            if md { out.append("## \(s)"); out.append("") } else { out.append(s); out.append(String(repeating: "─", count: min(s.count, 78))) }
        }
        func blank() { out.append("") }
        func columnWidths(_ header: [String], _ rows: [[String]]) -> [Int] {
            var widths = header.map(\.count)
            for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
            return widths
        }
        func table(_ header: [String], _ rows: [[String]]) {
            if md {
                out.append("| " + header.joined(separator: " | ") + " |")
                out.append("|" + header.map { _ in " --- |" }.joined())
                for row in rows { out.append("| " + row.joined(separator: " | ") + " |") }
            } else {
                let widths = columnWidths(header, rows)
                func line(_ cells: [String]) -> String {
                    cells.enumerated().map { i, c in
                        i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                               : String(repeating: " ", count: widths[i] - c.count) + c
                    }.joined(separator: "  ")
                }
                out.append(line(header))
                for row in rows { out.append(line(row)) }
            }
        }
        let run = r.run
        let classification = run.task != "regression"

        if md { out.append("# pathkernel report: \(run.name)"); blank() } else {
            out.append("pathkernel report: \(run.name)")
            out.append(String(repeating: "═", count: min(20 + run.name.count, 78)))
        }
        let summary = runCard(r).map { $0.label.padding(toLength: 11, withPad: " ", startingAt: 0) + $0.value }
        if md { out.append(contentsOf: summary.map { "    " + $0 }) } else { out.append(contentsOf: summary) }
        for note in run.notes { out.append((md ? "> " : "note: ") + note) }
        blank()

        h("Reconstruction (f_T − f_0 − Σ_t J̄_t Δw_t)")
        var rec: [[String]] = []
        for (name, res) in [("train", r.reconstruction.train), ("held out", r.reconstruction.test)] {
            guard let res else { continue }
            rec.append([name, sci(res.relativeResidual), sci(res.maxAbsResidual), sci(res.kernelFormMaxAbs)])
        }
        table(["split", "relative", "max abs", "kernel form max abs"], rec)
        out.append(md ? "" : "")
        if let e = r.reconstruction.exact, let events = e.sweepEventsPerQueryStep {
            out.append("exact quadrature by the event sweep (each query's J̄ from its first pattern and one correction per event):")
            out.append("  \(pct(e.kinkedShare)) of (query, step) pairs cross a kink (\(num(e.breakpointsPerKinkedPair, 1)) breakpoints each),")
            out.append("  \(num(events, 2)) events that change J and \(num(e.sweepSilentPerQueryStep ?? 0, 2)) silent ones per query and step")
        } else if let e = r.reconstruction.exact {
            out.append("exact quadrature: \(e.nodesPerPiece) Gauss–Legendre node\(e.nodesPerPiece == 1 ? "" : "s") per piece between kinks;")
            out.append("  \(pct(e.kinkedShare)) of (query, step) pairs cross a kink (\(num(e.breakpointsPerKinkedPair, 1)) breakpoints each),")
            out.append("  \(num(e.nodesPerQueryStep, 2)) node evaluations per query and step")
        } else {
            out.append("mean nodes per step \(num(r.reconstruction.meanNodesPerStep, 1))\(r.reconstruction.maxDepth > 0 ? ", deepest split \(r.reconstruction.maxDepth)" : "")")
        }
        blank()

        // Columns only for the splits some machine was measured on (`--queries`, `--scope exact`).
        let splits: [(name: String, pick: (AnalysisResult.KernelMachine) -> AnalysisResult.Fidelity?)] =
            [("held out", { $0.test }), ("train", { $0.train })].filter { split in r.kernelMachines.contains { split.pick($0) != nil } }
        if !splits.isEmpty {
            h("Kernel machines against the network")
            var rows: [[String]] = []
            for km in r.kernelMachines {
                var row = [km.name]
                for split in splits {
                    let f = split.pick(km)
                    row.append(pct(f?.relativeError))
                    row.append(num(f?.r2))
                    if classification { row.append(pct(f?.argmaxAgreement)) }
                }
                rows.append(row)
            }
            let group = classification ? ["rel err", "R²", "agree"] : ["rel err", "R²"]
            var header = ["machine"]
            for split in splits { header += md ? group.map { "\(split.name) \($0)" } : group }
            if !md {
                if splits.count == 2 {
                    out.append("                held out" + String(repeating: " ", count: classification ? 18 : 10) + "train")
                } else {
                    out.append(String(repeating: " ", count: columnWidths(header, rows)[0] + 2) + splits[0].name)
                }
            }
            table(header, rows)
            blank()
            // The ridge machines' λ and what their PSD part discarded (Docs/path-kernel.md §3).
            for km in r.kernelMachines {
                guard let line = ridgeLine(km) else { continue }
                if md { out.append("- " + line) } else {
                    let lines = wrap(line, width: 76)
                    out.append(contentsOf: lines.prefix(1) + lines.dropFirst().map { "  " + $0 })
                }
            }
            if r.kernelMachines.contains(where: { $0.ridge != nil }) { blank() }
            if !md {
                out.append("rel err = ‖KM − f_T‖/‖f_T − f_0‖ (0 = the network itself, 1 = no better")
                out.append("than the untrained network); agree = same predicted class as the network.")
                blank()
            }
        }

        // No section for what was not computed (dynamics: not with --scope exact).
        let d = r.dynamics
        if !d.isEmpty {
            h("Along training (\(r.dynamics.count) points, \(r.dynamicsSubset) training points)")
            let first = d.first!, last = d.last!
            func series(_ name: String, _ values: [Double], _ fmt: (Double?) -> String) {
                let line = "\(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(sparkline(values)) \(fmt(values.first)) → \(fmt(values.last))"
                out.append(md ? "    " + line : line)
            }
            series("kernel distance", d.map(\.kernelDistance), { num($0) })
            series("alignment", d.map(\.alignment), { num($0) })
            series("weight travel", d.map(\.weightTravel), { num($0) })
            let fidelity = d.compactMap(\.pathKmError)
            if !fidelity.isEmpty { series("path-km rel err", fidelity, { pct($0) }) }
            out.append((md ? "    " : "") + "steps \(first.step) … \(last.step)")
            blank()
        }

        if let diag = r.diagnostics {
            h("Over-parameterization (Docs/ntk-family.md)")
            for line in overParameterization(diag, outputs: run.outputs) { out.append(md ? "    " + line : line) }
            if !diag.travel.isEmpty {
                blank()
                table(["parameters", "‖ΔW‖/‖W_0‖", "‖ΔW‖"],
                      diag.travel.map { [$0.tensor, $0.relative.map { pct($0) } ?? "– (W_0 = 0)", g3($0.change)] })
                blank()
            }
            let notes = diagnosticNotes(diag)
            for note in notes {
                if md { out.append("> " + note) } else {
                    let lines = wrap("note: " + note, width: 76)
                    out.append(contentsOf: lines.prefix(1) + lines.dropFirst().map { "  " + $0 })
                }
            }
            if !notes.isEmpty { blank() }
        }

        if !r.attribution.isEmpty {
            h("Training examples behind predictions")
            let signedContributions = r.attribution.contains { $0.pushedUp != nil }
            if signedContributions {
                out.append(contentsOf: wrap("Contributions: what each training example added to f_T(x) − f_0(x), in output units (−N(x,i), Docs/path-kernel.md §4); all examples' sum plus what no example carries is the change.", width: 78))
            }
            for a in r.attribution {
                let outStr = a.output.count == 1 ? num(a.output[0]) : "[\(a.output.prefix(4).map { num($0, 2) }.joined(separator: ", "))\(a.output.count > 4 ? ", …" : "")]"
                let label = { (y: Double) in num(y, classification ? 0 : 2) }
                guard let up = a.pushedUp, let down = a.pushedDown, let change = a.componentChange, let component = a.component else {
                    out.append("\(a.split) #\(a.query): output \(outStr); top examples (share of f_T − f_0):")
                    let cells = a.top.prefix(4).map { "#\($0.trainIndex) y=\(label($0.label)) \(pct($0.share))" }
                    out.append((md ? "- " : "  ") + cells.joined(separator: ",  "))
                    continue
                }
                let what = component == "output" ? "output \(outStr)" : component == "change direction"
                    ? "outputs \(outStr), along f_T − f_0" : "\(component) (predicted), output \(num(a.output[Int(component.dropFirst(6)) ?? 0]))"
                out.append("\(a.split) #\(a.query): \(what), change \(signed(change))")
                let shown = 3
                for (name, side) in [("up  ", up), ("down", down)] where !side.isEmpty {
                    let cells = side.prefix(shown).map { "#\($0.trainIndex) y=\(label($0.label)) \(signed($0.value))" }
                    let sum = side.prefix(shown).reduce(0) { $0 + $1.value }
                    out.append((md ? "- " : "  ") + "\(name)  \(cells.joined(separator: ", "))  (sum \(signed(sum)))")
                }
                let listedCount = min(up.count, shown) + min(down.count, shown)
                let others = (a.examplesSum ?? 0) - up.prefix(shown).reduce(0) { $0 + $1.value } - down.prefix(shown).reduce(0) { $0 + $1.value }
                out.append((md ? "- " : "  ") + "the other \((a.examples ?? 0) - listedCount) examples \(signed(others)); not from examples \(signed(a.notFromExamples))")
            }
            blank()
        }

        h("What the numbers say")
        out.append(contentsOf: wrap(paragraph(r), width: 78))
        blank()
        return out.joined(separator: "\n")
    }

    /// Three significant digits (`0.0123`, `4.56e-07`), the minus sign as U+2212.
    static func g3(_ x: Double?) -> String {
        guard let x else { return "–" }
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "−inf") }
        return String(format: "%.3g", x).replacingOccurrences(of: "-", with: "−").replacingOccurrences(of: "e−", with: "e-")
    }

    /// The over-parameterization block's notes, each with what it is about (text, Markdown, HTML).
    public static func diagnosticNotes(_ diag: AnalysisResult.Diagnostics) -> [String] {
        [diag.analyticNote.map { "analytic λ_min: \($0)" }, diag.patternNote.map { "pattern flips: \($0)" },
         diag.beyondKernelNote.map { "held-out loss: \($0)" },
         diag.beyondKernel?.closedFormNote.map { "closed form: \($0)" }].compactMap { $0 } + (diag.notes ?? [])
    }

    /// The over-parameterization block's lines (ntk-family contract §5), each within 78 columns.
    static func overParameterization(_ d: AnalysisResult.Diagnostics, outputs C: Int) -> [String] {
        var lines: [String] = []
        let which = d.subset ? "\(d.points) evenly spaced training points" : "the \(d.points) training points"
        lines.append("kernels on \(which), Θ̂ \(d.kernelRows) × \(d.kernelRows) (C×C blocks)")
        let analytic = d.analyticLambdaMin.map { "; analytic Θ \(g3($0))" } ?? ""
        lines.append("λ_min          Θ̂ at w_0 \(g3(d.lambdaMinStart)), at w_T \(g3(d.lambdaMinEnd))\(analytic)")
        lines.append("separation     δ = \(g3(d.separation)) (min distance of unit-normalized inputs)")
        if d.kernelChange != nil || d.kernelDistance != nil {
            lines.append("kernel change  ‖Θ̂_T − Θ̂_0‖/‖Θ̂_0‖ = \(pct(d.kernelChange)), cosine distance \(g3(d.kernelDistance))")
        }
        if let flips = d.patternChange, !flips.isEmpty {
            lines.append("pattern flips  share of (example, unit) pairs whose pre-activation sign changed")
            let cells = flips.map { "layer \($0.layer) \(pct($0.fraction))" }.joined(separator: ", ")
            lines.append(contentsOf: wrap(cells, width: 63).map { String(repeating: " ", count: 15) + $0 })
        }
        if let b = d.beyondKernel {
            lines.append("held-out loss  network \(g3(b.networkLoss)) (\(b.loss), \(b.heldOut) queries)")
            if let lin = b.linearizationLoss {
                lines.append("               ntk0-lin \(g3(lin)), network − ntk0-lin \(signed(b.linearizationGap))")
            }
            if let cf = b.closedFormLoss {
                let source = b.closedFormSource == "ntk0-km" ? " (= ntk0-km)" : ""
                lines.append("               closed form Θ̂_{w_0}\(source) \(g3(cf)), network − it \(signed(b.closedFormGap))")
            }
            if let inf = b.analyticLoss {
                lines.append("               ntkinf-km (analytic Θ) \(g3(inf)), network − it \(signed(b.analyticGap))")
            }
            let verdict = beyondKernelComparisons(b).map { "\($0.change) \($0.name)'s" }
            if !verdict.isEmpty {
                let text = "the network's held-out loss is " + verdict.joined(separator: ", ")
                for (k, line) in wrap(text, width: 63).enumerated() { lines.append((k == 0 ? "beyond kernel  " : String(repeating: " ", count: 15)) + line) }
            }
            if let acc = b.networkAccuracy {
                let kernels = beyondKernelPredictors(b).compactMap { p in
                    p.accuracy.map { "\(p.name) \(pct($0)) (\(points(acc - $0)))" }
                }
                let text = (["network \(pct(acc))"] + kernels).joined(separator: ", ")
                for (k, line) in wrap(text, width: 63).enumerated() { lines.append((k == 0 ? "accuracy       " : String(repeating: " ", count: 15)) + line) }
            }
        }
        lines.append("weight travel  ‖w_T − w_0‖/‖w_0‖ = \(pct(d.totalTravel)); per tensor, ΔW = W_T − W_0:")
        return lines
    }

    /// The kernel predictors of the beyond-kernel comparison that were computed, in the report's
    /// order, with their held-out loss and accuracy.
    static func beyondKernelPredictors(_ b: AnalysisResult.BeyondKernel) -> [(name: String, loss: Double, accuracy: Double?)] {
        [b.linearizationLoss.map { ("ntk0-lin", $0, b.linearizationAccuracy) },
         b.closedFormLoss.map { ("the closed form", $0, b.closedFormAccuracy) },
         b.analyticLoss.map { ("ntkinf-km", $0, b.analyticAccuracy) }].compactMap { $0 }
    }

    /// By how much the network's held-out loss `L` is below (or above) each predictor's `L_k`,
    /// relative to `L_k`: "62.0% lower than", "3.10% higher than", "equal to" (none for `L_k = 0`).
    static func beyondKernelComparisons(_ b: AnalysisResult.BeyondKernel) -> [(name: String, change: String, relative: Double)] {
        beyondKernelPredictors(b).compactMap { p in
            guard p.loss > 0, p.loss.isFinite else { return nil }
            let relative = (b.networkLoss - p.loss) / p.loss
            let change = relative == 0 ? "equal to" : "\(pct(abs(relative))) \(relative < 0 ? "lower" : "higher") than"
            return (p.name, change, relative)
        }
    }

    /// A difference of two accuracies in percentage points, signed: "+12.5 points".
    static func points(_ x: Double) -> String {
        x == 0 ? "±0 points" : String(format: "%+.1f points", 100 * x).replacingOccurrences(of: "-", with: "−")
    }

    /// The run card, label and value (the text report's first lines, the HTML report's `run`).
    static func runCard(_ r: AnalysisResult) -> [(label: String, value: String)] {
        let run = r.run
        var card: [(label: String, value: String)?] = [
            ("model", "\(run.model), \(run.parameterCount) parameters"),
            ("task", "\(run.task), loss \(run.loss), \(run.outputs) output\(run.outputs == 1 ? "" : "s")"),
            ("training", "\(run.optimizer), \(run.steps) steps, status \(run.status)"),
            ("queries", "\(run.testQueries) held out, \(run.trainCount) training points"),
            ("settings", "\(r.settings.quadrature == "exact" ? "exact quadrature through the kinks" : "q = \(r.settings.nodes) Gauss–Legendre nodes\(r.settings.adaptiveTolerance.map { ", adaptive to \(sci($0))" } ?? "")"), kernel \(r.settings.kernel), ridge ρ = \(sci(r.settings.ridge))"),
            // The kernel used for the run's optimizer (results from before it was recorded have none).
            r.settings.pathKernel.map { ("kernel", $0) },
            ("precision", "trace stored in \(run.precision), computed in \(r.settings.precision ?? "f64")\(r.settings.scope == "exact" ? "; scope exact (held-out queries only)" : "")"),
            ("replay", r.replay.mode),
            stepCheck(r.replay).map { ("steps", $0) },
        ]
        // Only the splits that have an accuracy (scope exact computes none on training points).
        if run.task != "regression" {
            let parts = [run.networkTrainAccuracy.map { "\(pct($0)) train" }, run.networkTestAccuracy.map { "\(pct($0)) held out" }]
                .compactMap { $0 }
            if !parts.isEmpty { card.append(("network", "accuracy \(parts.joined(separator: ", "))")) }
        }
        return card.compactMap { $0 }
    }

    /// The step check in a few words: whether the stored weights are the recorded loss's and
    /// optimizer's steps (nil when nothing was compared, or for results from before the check).
    static func stepCheck(_ p: AnalysisResult.Replay) -> String? {
        guard let checked = p.checkedSteps, checked > 0 else { return nil }
        let at = p.largestMismatch > 0 ? p.worstStep.map { " (step \($0))" } ?? "" : ""
        return p.inconsistent == true
            ? "NOT the recorded updates: mismatch \(sci(p.largestMismatch))\(at) > tolerance \(sci(p.tolerance))"
            : p.checkpointEvery > 1
            ? "every step replayed, \(checked) checkpoint\(checked == 1 ? "" : "s") reached: largest mismatch \(sci(p.largestMismatch))\(at), tolerance \(sci(p.tolerance))"
            : "\(checked) recomputed: largest mismatch \(sci(p.largestMismatch))\(at), tolerance \(sci(p.tolerance))"
    }

    /// "path-krr: λ = 3.1e-07 on the PSD part; 12 negative eigenvalues discarded, 4.1% of the
    /// spectral mass" (nil for machines without a ridge).
    static func ridgeLine(_ km: AnalysisResult.KernelMachine) -> String? {
        guard let lambda = km.ridge else { return nil }
        guard let mass = km.negativeSpectralMass, let count = km.negativeEigenvalues else {
            return "\(km.name): λ = \(sci(lambda))"
        }
        let discarded = count == 0 ? "no negative eigenvalue"
            : mass < 1e-12 ? "\(count) negative eigenvalue\(count == 1 ? "" : "s") at round-off discarded"
            : "\(count) negative eigenvalue\(count == 1 ? "" : "s") discarded, \(pct(mass)) of the spectral mass"
        return "\(km.name): λ = \(sci(lambda)) on the PSD part of the symmetrized kernel (\(discarded))"
    }

    /// One plain paragraph; every number comes from the analysis.
    static func paragraph(_ r: AnalysisResult) -> String {
        let split = r.reconstruction.test != nil ? "held-out" : "training"
        func machine(_ name: String) -> AnalysisResult.Fidelity? {
            let km = r.kernelMachines.first { $0.name == name }
            return r.reconstruction.test != nil ? km?.test : km?.train
        }
        var s: [String] = []
        // The headline check: were the stored weights gradient steps of the recorded loss and optimizer?
        if let checked = r.replay.checkedSteps, checked > 0 {
            if r.replay.inconsistent == true {
                s.append("The stored weights are NOT the recorded loss's and optimizer's steps (relative mismatch \(sci(r.replay.largestMismatch)) at step \(r.replay.worstStep ?? 0)): the training loop did something the trace does not record, and the path kernel below describes the recorded loss, not this run.")
            } else if r.replay.checkpointEvery > 1 {
                s.append("The stored weights are updates of the recorded loss and optimizer (replaying the recorded steps from each checkpoint reaches the next one to \(sci(r.replay.largestMismatch)) relative).")
            } else {
                s.append("Every stored step is an update of the recorded loss and optimizer (recomputed, it matches to \(sci(r.replay.largestMismatch)) relative).")
            }
        } else if r.replay.checkedSteps == 0 {
            s.append("No step could be recomputed (checkpoint resolution), so nothing checks that the stored weights are updates of the recorded loss.")
        }
        if let res = r.reconstruction.test ?? r.reconstruction.train {
            let ok = res.relativeResidual < 1e-6
            s.append("The path decomposition rebuilds the network's \(split) outputs to a relative residual of \(sci(res.relativeResidual))\(ok ? " (round-off level)" : (r.settings.quadrature == "exact" ? " (above round-off with exact quadrature: float32 compute, or a trace whose steps do not close)" : " (quadrature error: raise --nodes or use --adaptive)")).")
        }
        if let pkm = machine("path-km") {
            s.append("The path kernel machine with fixed coefficients reproduces the network to \(pct(pkm.relativeError)) on \(split) points")
            if let self_ = machine("path-km-self") {
                s[s.count - 1] += " (\(pct(self_.relativeError)) with coefficients taken at each training point)."
            } else { s[s.count - 1] += "." }
        }
        if let n0 = machine("ntk0-km"), let lin = machine("ntk0-lin") {
            let lazy = n0.relativeError < 0.1
            s.append("Kernel gradient descent with the initial NTK is \(pct(n0.relativeError)) off and the linearization at w_0 \(pct(lin.relativeError)): \(lazy ? "the run stayed close to the lazy (NTK) regime." : "this run left the lazy regime.")")
        }
        if let b = r.diagnostics?.beyondKernel {
            let comparisons = beyondKernelComparisons(b)
            if !comparisons.isEmpty {
                let names = ["ntk0-lin": "ntk0-lin's (the network linearized at w_0)",
                             "the closed form": "the closed-form kernel predictor's with Θ̂_{w_0}",
                             "ntkinf-km": "ntkinf-km's (the analytic NTK's machine)"]
                let parts = comparisons.map { "\($0.change) \(names[$0.name] ?? $0.name)" }
                let list = parts.count == 1 ? parts.joined() : parts.dropLast().joined(separator: ", ") + " and " + (parts.last ?? "")
                let verdict = comparisons.allSatisfy { $0.relative < 0 } ? ": the trained network beats its kernels on held-out data"
                    : comparisons.allSatisfy { $0.relative > 0 } ? ": its kernels predict the held-out data better than the trained network" : ""
                s.append("On the held-out points the network's loss is \(list)\(verdict).")
            }
        }
        if let krr = machine("path-krr"), let ntkT = machine("ntkT-krr") {
            s.append("Ridge regression on the network's own changes is \(pct(krr.relativeError)) off with the path kernel and \(pct(ntkT.relativeError)) with the final NTK.")
        }
        if let last = r.dynamics.last {
            s.append("By the end the tangent kernel moved a distance \(num(last.kernelDistance)) from its start and the weights travelled \(pct(last.weightTravel)) of their initial norm.")
        }
        return s.joined(separator: " ")
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if line.isEmpty { line = String(word) }
            else if line.count + 1 + word.count <= width { line += " " + word }
            else { lines.append(line); line = String(word) }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
