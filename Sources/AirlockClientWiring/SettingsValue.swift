/// A value written into a client's settings file: JSON's kinds, with object keys kept in the
/// order they are given, so that an entry reads as the client's own documentation shows it.
public indirect enum SettingsValue: Sendable, Equatable {
    case string(String)
    case bool(Bool)
    case int(Int)
    case array([SettingsValue])
    case object([(key: String, value: SettingsValue)])

    public static func == (left: SettingsValue, right: SettingsValue) -> Bool {
        switch (left, right) {
        case (.string(let a), .string(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    /// The value as JSON, laid out with `unit` per level below `indent` (the indentation of the
    /// line it starts on); empty containers and arrays of scalars stay on one line.
    public func json(unit: String, indent: String = "", newline: String = "\n") -> String {
        switch self {
        case .string(let text): return Self.quoted(text)
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .array(let items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy(\.isScalar) {
                return "[" + items.map { $0.json(unit: unit) }.joined(separator: ", ") + "]"
            }
            let inner = indent + unit
            let lines = items.map { inner + $0.json(unit: unit, indent: inner, newline: newline) }
            return "[" + newline + lines.joined(separator: "," + newline) + newline + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            let inner = indent + unit
            let lines = members.map {
                inner + Self.quoted($0.key) + ": " + $0.value.json(unit: unit, indent: inner, newline: newline)
            }
            return "{" + newline + lines.joined(separator: "," + newline) + newline + indent + "}"
        }
    }

    var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    /// A JSON string literal (which TOML's basic strings share for what is written here).
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
