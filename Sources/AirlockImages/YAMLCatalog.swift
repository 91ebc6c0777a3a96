import AirlockSystem
import Foundation
import Yams

/// A definition users write as YAML (a template, an agent): parsed and checked with errors
/// that name the file.
public protocol CatalogItem: Decodable, Sendable {
    /// What the error messages call it: "template", "agent".
    static var kind: String { get }
    var name: String { get }
    func validate(source: String) throws
}

extension CatalogItem {
    /// Parses and checks one definition; errors name the file.
    public static func parse(yaml: String, source: String) throws -> Self {
        let item: Self
        do {
            item = try YAMLDecoder().decode(Self.self, from: yaml)
        } catch let error as DecodingError {
            throw AirlockError(.invalidArgument, "\(kind) \(source) is malformed: \(Template.describe(error))")
        } catch {
            throw AirlockError(.invalidArgument, "\(kind) \(source) is malformed: \(error)")
        }
        try item.validate(source: source)
        return item
    }
}

/// Built-in definitions plus the user's `*.yaml` files in a directory; a file with a
/// built-in's name replaces it.
enum YAMLCatalog {
    static func load<Item: CatalogItem>(builtIns: [Item], directory: String) throws -> [(item: Item, source: String)] {
        var entries: [String: (item: Item, source: String)] = [:]
        for item in builtIns { entries[item.name] = (item, "built-in") }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files.sorted() where file.hasSuffix(".yaml") || file.hasSuffix(".yml") {
            let path = directory + "/" + file
            let item = try Item.parse(yaml: try Files.read(path), source: path)
            entries[item.name] = (item, path)
        }
        return entries.values.sorted { $0.item.name < $1.item.name }
    }
}
