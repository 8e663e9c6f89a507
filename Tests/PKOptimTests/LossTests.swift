import Foundation
import Testing
import PKNumerics
@testable import PKOptim

/// `|a − b| ≤ tol · max(1, |a|, |b|)`.
private func near(_ a: Double, _ b: Double, _ tol: Double) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }

/// Hand-computed values: round-off of a few operations.
private let closedFormTolerance = 1e-14
/// Central differences with step 1e-6 on O(1) losses: error ≈ h² + ε/h ≈ 1e-10.
private let finiteDifferenceTolerance = 1e-7

@Suite("Losses against closed forms and finite differences")
struct LossTests {
    @Test func mseClosedForm() {
        let f = Matrix([[1, 2], [0, 0]]), y = Matrix([[0, 4], [1, 1]])
        let (loss, g) = LossKind.mse.evaluate(outputs: f, targets: y)
        // ½(1 + 4) = 2.5 and ½(1 + 1) = 1: mean 1.75.
        #expect(near(loss, 1.75, closedFormTolerance))
        #expect(LossKind.mse.perExampleLoss(outputs: f, targets: y).enumerated().allSatisfy { near($1, [2.5, 1][$0], closedFormTolerance) })
        #expect(zip(g.data, [1, -2, -1, -1]).allSatisfy { near($0, $1, closedFormTolerance) })
    }

    @Test func crossEntropyClosedForm() {
        let f = Matrix([[1, 2, 3], [0, 0, 0]]), y = Matrix([[2], [0]])
        let (loss, g) = LossKind.crossEntropy.evaluate(outputs: f, targets: y)
        let z = exp(1.0) + exp(2.0) + exp(3.0)
        let l0 = log(z) - 3, l1 = log(3.0)
        #expect(near(loss, (l0 + l1) / 2, closedFormTolerance))
        let expected = [exp(1) / z, exp(2) / z, exp(3) / z - 1, 1.0 / 3 - 1, 1.0 / 3, 1.0 / 3]
        #expect(zip(g.data, expected).allSatisfy { near($0, $1, closedFormTolerance) })
        // Each gradient row sums to zero (softmax sums to one).
        for r in 0..<2 { #expect(abs(g.row(r).reduce(0, +)) < closedFormTolerance) }
    }

    @Test func logisticClosedForm() {
        let f = Matrix([[0], [2], [-1]]), y = Matrix([[1], [0], [1]])
        let per = LossKind.logistic.perExampleLoss(outputs: f, targets: y)
        let expected = [log(2.0), log(1 + exp(2.0)), log(1 + exp(1.0))]
        #expect(zip(per, expected).allSatisfy { near($0, $1, closedFormTolerance) })
        let g = LossKind.logistic.evaluate(outputs: f, targets: y).perExampleGradient
        let sig = { (x: Double) in 1 / (1 + exp(-x)) }
        #expect(zip(g.data, [sig(0) - 1, sig(2), sig(-1) - 1]).allSatisfy { near($0, $1, closedFormTolerance) })
    }

    /// Outputs and targets for each loss (targets valid for that loss).
    static func example(_ kind: LossKind) -> (Matrix, Matrix) {
        var rng = PortableRandom(seed: 31)
        switch kind {
        case .mse:
            return (Matrix(rows: 5, cols: 3, data: (0..<15).map { _ in 2 * rng.normal() }),
                    Matrix(rows: 5, cols: 3, data: (0..<15).map { _ in rng.normal() }))
        case .crossEntropy:
            return (Matrix(rows: 5, cols: 4, data: (0..<20).map { _ in 3 * rng.normal() }),
                    Matrix(rows: 5, cols: 1, data: [0, 3, 1, 2, 3]))
        case .logistic:
            return (Matrix(rows: 5, cols: 1, data: (0..<5).map { _ in 3 * rng.normal() }),
                    Matrix(rows: 5, cols: 1, data: [0, 1, 1, 0, 1]))
        }
    }

    @Test(arguments: LossKind.allCases)
    func gradientMatchesFiniteDifferences(_ kind: LossKind) {
        let (f, y) = Self.example(kind)
        let g = kind.evaluate(outputs: f, targets: y).perExampleGradient
        let h = 1e-6
        for k in f.data.indices {
            var up = f, down = f
            up.data[k] += h
            down.data[k] -= h
            let r = k / f.cols
            let fd = (kind.perExampleLoss(outputs: up, targets: y)[r] - kind.perExampleLoss(outputs: down, targets: y)[r]) / (2 * h)
            #expect(near(g.data[k], fd, finiteDifferenceTolerance), "\(kind) entry \(k): \(g.data[k]) vs \(fd)")
        }
    }

    @Test(arguments: LossKind.allCases)
    func meanIsTheAverageOfPerExampleLosses(_ kind: LossKind) {
        let (f, y) = Self.example(kind)
        let per = kind.perExampleLoss(outputs: f, targets: y)
        #expect(near(kind.evaluate(outputs: f, targets: y).loss, per.reduce(0, +) / Double(per.count), closedFormTolerance))
    }

    /// `(loss, outputs, targets, exact loss)` at logits of ±1000, where a naive formula overflows.
    static let extremes: [(LossKind, [[Double]], [[Double]], [Double])] = [
        (.crossEntropy, [[1000, 0, -1000]], [[0]], [0]),
        (.crossEntropy, [[1000, 0, -1000]], [[1]], [1000]),
        (.crossEntropy, [[1000, 1000, 1000]], [[2]], [log(3.0)]),
        (.crossEntropy, [[-1000, -1000]], [[0]], [log(2.0)]),
        (.logistic, [[1000], [-1000], [1000], [-1000]], [[1], [0], [0], [1]], [0, 0, 1000, 1000]),
        (.mse, [[1000, -1000]], [[0, 0]], [1_000_000]),
    ]

    @Test(arguments: 0..<LossTests.extremes.count)
    func stableAtLargeLogits(_ i: Int) {
        let (kind, f, y, expected) = Self.extremes[i]
        let (loss, g) = kind.evaluate(outputs: Matrix(f), targets: Matrix(y))
        let per = kind.perExampleLoss(outputs: Matrix(f), targets: Matrix(y))
        #expect(loss.isFinite && g.isFinite)
        #expect(zip(per, expected).allSatisfy { near($0, $1, closedFormTolerance) }, "\(kind): \(per)")
    }

    @Test func specDecodingAndNames() throws {
        for kind in LossKind.allCases {
            let data = try JSONEncoder().encode(LossSpec(kind: kind))
            #expect(try JSONDecoder().decode(LossSpec.self, from: data) == LossSpec(kind: kind))
        }
        let ce = try JSONDecoder().decode(LossSpec.self, from: Data(#"{"kind":"cross-entropy"}"#.utf8))
        #expect(ce.kind == .crossEntropy)
        do {
            _ = try JSONDecoder().decode(LossSpec.self, from: Data(#"{"kind":"hinge"}"#.utf8))
            Issue.record("decoded an unknown loss kind")
        } catch {
            #expect("\(error)".contains("unknown loss kind \"hinge\""), "\(error)")
        }
    }
}
