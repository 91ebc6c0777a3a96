import Foundation
import Testing

@testable import AirlockSystem

@Suite struct RotatingLogTests {
    private func scratch() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rotating-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.path + "/network.log"
    }

    private func text(_ lines: [[UInt8]]) -> [String] {
        lines.map { String(decoding: $0, as: UTF8.self) }
    }

    private func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test func rotationKeepsTheLogUnderItsBound() throws {
        let path = try scratch()
        let log = try RotatingLog(path: path, maximumBytes: 1000, keep: 2)
        for index in 0..<500 { log.append(Array("line \(index)".utf8)) }
        let files = RotatingLog.files(of: path, keep: 2)
        #expect(files == [path + ".2", path + ".1", path])
        #expect(files.map(size).reduce(0, +) <= 3 * 1000)
        #expect(!FileManager.default.fileExists(atPath: path + ".3"))
        var tail = LogTail(path: path, keep: 2)
        let all = text(tail.readAll())
        #expect(all.last == "line 499")
        // What is kept is the newest lines, in order, with none missing between.
        let numbers = all.compactMap { Int($0.dropFirst(5)) }
        #expect(numbers == Array(numbers.first!...499))
    }

    @Test func theLastLinesComeFromTheEndAcrossFiles() throws {
        let path = try scratch()
        let log = try RotatingLog(path: path, maximumBytes: 100, keep: 3)
        for index in 0..<40 { log.append(Array("entry \(index)".utf8)) }
        var tail = LogTail(path: path, keep: 3)
        #expect(text(tail.readLast(3)) == ["entry 37", "entry 38", "entry 39"])
        var wide = LogTail(path: path, keep: 3)
        // More than the current file holds: the rest from the rotated files, in order.
        let twenty = text(wide.readLast(20))
        #expect(twenty == (20..<40).map { "entry \($0)" })
    }

    @Test func followingReadsOnlyWhatIsNewEvenAcrossARotation() throws {
        let path = try scratch()
        let log = try RotatingLog(path: path, maximumBytes: 60, keep: 1)
        log.append(Array("first".utf8))
        var tail = LogTail(path: path, keep: 1)
        #expect(text(tail.readLast(5)) == ["first"])
        #expect(tail.readNew().isEmpty)
        log.append(Array("second".utf8))
        #expect(text(tail.readNew()) == ["second"])
        // Enough to rotate: the rest of the old file is read, then the new one.
        for index in 0..<4 { log.append(Array("more \(index) xxxxxxxx".utf8)) }
        #expect(FileManager.default.fileExists(atPath: path + ".1"))
        #expect(text(tail.readNew()) == (0..<4).map { "more \($0) xxxxxxxx" })
    }

    @Test func aLineBeingWrittenWaitsForItsEnd() throws {
        let path = try scratch()
        try "one\ntwo\nthr".write(toFile: path, atomically: false, encoding: .utf8)
        var tail = LogTail(path: path)
        #expect(text(tail.readLast(10)) == ["one", "two"])
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("ee\n".utf8))
        try handle.close()
        #expect(text(tail.readNew()) == ["three"])
    }

    @Test func aMissingLogIsEmptyAndFollowedOnceItExists() throws {
        let path = try scratch()
        var tail = LogTail(path: path)
        #expect(tail.readLast(5).isEmpty)
        let log = try RotatingLog(path: path)
        log.append(Array("hello".utf8))
        #expect(text(tail.readNew()) == ["hello"])
    }
}
