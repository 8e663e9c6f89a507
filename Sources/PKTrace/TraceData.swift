/// The four arrays a trace stores: training and held-out inputs and targets.
///
/// Shapes: `x` is `[n, d]`. `y` is `[n]` holding class indices as Float64 for `binary`
/// (0 or 1) and `multiclass` (0..<K) tasks, and `[n, C]` real targets for `regression`.
/// Train and test share `d` (and `C`). The held-out split may have n = 0.
public struct TraceData: Sendable, Equatable {
    public var trainX: DataArray
    public var trainY: DataArray
    public var testX: DataArray
    public var testY: DataArray

    public init(trainX: DataArray, trainY: DataArray, testX: DataArray, testY: DataArray) {
        self.trainX = trainX
        self.trainY = trainY
        self.testX = testX
        self.testY = testY
    }

    /// The arrays with their `(split, role)` keys, in storage order.
    var entries: [(split: String, role: String, array: DataArray)] {
        [("train", "x", trainX), ("train", "y", trainY), ("test", "x", testX), ("test", "y", testY)]
    }
}
