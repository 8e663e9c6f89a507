import Foundation
import Testing
import PKNetworks
import PKNumerics

@Suite("Activations: derivatives against finite differences, values against closed forms")
struct ActivationTests {
    /// Points on [−6, 6], none within 0.05 of the ReLU kink at 0.
    static let points: [Double] = stride(from: -6.0, through: 6.0, by: 0.37).map { $0 } + [-1e-1, 0.07, 2.5e-1]
    static let slope = 0.2
    /// Central differences with step 1e-5 in Double: error ≲ h²·|φ'''| + ε/h ≈ 1e-10.
    static let derivativeTolerance = 1e-8

    @Test(arguments: Activation.allCases)
    func derivativeMatchesCentralDifference(_ act: Activation) {
        let h = 1e-5
        for x in Self.points {
            #expect(abs(x) > 10 * h)
            let fd = (act.value(x + h, leakySlope: Self.slope) - act.value(x - h, leakySlope: Self.slope)) / (2 * h)
            let d = act.derivative(x, leakySlope: Self.slope)
            #expect(isClose(d, fd, tolerance: Self.derivativeTolerance), "\(act) at \(x): \(d) vs \(fd)")
        }
    }

    @Test(arguments: Activation.allCases)
    func secondDerivativeMatchesCentralDifference(_ act: Activation) {
        let h = 1e-5
        for x in Self.points {
            let fd = (act.derivative(x + h, leakySlope: Self.slope) - act.derivative(x - h, leakySlope: Self.slope)) / (2 * h)
            let d = act.secondDerivative(x, leakySlope: Self.slope)
            #expect(isClose(d, fd, tolerance: Self.derivativeTolerance), "\(act) φ'' at \(x): \(d) vs \(fd)")
        }
    }

    @Test(arguments: Activation.allCases)
    func fusedEvaluationAgreesWithSeparateOnes(_ act: Activation) {
        for x in Self.points + [0, -0.0, -40, 40] {
            let (v, d) = act.valueAndDerivative(x, leakySlope: Self.slope)
            #expect(v.bitPattern == act.value(x, leakySlope: Self.slope).bitPattern, "\(act) value at \(x)")
            #expect(isClose(d, act.derivative(x, leakySlope: Self.slope), tolerance: 1e-15), "\(act) derivative at \(x)")
        }
    }

    /// `(activation, x, φ(x))` with `φ(x)` from tables or exact identities.
    static let closedForms: [(Activation, Double, Double)] = [
        (.identity, -1.5, -1.5),
        (.relu, -2, 0), (.relu, 3, 3),
        (.leakyRelu, -2, -0.4), (.leakyRelu, 3, 3),
        (.tanh, 1, 0.76159415595576488812),
        (.sigmoid, 0, 0.5), (.sigmoid, 2, 0.88079707797788244406),
        (.gelu, 1, 0.84134474606854293),          // Φ(1)
        (.gelu, -1, -0.15865525393145707),        // −Φ(−1)
        (.erf, 1, 0.84270079294971486934),
        (.softplus, 0, 0.69314718055994530942),   // ln 2
        (.softplus, 3, 3.04858735157374206),      // ln(1 + e³)
    ]

    @Test(arguments: 0..<ActivationTests.closedForms.count)
    func valueMatchesClosedForm(_ i: Int) {
        let (act, x, expected) = Self.closedForms[i]
        #expect(isClose(act.value(x, leakySlope: Self.slope), expected, tolerance: 1e-14), "\(act)(\(x))")
    }

    @Test func kinkConventions() {
        #expect(Activation.relu.derivative(0) == 0)
        #expect(Activation.leakyRelu.derivative(0, leakySlope: 0.2) == 0.2)
        #expect(Activation.relu.derivative(1e-300) == 1)
    }

    @Test(arguments: Activation.allCases)
    func finiteAtExtremeInputs(_ act: Activation) {
        for x in [-1000.0, -40, 40, 1000] {
            #expect(act.value(x).isFinite && act.derivative(x).isFinite, "\(act) at \(x)")
        }
        if act == .softplus {
            #expect(isClose(act.value(1000), 1000, tolerance: 1e-15) && act.value(-1000) >= 0)
        }
    }

    /// The matrix form every network uses (`applyInPlace`, ReLU by a SIMD loop) against the scalar
    /// `valueAndDerivative`, bit for bit on a 5 × 7 matrix (35 entries: vector body and tail),
    /// in both precisions (Float: the scalar formula in Double, rounded once).
    @Test(arguments: Activation.allCases)
    func matrixFormMatchesScalarForm(_ act: Activation) {
        let xs = (0..<35).map { k in Self.points[k % Self.points.count] * (k % 2 == 0 ? 1 : -1) }
        var z = DenseMatrix<Double>(rows: 5, cols: 7, data: xs)
        let d = act.applyInPlace(&z, leakySlope: Self.slope)
        var zf = DenseMatrix<Float>(rows: 5, cols: 7, data: xs.map(Float.init))
        let df = act.applyInPlace(&zf, leakySlope: Self.slope)
        for (k, x) in xs.enumerated() {
            let (v, dv) = act.valueAndDerivative(x, leakySlope: Self.slope)
            #expect(z.data[k].bitPattern == v.bitPattern && d.data[k].bitPattern == dv.bitPattern, "\(act) at \(x)")
            let (vf, dvf) = act.valueAndDerivative(Double(Float(x)), leakySlope: Self.slope)
            #expect(zf.data[k] == Float(vf) && df.data[k] == Float(dvf), "\(act) (Float) at \(x)")
        }
    }

    @Test func namesInJSON() throws {
        let data = try JSONEncoder().encode(Activation.allCases)
        #expect(String(decoding: data, as: UTF8.self)
                == #"["identity","relu","leaky-relu","tanh","sigmoid","gelu","erf","softplus"]"#)
    }
}
