// libFuzzer target for the dqlite wire codec (Sources/DqliteWire). Built only by
// scripts/fuzz/dqlite.sh, never by `swift build`: it compiles the module's sources directly
// together with this file, so the test-only encoders of responses and decoders of requests are
// in reach. The input is read as a byte stream: framed message by message, each decoded as a
// response and as a request. Properties: nothing traps; whatever decodes re-encodes, and its
// encoding decodes and re-encodes to the same bytes (bytes, not values, so a NaN is no change).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDqliteWire(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    var offset = 0
    while offset < bytes.count {
        guard case .message(_, let length)? = try? DqliteFraming.nextMessage(in: bytes[offset...], maximumBodyLength: 1 << 16) else { break }
        let message = bytes[offset..<offset + length]
        if let response = try? DqliteResponse.decode(message) {
            guard let again = try? response.encoded() else { preconditionFailure("decoded response does not encode: \(response)") }
            precondition((try? DqliteResponse.decode(again).encoded()) == again, "re-encoded response is not a fixed point: \(response)")
        }
        if let request = try? DqliteRequest.decode(message) {
            guard let again = try? request.encoded() else { preconditionFailure("decoded request does not encode: \(request)") }
            precondition((try? DqliteRequest.decode(again).encoded()) == again, "re-encoded request is not a fixed point: \(request)")
        }
        offset += length
    }
    // The whole input as one message, as a decoder handed a wrong slice would see it.
    _ = try? DqliteResponse.decode(bytes)
    _ = try? DqliteRequest.decode(bytes)
    return 0
}
