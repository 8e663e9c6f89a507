import Foundation
import PKNumerics

extension DataSpec {
    /// Makes or reads the dataset. The same spec and seed give bit-identical data (on one
    /// machine; see `Generators` on libm). Train and test come from independent streams
    /// (`DataStreams`), so changing `test` never changes the training set.
    ///
    /// - Throws: `DataError` for an invalid spec, a missing or malformed file (named in the
    ///   message), or a NaN/Inf anywhere in the result.
    public func load(seed: UInt64) throws -> DataSplit {
        try validate()
        var split: DataSplit
        switch kind {
        case "csv": split = try loadCSV(seed: seed)
        case "idx": split = try loadIDX(seed: seed)
        default: split = try generate(seed: seed)
        }
        split.train = try applyTask(split.train)
        split.test = try applyTask(split.test)
        try split.train.validate(file: path)
        try split.test.validate(file: path)
        return split
    }

    func applyTask(_ d: Dataset) throws -> Dataset {
        guard kind != "csv", let task, task != d.task else { return d }
        var out = d
        switch (d.task, task) {
        case (.regression, .multiclass) where kind == "teacher" && d.y.cols >= 2:
            // Teacher classification: the label is the argmax of the (noisy) teacher outputs.
            out.y = Matrix(rows: d.y.rows, cols: 1, data: (0..<d.y.rows).map { Double(d.y.argmax(row: $0)) })
            out.task = .multiclass
            out.numClasses = d.y.cols
        case (.binary, .multiclass):
            out.task = .multiclass
        case (.multiclass, .binary) where d.numClasses == 2:
            out.task = .binary
        default:
            throw DataError("data spec (\(kind)): task \(task.rawValue) does not fit \(d.numClasses) classes")
        }
        return out
    }

    // MARK: Generators

    func generate(seed: UInt64) throws -> DataSplit {
        let noise = self.noise ?? DataSpec.defaultNoise[kind] ?? 0
        var trainRNG = DataStreams.random(seed: seed, DataStreams.train)
        var testRNG = DataStreams.random(seed: seed, DataStreams.test)
        let make: (Int, inout PortableRandom) -> Dataset
        switch kind {
        case "moons":
            make = { Generators.moons(count: $0, noise: noise, rng: &$1) }
        case "circles":
            let factor = self.factor ?? 0.5
            make = { Generators.circles(count: $0, noise: noise, factor: factor, rng: &$1) }
        case "spirals":
            let k = classes ?? 2, turns = self.turns ?? 1
            make = { Generators.spirals(count: $0, classes: k, turns: turns, noise: noise, rng: &$1) }
        case "xor":
            make = { Generators.xor(count: $0, noise: noise, rng: &$1) }
        case "sine":
            let lo = xMin ?? -Double.pi, hi = xMax ?? Double.pi, f = frequency ?? 1
            make = { Generators.sine(count: $0, xMin: lo, xMax: hi, frequency: f, noise: noise, rng: &$1) }
        case "teacher":
            var wRNG = DataStreams.random(seed: seed, DataStreams.teacher)
            var sRNG = DataStreams.random(seed: seed, DataStreams.teacherScale)
            let activation = Generators.Teacher.ActivationKind(rawValue: teacherActivation ?? "tanh") ?? .tanh
            let teacher = Generators.Teacher(inputDim: inputDim ?? 16, widths: teacherWidths ?? [32],
                                             outputDim: outputDim ?? 1, activation: activation,
                                             rng: &wRNG, scaleRNG: &sRNG)
            make = { Generators.teacher(count: $0, teacher: teacher, noise: noise, rng: &$1) }
        default:
            throw DataError("unknown data kind '\(kind)'")
        }
        var train = make(train ?? 0, &trainRNG)
        var test = make(test ?? 0, &testRNG)
        train.name = "\(kind)/train"
        test.name = "\(kind)/test"
        return DataSplit(train: train, test: test)
    }

    // MARK: CSV

    func loadCSV(seed: UInt64) throws -> DataSplit {
        let path = self.path ?? ""
        let delim = delimiter.flatMap(\.first) ?? ","
        let all = try CSV.load(path: path, target: targetColumn ?? -1, task: task ?? .regression, header: header, delimiter: delim)
        let n = all.count
        let nTest = test ?? Int((Double(n) * (testFraction ?? 0.2)).rounded())
        let nTrain = train ?? (n - nTest)
        guard nTrain + nTest <= n else {
            throw DataError(file: path, "asks for \(nTrain) training + \(nTest) test rows, the file has \(n)")
        }
        var order = Array(0..<n)
        if shuffle ?? true {
            var rng = DataStreams.random(seed: seed, DataStreams.split)
            rng.shuffle(&order)
        }
        var train = all.subset(Array(order[0..<nTrain]))
        var test = all.subset(Array(order[(n - nTest)..<n]))
        train.name = "\(all.name)/train"
        test.name = "\(all.name)/test"
        return DataSplit(train: train, test: test)
    }

    // MARK: IDX

    /// Finds `name` in `directory`: as given, then with `.gz` appended.
    func idxFile(_ name: String, in directory: String) throws -> String {
        let base = (directory as NSString).appendingPathComponent(name)
        var candidates = [base]
        if !name.hasSuffix(".gz") { candidates.append(base + ".gz") }
        for c in candidates where FileManager.default.fileExists(atPath: c) { return c }
        var message = "file not found" + (candidates.count > 1 ? " (also tried \(name).gz)" : "")
        let isDefault = (directory as NSString).standardizingPath == DataSpec.defaultFashionMNISTDirectory
        if isDefault { message += "; Fashion-MNIST is missing: " + DataSpec.installHint }
        throw DataError(file: base, message)
    }

    /// Images as `n × d` bytes and labels, checked against each other and `labelCount`.
    func readIDXPair(images: String, labels: String, labelCount: Int) throws -> (d: Int, pixels: [UInt8], labels: [UInt8]) {
        let img = try IDX.read(path: images)
        let lab = try IDX.read(path: labels)
        guard img.shape.count >= 2 else {
            throw DataError(file: images, "an images file needs at least 2 dimensions (count, features…), got shape \(img.shape)")
        }
        guard lab.shape.count == 1 else {
            throw DataError(file: labels, "a labels file needs 1 dimension, got shape \(lab.shape)")
        }
        guard img.shape[0] == lab.shape[0] else {
            throw DataError(file: images, "images/labels count mismatch: \(img.shape[0]) images here but \(lab.shape[0]) labels in \(labels)")
        }
        if let i = lab.bytes.firstIndex(where: { Int($0) >= labelCount }) {
            throw DataError(file: labels, "label \(lab.bytes[i]) of example \(i) is out of range 0..<\(labelCount)")
        }
        return (img.shape.dropFirst().reduce(1, *), img.bytes, lab.bytes)
    }

    func loadIDX(seed: UInt64) throws -> DataSplit {
        let dir = directory ?? DataSpec.defaultFashionMNISTDirectory
        let count = labelCount ?? 10
        let trainImg = try idxFile(trainImages ?? "train-images-idx3-ubyte", in: dir)
        let trainLab = try idxFile(trainLabels ?? "train-labels-idx1-ubyte", in: dir)
        let testImg = try idxFile(testImages ?? "t10k-images-idx3-ubyte", in: dir)
        let testLab = try idxFile(testLabels ?? "t10k-labels-idx1-ubyte", in: dir)
        let tr = try readIDXPair(images: trainImg, labels: trainLab, labelCount: count)
        let te = try readIDXPair(images: testImg, labels: testLab, labelCount: count)
        guard tr.d == te.d else {
            throw DataError(file: testImg, "test images have \(te.d) features, the training images (\(trainImg)) \(tr.d)")
        }
        // Label → class index (the filter's order), or the label itself.
        var classOf = [Int](repeating: -1, count: 256)
        let k: Int
        if let filter = classFilter {
            for (i, c) in filter.enumerated() { classOf[c] = i }
            k = filter.count
        } else {
            for c in 0..<count { classOf[c] = c }
            k = count
        }
        func choose(_ labels: [UInt8], _ wanted: Int?, _ stream: UInt64, file: String, what: String) throws -> [Int] {
            let available = labels.indices.filter { classOf[Int(labels[$0])] >= 0 }
            let n = wanted ?? available.count
            guard n <= available.count else {
                let filtered = classFilter == nil ? "" : " with labels \(classFilter!)"
                throw DataError(file: file, "asks for \(n) \(what) examples, the file has \(available.count)\(filtered)")
            }
            guard shuffle ?? true else { return Array(available.prefix(n)) }
            var rng = DataStreams.random(seed: seed, stream)
            return rng.permutation(available.count).prefix(n).map { available[$0] }
        }
        let trainIdx = try choose(tr.labels, train, DataStreams.trainChoice, file: trainLab, what: "training")
        let testIdx = try choose(te.labels, test, DataStreams.testChoice, file: testLab, what: "test")
        func build(_ pair: (d: Int, pixels: [UInt8], labels: [UInt8]), _ idx: [Int], _ name: String) -> Dataset {
            let d = pair.d
            var x = [Double]()
            x.reserveCapacity(idx.count * d)
            var y = [Double]()
            y.reserveCapacity(idx.count)
            for i in idx {
                for p in pair.pixels[(i * d)..<((i + 1) * d)] { x.append(Double(p)) }
                y.append(Double(classOf[Int(pair.labels[i])]))
            }
            return Dataset(x: Matrix(rows: idx.count, cols: d, data: x), y: Matrix(rows: idx.count, cols: 1, data: y),
                           task: k == 2 ? .binary : .multiclass, numClasses: k, name: name)
        }
        let base = lastPathComponent(dir)
        var trainSet = build(tr, trainIdx, "\(base)/train")
        var testSet = build(te, testIdx, "\(base)/test")
        switch normalize ?? "unit" {
        case "unit":
            trainSet.x = trainSet.x.map { $0 / 255 }
            testSet.x = testSet.x.map { $0 / 255 }
        case "standardize":
            let (mean, std) = DataSpec.meanStd(trainSet.x.data)
            let s = std > 0 ? std : 1
            trainSet.x = trainSet.x.map { ($0 - mean) / s }
            testSet.x = testSet.x.map { ($0 - mean) / s }
        default:
            break
        }
        try trainSet.validate(file: trainImg)
        try testSet.validate(file: testImg)
        return DataSplit(train: trainSet, test: testSet)
    }

    /// Mean and population standard deviation (two passes).
    static func meanStd(_ v: [Double]) -> (mean: Double, std: Double) {
        guard !v.isEmpty else { return (0, 1) }
        let mean = v.reduce(0, +) / Double(v.count)
        let varSum = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return (mean, (varSum / Double(v.count)).squareRoot())
    }
}
