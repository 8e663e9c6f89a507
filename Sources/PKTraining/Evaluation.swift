import PKData
import PKNetworks
import PKNumerics
import PKOptim

/// How well a network fits a dataset: mean loss, and accuracy (classification) or RMSE
/// (regression, over all outputs).
public struct Evaluation: Sendable, Codable, Equatable {
    public var loss: Double
    public var accuracy: Double?
    public var rmse: Double?

    public static func evaluate(model: any Network, parameters w: [Double], data: Dataset, loss: LossKind) -> Evaluation {
        guard data.count > 0 else { return Evaluation(loss: .nan, accuracy: nil, rmse: nil) }
        let f = model.forward(w, data.x)
        let l = loss.evaluate(outputs: f, targets: data.y).loss
        switch data.task {
        case .regression:
            let diff = f - data.y
            let rmse = (diff.data.reduce(0) { $0 + $1 * $1 } / Double(diff.data.count)).squareRoot()
            return Evaluation(loss: l, accuracy: nil, rmse: rmse)
        case .binary:
            var correct = 0
            for r in 0..<data.count where (f[r, 0] > 0) == (data.y[r, 0] > 0.5) { correct += 1 }
            return Evaluation(loss: l, accuracy: Double(correct) / Double(data.count), rmse: nil)
        case .multiclass:
            var correct = 0
            for r in 0..<data.count {
                if f.argmax(row: r) == Int(data.y[r, 0].rounded()) { correct += 1 }
            }
            return Evaluation(loss: l, accuracy: Double(correct) / Double(data.count), rmse: nil)
        }
    }
}
