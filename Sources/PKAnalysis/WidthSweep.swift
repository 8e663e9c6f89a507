import Foundation

/// A width sweep's results (ntk-family contract §5, "Width sweep"; Docs/ntk-family.md "The width
/// sweep"): one run per (width m, seed), each with its over-parameterization diagnostics, and per
/// width the seed means and standard deviations of the §5 quantities with the log–log slope of the
/// means against m. Built by `summarize` from the runs (pure: no training, no trace); the runs
/// themselves come from `pathkernel sweep` (PKSweep).
public struct WidthSweep: Codable, Sendable {
    /// The base config's name and its network with the hidden widths written as `m`
    /// (`MLP 3-m-m-1 relu`), parameterization, learning rate, steps, optimizer and loss.
    public var config: String
    public var model: String
    public var parameterization: String
    public var learningRate: Double
    public var steps: Int
    public var optimizer: String
    public var loss: String
    /// The data (drawn once, with the config's seed, for every run): its name and sizes.
    public var data: String
    public var train: Int
    public var heldOut: Int
    /// The folder of the traces (`m<m>-seed<s>.sqlite`).
    public var directory: String
    /// Ascending widths and the seeds (the config's seed and the following ones).
    public var widths: [Int]
    public var seeds: [UInt64]
    /// Every run, widths ascending, seeds in order within a width.
    public var runs: [Run]
    /// The table's rows in print order.
    public var quantities: [Quantity]
    public var notes: [String]
    /// Wall seconds of the whole sweep (training and diagnostics).
    public var seconds: Double

    public init(config: String, model: String, parameterization: String, learningRate: Double, steps: Int, optimizer: String,
                loss: String, data: String, train: Int, heldOut: Int, directory: String, widths: [Int], seeds: [UInt64],
                runs: [Run], quantities: [Quantity], notes: [String], seconds: Double) {
        self.config = config
        self.model = model
        self.parameterization = parameterization
        self.learningRate = learningRate
        self.steps = steps
        self.optimizer = optimizer
        self.loss = loss
        self.data = data
        self.train = train
        self.heldOut = heldOut
        self.directory = directory
        self.widths = widths
        self.seeds = seeds
        self.runs = runs
        self.quantities = quantities
        self.notes = notes
        self.seconds = seconds
    }

    /// One trained and diagnosed run.
    public struct Run: Codable, Sendable {
        public var width: Int
        public var seed: UInt64
        /// The trace file.
        public var trace: String
        public var parameters: Int
        /// Wall seconds of training (with recording) and of the diagnostics.
        public var trainSeconds: Double
        public var diagnosticSeconds: Double
        /// Mean training loss at `w_T` (`RunDiagnostics.trainingLoss`).
        public var trainingLoss: Double?
        public var diagnostics: AnalysisResult.Diagnostics

        public init(width: Int, seed: UInt64, trace: String, parameters: Int, trainSeconds: Double, diagnosticSeconds: Double,
                    trainingLoss: Double?, diagnostics: AnalysisResult.Diagnostics) {
            self.width = width
            self.seed = seed
            self.trace = trace
            self.parameters = parameters
            self.trainSeconds = trainSeconds
            self.diagnosticSeconds = diagnosticSeconds
            self.trainingLoss = trainingLoss
            self.diagnostics = diagnostics
        }
    }

    /// One row of the table: a quantity's seed mean and standard deviation at every width (index
    /// as `widths`; nil where a seed lacks the figure), and the slope of `log mean` against `log m`.
    public struct Quantity: Codable, Sendable {
        /// Stable identifier (`travel.layers.0.weight`, `flips.1`, `kernelChange`, …).
        public var key: String
        /// The row's label in the text table.
        public var label: String
        public var means: [Double?]
        /// Sample standard deviation over the seeds (`n − 1`); nil with one seed.
        public var stds: [Double?]
        /// Least-squares slope of `ln mean` on `ln m` (`LogLogFit`); nil for quantities that are
        /// not scaling figures (λ_min, losses, gaps) or whose mean is not positive at every width.
        public var slope: Double?
        /// Whether a slope is computed for this quantity at all.
        public var scaling: Bool
    }

    // MARK: Building the table

    /// The quantities of `runs` (every (width, seed) of `widths` × `seeds`, any order), in the
    /// table's order: the relative travel of each weight tensor, the total travel, the pattern
    /// flips of each hidden layer, the kernel change and cosine distance, `|λ̂₀ − λ|/λ`, λ_min of
    /// `Θ̂_{w_0}`, `Θ̂_{w_T}` and of the analytic `Θ`, the training loss at `w_T`, and (with
    /// held-out data) the network's held-out loss and its two beyond-kernel gaps.
    public static func quantities(_ runs: [Run], widths: [Int]) -> [Quantity] {
        let byWidth = widths.map { m in runs.filter { $0.width == m } }
        func row(_ key: String, _ label: String, scaling: Bool, _ value: (Run) -> Double?) -> Quantity? {
            var means: [Double?] = [], stds: [Double?] = []
            for group in byWidth {
                let values = group.map(value)
                if group.isEmpty || values.contains(where: { $0 == nil }) {
                    means.append(nil); stds.append(nil)
                } else {
                    let v = values.compactMap { $0 }
                    means.append(SeedStatistics.mean(v))
                    stds.append(SeedStatistics.standardDeviation(v))
                }
            }
            guard means.contains(where: { $0 != nil }) else { return nil }
            let slope = scaling ? LogLogFit.slope(widths: widths, values: means) : nil
            return Quantity(key: key, label: label, means: means, stds: stds, slope: slope, scaling: scaling)
        }
        var rows: [Quantity?] = []
        let tensors = runs.first?.diagnostics.travel.map(\.tensor) ?? []
        for name in tensors where name.hasSuffix(".weight") {
            let short = name.hasPrefix("layers.") ? "τ_\(name.dropFirst("layers.".count).prefix { $0 != "." })" : "τ \(name)"
            rows.append(row("travel.\(name)", short, scaling: true) { r in r.diagnostics.travel.first { $0.tensor == name }?.relative })
        }
        rows.append(row("totalTravel", "total travel", scaling: true) { $0.diagnostics.totalTravel })
        let layers = runs.first?.diagnostics.patternChange?.map(\.layer) ?? []
        for l in layers {
            rows.append(row("flips.\(l)", "flips layer \(l)", scaling: true) { r in r.diagnostics.patternChange?.first { $0.layer == l }?.fraction })
        }
        rows.append(row("kernelChange", "kernel change", scaling: true) { $0.diagnostics.kernelChange })
        rows.append(row("kernelDistance", "cosine dist.", scaling: true) { $0.diagnostics.kernelDistance })
        rows.append(row("lambdaMinGap", "|λ̂₀−λ|/λ", scaling: true) { r in
            guard let a = r.diagnostics.lambdaMinStart, let b = r.diagnostics.analyticLambdaMin, b != 0 else { return nil }
            return abs(a - b) / abs(b)
        })
        rows.append(row("lambdaMinStart", "λ_min Θ̂ w_0", scaling: false) { $0.diagnostics.lambdaMinStart })
        rows.append(row("lambdaMinEnd", "λ_min Θ̂ w_T", scaling: false) { $0.diagnostics.lambdaMinEnd })
        rows.append(row("analyticLambdaMin", "λ_min Θ", scaling: false) { $0.diagnostics.analyticLambdaMin })
        rows.append(row("trainingLoss", "train loss", scaling: false) { $0.trainingLoss })
        rows.append(row("heldOutLoss", "held-out loss", scaling: false) { $0.diagnostics.beyondKernel?.networkLoss })
        rows.append(row("linearizationGap", "gap ntk0-lin", scaling: false) { $0.diagnostics.beyondKernel?.linearizationGap })
        rows.append(row("closedFormGap", "gap closed f.", scaling: false) { $0.diagnostics.beyondKernel?.closedFormGap })
        return rows.compactMap { $0 }
    }
}

/// Mean and sample standard deviation over seeds.
public enum SeedStatistics {
    public static func mean(_ v: [Double]) -> Double? {
        v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
    }

    /// `√(Σ (v − v̄)² / (n − 1))`; nil for fewer than two values.
    public static func standardDeviation(_ v: [Double]) -> Double? {
        guard v.count >= 2, let m = mean(v) else { return nil }
        return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot()
    }
}

/// The log–log slope of a quantity against the width: ordinary least squares of `y = ln v` on
/// `x = ln m`, in closed form,
///
///     slope = Σ (x_i − x̄)(y_i − ȳ) / Σ (x_i − x̄)²
///
/// over every width. nil when a value is missing, not finite or not positive (no logarithm), or
/// when there are fewer than two distinct widths.
public enum LogLogFit {
    public static func slope(widths: [Int], values: [Double?]) -> Double? {
        guard widths.count == values.count, widths.count >= 2, Set(widths).count >= 2 else { return nil }
        var xs: [Double] = [], ys: [Double] = []
        for (m, v) in zip(widths, values) {
            guard let v, v > 0, v.isFinite, m > 0 else { return nil }
            xs.append(log(Double(m)))
            ys.append(log(v))
        }
        let n = Double(xs.count)
        let xBar = xs.reduce(0, +) / n, yBar = ys.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0
        for (x, y) in zip(xs, ys) {
            sxy += (x - xBar) * (y - yBar)
            sxx += (x - xBar) * (x - xBar)
        }
        guard sxx > 0 else { return nil }
        let s = sxy / sxx
        return s.isFinite ? s : nil
    }
}
