import PKNumerics

/// What a dataset's targets mean, and so which loss and output width fit it.
public enum TaskKind: String, Codable, Sendable {
    /// `y` is `n × C` real targets; the network has `C` outputs.
    case regression
    /// `y` is `n × 1` with values in {0, 1}; the network has 1 output (a logit).
    case binary
    /// `y` is `n × 1` with class indices `0..<K` stored as `Double`; the network has `K` outputs.
    case multiclass
}

/// A set of examples: inputs `x` (`n × d`, one example per row) and targets `y`.
///
/// Invariants (checked by `validate(file:)`, which every loader and generator runs):
/// every value is finite; `x.rows == y.rows`; binary targets are 0 or 1 in one column;
/// multiclass targets are integers in `0..<numClasses` in one column.
public struct Dataset: Sendable, Equatable {
    /// `n × d` inputs, one example per row.
    public var x: Matrix
    /// Regression: `n × C` targets. Binary: `n × 1` with 0/1. Multiclass: `n × 1` with the class
    /// index `0..<K` as a `Double`.
    public var y: Matrix
    public var task: TaskKind
    /// 2 for binary, K for multiclass, 0 for regression.
    public var numClasses: Int
    /// A short human-readable name, e.g. `moons/train` or `fashion-mnist/test`.
    public var name: String

    public init(x: Matrix, y: Matrix, task: TaskKind, numClasses: Int, name: String) {
        self.x = x
        self.y = y
        self.task = task
        self.numClasses = numClasses
        self.name = name
    }

    /// Number of examples `n`.
    public var count: Int { x.rows }
    /// Number of input features `d`.
    public var inputDim: Int { x.cols }
    /// The network's output width: `C` for regression, 1 for binary, `K` for multiclass.
    public var outputDim: Int {
        switch task {
        case .regression: return y.cols
        case .binary: return 1
        case .multiclass: return numClasses
        }
    }

    /// The examples at `indices`, in that order (indices may repeat).
    public func subset(_ indices: [Int]) -> Dataset {
        for i in indices { precondition(i >= 0 && i < count, "subset index \(i) outside 0..<\(count)") }
        return Dataset(x: x.rows(at: indices), y: y.rows(at: indices), task: task, numClasses: numClasses, name: name)
    }

    /// Labels as integers (classification tasks only).
    public var labels: [Int] {
        precondition(task != .regression, "labels of a regression dataset")
        return y.data.map { Int($0) }
    }

    /// Checks the invariants above; `file` (if any) is named in the error.
    public func validate(file: String? = nil) throws {
        guard x.rows == y.rows else {
            throw DataError(file: file, "\(name): \(x.rows) inputs but \(y.rows) targets")
        }
        for (i, v) in x.data.enumerated() where !v.isFinite {
            let cols = max(x.cols, 1)
            throw DataError(file: file, "\(name): input example \(i / cols), feature \(i % cols) is \(v) (NaN/Inf not allowed)")
        }
        for (i, v) in y.data.enumerated() where !v.isFinite {
            let cols = max(y.cols, 1)
            throw DataError(file: file, "\(name): target of example \(i / cols), column \(i % cols) is \(v) (NaN/Inf not allowed)")
        }
        switch task {
        case .regression:
            guard numClasses == 0 else { throw DataError(file: file, "\(name): regression dataset with numClasses \(numClasses)") }
        case .binary, .multiclass:
            let k = task == .binary ? 2 : numClasses
            guard task == .multiclass || numClasses == 2 else {
                throw DataError(file: file, "\(name): binary dataset with numClasses \(numClasses)")
            }
            guard k >= 2 else { throw DataError(file: file, "\(name): a classification task needs at least 2 classes, got \(k)") }
            guard y.cols == 1 else { throw DataError(file: file, "\(name): classification targets must be one column, got \(y.cols)") }
            for (i, v) in y.data.enumerated() where !(v >= 0 && v < Double(k) && v == v.rounded()) {
                throw DataError(file: file, "\(name): label \(v) of example \(i) is not a class index in 0..<\(k)")
            }
        }
    }
}

/// A training set and a held-out test set with the same task and feature width.
public struct DataSplit: Sendable, Equatable {
    public var train: Dataset
    public var test: Dataset

    public init(train: Dataset, test: Dataset) {
        self.train = train
        self.test = test
    }
}

/// A dataset could not be made or read. `description` is one line: the file (if any), then what is wrong.
public struct DataError: Error, CustomStringConvertible, Equatable {
    /// The file concerned, if any.
    public let file: String?
    /// What is wrong (without the file name).
    public let message: String

    public init(file: String? = nil, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String {
        let text = file.map { "\($0): \(message)" } ?? message
        // One line, whatever the parts contain.
        return String(text.map { $0.isNewline ? " " : $0 })
    }
}
