import Foundation
import Testing
import PKOptim
import PKTrace
@testable import PKAnalysis

/// The choice of kernel route (`KernelRoutes.select`): which route each optimizer chain and
/// setting takes, what the route says of itself (kernel form, forwards or backwards), and the
/// notes of a form that cannot be used. The routes' numbers are checked elsewhere (the kernel
/// oracles, DeterminismTests); this pins the choice.
@Suite("Kernel route selection")
struct KernelRouteSelectionTests {
    /// A case: optimizer JSON, then flags after `|` (`f32`, `tol`: --momentum-tolerance 1e-6,
    /// `nostate`: checkpoints every 4 steps without optimizer state, `resumed`: every stored
    /// state's count + 5), then the route expected, its kernel form, whether it sums forwards,
    /// and the number of selection notes.
    static let cases: [(String, String, Bool, Bool, Int)] = [
        (#"{"kind":"gd","learningRate":0.2}"#, "PathKernelRoute<Double>", true, true, 0),
        (#"{"kind":"gd","learningRate":0.2}|f32"#, "PathKernelRoute<Float>", true, true, 0),
        (#"{"kind":"sgd","learningRate":0.1,"clipNorm":0.3,"weightDecay":0.01}"#, "PathKernelRoute<Double>", true, true, 0),
        (#"{"kind":"sgd","learningRate":0.1}|nostate"#, "PathKernelRoute<Double>", true, true, 0),
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.9}"#, "PreconditionedRoute", true, false, 0),
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|tol"#, "WindowedMomentumRoute", true, true, 0),
        // --momentum-tolerance where the window does not apply: a note says it is ignored.
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|tol|f32"#, "PreconditionedRoute", true, false, 1),
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|tol|nostate"#, "JVPRoute", false, false, 1),
        (#"{"kind":"adam","learningRate":0.02}|tol"#, "PreconditionedRoute", true, false, 1),
        (#"{"kind":"sgd","learningRate":0.1,"momentum":0.9}|resumed"#, "JVPRoute", false, false, 1),
        (#"{"kind":"adam","learningRate":0.02}"#, "PreconditionedRoute", true, false, 0),
        (#"{"kind":"adamw","learningRate":0.02,"weightDecay":0.05}|f32"#, "PreconditionedRoute", true, false, 0),
        (#"{"kind":"rmsprop","learningRate":0.01}|nostate"#, "JVPRoute", false, false, 0),
    ]

    @Test(arguments: cases.indices)
    func routeFollowsTheChainAndSettings(index: Int) throws {
        let (key, expected, kernelForm, forwards, noteCount) = Self.cases[index]
        let parts = key.split(separator: "|").map(String.init)
        let flags = Set(parts.dropFirst())
        let spec = try JSONDecoder().decode(OptimizerSpec.self, from: Data(parts[0].utf8))
        let cfg = config(name: "sel", data: #"{"kind":"moons","train":20,"test":8}"#,
                         model: #"{"layers":[2,4,1],"activation":"tanh"}"#, loss: .logistic, optimizer: spec, steps: 8,
                         batchSize: spec.kind == .gd ? nil : 5, checkpointEvery: flags.contains("nostate") ? 4 : 1)
        var path = try recordTrace(cfg)
        if flags.contains("nostate") { try sqlite(path, "DELETE FROM optimizer_state") }
        if flags.contains("resumed") {
            var trace = try TraceParts(path)
            trace.checkpoints = trace.checkpoints.map { c in
                var c = c
                c.state = c.state.map { StoredOptimizerState(names: $0.names, count: $0.count + 5, values: $0.values) }
                return c
            }
            path = try trace.write()
        }
        var settings = AnalysisSettings()
        if flags.contains("tol") { settings.momentumTolerance = 1e-6 }
        if flags.contains("f32") { settings.precision = .f32 }
        let reader = try TraceReader.open(path)
        let run = try TraceRun.load(reader)
        let context = try AnalysisContext(settings: settings, run: run)
        let weights = try WeightPath(run: run, reader: reader)
        let selection = KernelRoutes.select(context: context, optimizer: try run.optimizer.transformation(parameters: run.model.parameterTensors),
                                            checkpointResolution: weights.checkpointResolution, initialState: weights.initialStoredState)
        let route = selection.route
        #expect(String(describing: type(of: route)) == expected, "\(key)")
        #expect(route.hasKernelForm == kernelForm, "\(key)")
        #expect(route.summedForwards == forwards, "\(key)")
        #expect(route.backwardPass == (expected == "PreconditionedRoute"), "\(key)")
        #expect(selection.notes.count == noteCount, "\(key): \(selection.notes)")
        // The report's kernel line: "none" exactly when there is no kernel form.
        #expect(route.kernelName.hasPrefix("none") == !kernelForm, "\(key): \(route.kernelName)")
    }
}
