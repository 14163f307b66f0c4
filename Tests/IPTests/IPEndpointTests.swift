import Testing
import IP

@Suite struct IPEndpointTests {
    @Test(arguments: [
        ("127.0.0.1:8179", "127.0.0.1:8179"),
        ("0.0.0.0:179", "0.0.0.0:179"),
        ("[::1]:9000", "[::1]:9000"),
        ("[::]:1179", "[::]:1179"),
        ("[2001:DB8::1]:0", "[2001:db8::1]:0"),
    ])
    func parses(_ text: String, _ canonical: String) throws {
        #expect(try IPEndpoint(parsing: text).description == canonical)
    }

    @Test(arguments: [
        ("127.0.0.1", "has no port"),
        ("[::1]", "has no port"),
        ("[::1:80", "closing"),
        ("::1:80", "ambiguous"),
        ("127.0.0.1:", "invalid port"),
        ("127.0.0.1:65536", "invalid port"),
        ("127.0.0.1:+80", "invalid port"),
        ("localhost:80", "invalid address"),
        ("[fe80::1%eth0]:179", "zone IDs"),
    ])
    func rejects(_ text: String, _ why: String) {
        #expect {
            try IPEndpoint(parsing: text)
        } throws: { error in
            (error as? IPParseError)?.description.contains(why) == true
        }
    }
}
