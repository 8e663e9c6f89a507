/// What the HTML report shows beside the analysis result, read from the trace by the caller (the
/// `report` command): the recorded per-step learning rate and loss, the inputs behind the
/// attribution as images, and NTK spectra. Every field may be empty; the report leaves out what
/// is missing. Plain values, so `Report.html(result, data:)` stays a pure function.
public struct ReportData: Sendable {
    /// The recorded steps, ascending: `steps[k]` used `learningRates[k]` and had batch loss
    /// `losses[k]` (at the weights before the update; NaN for a diverged step).
    public var steps: [Int]
    public var learningRates: [Double]
    public var losses: [Double]
    /// The inputs as images, for data with an input shape (nil otherwise).
    public var images: Images?
    /// Eigenvalue spectra to plot log-log (for example the NTK's at the start and the end).
    public var spectra: [Spectrum]

    /// Input rows of the queries and training examples the attribution names, by index.
    public struct Images: Sendable {
        /// One input's shape `[C, H, W]`; a row holds `C·H·W` values, channel-major.
        public var channels: Int
        public var height: Int
        public var width: Int
        /// Training inputs by training index.
        public var train: [Int: [Double]]
        /// Held-out inputs by query index.
        public var test: [Int: [Double]]

        public init(channels: Int, height: Int, width: Int, train: [Int: [Double]], test: [Int: [Double]]) {
            self.channels = channels
            self.height = height
            self.width = width
            self.train = train
            self.test = test
        }

        /// The product of positive `sizes`; nil when one is ≤ 0 or the product overflows.
        public static func product(_ sizes: [Int]) -> Int? {
            var p = 1
            for s in sizes {
                guard s > 0 else { return nil }
                let (q, overflow) = p.multipliedReportingOverflow(by: s)
                if overflow { return nil }
                p = q
            }
            return p
        }

        /// The input of `index` in `split` ("train", else held out) as `height·width` grey values
        /// (the mean over channels); nil when absent or of the wrong size.
        public func gray(split: String, index: Int) -> [Double]? {
            guard let row = (split == "train" ? train : test)[index], let plane = Images.product([height, width]),
                  Images.product([channels, plane]) == row.count else { return nil }
            if channels == 1 { return row }
            return (0..<plane).map { p in (0..<channels).reduce(0.0) { $0 + row[$1 * plane + p] } / Double(channels) }
        }
    }

    public struct Spectrum: Sendable {
        /// What it is the spectrum of, e.g. "NTK at step 0".
        public var label: String
        /// Eigenvalues, any order (plotted descending).
        public var eigenvalues: [Double]
        public init(label: String, eigenvalues: [Double]) {
            self.label = label
            self.eigenvalues = eigenvalues
        }
    }

    public init(steps: [Int] = [], learningRates: [Double] = [], losses: [Double] = [], images: Images? = nil, spectra: [Spectrum] = []) {
        self.steps = steps
        self.learningRates = learningRates
        self.losses = losses
        self.images = images
        self.spectra = spectra
    }
}
