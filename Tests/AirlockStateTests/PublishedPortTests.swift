import AirlockState
import AirlockSystem
import Testing

@Suite struct PublishedPortTests {
    @Test func specsAsDockerWritesThem() throws {
        #expect(try PublishedPort(spec: "8080:80") == PublishedPort(hostPort: 8080, port: 80))
        #expect(
            try PublishedPort(spec: "0.0.0.0:8080:80")
                == PublishedPort(hostAddress: "0.0.0.0", hostPort: 8080, port: 80))
        #expect(try PublishedPort(spec: "[::1]:8080:80") == PublishedPort(hostAddress: "::1", hostPort: 8080, port: 80))
        #expect(try PublishedPort(spec: "0:3000") == PublishedPort(hostPort: 0, port: 3000))
        #expect(try PublishedPort(spec: "5173") == PublishedPort(hostPort: 0, port: 5173))
        #expect(try PublishedPort(spec: "8080:80/tcp") == PublishedPort(hostPort: 8080, port: 80))
    }

    @Test(arguments: [
        "", ":", "8080:", ":80", "1:2:3:4", "8080:0", "8080:65536", "70000:80", "x:80", "8080:http",
        "nohost:8080:80", "::1:8080:80", "[::1:8080:80", "[::1]8080:80", "999.1.1.1:8080:80", "8080:80/udp",
    ])
    func badSpecsAreRefusedInOneLine(spec: String) {
        #expect(throws: AirlockError.self) { try PublishedPort(spec: spec) }
    }

    @Test func descriptionsNameHostThenSandbox() {
        #expect(PublishedPort(hostPort: 8080, port: 80).description == "127.0.0.1:8080 -> 80")
        #expect(PublishedPort(hostAddress: "::", hostPort: 0, port: 80).description == "[::]:0 -> 80")
    }

    @Test func onlyAChosenHostPortCanBeShared() {
        let first = PublishedPort(hostPort: 8080, port: 80)
        #expect(first.sharesHostPort(with: PublishedPort(hostAddress: "0.0.0.0", hostPort: 8080, port: 81)))
        #expect(!PublishedPort(hostPort: 0, port: 80).sharesHostPort(with: PublishedPort(hostPort: 0, port: 81)))
    }
}
