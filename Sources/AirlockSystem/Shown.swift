/// Text from somewhere else (an image, a layer, a catalog) made fit for one line of an error:
/// control characters (newlines, escape sequences) become `?`, and at most `limit` characters
/// are kept, so what others wrote can neither add a line nor colour the terminal.
public func shown(_ text: String, limit: Int = 200) -> String {
    let scalars = text.unicodeScalars.map { scalar -> Unicode.Scalar in
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: "?"
        default: scalar
        }
    }
    let line = String(String.UnicodeScalarView(scalars))
    return line.count > limit ? line.prefix(limit) + "..." : line
}
