// libFuzzer entry point for BGP message decoding. Built only by scripts/fuzz/bgp.sh, never by
// `swift build`. Traps (and so reports a crash) when decoding traps, or when a message that
// decoded cleanly does not survive encode → decode unchanged.
import BGP

private let contexts = [
    CodecContext.initial,
    CodecContext(fourOctetASN: true, addPath: [.ipv4Unicast, .ipv6Unicast], maxMessageLength: 65535),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for context in contexts {
        _ = try? MessageFraming.nextMessageLength(in: bytes, maxMessageLength: context.maxMessageLength)
        guard let message = try? BGPMessage.decode(bytes, context: context) else { continue }
        if case .update(let update) = message {
            _ = update.announced
            _ = update.withdrawn
            _ = update.attributes.reconcilingAS4Attributes()
            if !update.errors.isEmpty { continue }
        }
        if case .notification(let n) = message { _ = n.description }
        let again = try? BGPMessage.decode(message.encoded(context: context), context: context)
        precondition(again == message, "re-encoded message decodes differently")
    }
    return 0
}
