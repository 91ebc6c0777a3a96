import AirlockSystem
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct UnixSocketTests {
    @Test func aLineIsTakenUpToItsNewlineAndWhatFollowsStays() throws {
        let (here, there) = try DescriptorPassing.socketPair()
        defer {
            close(here)
            close(there)
        }
        let long = String(repeating: "x", count: 20000)
        #expect(UnixSocket.writeLine(there, "first"))
        #expect(UnixSocket.writeLine(there, long))
        // Descriptors after a line, as the exec agent's client sends its command's streams.
        let file = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        try DescriptorPassing.send([file], over: there)
        #expect(UnixSocket.writeLine(there, "last"))
        #expect(UnixSocket.readLine(here) == "first")
        #expect(UnixSocket.readLine(here, limit: 1 << 16) == long)
        let received = try DescriptorPassing.receive(from: here)
        #expect(received.count == 1)
        for fd in received { close(fd) }
        #expect(UnixSocket.readLine(here) == "last")
    }

    @Test func manyDescriptorsTravelInOneMessage() throws {
        let (here, there) = try DescriptorPassing.socketPair()
        defer {
            close(here)
            close(there)
        }
        let files = (0..<DescriptorPassing.maxDescriptors).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { for fd in files { close(fd) } }
        try DescriptorPassing.send(files, over: there)
        let received = try DescriptorPassing.receive(from: here)
        #expect(received.count == files.count)
        for fd in received { close(fd) }
    }

    @Test func aLineLongerThanTheLimitIsRefused() throws {
        let (here, there) = try DescriptorPassing.socketPair()
        defer {
            close(here)
            close(there)
        }
        #expect(UnixSocket.writeLine(there, String(repeating: "y", count: 100)))
        #expect(UnixSocket.readLine(here, limit: 50) == nil)
    }

    @Test func aPipeIsReadToo() throws {
        let pipe = try Pipe2()
        #expect(UnixSocket.writeLine(pipe.write, "one"))
        #expect(UnixSocket.writeLine(pipe.write, "two"))
        pipe.closeWrite()
        #expect(UnixSocket.readLine(pipe.read) == "one")
        #expect(UnixSocket.readLine(pipe.read) == "two")
        #expect(UnixSocket.readLine(pipe.read) == nil)
    }
}
