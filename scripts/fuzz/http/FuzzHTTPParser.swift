// libFuzzer target for HTTPRequestParser. Built only by scripts/fuzz/http.sh, never by
// `swift build`: it compiles the parser's sources directly together with this file.
//
// Property checked beyond "no crash": feeding the same bytes in different splits (whole,
// byte by byte, in steps chosen by the first input byte) yields the same events or the same
// error status. Any difference traps, and libFuzzer saves the input.

struct Outcome: Equatable {
    var events: [String] = []
    var error: Int?
}

func run(_ bytes: ArraySlice<UInt8>, step: Int, limits: HTTPParserLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    var body: [UInt8] = []
    var index = bytes.startIndex
    while index < bytes.endIndex {
        let end = min(bytes.endIndex, index + step)
        parser.append(bytes[index..<end])
        index = end
        do {
            while let event = try parser.next() {
                switch event {
                case .head(let h):
                    outcome.events.append("head \(h.method) \(h.target) \(h.version) \(h.headers.count) \(h.framing) \(h.keepAlive) \(h.expectsContinue)")
                case .body(let b):
                    precondition(!b.isEmpty, "empty body event")
                    body += b
                case .end:
                    outcome.events.append("end \(body.count) \(body.hashValue)")
                    body = []
                }
            }
        } catch {
            outcome.error = error.status.code
            precondition([400, 413, 414, 417, 431, 501, 505].contains(error.status.code), "unexpected status \(error.status)")
            return outcome
        }
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let all = Array(UnsafeBufferPointer(start: data, count: size))
    let step = Int(all[0] % 16) + 1
    let input = all[1...]
    // Small limits so that every limit path is reachable by short inputs.
    let limits = HTTPParserLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodyBytes: 512)
    let whole = run(input, step: Int.max / 2, limits: limits)
    let one = run(input, step: 1, limits: limits)
    let stepped = run(input, step: step, limits: limits)
    // A limit error may be detected earlier or later depending on the split, but whether the
    // input is accepted, and the events before any error, must not depend on it.
    if whole.error == nil || one.error == nil || stepped.error == nil {
        precondition(whole == one && one == stepped, "split-dependent result: \(whole) / \(one) / \(stepped)")
    } else {
        let n = min(whole.events.count, one.events.count, stepped.events.count)
        precondition(whole.events.prefix(n) == one.events.prefix(n) && one.events.prefix(n) == stepped.events.prefix(n), "split-dependent events")
    }
    return 0
}
