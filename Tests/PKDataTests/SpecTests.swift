import Foundation
import Testing
import PKNumerics
@testable import PKData

@Suite("DataSpec decoding")
struct SpecTests {
    /// The report's examples and the presets' data sections.
    static let examples: [String] = [
        #"{"kind":"moons","train":200,"test":200,"noise":0.1}"#,
        #"{"kind":"sine","train":64,"test":64}"#,
        #"{"kind":"teacher","train":512,"test":256,"inputDim":16}"#,
        #"{"kind":"idx","directory":"/usr/share/datasets/fashion-mnist","train":1000,"test":200,"normalize":"unit"}"#,
        #"{"kind":"teacher","train":512,"test":256,"inputDim":16,"teacherWidths":[32],"teacherActivation":"tanh","noise":0.0}"#,
        #"{"kind":"spirals","train":30,"test":3,"classes":3,"turns":2}"#,
        #"{"kind":"idx","classes":[0,6],"normalize":"standardize","shuffle":false,"trainImages":"a","labelCount":10}"#,
        #"{"kind":"csv","path":"/tmp/x.csv","targetColumn":"price","header":true,"task":"multiclass","testFraction":0.3,"delimiter":";"}"#,
        #"{"kind":"csv","path":"/tmp/x.csv","targetColumn":-2}"#,
    ]

    @Test(arguments: examples)
    func roundTrips(json: String) throws {
        let spec = try decodeSpec(json)
        let again = try JSONDecoder().decode(DataSpec.self, from: JSONEncoder().encode(spec))
        #expect(again == spec)
    }

    @Test func fieldsLandWhereDocumented() throws {
        let s = try decodeSpec(Self.examples[5])
        #expect(s.classes == 3 && s.classFilter == nil && s.turns == 2)
        let i = try decodeSpec(Self.examples[6])
        #expect(i.classFilter == [0, 6] && i.classes == nil && i.normalize == "standardize" && i.shuffle == false)
        let c = try decodeSpec(Self.examples[7])
        #expect(c.targetColumn == .name("price") && c.task == .multiclass && c.header == true && c.delimiter == ";")
        #expect(try decodeSpec(Self.examples[8]).targetColumn == .index(-2))
    }

    /// Malformed specs, with a phrase the message must contain.
    static let bad: [(String, String)] = [
        (#"{"kind":"mooons","train":1,"test":1}"#, "unknown data kind 'mooons'"),
        (#"{"train":1,"test":1}"#, "kind"),
        (#"{"kind":"moons","test":1}"#, "train"),
        (#"{"kind":"sine","train":5}"#, "test"),
        (#"{"kind":"csv"}"#, "path"),
        (#"{"kind":"moons","train":5,"test":1,"nosie":0.1}"#, "unknown key 'nosie'"),
        (#"{"kind":"moons","train":5,"test":1,"nosie":0.1}"#, "did you mean 'noise'?"),
        (#"{"kind":"moons","train":5,"test":1,"factor":0.1}"#, "does not apply"),
        (#"{"kind":"moons","train":0,"test":1}"#, "train must be an integer in 1…10000000, got 0"),
        (#"{"kind":"moons","train":5,"test":-1}"#, "test must be an integer in 0…10000000, got -1"),
        // Sizes are checked before anything is allocated, numbers that do not fit are named.
        (#"{"kind":"moons","train":1e9,"test":1}"#, "train must be an integer in 1…10000000, got 1000000000"),
        (#"{"kind":"moons","train":2.5,"test":1}"#, "train must be an integer in 1…10000000, got 2.5"),
        (#"{"kind":"moons","train":5,"test":1e30}"#, "test must be an integer in 0…10000000"),
        (#"{"kind":"teacher","train":9000000,"test":1000000,"inputDim":100}"#, "more than the limit of 100000000"),
        (#"{"kind":"teacher","train":5,"test":1,"inputDim":100000,"teacherWidths":[100000]}"#, "parameters, more than the limit"),
        (#"{"kind":"teacher","train":5,"test":1,"teacherWidths":[4,2.5]}"#, "teacherWidths[1] must be an integer in 1…1000000, got 2.5"),
        (#"{"kind":"idx","labelCount":-1}"#, "labelCount must be an integer in 2…256, got -1"),
        (#"{"kind":"moon","train":5,"test":1}"#, "did you mean 'moons'?"),
        (#"{"kind":"moons","train":5,"test":1,"noise":-0.1}"#, "noise"),
        (#"{"kind":"sine","train":5,"test":1,"xMin":1,"xMax":0}"#, "xMin < xMax"),
        (#"{"kind":"teacher","train":5,"test":1,"teacherActivation":"gelu"}"#, "teacherActivation"),
        (#"{"kind":"teacher","train":5,"test":1,"teacherWidths":[4,0]}"#, "teacherWidths"),
        (#"{"kind":"spirals","train":5,"test":1,"classes":1}"#, "classes ≥ 2"),
        (#"{"kind":"spirals","train":5,"test":1,"classes":[0,1]}"#, "number of arms"),
        (#"{"kind":"idx","classes":3}"#, "list of labels"),
        (#"{"kind":"idx","classes":[1,1]}"#, "repeated"),
        (#"{"kind":"idx","classes":[1,12]}"#, "outside"),
        (#"{"kind":"idx","normalize":"zscore"}"#, "unknown normalize"),
        (#"{"kind":"csv","path":"a.csv","testFraction":1.5}"#, "testFraction"),
        (#"{"kind":"csv","path":"a.csv","task":"ranking"}"#, "unknown task 'ranking'"),
        (#"{"kind":"circles","train":5,"test":1,"factor":1.0}"#, "factor"),
        (#"{"kind":"xor","train":5,"test":1,"task":"regression"}"#, "does not apply"),
        (#"{"kind":"spirals","train":5,"test":1,"classes":3,"task":"binary"}"#, "binary"),
    ]

    @Test(arguments: bad)
    func rejects(json: String, phrase: String) {
        do {
            _ = try decodeSpec(json)
            Issue.record("decoded \(json)")
        } catch let e as DecodingError {
            let text: String
            switch e {
            case .keyNotFound(let k, let ctx): text = k.stringValue + " " + ctx.debugDescription
            case .dataCorrupted(let ctx), .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): text = ctx.debugDescription
            @unknown default: text = "\(e)"
            }
            #expect(text.contains(phrase), "\(text)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func missingFieldIsKeyNotFoundWithItsPath() {
        do {
            _ = try decodeSpec(#"{"kind":"moons","test":1}"#)
        } catch DecodingError.keyNotFound(let key, _) {
            #expect(key.stringValue == "train")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func specsBuiltInCodeAreValidatedOnLoad() {
        expectDataError({ try DataSpec(kind: "moons").load(seed: 1) }, mentions: ["train"])
        expectDataError({ try DataSpec(kind: "blobs", train: 1, test: 1).load(seed: 1) }, mentions: ["unknown data kind 'blobs'"])
        expectDataError({ try DataSpec(kind: "moons", train: 3, test: 1, factor: 0.2).load(seed: 1) }, mentions: ["factor"])
        // A size over the limit is refused before anything is allocated.
        expectDataError({ try DataSpec(kind: "moons", train: 1_000_000_000, test: 1).load(seed: 1) }, mentions: ["train", "10000000"])
    }

    /// The allowed keys come from `CodingKeys`: the JSON key of `classFilter` is `classes`, and
    /// every key the kinds accept is one `CodingKeys` knows.
    @Test func allowedKeysAreTheJSONKeys() {
        #expect(DataSpec.allowedKeys(kind: "idx").contains("classes"))
        #expect(!DataSpec.allowedKeys(kind: "idx").contains("classFilter"))
        #expect(DataSpec.allowedKeys(kind: "moons") == ["kind", "train", "test", "noise"])
        for kind in DataSpec.kinds { #expect(DataSpec.allowedKeys(kind: kind).count >= 3) }
    }
}
