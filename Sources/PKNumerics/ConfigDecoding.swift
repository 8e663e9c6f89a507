import Foundation

// Strict decoding for run configs (and the spec JSON stored in traces): unknown keys are refused
// with the closest valid key, and numbers that do not fit their field are named with the field's
// range. The spec types of PKNetworks, PKOptim, PKData and PKTraining share these helpers, which
// is why they live in the bottom module.

/// Upper limits on the sizes a run config may ask for, checked before anything is allocated.
/// `Docs/config.md` lists them.
public enum ConfigLimits {
    /// Updates of a run (`training.steps`); also the largest `checkpointEvery` and schedule step counts.
    public static let maxSteps = 100_000_000
    /// Examples in one split (`data.train`, `data.test`, `training.batchSize`).
    public static let maxExamples = 10_000_000
    /// Numbers in a generated dataset, `(train + test) × (inputs + targets)`: 10⁸ doubles, 800 MB.
    public static let maxDataValues = 100_000_000
    /// Width of one layer (`model.layers`, a teacher's widths, input and output dimensions).
    public static let maxWidth = 1_000_000
    /// Parameters of a network: 10⁸ doubles, 800 MB per copy of the weights.
    public static let maxParameters = 100_000_000
    /// Activations of one training step, `batch rows × Σ layer widths`: 5·10⁷ doubles, 400 MB per
    /// copy (the forward and backward passes hold a few).
    public static let maxStepActivations = 50_000_000

    /// "an integer in 1…64".
    public static func describe<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> String {
        "an integer in \(range.lowerBound)…\(range.upperBound)"
    }
}

/// A range of real numbers with its description ("a number ≥ 0"), shared by a setting's check
/// and the command-line option that sets it.
public struct NumberRange: Sendable, CustomStringConvertible {
    public let description: String
    private let test: @Sendable (Double) -> Bool

    public init(_ description: String, _ test: @escaping @Sendable (Double) -> Bool) {
        self.description = description
        self.test = test
    }

    public func contains(_ x: Double) -> Bool { x.isFinite && test(x) }

    /// Finite numbers `≥ a`.
    public static func atLeast(_ a: Double) -> NumberRange { NumberRange("a number ≥ \(short(a))") { $0 >= a } }
    /// Finite numbers `> a`.
    public static func above(_ a: Double) -> NumberRange { NumberRange("a number > \(short(a))") { $0 > a } }
    /// The open interval `(a, b)`.
    public static func between(_ a: Double, _ b: Double) -> NumberRange {
        NumberRange("a number strictly between \(short(a)) and \(short(b))") { $0 > a && $0 < b }
    }

    static func short(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
}

/// A config problem whose message is complete: it names the field and where it is, what is
/// allowed, and what to do. Decoding throws it as the `underlyingError` of a
/// `DecodingError.dataCorrupted`, so that callers who print decoding errors can print it as is.
public struct ConfigProblem: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// The `DecodingError` that carries `message` for the value at `path`.
    public static func decodingError(_ message: String, at path: [CodingKey]) -> DecodingError {
        .dataCorrupted(.init(codingPath: path, debugDescription: message, underlyingError: ConfigProblem(message)))
    }

    /// `optimizer.schedule.every`, `model.layers[2]`; "the top level" for an empty path.
    public static func fieldName(_ path: [CodingKey]) -> String {
        var s = ""
        for k in path {
            if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : ".\(k.stringValue)" }
        }
        return s.isEmpty ? "the top level" : s
    }

    /// "in optimizer", "at the top level".
    static func location(_ path: [CodingKey]) -> String {
        path.isEmpty ? "at the top level" : "in \(fieldName(path))"
    }

    /// The valid key a mistyped `key` most likely meant, or nil when none is close: the same key
    /// up to case, `_` and `-` (`learning_rate`); the initials of a camelCase key (`lr`,
    /// `wd`); a prefix of at least 3 letters (`batch`); else the smallest edit distance, when it
    /// is at most a third of the key's length (at least 2); ties go to the closer length.
    public static func closest(to key: String, among candidates: [String]) -> String? {
        func normal(_ s: String) -> String { s.lowercased().filter { $0 != "_" && $0 != "-" && $0 != " " } }
        func initials(_ s: String) -> String {
            var out = ""
            for (i, ch) in s.enumerated() where i == 0 || ch.isUppercase || ch.isNumber { out.append(ch) }
            return out.lowercased()
        }
        let k = normal(key)
        if k.isEmpty { return nil }
        if let c = candidates.first(where: { normal($0) == k }) { return c }
        if k.count >= 2, let c = candidates.first(where: { initials($0) == k && $0.count > k.count }) { return c }
        if k.count >= 3, let c = candidates.first(where: { normal($0).hasPrefix(k) || k.hasPrefix(normal($0)) }) { return c }
        let scored = candidates.map { ($0, editDistance(k, normal($0)), abs($0.count - key.count)) }
        guard let best = scored.min(by: { ($0.1, $0.2) < ($1.1, $1.2) }) else { return nil }
        return best.1 <= max(2, k.count / 3) ? best.0 : nil
    }

    /// Edit distance between two strings: insertions, deletions, substitutions and swaps of two
    /// neighbouring characters count 1 each (optimal string alignment).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    /// The first key that appears twice in one object of `json` (valid JSON), with the object's
    /// place ("optimizer", "the top level"); nil when there is none. JSON decoders keep one of
    /// the two values silently, so configs check this.
    public static func duplicateKey(in json: Data) -> (key: String, location: String)? {
        struct Frame { var isObject: Bool; var name: String?; var keys: Set<String> = [] }
        let b = [UInt8](json)
        var stack: [Frame] = []
        var expectingKey = false
        var lastKey: String? = nil
        var i = 0
        func location() -> String {
            let names = stack.dropFirst().map { $0.name ?? "[]" }
            return names.isEmpty ? "at the top level" : "in " + names.joined(separator: ".").replacingOccurrences(of: ".[]", with: "[]")
        }
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "{"):
                stack.append(Frame(isObject: true, name: lastKey))
                expectingKey = true
                lastKey = nil
            case UInt8(ascii: "["):
                stack.append(Frame(isObject: false, name: lastKey))
                lastKey = nil
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                lastKey = nil
            case UInt8(ascii: ","):
                if stack.last?.isObject == true { expectingKey = true }
                lastKey = nil
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < b.count && b[i] != UInt8(ascii: "\"") { i += b[i] == UInt8(ascii: "\\") ? 2 : 1 }
                if expectingKey, stack.last?.isObject == true {
                    let raw = Data(b[start...min(i, b.count - 1)])
                    let key = (try? JSONSerialization.jsonObject(with: raw, options: .fragmentsAllowed) as? String)
                        ?? String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
                    if stack[stack.count - 1].keys.contains(key) { return (key, location()) }
                    stack[stack.count - 1].keys.insert(key)
                    expectingKey = false
                    lastKey = key
                }
            default:
                break
            }
            i += 1
        }
        return nil
    }

    /// "unknown key 'lr' in optimizer; did you mean 'learningRate'? (allowed: kind, learningRate, …)".
    public static func unknownKeyMessage(_ key: String, at path: [CodingKey], allowed: [String], note: String = "") -> String {
        var m = "unknown key '\(key)' \(location(path))\(note)"
        if let c = closest(to: key, among: allowed) {
            m += "; did you mean '\(c)'? (allowed: \(allowed.joined(separator: ", ")))"
        } else {
            m += "; remove it or use one of: \(allowed.joined(separator: ", "))"
        }
        return m
    }
}

/// Any JSON key.
public struct AnyCodingKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
    public init?(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
}

/// Any JSON value, decoded only to say what a config held where something else was expected.
public indirect enum JSONValue: Decodable, CustomStringConvertible, Sendable {
    case null, bool(Bool), string(String), number(String), unrepresentableNumber, list([JSONValue]), object

    public init(from decoder: Decoder) throws {
        if let c = try? decoder.singleValueContainer() {
            if c.decodeNil() { self = .null; return }
            if let b = try? c.decode(Bool.self) { self = .bool(b); return }
            if let s = try? c.decode(String.self) { self = .string(s); return }
            if let d = try? c.decode(Decimal.self) {
                let text = "\(d)"
                if text.count <= 24 { self = .number(text); return }
                if let x = try? c.decode(Double.self) { self = .number("\(x)"); return }
                self = .number(text); return
            }
            if let x = try? c.decode(Double.self) { self = .number("\(x)"); return }
        }
        if var u = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !u.isAtEnd { items.append((try? u.decode(JSONValue.self)) ?? .unrepresentableNumber) }
            self = .list(items); return
        }
        if (try? decoder.container(keyedBy: AnyCodingKey.self)) != nil { self = .object; return }
        self = .unrepresentableNumber
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .string(let s): return "the string \"\(s)\""
        case .number(let n): return n
        case .unrepresentableNumber: return "a number too large or too small to represent"
        case .list: return "a list"
        case .object: return "an object"
        }
    }
}

extension Decoder {
    /// Refuses the first key (in sorted order) of this object that is not in `allowed`: the
    /// message names the key, where it is, the closest valid key and the allowed ones.
    public func rejectUnknownKeys(allowed: [String]) throws {
        let c = try container(keyedBy: AnyCodingKey.self)
        let unknown = c.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
        guard let key = unknown.first else { return }
        throw ConfigProblem.decodingError(ConfigProblem.unknownKeyMessage(key, at: codingPath, allowed: allowed),
                                          at: codingPath + [AnyCodingKey(stringValue: key)])
    }

    /// `rejectUnknownKeys(allowed:)` with every case of a type's `CodingKeys`, in declaration order.
    public func rejectUnknownKeys<K: CodingKey & CaseIterable>(_ keys: K.Type) throws {
        try rejectUnknownKeys(allowed: K.allCases.map(\.stringValue))
    }
}

extension KeyedDecodingContainer {
    private func problem(_ key: Key, _ what: String) -> DecodingError {
        let value = (try? decode(JSONValue.self, forKey: key)) ?? .unrepresentableNumber
        let field = ConfigProblem.fieldName(codingPath + [key])
        return ConfigProblem.decodingError("\(field) must be \(what), got \(value)", at: codingPath + [key])
    }

    /// An integer in `range`. A fraction, a number outside the type or the range, or another
    /// type is a `ConfigProblem` naming the field and the range (JSONDecoder alone reports such
    /// numbers as "not valid JSON"). A missing key throws `keyNotFound`, null `valueNotFound`.
    public func decodeInteger<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key,
                                                                in range: ClosedRange<T>) throws -> T {
        let value: T
        do {
            value = try decode(T.self, forKey: key)
        } catch let e as DecodingError {
            switch e {
            case .keyNotFound, .valueNotFound: throw e
            default: throw problem(key, ConfigLimits.describe(range))
            }
        } catch {
            throw problem(key, ConfigLimits.describe(range))
        }
        guard range.contains(value) else { throw problem(key, ConfigLimits.describe(range)) }
        return value
    }

    /// `decodeInteger`, or nil when the key is absent or null.
    public func decodeIntegerIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key,
                                                                         in range: ClosedRange<T>) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeInteger(type, forKey: key, in: range)
    }

    /// A list of integers, each in `range`; the message names the first bad element (`model.layers[1]`).
    public func decodeIntegers<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key,
                                                                 in range: ClosedRange<T>) throws -> [T] {
        do {
            let values = try decode([T].self, forKey: key)
            if let i = values.firstIndex(where: { !range.contains($0) }) {
                let field = ConfigProblem.fieldName(codingPath + [key, AnyCodingKey(intValue: i)!])
                throw ConfigProblem.decodingError("\(field) must be \(ConfigLimits.describe(range)), got \(values[i])",
                                                  at: codingPath + [key, AnyCodingKey(intValue: i)!])
            }
            return values
        } catch let e as DecodingError {
            if case .dataCorrupted(let ctx) = e, ctx.underlyingError is ConfigProblem { throw e }
            if case .keyNotFound = e { throw e }
            if case .valueNotFound = e, (try? decodeNil(forKey: key)) == true { throw e }
        } catch {}
        // A non-list, or an element that is not an integer of this type.
        guard case .list(let items)? = try? decode(JSONValue.self, forKey: key) else {
            throw problem(key, "a list of integers, each in \(range.lowerBound)…\(range.upperBound)")
        }
        for (i, item) in items.enumerated() {
            let ok: Bool
            if case .number(let text) = item, let v = T(text), range.contains(v) { ok = true } else { ok = false }
            if !ok {
                let path = codingPath + [key, AnyCodingKey(intValue: i)!]
                throw ConfigProblem.decodingError("\(ConfigProblem.fieldName(path)) must be \(ConfigLimits.describe(range)), got \(item)", at: path)
            }
        }
        throw problem(key, "a list of integers, each in \(range.lowerBound)…\(range.upperBound)")
    }

    /// `decodeIntegers`, or nil when the key is absent or null.
    public func decodeIntegersIfPresent<T: FixedWidthInteger & Decodable>(_ type: T.Type, forKey key: Key,
                                                                          in range: ClosedRange<T>) throws -> [T]? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeIntegers(type, forKey: key, in: range)
    }

    /// A number (a 64-bit float). One outside ±1.8e308, or another type, is a `ConfigProblem`
    /// naming the field (JSONDecoder alone reports it as "not valid JSON"). Ranges are checked
    /// by each spec's `validate()`.
    public func decodeNumber(forKey key: Key) throws -> Double {
        do {
            return try decode(Double.self, forKey: key)
        } catch let e as DecodingError {
            switch e {
            case .keyNotFound, .valueNotFound: throw e
            default: throw problem(key, "a number")
            }
        } catch {
            throw problem(key, "a number within ±1.8e308 (a 64-bit float)")
        }
    }

    /// `decodeNumber`, or nil when the key is absent or null.
    public func decodeNumberIfPresent(forKey key: Key) throws -> Double? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeNumber(forKey: key)
    }

    /// One of an enum's raw values; anything else names the field, the allowed values and the
    /// closest one.
    public func decodeChoice<E: RawRepresentable & CaseIterable>(_ type: E.Type, forKey key: Key) throws -> E
    where E.RawValue == String {
        let allowed = E.allCases.map(\.rawValue)
        let name: String
        do {
            name = try decode(String.self, forKey: key)
        } catch let e as DecodingError {
            switch e {
            case .keyNotFound, .valueNotFound: throw e
            default: throw problem(key, "one of \(allowed.joined(separator: ", "))")
            }
        }
        guard let value = E(rawValue: name) else {
            let field = ConfigProblem.fieldName(codingPath + [key])
            var m = "\(field) must be one of \(allowed.joined(separator: ", ")), got '\(name)'"
            if let c = ConfigProblem.closest(to: name, among: allowed) { m += " (did you mean '\(c)'?)" }
            throw ConfigProblem.decodingError(m, at: codingPath + [key])
        }
        return value
    }

    /// `decodeChoice`, or nil when the key is absent or null.
    public func decodeChoiceIfPresent<E: RawRepresentable & CaseIterable>(_ type: E.Type, forKey key: Key) throws -> E?
    where E.RawValue == String {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeChoice(type, forKey: key)
    }
}
