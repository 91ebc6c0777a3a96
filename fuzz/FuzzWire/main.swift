import AirlockPolicy
import AirlockWire

/// libFuzzer's entry: every input goes through each parser of AirlockWire. Beyond "no crash",
/// `check` states what must hold for any input, so a logic slip is a finding too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    fuzzHead(bytes)
    fuzzFramer(bytes)
    fuzzClientHello(bytes)
    fuzzTargets(String(decoding: bytes, as: UTF8.self))
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

/// A head, and whatever follows it as its body.
func fuzzHead(_ bytes: UnsafeBufferPointer<UInt8>) {
    guard case .complete(let head, let length) = HTTPRequestHead.parse(bytes, limit: 4096) else { return }
    check(length <= bytes.count, "head length \(length) beyond \(bytes.count) bytes")
    let again = head.serialized()
    check(HTTPRequestHead.parse(again) == .complete(head, length: again.count), "head does not round-trip")
    if let target = RequestTarget.parse(method: head.method, target: head.target), let host = head.first("Host") {
        switch target {
        case .authority(let authority): _ = RequestTarget.hostMatches(host, authority, defaultPort: 443)
        case .absolute(_, let authority, let path):
            check(path.hasPrefix("/"), "absolute-form path \(path) does not start with /")
            _ = RequestTarget.hostMatches(host, authority, defaultPort: authority.port)
        case .origin, .asterisk: break
        }
    }
    guard let framer = try? RequestBodyFramer(head: head) else { return }
    frame(framer, UnsafeBufferPointer(rebasing: bytes[length...]))
}

/// The raw input as a chunked body, and as a Content-Length body of a length it names.
func fuzzFramer(_ bytes: UnsafeBufferPointer<UInt8>) {
    let chunked = HTTPRequestHead(
        method: "POST", target: "/", fields: [HTTPField(name: "Transfer-Encoding", value: "chunked")])
    if let framer = try? RequestBodyFramer(head: chunked) { frame(framer, bytes) }
    let length = bytes.first.map { String($0) } ?? "0"
    let sized = HTTPRequestHead(method: "POST", target: "/", fields: [HTTPField(name: "Content-Length", value: length)])
    if let framer = try? RequestBodyFramer(head: sized) { frame(framer, bytes) }
}

/// Feeds `body` whole and in two pieces split where its first byte says: the outcome must
/// not depend on how the stream was read.
func frame(_ framer: RequestBodyFramer, _ body: UnsafeBufferPointer<UInt8>) {
    var whole = framer
    let wholeResult = Result { () throws(FramingError) -> Int in try whole.consume(UnsafeRawBufferPointer(body)) }
    var split = framer
    let cut = body.isEmpty ? 0 : Int(body[0]) % (body.count + 1)
    let splitResult = Result { () throws(FramingError) -> Int in
        let first = try split.consume(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: body[..<cut])))
        guard first == cut else { return first }
        return first + (try split.consume(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: body[cut...]))))
    }
    switch (wholeResult, splitResult) {
    case (.success(let a), .success(let b)):
        check(a == b && whole.isComplete == split.isComplete, "split at \(cut) consumed \(b), whole \(a)")
        check(a <= body.count, "consumed \(a) of \(body.count) bytes")
        check(a == body.count || whole.isComplete, "stopped early without completing")
    case (.failure, .failure): break
    default: check(false, "split at \(cut) changed success into failure or back")
    }
}

func fuzzClientHello(_ bytes: UnsafeBufferPointer<UInt8>) {
    let result = ClientHello.peek(bytes)
    if case .hello(let name?) = result {
        check(HostName.isValid(name) && name == name.lowercased(), "server name \(name) is not a host name")
    }
    // Peeking more bytes never turns a verdict back into "need more".
    if result != .needMore {
        check(ClientHello.peek(Array(bytes) + [0x16]) != .needMore, "a verdict depended on the end of the input")
    }
}

func fuzzTargets(_ text: String) {
    for defaultPort: UInt16? in [nil, 80] {
        if let authority = Authority.parse(text, defaultPort: defaultPort) {
            check(
                Authority.parse(authority.description, defaultPort: nil) == authority,
                "\(authority) does not round-trip")
            check(
                RequestTarget.hostMatches(authority.description, authority, defaultPort: 1),
                "\(authority) does not match itself")
        }
    }
    for method in ["CONNECT", "GET", "OPTIONS"] {
        if case .absolute(_, _, let path) = RequestTarget.parse(method: method, target: text) {
            check(path.hasPrefix("/"), "absolute-form path \(path) does not start with /")
        }
    }
}
