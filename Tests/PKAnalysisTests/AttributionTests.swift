import Foundation
@testable import PKAnalysis
import PKOptim
import PKTraining
import Testing

/// Attribution in output units (Docs/path-kernel.md §4, Attribution): each training example's
/// contribution `−N(x, i)` to `f_T(x) − f_0(x)`, the largest on each side, and their total.
@Suite("Attribution in output units")
struct AttributionTests {
    /// Without weight decay what no example carries is the kernel form's residual, so every
    /// example's contributions add up to the change within the kernel form's max abs residual
    /// (the quadrature error of this smooth run, 1e-15 to 1e-9); for C = 1 the contributions are the
    /// shares times the change (the two are computed from N apart); the sides are sorted and
    /// signed; the largest |share| is the largest |contribution|.
    @Test(arguments: [#"{"kind":"sgd","learningRate":0.1}"#, #"{"kind":"sgd","learningRate":0.1,"momentum":0.9}"#,
                      #"{"kind":"adam","learningRate":0.01}"#])
    func contributionsAddUpToTheChange(optimizer: String) throws {
        /// Summation round-off on top of the kernel form's residual.
        let roundOff = 1e-12
        let cfg = config(name: "attr", data: #"{"kind":"teacher","train":16,"test":6,"inputDim":3}"#,
                         model: #"{"layers":[3,8,8,1],"activation":"tanh"}"#, loss: .mse,
                         optimizer: try JSONDecoder().decode(OptimizerSpec.self, from: Data(optimizer.utf8)), steps: 12, batchSize: 4)
        let r = try analyze(try recordTrace(cfg), AnalysisSettings(nodes: 3))
        #expect(!r.attribution.isEmpty)
        let closure = try #require(r.reconstruction.test?.kernelFormMaxAbs) + roundOff
        for a in r.attribution {
            let change = try #require(a.componentChange), total = try #require(a.examplesSum)
            let up = try #require(a.pushedUp), down = try #require(a.pushedDown)
            #expect(a.component == "output" && a.examples == 16)
            #expect(change == a.change[0])
            #expect(a.split == "test")
            #expect(abs(total - change) <= closure, "Σ contributions \(total) vs change \(change)")
            #expect(abs(try #require(a.notFromExamples)) <= closure)
            #expect(up.allSatisfy { $0.value > 0 } && down.allSatisfy { $0.value < 0 })
            #expect(zip(up, up.dropFirst()).allSatisfy { $0.value >= $1.value })
            #expect(zip(down, down.dropFirst()).allSatisfy { $0.value <= $1.value })
            #expect(up.count <= 5 && down.count <= 5 && up.count + down.count > 0)
            let listed = up + down
            for s in a.top {
                guard let c = listed.first(where: { $0.trainIndex == s.trainIndex }) else { continue }
                #expect(abs(c.value - s.share * change) <= 1e-12 * max(1, abs(c.value)), "example \(s.trainIndex)")
            }
            let largest = try #require(listed.max { abs($0.value) < abs($1.value) })
            #expect(largest.trainIndex == a.top[0].trainIndex)
            // rest + listed = total.
            let rest = try #require(a.rest)
            #expect(abs(rest + listed.reduce(0) { $0 + $1.value } - total) <= 1e-12 * max(1, abs(total)))
        }
    }

    /// Multiclass: the contributions are to the predicted class's output, and they add up to its change.
    @Test func multiclassTakesThePredictedClass() throws {
        let cfg = config(name: "spirals", data: #"{"kind":"spirals","train":24,"test":9,"classes":3}"#,
                         model: #"{"layers":[2,8,3],"activation":"tanh"}"#, loss: .crossEntropy,
                         optimizer: OptimizerSpec(kind: .gd, learningRate: 0.5), steps: 6)
        let r = try analyze(try recordTrace(cfg))
        /// The kernel form's residual plus summation round-off.
        let closure = try #require(r.reconstruction.test?.kernelFormMaxAbs) + 1e-12
        for a in r.attribution {
            let k = try #require((0..<3).max { a.output[$0] < a.output[$1] })
            #expect(a.component == "class \(k)")
            #expect(a.componentChange == a.change[k])
            let total = try #require(a.examplesSum)
            #expect(abs(total - a.change[k]) <= closure)
        }
    }

    /// Results stored before contributions existed (no new keys) still decode, without them.
    @Test func olderResultsDecode() throws {
        let json = #"{"split":"test","query":0,"output":[1.5],"change":[0.5],"top":[{"trainIndex":3,"share":0.25,"label":1}]}"#
        let a = try JSONDecoder().decode(AnalysisResult.Attribution.self, from: Data(json.utf8))
        #expect(a.pushedUp == nil && a.component == nil && a.rest == nil && a.notFromExamples == nil)
    }
}
