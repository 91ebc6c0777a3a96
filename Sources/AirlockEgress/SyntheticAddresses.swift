import AirlockPolicy
import Synchronization

/// The addresses the DNS stub gives out: one per allowed name, from 198.18.0.0/15 (a range
/// reserved for benchmarking that no real service uses). A connection captured on its way to
/// one of them is known to be meant for that name; nothing is resolved for real until the
/// proxy has checked the name again at connection time.
public final class SyntheticAddresses: Sendable {
    static let base: UInt32 = 0xC612_0001  // 198.18.0.1
    static let capacity = 0x1_FFFE

    private struct Table {
        var byName: [String: UInt32] = [:]
        var byAddress: [UInt32: String] = [:]
        var next = 0
    }

    private let table = Mutex(Table())

    public init() {}

    /// The address standing for `name` (normalized), allocating one on first use. When the
    /// range is used up, the oldest address is given to the new name: safe, because every
    /// connection to it is checked again, against the name it stands for now.
    public func address(for name: String) -> IPAddress? {
        table.withLock { table in
            if let known = table.byName[name] { return .v4(known) }
            let address = Self.base + UInt32(table.next % Self.capacity)
            table.next += 1
            if let previous = table.byAddress[address] { table.byName[previous] = nil }
            table.byName[name] = address
            table.byAddress[address] = name
            return .v4(address)
        }
    }

    /// The name an address was given out for, if it is one of these.
    public func name(for address: IPAddress) -> String? {
        guard case .v4(let value) = address else { return nil }
        return table.withLock { $0.byAddress[value] }
    }

    /// Whether an address is in the synthetic range (given out or not).
    public static func contains(_ address: IPAddress) -> Bool {
        guard case .v4(let value) = address else { return false }
        return value >= base - 1 && value < base - 1 + 0x2_0000
    }
}
