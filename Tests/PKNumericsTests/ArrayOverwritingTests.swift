import Testing
@testable import PKNumerics

@Suite("Arrays for overwriting")
struct ArrayOverwritingTests {
    @Test("forOverwriting reuses an array of the right count and is NaN-filled where poisonsUninitialized (debug, ./dev test)")
    func forOverwriting() {
        var old: [Double]? = [1, 2, 3], short: [Float]? = [1, 2]
        let reused = [Double].forOverwriting(count: 3, reusing: &old)
        let fresh = [Float].forOverwriting(count: 5, reusing: &short)
        #expect(reused.count == 3 && fresh.count == 5 && old == nil && short == nil)
        if poisonsUninitialized {
            #expect(reused.allSatisfy(\.isNaN) && fresh.allSatisfy(\.isNaN))
        } else {
            #expect(reused == [1, 2, 3])
        }
    }
}
