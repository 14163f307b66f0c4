/// An address and a TCP/UDP port, written "192.0.2.1:179" or "[2001:db8::1]:179".
public struct IPEndpoint: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses "v4:port" or "[v6]:port". A bare IPv6 address with a port ("::1:179") is refused:
    /// it is ambiguous, since the port would read as the last group.
    public init(parsing text: some StringProtocol) throws(IPParseError) {
        self = try Self.parse(String(text))
    }

    private static func parse(_ input: String) throws(IPParseError) -> IPEndpoint {
        let hostPart: Substring
        let portPart: Substring
        if input.hasPrefix("[") {
            guard let close = input.firstIndex(of: "]") else {
                throw IPParseError(input: input, reason: "is missing the closing \"]\"; expected [address]:port such as [::1]:8179")
            }
            hostPart = input[input.index(after: input.startIndex)..<close]
            let rest = input[input.index(after: close)...]
            guard rest.first == ":" else {
                throw IPParseError(input: input, reason: "has no port; expected [address]:port such as [::1]:8179")
            }
            portPart = rest.dropFirst()
        } else {
            let colons = input.filter { $0 == ":" }.count
            if colons > 1 {
                throw IPParseError(input: input, reason: "is ambiguous: write an IPv6 address with a port in brackets, such as [::1]:8179")
            }
            guard let colon = input.firstIndex(of: ":") else {
                throw IPParseError(input: input, reason: "has no port; expected address:port such as 127.0.0.1:8179")
            }
            hostPart = input[..<colon]
            portPart = input[input.index(after: colon)...]
        }
        let address: IPAddress
        do throws(IPParseError) { address = try IPAddress(parsing: hostPart) } catch {
            throw IPParseError(input: input, reason: "has an invalid address: \"\(hostPart)\" \(error.reason)")
        }
        guard !portPart.isEmpty, portPart.count <= 5,
              portPart.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = UInt16(portPart)
        else {
            throw IPParseError(input: input, reason: "has an invalid port \"\(portPart)\"; expected 0–65535")
        }
        return IPEndpoint(address: address, port: port)
    }
}

extension IPEndpoint: CustomStringConvertible, IPTextRepresentable {
    public var description: String {
        switch address {
        case .v4: "\(address):\(port)"
        case .v6: "[\(address)]:\(port)"
        }
    }
}
