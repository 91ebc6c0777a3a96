import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The redirect target of the authorization flow (RFC 8252 §7.3): a listener on 127.0.0.1 that
/// takes one `GET /callback` with the expected `state`, answers the browser with a short page,
/// and gives the code to the flow. A request with another state is answered 400 and the wait
/// goes on (a stale tab, a probe), so only the browser that was sent can finish it.
///
/// One connection at a time on a thread of its own: a browser sends one request here.
public final class LoopbackReceiver: Sendable {
    public struct Callback: Sendable, Equatable {
        public var code: String
        public var issuer: String?
    }

    let socket: Int32
    public let port: Int

    public var redirectURI: String { "http://127.0.0.1:\(port)/callback" }

    /// Binds 127.0.0.1:`port` (0: any free port).
    public init(port: Int = 0) throws(OAuthError) {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw OAuthError(.unreachable, "cannot make a socket for the redirect") }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw OAuthError(.unreachable, "cannot listen on 127.0.0.1:\(port) for the browser's redirect: \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        socket = descriptor
        self.port = Int(UInt16(bigEndian: actual.sin_port))
    }

    deinit {
        close(socket)
    }

    /// Waits for the callback with `state`; an `error` from the authorization server ends the wait.
    public func wait(state: String, timeout: Duration) async throws(OAuthError) -> Callback {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        let outcome: Result<Callback, OAuthError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.serve(state: state, until: deadline)) }
        }
        return try outcome.get()
    }

    private func serve(state: String, until deadline: Date) -> Result<Callback, OAuthError> {
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return .failure(OAuthError(.unreachable, "no answer from the browser in time")) }
            var waiting = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&waiting, 1, Int32(min(left, 1) * 1000)) > 0 else { continue }
            let connection = accept(socket, nil, nil)
            guard connection >= 0 else { continue }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let outcome = answer(connection, state: state)
            close(connection)
            if let outcome { return outcome }
        }
    }

    /// nil: not the callback (answered, keep waiting).
    private func answer(_ connection: Int32, state: String) -> Result<Callback, OAuthError>? {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16384, !request.contains(10) {
            let count = read(connection, &buffer, buffer.count)
            guard count > 0 else { break }
            request += buffer[0..<count]
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        func reply(_ status: String, _ text: String) {
            let page = "<!doctype html><title>Airlock</title><p>\(text)</p>\n"
            let head =
                "HTTP/1.1 \(status)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(page.utf8.count)\r\nConnection: close\r\n\r\n"
            let bytes = Array((head + page).utf8)
            _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
        }
        guard parts.count >= 2, parts[0] == "GET", let components = URLComponents(string: String(parts[1])) else {
            reply("400 Bad Request", "Not a request Airlock understands.")
            return nil
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            // A form-encoded `+` is a space (URLComponents leaves it); a server's words made printable.
            query[item.name] = OAuthError.printable((item.value ?? "").replacingOccurrences(of: "+", with: " "))
        }
        guard components.path == "/callback", query["state"] == state else {
            reply("400 Bad Request", "This is not the authorization Airlock is waiting for.")
            return nil
        }
        if let error = query["error"] {
            reply("200 OK", "Authorization was refused. You may close this page.")
            let detail = query["error_description"].map { "\(error): \($0)" } ?? error
            return .failure(OAuthError(.refused, "the authorization server refused: \(detail)"))
        }
        guard let code = query["code"], !code.isEmpty else {
            reply("400 Bad Request", "The redirect holds no code.")
            return nil
        }
        reply("200 OK", "Airlock is authorized. You may close this page.")
        return .success(Callback(code: code, issuer: query["iss"]))
    }
}
