import Foundation
import Testing
import PKNumerics
@testable import PKData

@Suite("CSV")
struct CSVTests {
    func file(_ text: String, _ name: String = "data.csv", _ function: String = #function) throws -> String {
        let path = (try temporaryDirectory(function) as NSString).appendingPathComponent(name)
        try write(text, to: path)
        return path
    }

    @Test func headerAndTargetByName() throws {
        let path = try file("a, price ,b\n1,10,2\n3,30,4\n5,50,6\n")
        let d = try CSV.load(path: path, target: "price")
        #expect(d.count == 3 && d.x.cols == 2 && d.task == .regression && d.outputDim == 1)
        #expect(d.x.data == [1, 2, 3, 4, 5, 6] && d.y.data == [10, 30, 50])
    }

    @Test func noHeaderAndTargetByIndex() throws {
        let path = try file("1,10,2\n3,30,4\r\n\n5,50,6")
        let t = try CSV.read(path: path)
        #expect(t.header == nil && t.rows.count == 3 && t.lineNumbers == [1, 2, 4])
        let d = try CSV.dataset(t, target: 1, task: .regression)
        #expect(d.x.data == [1, 2, 3, 4, 5, 6] && d.y.data == [10, 30, 50])
        let last = try CSV.dataset(t, target: -1, task: .regression)
        #expect(last.y.data == [2, 4, 6] && last.x.data == [1, 10, 3, 30, 5, 50])
        #expect(try CSV.dataset(t, target: -3, task: .regression).y.data == [1, 3, 5])
    }

    /// (text, forced header, expected header detection)
    static let headerCases: [(String, Bool?, Bool)] = [
        ("x,y\n1,2\n", nil, true),
        ("1,2\n3,4\n", nil, false),
        ("1,cat\n2,dog\n", nil, false),          // string labels are not a header
        ("x,label\n1,cat\n2,dog\n", nil, true),
        ("x,y\n", nil, true),                   // a single non-numeric record is a header (then empty: see emptyFiles)
        ("1,2\n3,4\n", true, true),
        ("x,y\n1,2\n", false, false),
    ]

    @Test(arguments: 0..<headerCases.count)
    func headerDetection(i: Int) throws {
        let (text, forced, expected) = Self.headerCases[i]
        do {
            let t = try CSV.parse(text: text, name: "h.csv", header: forced)
            #expect((t.header != nil) == expected)
        } catch let e as DataError {
            // Only a header with no data rows may fail, and only when a header was expected.
            #expect(expected && e.message.contains("no data rows"), "\(e)")
        }
    }

    @Test func classificationMapsSortedDistinctValues() throws {
        let strings = try file("f,label\n1,dog\n2,cat\n3,ant\n4,cat\n")
        let d = try CSV.load(path: strings, task: .multiclass)
        #expect(d.numClasses == 3 && d.outputDim == 3 && d.y.data == [2, 1, 0, 1])
        let numbers = try file("1,10\n2,2\n3,2.5\n4,2.0\n5,10\n", "n.csv")
        let e = try CSV.load(path: numbers, task: .multiclass)
        #expect(e.y.data == [2, 0, 1, 0, 2])   // numeric order: 2 < 2.5 < 10, and 2.0 == 2
        let binary = try file("x,y\n0.5,-1\n0.1,1\n0.2,-1\n", "b.csv")
        let b = try CSV.load(path: binary, task: .binary)
        #expect(b.task == .binary && b.numClasses == 2 && b.outputDim == 1 && b.y.data == [0, 1, 0])
    }

    @Test func binaryNeedsTwoValues() throws {
        let path = try file("x,y\n1,a\n2,b\n3,c\n", "three.csv")
        expectDataError({ try CSV.load(path: path, task: .binary) }, mentions: ["three.csv", "exactly 2", "found 3"])
        let one = try file("x,y\n1,a\n2,a\n", "one.csv")
        expectDataError({ try CSV.load(path: one, task: .multiclass) }, mentions: ["one.csv", "at least 2"])
    }

    @Test func quotedFields() throws {
        let t = try CSV.parse(text: "\"a,b\",\"say \"\"hi\"\"\", 3 \n1,2,3\n", name: "q.csv")
        #expect(t.header == ["a,b", "say \"hi\"", "3"])
        expectDataError({ try CSV.parse(text: "1,\"2\n3,4\n", name: "open.csv") }, mentions: ["open.csv", "line 1", "unterminated"])
    }

    @Test func delimiter() throws {
        let path = try file("a;b\n1;2\n3;4\n", "semi.csv")
        #expect(try CSV.load(path: path, delimiter: ";").y.data == [2, 4])
    }

    @Test func raggedRowNamesTheLine() throws {
        let path = try file("a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n", "ragged.csv")
        expectDataError({ try CSV.read(path: path) }, mentions: ["ragged.csv", "line 4", "2 fields", "expected 3"])
    }

    @Test(arguments: ["nan", "NaN", "inf", "-inf", "Infinity"])
    func nonFiniteCellNamesLineAndColumn(cell: String) throws {
        let path = try file("x1,x2,y\n0.1,0.2,1.0\n0.3,\(cell),2.0\n", "nan.csv")
        expectDataError({ try CSV.load(path: path) }, mentions: ["nan.csv", "line 3", "column 2 (x2)", "NaN/Inf"])
        let target = try file("x1,x2,y\n0.1,0.2,1.0\n0.3,0.4,\(cell)\n", "nantarget.csv")
        expectDataError({ try CSV.load(path: target) }, mentions: ["nantarget.csv", "line 3", "column 3 (y)", "NaN/Inf"])
    }

    @Test func nonNumericCell() throws {
        let path = try file("1,2,3\n4,five,6\n", "words.csv")
        expectDataError({ try CSV.load(path: path) }, mentions: ["words.csv", "line 2", "column 2", "'five' is not a number"])
        let empty = try file("1,2,3\n4,,6\n", "hole.csv")
        expectDataError({ try CSV.load(path: empty) }, mentions: ["hole.csv", "line 2", "column 2", "empty cell"])
    }

    @Test func emptyFiles() throws {
        expectDataError({ try CSV.read(path: try file("", "empty.csv")) }, mentions: ["empty.csv", "empty CSV"])
        expectDataError({ try CSV.read(path: try file("\n  \n", "blank.csv")) }, mentions: ["blank.csv", "empty CSV"])
        expectDataError({ try CSV.read(path: try file("x,y\n", "headonly.csv"), header: true) }, mentions: ["headonly.csv", "no data rows"])
    }

    @Test func missingTargetColumn() throws {
        let path = try file("a,b\n1,2\n", "cols.csv")
        expectDataError({ try CSV.load(path: path, target: 2) }, mentions: ["cols.csv", "target column 2 is missing"])
        expectDataError({ try CSV.load(path: path, target: -3) }, mentions: ["cols.csv", "target column -3 is missing"])
        expectDataError({ try CSV.load(path: path, target: "price") }, mentions: ["cols.csv", "'price' is missing", "a, b"])
        let noHeader = try file("1,2\n3,4\n", "nohead.csv")
        expectDataError({ try CSV.load(path: noHeader, target: "y") }, mentions: ["nohead.csv", "no header"])
        let single = try file("y\n1\n2\n", "single.csv")
        expectDataError({ try CSV.load(path: single) }, mentions: ["single.csv", "at least one feature"])
    }

    @Test func missingFile() {
        expectDataError({ try CSV.read(path: "/nonexistent/pk.csv") }, mentions: ["/nonexistent/pk.csv", "not found"])
        expectDataError({ try DataSpec(kind: "csv", path: "/nonexistent/pk2.csv").load(seed: 1) }, mentions: ["/nonexistent/pk2.csv"])
    }

    @Test func notUTF8() throws {
        let dir = try temporaryDirectory()
        try write([0x31, 0x2C, 0xFF, 0xFE, 0x0A], to: dir + "/latin.csv")
        expectDataError({ try CSV.read(path: dir + "/latin.csv") }, mentions: ["latin.csv", "UTF-8"])
    }

    // MARK: Through DataSpec

    static func rows(_ n: Int) -> String {
        "x1,x2,y\n" + (0..<n).map { "\($0),\(Double($0) / 2),\($0 % 3)" }.joined(separator: "\n") + "\n"
    }

    @Test func specSplitsBySeededShuffle() throws {
        let path = try file(Self.rows(20), "rows.csv")
        let spec = try decodeSpec(#"{"kind":"csv","path":"\#(path)","targetColumn":"y","task":"multiclass","testFraction":0.25}"#)
        let a = try spec.load(seed: 1)
        #expect(a.train.count == 15 && a.test.count == 5 && a.train.numClasses == 3 && a.test.numClasses == 3)
        let ids = (a.train.x.data.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
                   + a.test.x.data.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)).map { Int($0) }
        #expect(ids.sorted() == Array(0..<20) && ids != Array(0..<20))
        #expect(bits(try spec.load(seed: 1).train.x) == bits(a.train.x))
        #expect(bits(try spec.load(seed: 2).train.x) != bits(a.train.x))
        // Labels follow their rows.
        for r in 0..<a.train.count { #expect(a.train.y[r, 0] == Double(Int(a.train.x[r, 0]) % 3)) }
    }

    @Test func specTrainIsStableWhenTestChanges() throws {
        let path = try file(Self.rows(30), "stable.csv")
        var spec = DataSpec(kind: "csv", train: 10, test: 5, path: path)
        let a = try spec.load(seed: 7)
        spec.test = 12
        let b = try spec.load(seed: 7)
        #expect(a.train.count == 10 && b.test.count == 12 && bits(a.train.x) == bits(b.train.x))
        spec.test = 21
        expectDataError({ try spec.load(seed: 7) }, mentions: ["stable.csv", "10 training + 21 test", "has 30"])
    }

    @Test func specWithoutShuffleKeepsFileOrder() throws {
        let path = try file(Self.rows(10), "ordered.csv")
        let d = try DataSpec(kind: "csv", path: path, testFraction: 0.3, shuffle: false).load(seed: 7)
        #expect(d.train.x.data.enumerated().filter { $0.offset % 2 == 0 }.map(\.element) == [0, 1, 2, 3, 4, 5, 6])
        #expect(d.test.x.data.enumerated().filter { $0.offset % 2 == 0 }.map(\.element) == [7, 8, 9])
        #expect(d.train.name == "ordered.csv/train")
    }

    /// The CLI test's file: a NaN feature is reported with the file name.
    @Test func specNaNFeature() throws {
        let path = try file("x1,x2,y\n0.1,0.2,1.0\n0.3,nan,2.0\n0.5,0.6,3.0\n0.7,0.8,4.0\n", "bad.csv")
        let spec = try decodeSpec(#"{"kind":"csv","path":"\#(path)","task":"regression","testFraction":0.25}"#)
        expectDataError({ try spec.load(seed: 1) }, mentions: ["bad.csv", "line 3", "column 2 (x2)"])
    }
}
