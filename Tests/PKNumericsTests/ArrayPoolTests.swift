import Testing
@testable import PKNumerics

@Suite("Array pool")
struct ArrayPoolTests {
    @Test("take returns a given-back array of exactly that count, newest first, and removes it")
    func takeExactCount() {
        let pool = ArrayPool<Double>(limit: 3)
        #expect(pool.take(count: 4) == nil)
        pool.give([1, 2, 3, 4])
        pool.give([5, 6])
        pool.give([7, 8, 9, 10])
        #expect(pool.take(count: 3) == nil)
        #expect(pool.take(count: 4) == [7, 8, 9, 10])
        #expect(pool.take(count: 4) == [1, 2, 3, 4])
        #expect(pool.take(count: 4) == nil)
        #expect(pool.count == 1)
    }

    @Test("beyond the limit the oldest array is dropped; limit 0 keeps nothing")
    func limit() {
        let pool = ArrayPool<Int>(limit: 2)
        pool.give([1])
        pool.give([2])
        pool.give([3])
        #expect(pool.count == 2)
        #expect(pool.take(count: 1) == [3])
        #expect(pool.take(count: 1) == [2])
        #expect(pool.take(count: 1) == nil)
        let none = ArrayPool<Int>(limit: 0)
        none.give([1])
        #expect(none.count == 0)
    }

    @Test("forOverwriting reuses an array of the right count and is NaN-filled in debug builds")
    func forOverwriting() {
        var old: [Double]? = [1, 2, 3], short: [Float]? = [1, 2]
        let reused = [Double].forOverwriting(count: 3, reusing: &old)
        let fresh = [Float].forOverwriting(count: 5, reusing: &short)
        #expect(reused.count == 3 && fresh.count == 5 && old == nil && short == nil)
        if _isDebugAssertConfiguration() {
            #expect(reused.allSatisfy(\.isNaN) && fresh.allSatisfy(\.isNaN))
        } else {
            #expect(reused == [1, 2, 3])
        }
    }
}
