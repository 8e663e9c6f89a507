import Foundation
import PKTrace
import PKAnalysis
import PKNetworks
import PKReport

extension ReportData {
    /// What the HTML report shows beside `result`, read from the trace: the recorded learning rate
    /// and loss of every step, for data with an input shape the inputs the attribution names, and
    /// with `spectrum` the empirical NTK's eigenvalues (trace over outputs, training points) at
    /// step 0 and at the analyzed last step. What cannot be read or computed is left out and
    /// said in `problems` (one line each; the page is still written from the stored analysis).
    static func read(_ reader: TraceReader, for result: AnalysisResult, spectrum: Bool = false) -> (data: ReportData, problems: [String]) {
        var data = ReportData()
        var problems: [String] = []
        do {
            let steps = try reader.steps()
            data.steps = steps.map(\.step)
            data.learningRates = steps.map(\.learningRate)
            data.losses = steps.map(\.loss)
        } catch {
            problems.append("the step rows could not be read (\(error)); no loss or learning-rate chart")
        }
        if spectrum {
            for step in Set([0, result.run.steps]).sorted() {
                do {
                    let ntk = try EmpiricalNTK.compute(trace: reader.path, step: step, queries: .train, mode: .trace, spectrum: true)
                    data.spectra.append(Spectrum(label: "NTK at step \(step)", eigenvalues: ntk.spectrum?.eigenvalues ?? []))
                } catch {
                    problems.append("no NTK spectrum at step \(step): \(error)")
                }
            }
        }
        guard !result.attribution.isEmpty else { return (data, problems) }
        do {
            data.images = try images(reader, for: result)
        } catch {
            problems.append("the data could not be read (\(error)); no images")
        }
        return (data, problems)
    }

    /// The inputs the attribution names, for data with an input shape (nil for other data).
    static func images(_ reader: TraceReader, for result: AnalysisResult) throws -> Images? {
        let arrays = try reader.data()
        guard let shape = imageShape(x: arrays.trainX, modelJSON: reader.run.modelJSON, configJSON: reader.run.configJSON) else { return nil }
        let size = shape.channels * shape.height * shape.width   // = d, checked by imageShape
        func row(_ a: DataArray, _ i: Int) -> [Double]? {
            guard i >= 0, i < a.rows, a.values.count / size == a.rows, a.values.count % size == 0 else { return nil }
            return Array(a.values[i * size ..< (i + 1) * size])
        }
        var train: [Int: [Double]] = [:], test: [Int: [Double]] = [:]
        for a in result.attribution {
            let query = a.split == "train" ? row(arrays.trainX, a.query) : row(arrays.testX, a.query)
            if a.split == "train" { train[a.query] = query } else { test[a.query] = query }
            for i in (a.pushedUp ?? []).map(\.trainIndex) + (a.pushedDown ?? []).map(\.trainIndex) + a.top.map(\.trainIndex) {
                train[i] = row(arrays.trainX, i)
            }
        }
        return Images(channels: shape.channels, height: shape.height, width: shape.width, train: train, test: test)
    }

    /// One input's image shape: from the stored array (`[n, C, H, W]` or `[n, H, W]`), else the
    /// model's `input` `[C, H, W]`, else a square for IDX data (`[n, d]` with d = s², as an MLP on
    /// Fashion-MNIST stores it); nil for data without one.
    static func imageShape(x: DataArray, modelJSON: String, configJSON: String) -> (channels: Int, height: Int, width: Int)? {
        let dims = Array(x.shape.dropFirst())
        guard let d = ReportData.Images.product(dims), d > 0 else { return nil }
        func valid(_ s: (Int, Int, Int)) -> (channels: Int, height: Int, width: Int)? {
            ReportData.Images.product([s.0, s.1, s.2]) == d ? (s.0, s.1, s.2) : nil
        }
        if dims.count == 3 { return valid((dims[0], dims[1], dims[2])) }
        if dims.count == 2 { return valid((1, dims[0], dims[1])) }
        func object(_ json: String) -> [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
        }
        if let input = object(modelJSON)?["input"] as? [Int], input.count == 3 {
            return valid((input[0], input[1], input[2]))
        }
        if let config = object(configJSON), let model = config["model"] as? [String: Any], let input = model["input"] as? [Int], input.count == 3 {
            return valid((input[0], input[1], input[2]))
        }
        if let config = object(configJSON), (config["data"] as? [String: Any])?["kind"] as? String == "idx" {
            let side = Int(Double(d).squareRoot().rounded())
            return side > 1 ? valid((1, side, side)) : nil
        }
        return nil
    }
}
