import Foundation
import PKNumerics

/// The `data` section of a run config: which dataset, how big, and its parameters.
///
/// JSON keys are the property names (camelCase), except that `classes` (spirals: the number of
/// arms) and `classFilter` (idx: the labels to keep) are both written `"classes"` in JSON — an
/// integer for `spirals`, a list for `idx`. Only the fields of the chosen `kind` are allowed;
/// decoding rejects unknown kinds, unknown or inapplicable fields, missing required fields and
/// out-of-range values, each with a one-line message. Defaults are listed in `Docs/datasets.md`.
public struct DataSpec: Codable, Sendable, Equatable {
    /// `moons`, `circles`, `spirals`, `xor`, `sine`, `teacher` (generators), `csv`, `idx` (files).
    public var kind: String
    /// Training examples. Generators: required (≥ 1). Files: a subset of this size (nil = all).
    public var train: Int?
    /// Held-out examples. Generators: required (≥ 0), drawn from an independent stream with the
    /// same law. `csv`: overrides `testFraction`. `idx`: a subset of the test files (nil = all).
    public var test: Int?
    /// Generator noise (standard deviation). Defaults: moons 0.1, circles 0.05, spirals 0.05,
    /// xor 0, sine 0.1, teacher 0.
    public var noise: Double?

    // sine
    /// Lower end of the input interval (default −π).
    public var xMin: Double?
    /// Upper end of the input interval (default π).
    public var xMax: Double?
    /// `y = sin(frequency·x)` (default 1).
    public var frequency: Double?

    // teacher
    /// Input dimension `d` (default 16).
    public var inputDim: Int?
    /// Hidden widths of the teacher (default `[32]`; `[]` makes a linear teacher).
    public var teacherWidths: [Int]?
    /// `tanh` (default), `relu` or `square` (`z²`).
    public var teacherActivation: String?
    /// Number of regression targets `C` (default 1).
    public var outputDim: Int?

    // spirals
    /// Number of arms/classes K (default 2; binary when 2, multiclass when more). JSON `"classes"`.
    public var classes: Int?
    /// Turns of each arm (default 1).
    public var turns: Double?

    // circles
    /// Inner circle radius relative to the outer one, in [0, 1) (default 0.5).
    public var factor: Double?

    // csv
    /// The CSV file (required for csv).
    public var path: String?
    /// The target column: index (negative from the end) or header name (default −1, the last).
    public var targetColumn: ColumnRef?
    /// Whether the first record is a header (default nil: auto-detect).
    public var header: Bool?
    /// csv: `regression` (default), `binary` or `multiclass`. spirals and idx: `binary` or
    /// `multiclass` to override the default (binary exactly when there are 2 classes).
    public var task: TaskKind?
    /// csv: fraction of the rows held out (default 0.2), after a seeded shuffle.
    public var testFraction: Double?
    /// csv: the field separator, one character (default `,`).
    public var delimiter: String?

    // idx
    /// Folder of the IDX files (default `/usr/share/datasets/fashion-mnist`).
    public var directory: String?
    /// File names inside `directory` (defaults `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    /// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`); each is tried as given, then with `.gz`.
    public var trainImages: String?
    public var trainLabels: String?
    public var testImages: String?
    public var testLabels: String?
    /// idx: keep only these labels, re-indexed `0..<K` in this order. JSON `"classes"`.
    public var classFilter: [Int]?
    /// idx: `unit` (pixels/255, default), `standardize` (one mean and std over all pixels of the
    /// chosen training examples, applied to train and test) or `none` (raw 0…255).
    public var normalize: String?
    /// csv and idx: pick subsets (and for csv the split) by a seeded shuffle (default true);
    /// false takes rows in file order (csv: the last rows are the test set).
    public var shuffle: Bool?
    /// idx: labels in the files must lie in `0..<labelCount` (default 10).
    public var labelCount: Int?

    public init(kind: String, train: Int? = nil, test: Int? = nil, noise: Double? = nil,
                xMin: Double? = nil, xMax: Double? = nil, frequency: Double? = nil,
                inputDim: Int? = nil, teacherWidths: [Int]? = nil, teacherActivation: String? = nil, outputDim: Int? = nil,
                classes: Int? = nil, turns: Double? = nil, factor: Double? = nil,
                path: String? = nil, targetColumn: ColumnRef? = nil, header: Bool? = nil, task: TaskKind? = nil,
                testFraction: Double? = nil, delimiter: String? = nil,
                directory: String? = nil, trainImages: String? = nil, trainLabels: String? = nil,
                testImages: String? = nil, testLabels: String? = nil, classFilter: [Int]? = nil,
                normalize: String? = nil, shuffle: Bool? = nil, labelCount: Int? = nil) {
        self.kind = kind
        self.train = train
        self.test = test
        self.noise = noise
        self.xMin = xMin
        self.xMax = xMax
        self.frequency = frequency
        self.inputDim = inputDim
        self.teacherWidths = teacherWidths
        self.teacherActivation = teacherActivation
        self.outputDim = outputDim
        self.classes = classes
        self.turns = turns
        self.factor = factor
        self.path = path
        self.targetColumn = targetColumn
        self.header = header
        self.task = task
        self.testFraction = testFraction
        self.delimiter = delimiter
        self.directory = directory
        self.trainImages = trainImages
        self.trainLabels = trainLabels
        self.testImages = testImages
        self.testLabels = testLabels
        self.classFilter = classFilter
        self.normalize = normalize
        self.shuffle = shuffle
        self.labelCount = labelCount
    }

    // MARK: Kinds, defaults and fields

    public static let generatorKinds = ["moons", "circles", "spirals", "xor", "sine", "teacher"]
    public static let fileKinds = ["csv", "idx"]
    public static let kinds = generatorKinds + fileKinds

    public static let defaultFashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
    /// Spirals: the number of arms.
    public static let spiralsClassesRange = 2...1000
    /// idx: the labels in the files lie in `0..<labelCount`.
    public static let labelCountRange = 2...256

    static let installHint = "install it with `apt-get install dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist)"

    /// The default noise of each generator.
    public static let defaultNoise: [String: Double] = [
        "moons": 0.1, "circles": 0.05, "spirals": 0.05, "xor": 0, "sine": 0.1, "teacher": 0,
    ]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, train, test, noise, xMin, xMax, frequency, inputDim, teacherWidths, teacherActivation, outputDim
        case classes, turns, factor, path, targetColumn, header, task, testFraction, delimiter
        case directory, trainImages, trainLabels, testImages, testLabels, normalize, shuffle, labelCount
    }

    /// The JSON keys each kind accepts (besides `kind`, `train`, `test`).
    static let fieldsByKind: [String: Set<CodingKeys>] = [
        "moons": [.noise],
        "circles": [.noise, .factor],
        "spirals": [.noise, .classes, .turns, .task],
        "xor": [.noise],
        "sine": [.noise, .xMin, .xMax, .frequency],
        "teacher": [.noise, .inputDim, .teacherWidths, .teacherActivation, .outputDim, .task],
        "csv": [.path, .targetColumn, .header, .task, .testFraction, .delimiter, .shuffle],
        "idx": [.directory, .trainImages, .trainLabels, .testImages, .testLabels, .classes, .normalize,
                .shuffle, .labelCount, .task],
    ]

    /// The JSON keys data kind `kind` accepts, in declaration order (`kind`, `train`, `test`, then its own).
    static func allowedKeys(kind: String) -> [String] {
        let own = fieldsByKind[kind] ?? []
        return CodingKeys.allCases.filter { [.kind, .train, .test].contains($0) || own.contains($0) }.map(\.rawValue)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind: String
        do {
            kind = try c.decode(String.self, forKey: .kind)
        } catch DecodingError.keyNotFound(let key, let ctx) {
            throw DecodingError.keyNotFound(key, .init(codingPath: ctx.codingPath, debugDescription:
                "data needs 'kind': one of \(DataSpec.kinds.joined(separator: ", "))"))
        }
        guard DataSpec.fieldsByKind[kind] != nil else {
            var m = "unknown data kind '\(kind)'; expected one of \(DataSpec.kinds.joined(separator: ", "))"
            if let guess = ConfigProblem.closest(to: kind, among: DataSpec.kinds) { m += " (did you mean '\(guess)'?)" }
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: m)
        }
        // Unknown or inapplicable keys.
        let allowed = DataSpec.allowedKeys(kind: kind)
        let all = try decoder.container(keyedBy: AnyCodingKey.self)
        for key in all.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !allowed.contains(key.stringValue) {
            let path = all.codingPath + [key]
            if CodingKeys(stringValue: key.stringValue) == nil {
                let message = ConfigProblem.unknownKeyMessage(key.stringValue, at: all.codingPath, allowed: allowed,
                                                              note: " (data kind '\(kind)')")
                throw ConfigProblem.decodingError(message, at: path)
            }
            throw ConfigProblem.decodingError("field '\(key.stringValue)' does not apply to data kind '\(kind)' (its keys: \(allowed.joined(separator: ", "))); remove it", at: path)
        }
        self.init(kind: kind)
        train = try c.decodeIntegerIfPresent(Int.self, forKey: .train,
                                            in: (DataSpec.generatorKinds.contains(kind) ? 1 : 0)...ConfigLimits.maxExamples)
        test = try c.decodeIntegerIfPresent(Int.self, forKey: .test, in: 0...ConfigLimits.maxExamples)
        noise = try c.decodeNumberIfPresent(forKey: .noise)
        xMin = try c.decodeNumberIfPresent(forKey: .xMin)
        xMax = try c.decodeNumberIfPresent(forKey: .xMax)
        frequency = try c.decodeNumberIfPresent(forKey: .frequency)
        inputDim = try c.decodeIntegerIfPresent(Int.self, forKey: .inputDim, in: 1...ConfigLimits.maxWidth)
        teacherWidths = try c.decodeIntegersIfPresent(Int.self, forKey: .teacherWidths, in: 1...ConfigLimits.maxWidth)
        teacherActivation = try c.decodeIfPresent(String.self, forKey: .teacherActivation)
        outputDim = try c.decodeIntegerIfPresent(Int.self, forKey: .outputDim, in: 1...ConfigLimits.maxWidth)
        if c.contains(.classes) {
            if kind == "spirals" {
                guard let k = try? c.decode(Int.self, forKey: .classes) else {
                    throw DecodingError.dataCorruptedError(forKey: .classes, in: c, debugDescription:
                        "for spirals, classes is the number of arms, \(ConfigLimits.describe(DataSpec.spiralsClassesRange))")
                }
                classes = k
            } else {
                guard let list = try? c.decode([Int].self, forKey: .classes) else {
                    throw DecodingError.dataCorruptedError(forKey: .classes, in: c, debugDescription:
                        "for idx, classes is the list of labels to keep, e.g. [0, 6]")
                }
                classFilter = list
            }
        }
        turns = try c.decodeNumberIfPresent(forKey: .turns)
        factor = try c.decodeNumberIfPresent(forKey: .factor)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        targetColumn = try c.decodeIfPresent(ColumnRef.self, forKey: .targetColumn)
        header = try c.decodeIfPresent(Bool.self, forKey: .header)
        if let t = try c.decodeIfPresent(String.self, forKey: .task) {
            guard let task = TaskKind(rawValue: t) else {
                throw DecodingError.dataCorruptedError(forKey: .task, in: c, debugDescription:
                    "unknown task '\(t)'; expected regression, binary or multiclass")
            }
            self.task = task
        }
        testFraction = try c.decodeNumberIfPresent(forKey: .testFraction)
        delimiter = try c.decodeIfPresent(String.self, forKey: .delimiter)
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        trainImages = try c.decodeIfPresent(String.self, forKey: .trainImages)
        trainLabels = try c.decodeIfPresent(String.self, forKey: .trainLabels)
        testImages = try c.decodeIfPresent(String.self, forKey: .testImages)
        testLabels = try c.decodeIfPresent(String.self, forKey: .testLabels)
        normalize = try c.decodeIfPresent(String.self, forKey: .normalize)
        shuffle = try c.decodeIfPresent(Bool.self, forKey: .shuffle)
        labelCount = try c.decodeIntegerIfPresent(Int.self, forKey: .labelCount, in: DataSpec.labelCountRange)

        if let problem = problem() {
            if problem.missing {
                throw DecodingError.keyNotFound(problem.key, .init(codingPath: c.codingPath, debugDescription: problem.message))
            }
            throw DecodingError.dataCorruptedError(forKey: problem.key, in: c, debugDescription: problem.message)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(train, forKey: .train)
        try c.encodeIfPresent(test, forKey: .test)
        try c.encodeIfPresent(noise, forKey: .noise)
        try c.encodeIfPresent(xMin, forKey: .xMin)
        try c.encodeIfPresent(xMax, forKey: .xMax)
        try c.encodeIfPresent(frequency, forKey: .frequency)
        try c.encodeIfPresent(inputDim, forKey: .inputDim)
        try c.encodeIfPresent(teacherWidths, forKey: .teacherWidths)
        try c.encodeIfPresent(teacherActivation, forKey: .teacherActivation)
        try c.encodeIfPresent(outputDim, forKey: .outputDim)
        if let classes { try c.encode(classes, forKey: .classes) } else { try c.encodeIfPresent(classFilter, forKey: .classes) }
        try c.encodeIfPresent(turns, forKey: .turns)
        try c.encodeIfPresent(factor, forKey: .factor)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encodeIfPresent(targetColumn, forKey: .targetColumn)
        try c.encodeIfPresent(header, forKey: .header)
        try c.encodeIfPresent(task, forKey: .task)
        try c.encodeIfPresent(testFraction, forKey: .testFraction)
        try c.encodeIfPresent(delimiter, forKey: .delimiter)
        try c.encodeIfPresent(directory, forKey: .directory)
        try c.encodeIfPresent(trainImages, forKey: .trainImages)
        try c.encodeIfPresent(trainLabels, forKey: .trainLabels)
        try c.encodeIfPresent(testImages, forKey: .testImages)
        try c.encodeIfPresent(testLabels, forKey: .testLabels)
        try c.encodeIfPresent(normalize, forKey: .normalize)
        try c.encodeIfPresent(shuffle, forKey: .shuffle)
        try c.encodeIfPresent(labelCount, forKey: .labelCount)
    }

    // MARK: Validation

    struct Problem {
        var key: CodingKeys
        var message: String
        var missing = false
    }

    /// The first thing wrong with the spec (kind, required fields, ranges), or nil.
    func problem() -> Problem? {
        func bad(_ key: CodingKeys, _ message: String) -> Problem { Problem(key: key, message: message) }
        guard let allowed = DataSpec.fieldsByKind[kind] else {
            return bad(.kind, "unknown data kind '\(kind)'; expected one of \(DataSpec.kinds.joined(separator: ", "))")
        }
        // Fields set in code that the kind ignores.
        let set: [(CodingKeys, Bool)] = [
            (.noise, noise != nil), (.xMin, xMin != nil), (.xMax, xMax != nil), (.frequency, frequency != nil),
            (.inputDim, inputDim != nil), (.teacherWidths, teacherWidths != nil), (.teacherActivation, teacherActivation != nil),
            (.outputDim, outputDim != nil), (.classes, classes != nil || classFilter != nil), (.turns, turns != nil),
            (.factor, factor != nil), (.path, path != nil), (.targetColumn, targetColumn != nil), (.header, header != nil),
            (.task, task != nil), (.testFraction, testFraction != nil), (.delimiter, delimiter != nil),
            (.directory, directory != nil), (.trainImages, trainImages != nil), (.trainLabels, trainLabels != nil),
            (.testImages, testImages != nil), (.testLabels, testLabels != nil), (.normalize, normalize != nil),
            (.shuffle, shuffle != nil), (.labelCount, labelCount != nil),
        ]
        for (key, isSet) in set where isSet && !allowed.contains(key) {
            return bad(key, "field '\(key.rawValue)' does not apply to data kind '\(kind)'")
        }
        if DataSpec.generatorKinds.contains(kind) {
            guard let train else {
                return Problem(key: .train, message: "data kind '\(kind)' needs 'train' (number of training examples)", missing: true)
            }
            guard let test else {
                return Problem(key: .test, message: "data kind '\(kind)' needs 'test' (number of held-out examples, may be 0)", missing: true)
            }
            if !(1...ConfigLimits.maxExamples).contains(train) {
                return bad(.train, "train must be \(ConfigLimits.describe(1...ConfigLimits.maxExamples)), got \(train)")
            }
            if !(0...ConfigLimits.maxExamples).contains(test) {
                return bad(.test, "test must be \(ConfigLimits.describe(0...ConfigLimits.maxExamples)), got \(test)")
            }
            if let noise, !(noise >= 0 && noise.isFinite) { return bad(.noise, "noise must be a finite number ≥ 0, got \(noise)") }
        } else {
            if let train, !(0...ConfigLimits.maxExamples).contains(train) {
                return bad(.train, "train must be \(ConfigLimits.describe(0...ConfigLimits.maxExamples)), got \(train)")
            }
            if let test, !(0...ConfigLimits.maxExamples).contains(test) {
                return bad(.test, "test must be \(ConfigLimits.describe(0...ConfigLimits.maxExamples)), got \(test)")
            }
        }
        if let task {
            if kind != "csv" && task == .regression {
                return bad(.task, "task regression does not fit data kind '\(kind)' (use binary or multiclass)")
            }
        }
        switch kind {
        case "sine":
            let lo = xMin ?? -Double.pi, hi = xMax ?? Double.pi
            if !(lo.isFinite && hi.isFinite && lo < hi) { return bad(.xMin, "sine needs finite xMin < xMax, got [\(lo), \(hi)]") }
            if let f = frequency, !f.isFinite { return bad(.frequency, "frequency must be finite, got \(f)") }
        case "teacher":
            let widthRange = 1...ConfigLimits.maxWidth
            if let d = inputDim, !widthRange.contains(d) { return bad(.inputDim, "inputDim must be \(ConfigLimits.describe(widthRange)), got \(d)") }
            if let w = teacherWidths, w.contains(where: { !widthRange.contains($0) }) {
                return bad(.teacherWidths, "teacherWidths must each be \(ConfigLimits.describe(widthRange)), got \(w)")
            }
            if let a = teacherActivation, Generators.Teacher.ActivationKind(rawValue: a) == nil {
                return bad(.teacherActivation, "unknown teacherActivation '\(a)'; expected tanh, relu or square")
            }
            if let c = outputDim, !widthRange.contains(c) { return bad(.outputDim, "outputDim must be \(ConfigLimits.describe(widthRange)), got \(c)") }
            let widths = [inputDim ?? 16] + (teacherWidths ?? [32]) + [outputDim ?? 1]
            let weights = zip(widths, widths.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 + $1.1 }
            if weights > ConfigLimits.maxParameters {
                return bad(.teacherWidths, "the teacher network \(widths.map(String.init).joined(separator: "-")) has \(weights) parameters, more than the limit of \(ConfigLimits.maxParameters); use smaller widths")
            }
        case "spirals":
            if let k = classes, !DataSpec.spiralsClassesRange.contains(k) {
                return bad(.classes, "spirals need classes ≥ 2 and ≤ \(DataSpec.spiralsClassesRange.upperBound) (\(ConfigLimits.describe(DataSpec.spiralsClassesRange))), got \(k)")
            }
            if let t = turns, !(t.isFinite && t >= 0) { return bad(.turns, "turns must be a finite number ≥ 0, got \(t)") }
            if task == .binary, (classes ?? 2) != 2 { return bad(.task, "task binary needs classes = 2, got \(classes ?? 2)") }
        case "circles":
            if let f = factor, !(f >= 0 && f < 1) { return bad(.factor, "factor must be in [0, 1), got \(f)") }
        case "csv":
            guard let path, !path.isEmpty else {
                return Problem(key: .path, message: "data kind 'csv' needs 'path' (the CSV file)", missing: true)
            }
            if let f = testFraction, !(f >= 0 && f < 1) { return bad(.testFraction, "testFraction must be in [0, 1), got \(f)") }
            if let d = delimiter, d.count != 1 || d == "\"" || d == "\n" {
                return bad(.delimiter, "delimiter must be one character other than a quote or newline, got '\(d)'")
            }
        case "idx":
            let count = labelCount ?? 10
            if !DataSpec.labelCountRange.contains(count) {
                return bad(.labelCount, "labelCount must be \(ConfigLimits.describe(DataSpec.labelCountRange)), got \(count)")
            }
            if let filter = classFilter {
                if filter.count < 2 { return bad(.classes, "classes must list at least 2 labels, got \(filter)") }
                if Set(filter).count != filter.count { return bad(.classes, "classes has repeated labels: \(filter)") }
                if let out = filter.first(where: { !(0..<count).contains($0) }) {
                    return bad(.classes, "class \(out) is outside the labels 0..<\(count)")
                }
                if task == .binary, filter.count != 2 { return bad(.task, "task binary needs exactly 2 classes, got \(filter)") }
            } else if task == .binary, count != 2 {
                return bad(.task, "task binary needs 2 classes; use classes: [a, b]")
            }
            if let n = normalize, !["unit", "standardize", "none"].contains(n) {
                return bad(.normalize, "unknown normalize '\(n)'; expected unit, standardize or none")
            }
            for (key, name) in [(CodingKeys.trainImages, trainImages), (.trainLabels, trainLabels),
                                (.testImages, testImages), (.testLabels, testLabels)] {
                if let name, name.isEmpty { return bad(key, "\(key.rawValue) must not be empty") }
            }
        default:
            break
        }
        // Generated data is allocated in full: check its size first.
        if DataSpec.generatorKinds.contains(kind), let train, let test {
            let features = kind == "sine" ? 1 : kind == "teacher" ? (inputDim ?? 16) : 2
            let targets = kind == "teacher" ? (outputDim ?? 1) : 1
            let values = (train + test) * (features + targets)
            if values > ConfigLimits.maxDataValues {
                return bad(.train, "train + test = \(train + test) examples × \(features + targets) numbers each = \(values) numbers, more than the limit of \(ConfigLimits.maxDataValues) (800 MB); use fewer examples")
            }
        }
        return nil
    }

    /// Throws `DataError` when the spec is invalid (the checks decoding makes).
    public func validate() throws {
        if let p = problem() { throw DataError("data spec (\(kind)): \(p.message)") }
    }
}
