import Foundation
import Testing
@testable import PKOptim

private func close(_ a: Double, _ b: Double, tol: Double = 1e-14) -> Bool { abs(a - b) <= tol * max(1, abs(a), abs(b)) }

@Suite("Learning-rate schedules against their closed forms")
struct ScheduleTests {
    @Test func constant() {
        let s = ScheduleSpec.constant
        for t in [0, 1, 50, 99] { #expect(close(s.learningRate(step: t, totalSteps: 100, base: 0.3), 0.3)) }
    }

    @Test func stepDecay() {
        let s = ScheduleSpec(kind: .step, every: 10, gamma: 0.5)
        let expected: [(Int, Double)] = [(0, 1), (9, 1), (10, 0.5), (19, 0.5), (20, 0.25), (35, 0.125)]
        for (t, e) in expected { #expect(close(s.learningRate(step: t, totalSteps: 100, base: 1), e), "t=\(t)") }
    }

    @Test func cosineEndpointsAndMidpoint() {
        let s = ScheduleSpec(kind: .cosine, minLearningRate: 0.1)
        #expect(close(s.learningRate(step: 0, totalSteps: 100, base: 1), 1))
        #expect(close(s.learningRate(step: 50, totalSteps: 100, base: 1), 0.55))
        #expect(close(s.learningRate(step: 100, totalSteps: 100, base: 1), 0.1))
        // Monotone non-increasing.
        let rates = (0..<100).map { s.learningRate(step: $0, totalSteps: 100, base: 1) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 })
    }

    @Test func linearWarmupThenCosine() {
        let s = ScheduleSpec(kind: .cosine, warmupSteps: 4)
        #expect(close(s.learningRate(step: 0, totalSteps: 104, base: 2), 0.5))
        #expect(close(s.learningRate(step: 3, totalSteps: 104, base: 2), 2))
        #expect(close(s.learningRate(step: 4, totalSteps: 104, base: 2), 2))
        #expect(close(s.learningRate(step: 54, totalSteps: 104, base: 2), 1))
    }

    @Test func decodingDefaultsAndValidation() throws {
        let s = try JSONDecoder().decode(ScheduleSpec.self, from: Data(#"{"kind":"step","every":5}"#.utf8))
        #expect(s.kind == .step && s.every == 5 && close(s.gamma, 0.1) && s.warmupSteps == 0)
        #expect(throws: OptimError.self) { try ScheduleSpec(kind: .step, every: 0).validate() }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ScheduleSpec.self, from: Data(#"{"kind":"exponential"}"#.utf8))
        }
    }
}

@Suite("Gradient descent update")
struct GradientDescentTests {
    @Test(arguments: [0.0, 0.01])
    func deltaIsMinusEtaTimesGradientPlusDecay(lambda: Double) {
        let gd = GradientDescent(weightDecay: lambda)
        let w = [1.0, -2.0, 3.0], g = [0.5, 0.25, -1.0]
        let d = gd.delta(gradient: g, parameters: w, learningRate: 0.1)
        for i in 0..<3 { #expect(close(d[i], -0.1 * (g[i] + lambda * w[i]), tol: 1e-15)) }
    }

    @Test func optimizerSpecValidation() throws {
        #expect(throws: OptimError.self) { try OptimizerSpec(kind: .gd, learningRate: 0).validate() }
        #expect(throws: OptimError.self) { try OptimizerSpec(kind: .gd, learningRate: .nan).validate() }
        #expect(throws: OptimError.self) { try OptimizerSpec(kind: .gd, learningRate: 1, weightDecay: -1).validate() }
        let o = try JSONDecoder().decode(OptimizerSpec.self, from: Data(#"{"kind":"sgd","learningRate":0.1}"#.utf8))
        #expect(o.kind == .sgd && close(o.weightDecay, 0) && o.schedule == .constant)
    }
}
