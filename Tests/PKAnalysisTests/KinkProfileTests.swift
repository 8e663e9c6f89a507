import Foundation
import Testing
import PKTrace
@testable import PKAnalysis

/// The progress under exact quadrature (`KinkProfile`, `ProgressUnits`): each step counted at the
/// kinked share it measured, the steps to come at a least-squares fit on the recorded `η_s·√L_s`.
/// Oracles: profiles built to be affine in the proxy (the fit must recover them exactly), sums
/// written out by hand, and the quadrature's own tally of kinked pairs in a real analysis.
@Suite("Kink profile: the progress bar under exact quadrature")
struct KinkProfileTests {
    /// Sums of at most a few hundred O(1) terms in float64.
    static let tolerance = 1e-12

    static func records(lr: [Double], loss: [Double]) -> [StepRecord] {
        zip(lr, loss).enumerated().map { s, r in StepRecord(step: s, epoch: 0, learningRate: r.0, batch: [0], loss: r.1) }
    }

    /// A falling loss at a learning rate that halves at step 20: `p_s = η_s·√L_s`.
    static let steps = 40
    static let lr = (0..<steps).map { $0 < 20 ? 0.5 : 0.25 }
    static let loss = (0..<steps).map { 2 * exp(-Double($0) / 8) + 0.05 }
    static var proxy: [Double] { zip(lr, loss).map { $0 * $1.squareRoot() } }

    static func profile(_ shares: [Double], recorded k: Int, loss: [Double] = loss) -> KinkProfile {
        var p = KinkProfile(records: records(lr: lr, loss: loss), steps: steps, prior: 0.25)
        for f in shares.prefix(k) { p.record(f) }
        return p
    }

    @Test(arguments: [3, 10, 25, 39])
    func fitRecoversAProfileAffineInTheProxy(recorded k: Int) {
        let shares = Self.proxy.map { 0.03 + 0.4 * $0 }
        let p = Self.profile(shares, recorded: k)
        let expected = shares[k...].reduce(0, +)
        #expect(abs(p.predictedRemainingSum - expected) <= Self.tolerance * Double(Self.steps), "\(p.predictedRemainingSum) vs \(expected)")
        #expect(abs(p.measuredSum - shares[..<k].reduce(0, +)) <= Self.tolerance)
        #expect(p.done == k)
    }

    @Test func aConstantShareIsPredictedConstant() {
        let p = Self.profile(Array(repeating: 0.2, count: Self.steps), recorded: 12)
        #expect(abs(p.predictedRemainingSum - 0.2 * Double(Self.steps - 12)) <= Self.tolerance * Double(Self.steps))
    }

    @Test func beforeTheFirstStepThePlansShare() {
        let p = Self.profile([], recorded: 0)
        #expect(p.predictedRemainingSum == 0.25 * Double(Self.steps))
        #expect(p.measuredSum == 0)
    }

    /// A share that rises while the proxy falls (a negative slope): the mean of the steps done.
    @Test func aShareAgainstTheProxyTakesTheMean() {
        let shares = (0..<Self.steps).map { 0.1 + 0.01 * Double($0) }
        let p = Self.profile(shares, recorded: 10)
        let mean = shares[..<10].reduce(0, +) / 10
        #expect(abs(p.predictedRemainingSum - mean * 30) <= Self.tolerance * Double(Self.steps))
    }

    /// A negative intercept: a = 0 and the slope through the origin, `b = Σp·f / Σp²`.
    @Test func aNegativeInterceptFitsThroughTheOrigin() {
        let proxy = Self.proxy, shares = proxy.map { max(0, 0.6 * $0 - 0.05) }
        let k = 15
        let b = zip(proxy[..<k], shares[..<k]).reduce(0) { $0 + $1.0 * $1.1 } / proxy[..<k].reduce(0) { $0 + $1 * $1 }
        let p = Self.profile(shares, recorded: k)
        #expect(abs(p.predictedRemainingSum - b * proxy[k...].reduce(0, +)) <= Self.tolerance * Double(Self.steps))
    }

    /// A loss that is not finite leaves no proxy: the later half of the steps done, here 0.1.
    @Test func withoutAProxyTheLaterHalfsMean() {
        var loss = Self.loss
        loss[33] = .nan
        let p = Self.profile([0.5, 0.5, 0.5, 0.1, 0.1, 0.1], recorded: 6, loss: loss)
        #expect(abs(p.predictedRemainingSum - 0.1 * Double(Self.steps - 6)) <= Self.tolerance * Double(Self.steps))
    }

    @Test func neverMoreThanOneShareAStep() {
        let shares = Self.proxy.map { min(1, 3 * $0) }
        let p = Self.profile(shares, recorded: 3)
        #expect(p.predictedRemainingSum <= Double(Self.steps - 3))
        #expect(p.predictedRemainingSum >= 0)
    }

    /// A segment at checkpoint resolution counts every step it spans; shares outside [0, 1] or not
    /// finite are clamped; no step past the run's.
    @Test func spansClampsAndTheEnd() {
        var p = KinkProfile(records: Self.records(lr: [0.1, 0.1, 0.1], loss: [1, 1, 1]), steps: 3, prior: 0.25)
        p.record(0.3, span: 2)
        #expect(p.done == 2)
        #expect(abs(p.measuredSum - 0.6) <= Self.tolerance)
        p.record(.nan, span: 5)
        #expect(p.done == 3)
        #expect(abs(p.measuredSum - 0.6) <= Self.tolerance)
        #expect(p.predictedRemainingSum == 0)
        var q = KinkProfile(records: Self.records(lr: [0.1, 0.1], loss: [1, 1]), steps: 2, prior: 0.25)
        q.record(2)
        q.record(-1)
        #expect(q.measuredSum == 1)
    }

    /// Each step's work is affine in its share, at the plan's share the plan's price.
    @Test func unitsAreAffineInTheShare() {
        let u = ProgressUnits(forwardPerStep: 2, backwardPerStep: 3, forwardPerKinkedShare: 5, machines: 11)
        let f = AnalysisCostModel.exactKinkedShare
        #expect(abs(u.forward(steps: 4, shareSum: 4 * f) - 8) <= Self.tolerance)
        #expect(abs(u.forward(steps: 4, shareSum: 4 * f + 1) - 13) <= Self.tolerance)
    }

    /// A real analysis: the steps phase's work as the bar saw it is each step's price at the share
    /// the quadrature tallied (its kinked pairs over the query rows), its total at the last step the
    /// total of the machines' reports, and the reports never run backwards. Plain SGD (the forward
    /// route) and momentum (whose backward pass keeps the plan's price).
    @Test(arguments: [nil, #"{"kind":"sgd","learningRate":1.0,"momentum":0.9}"#])
    func theWalkCountsEachStepAtItsShare(optimizer: String?) throws {
        let path = try ExactQuadratureTests.run(steps: 6, optimizer: optimizer)
        let reader = try TraceReader.open(path)
        var reports: [AnalysisProgress] = []
        let walk = try PathAnalyzer(settings: AnalysisSettings()).walk(reader: reader, shard: nil) { reports.append($0) }
        #expect(walk.quadrature.kind == .exact)
        let units = walk.units, T = walk.context.steps
        #expect(units.forwardPerKinkedShare > 0, "the test wants a price on kinks")
        let rows = Double(walk.context.rows.count)
        let tallied = Double(walk.quadrature.kinkedPairs) / rows
        #expect(abs(tallied - Double(T) * AnalysisCostModel.exactKinkedShare) > 0.05, "the test wants a share off the plan's: \(tallied / Double(T))")
        let forward = reports.filter { $0.phase == .forward }
        #expect(forward.count == T)
        let last = try #require(forward.last)
        let expected = units.forward(steps: T, shareSum: tallied)
        #expect(abs(last.done - expected) <= Self.tolerance * expected, "\(last.done) vs \(expected)")
        #expect(abs(last.total - walk.totalWork) <= Self.tolerance * walk.totalWork)
        // The backward pass at the plan's price (AnalysisCostModel.forwardPerKinkedShare).
        let backwardWork = Double(T) * units.backwardPerStep
        #expect(abs(walk.totalWork - (expected + backwardWork + units.machines)) <= Self.tolerance * walk.totalWork)
        for (a, b) in zip(reports, reports.dropFirst()) { #expect(b.fraction >= a.fraction - Self.tolerance) }
        if optimizer != nil {
            #expect(backwardWork > 0)
            let backward = try #require(reports.last { $0.phase == .backward })
            #expect(abs(backward.done - walk.workBeforeMachines) <= Self.tolerance * walk.totalWork)
        }
    }

    /// Without exact quadrature nothing moves with a share: step s of T is s·forwardPerStep.
    @Test func gaussStepsCostThePlansPrice() throws {
        let path = try ExactQuadratureTests.run(steps: 4)
        var settings = AnalysisSettings()
        settings.quadrature = .gauss
        var reports: [AnalysisProgress] = []
        let walk = try PathAnalyzer(settings: settings).walk(reader: try TraceReader.open(path), shard: nil) { reports.append($0) }
        #expect(walk.units.forwardPerKinkedShare == 0)
        for r in reports where r.phase == .forward {
            #expect(abs(r.done - Double(r.step) * walk.units.forwardPerStep) <= Self.tolerance * r.total)
            #expect(abs(r.total - walk.totalWork) <= Self.tolerance * r.total)
        }
    }
}
