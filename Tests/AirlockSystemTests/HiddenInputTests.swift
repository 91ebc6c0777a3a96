import Foundation
import Synchronization
import Testing

@testable import AirlockSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `airlock secret set` at a terminal, on a pseudo-terminal: what the terminal shows is what the
/// master side reads back.
@Suite(.serialized) struct HiddenInputTests {
    /// Reads what the terminal shows until `until` appears or `timeout` passes.
    static func shown(_ master: Int32, until: String? = nil, timeout: Int32 = 5000) -> String {
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while until.map({ !String(decoding: text, as: UTF8.self).contains($0) }) ?? true {
            var ready = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, until == nil ? 200 : timeout) > 0 else { break }
            let count = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            text += buffer[..<count]
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func type(_ master: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
    }

    @Test func aSecretTypedAtATerminalIsReadAndNotShown() throws {
        var master: Int32 = -1
        var terminal: Int32 = -1
        try #require(openpty(&master, &terminal, nil, nil, nil) == 0)
        defer {
            close(master)
            close(terminal)
        }
        let input = HiddenInput(input: terminal, output: terminal)
        #expect(input.isTerminal)

        // The probe works: without HiddenInput, what is typed is shown.
        Self.type(master, "probe\n")
        #expect(Self.shown(master, until: "probe\r\n").contains("probe"))
        var drained = [UInt8](repeating: 0, count: 64)
        _ = drained.withUnsafeMutableBytes { read(terminal, $0.baseAddress, $0.count) }

        let result = Outcome()
        let finished = DispatchSemaphore(value: 0)
        Thread {
            do throws(AirlockError) {
                let line = try input.readLine(prompt: "secret (input hidden): ")
                result.value.withLock { $0 = .success(line) }
            } catch {
                result.value.withLock { $0 = .failure(error) }
            }
            finished.signal()
        }.start()
        // Echo is off once the prompt shows.
        #expect(Self.shown(master, until: "secret (input hidden): ").hasSuffix("secret (input hidden): "))
        Self.type(master, "s3cr\u{E9}t\n")
        #expect(finished.wait(timeout: .now() + 5) == .success)
        #expect(try result.value.withLock { $0 }?.get() == "s3cr\u{E9}t")
        let after = Self.shown(master)
        #expect(!after.contains("s3cr"))
        #expect(after == "\r\n")

        // Echo is back on afterwards.
        var settings = termios()
        #expect(tcgetattr(terminal, &settings) == 0)
        #expect(settings.c_lflag & tcflag_t(ECHO) != 0)
    }

    final class Outcome: Sendable {
        let value = Mutex<Result<String, AirlockError>?>(nil)
    }

    @Test func aPipeIsNotATerminal() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        #expect(!HiddenInput(input: ends[0]).isTerminal)
    }
}
