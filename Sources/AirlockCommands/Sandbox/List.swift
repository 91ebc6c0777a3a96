import AirlockRuntime
import AirlockSystem
import ArgumentParser
import Foundation

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List sandboxes and whether they are running.")

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print names only.")
    var quiet = false

    @Flag(
        name: .shortAndLong,
        help: "Show what each sandbox's own layer, its agent's home and its workspace take on disk.")
    var size = false

    func run() throws {
        let context = Context()
        // Disposable sandboxes whose owner died and whose supervisor did not clean up.
        context.sandboxes.sweepAbandoned()
        let identity = size ? try SandboxIdentity.current() : nil
        let reports = context.store.records().map {
            SandboxReport(record: $0, paths: context.store.sandbox($0.name), detailed: false, measure: identity)
        }
        if json {
            print(try SandboxReport.json(reports))
        } else if quiet {
            for report in reports { print(report.name) }
        } else {
            // What the guard did, where it did anything (`airlock guard NAME` shows it).
            let guarded = reports.contains { $0.guardEvents != nil }
            let published = reports.contains { $0.ports?.contains(where: \.listening) == true }
            let docker = reports.contains { $0.disk?.dockerBytes != nil }
            var header = ["NAME", "STATUS", "AGENT", "ISOLATION", "RUNTIME"]
            if size { header += ["LAYER", "HOME", "WORKSPACE SIZE"] + (docker ? ["DOCKER"] : []) }
            header.append("WORKSPACE")
            if guarded { header.append("GUARD") }
            if published { header.append("PORTS") }
            let rows: [[String]] =
                [header]
                + reports.map { report in
                    var row = [report.name, report.status, report.agent, report.isolation, report.runtime]
                    if size {
                        row += [report.disk?.layerBytes, report.disk?.homeBytes, report.disk?.workspaceBytes].map(
                            DiskUsage.text)
                        if docker { row.append(DiskUsage.text(report.disk?.dockerBytes)) }
                    }
                    row.append(report.workspace)
                    if guarded { row.append(report.guardEvents.map { "\($0) to review" } ?? "-") }
                    if published {
                        let open = (report.ports ?? []).filter(\.listening).map {
                            "\(IPAddressText.withPort($0.hostAddress, $0.hostPort))->\($0.port)"
                        }
                        row.append(open.isEmpty ? "-" : open.joined(separator: ", "))
                    }
                    return row
                }
            print(Table.render(rows), terminator: "")
        }
    }
}

/// Left-aligned columns separated by two spaces.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}
