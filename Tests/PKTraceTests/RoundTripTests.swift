import Foundation
import Testing
@testable import PKTrace

@Suite("Round trip")
struct RoundTripTests {
    /// Everything written reads back: float64 checkpoints bit-exact (compared by bit pattern, on
    /// purpose), float32 checkpoints equal to the Float32 rounding of what was written.
    @Test(arguments: [Precision.float64, .float32])
    func everyFieldRoundTrips(precision: Precision) throws {
        let path = try freshPath()
        let run = Fixture.run(precision: precision)
        let data = Fixture.data()
        let w = try TraceWriter.create(at: path, run: run, data: data, layout: Fixture.layout)
        var steps: [StepRecord] = []
        for s in 0..<7 {
            var r = Fixture.step(s, batch: s == 3 ? [2] : [Int32(s % 5), 4, 0])
            if s == 5 { r.loss = .nan }            // a diverging loss is NULL in SQL, NaN here
            if s == 6 { r.loss = .infinity }
            steps.append(r)
        }
        try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
        try w.appendSteps(Array(steps[0..<3]))
        try w.appendCheckpoint(step: 3, parameters: Fixture.parameters(step: 3))
        for s in steps[3...] { try w.appendStep(s) }
        try w.appendCheckpoint(step: 7, parameters: Fixture.parameters(step: 7))
        try w.setStatus(.diverged, message: "loss is NaN at step 5")
        w.close()

        let r = try TraceReader.open(path)
        #expect(r.schemaVersion == TraceSchema.latestVersion)
        #expect(r.path == path)
        // Run: everything but the timestamps the writer maintains is as given.
        var expectedRun = run
        expectedRun.status = .diverged
        expectedRun.statusMessage = "loss is NaN at step 5"
        expectedRun.updatedAt = r.run.updatedAt
        expectedRun.finishedAt = r.run.finishedAt
        #expect(r.run == expectedRun)
        #expect(r.run.finishedAt != nil)
        #expect(r.run.updatedAt.hasSuffix("Z") && r.run.updatedAt.count == 20)
        #expect(r.run.seed == 0xFEDC_BA98_7654_3210)
        // Layout.
        #expect(r.layout == Fixture.layout)
        #expect(r.parameterCount == Fixture.parameterCount)
        // Data, bit-exact.
        let d = try r.data()
        for (got, want) in [(d.trainX, data.trainX), (d.trainY, data.trainY), (d.testX, data.testX), (d.testY, data.testY)] {
            #expect(got.shape == want.shape)
            #expect(got.values.map(\.bitPattern) == want.values.map(\.bitPattern))
        }
        // Steps (StepRecord's == compares losses by bit pattern, NaN equal to NaN).
        let readSteps = try r.steps()
        #expect(readSteps == steps)
        #expect(readSteps[5].loss.isNaN)
        #expect(readSteps[6].loss == .infinity)
        #expect(readSteps[3].batch == [2])   // a one-example batch (an empty one is refused: batch_size ≥ 1)
        // Checkpoints.
        #expect(try r.checkpointSteps() == [0, 3, 7])
        for s in [0, 3, 7] {
            let want = Fixture.parameters(step: s)
            let expected = precision == .float64 ? want : want.map { Double(Float($0)) }
            #expect(try r.checkpoint(step: s).map(\.bitPattern) == expected.map(\.bitPattern), "checkpoint \(s)")
        }
        let v = try r.validate()
        #expect(v.problems == [])
        #expect(v.stepCount == 7 && v.checkpointCount == 3 && v.lastStep == 6 && v.lastCheckpoint == 7)
        #expect(r.fileSizeBytes >= TraceSchema.pageSize)
    }

    /// Float32 checkpoints take half the bytes of Float64 ones.
    @Test func float32HalvesTheCheckpointBlob() throws {
        var sizes: [Precision: Int] = [:]
        for p in Precision.allCases {
            let path = try freshPath()
            let w = try TraceWriter.create(at: path, run: Fixture.run(precision: p), data: Fixture.data(), layout: Fixture.layout)
            try w.appendCheckpoint(step: 0, parameters: Fixture.parameters(step: 0))
            w.close()
            let db = try SQLiteConnection(path: path, readOnly: true)
            sizes[p] = try db.scalarInt("SELECT length(params) FROM checkpoint WHERE step = 0", "test")
        }
        #expect(sizes[.float64] == 8 * Fixture.parameterCount)
        #expect(sizes[.float32] == 4 * Fixture.parameterCount)
    }

    /// The file carries the documented pragmas and identity.
    @Test func pragmasAndIdentity() throws {
        let path = try freshPath()
        try Fixture.trace(at: path)
        let db = try SQLiteConnection(path: path, readOnly: true)
        #expect(try db.scalarInt("PRAGMA page_size", "test") == 65_536)
        #expect(try db.scalarInt("PRAGMA application_id", "test") == 0x504B_5452)
        let mode = try db.prepare("PRAGMA journal_mode", "test")
        #expect(try mode.step() && mode.text(0) == "wal")
        let m = try db.prepare("SELECT version, name FROM schema_migrations", "test")
        #expect(try m.step() && m.int(0) == 1 && m.text(1) == "v1-initial")
        #expect(try m.step() && m.int(0) == 2 && m.text(1) == "v2-optimizer-state")
        #expect(try m.step() && m.int(0) == 3 && m.text(1) == "v3-analysis-basis")
        #expect(try m.step() && m.int(0) == 4 && m.text(1) == "v4-parameter-mask")
        #expect(try !m.step())
    }

    /// A regression run with [n, C] targets and an empty held-out split round-trips.
    @Test func regressionTargetsAndEmptyTestSplit() throws {
        let path = try freshPath()
        let data = TraceData(trainX: DataArray(shape: [2, 1], values: [0.5, -0.5]),
                             trainY: DataArray(shape: [2, 2], values: [1, 2, 3, 4]),
                             testX: DataArray(shape: [0, 1], values: []),
                             testY: DataArray(shape: [0, 2], values: []))
        let w = try TraceWriter.create(at: path, run: Fixture.run(task: "regression", outputs: 2), data: data,
                                       layout: [TensorLayout(name: "w", shape: [2, 1], offset: 0, count: 2)])
        try w.appendCheckpoint(step: 0, parameters: [1, 2])
        w.close()
        let r = try TraceReader.open(path)
        let got = try r.data()   // bit-exact round trip: compared by bit pattern
        #expect(got.trainY.shape == [2, 2] && got.testX.shape == [0, 1] && got.testY.shape == [0, 2])
        #expect(got.trainY.values.map(\.bitPattern) == data.trainY.values.map(\.bitPattern))
        #expect(got.testX.values.isEmpty && got.testY.values.isEmpty)
        #expect(try r.validate().problems == [])
    }
}
