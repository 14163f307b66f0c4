import Foundation
@testable import HTTPServer
import JSON
import Testing

/// What JSON bodies the server refuses are answered with, byte for byte: status, media type and
/// problem document for each way a body can be wrong, through `decode`, `decodeEach`, `scanEach`
/// and `bulkParts`. (The expected answers were recorded before the JSON stack left HTTPServer.)
@Suite("JSON problem documents")
struct JSONProblemTests {
    struct Item: Decodable {
        let prefix: String
        let nextHops: [String]?
    }

    let router: Router = {
        let router = Router()
        router.post("/one") { request, _ in
            _ = try request.decode(PeerInput.self, maxBytes: 200, maxDepth: 8)
            return .noContent
        }
        // A handler may read with the JSON module itself: what it throws is answered the same way.
        router.post("/direct") { request, _ in
            _ = try JSONBody.decode(PeerInput.self, from: request.body, maxBytes: 200, maxDepth: 8)
            return .noContent
        }
        router.post("/each") { request, _ in
            try request.decodeEach(Item.self, maxItems: 2) { _, _ in }
            return .noContent
        }
        router.post("/scan") { request, _ in
            // A body split in two is scanned part by part, as one scan would meet it.
            let parts = try request.bulkParts(2, maxItems: 3, minimumBytes: 1)?.map { Optional($0) } ?? [nil]
            for part in parts {
                try request.scanEach(maxItems: 3, maxDepth: 4, part: part) { _, scanner in
                    var prefix: String?
                    try scanner.members { member, value in
                        switch member {
                        case "prefix": prefix = try value.string(member)
                        case "name": _ = try value.string(member)
                        case "next_hops": _ = try value.stringArray(member)
                        case "labels": _ = try value.decode([String: Int].self, member)
                        default: throw value.unknownField(member)
                        }
                    }
                    guard prefix != nil else { throw scanner.missingField("prefix") }
                }
            }
            return .noContent
        }
        return router
    }()

    static let cases: [(path: String, contentType: String, body: String)] = [
        ("/one", "text/plain", "{}"),
        ("/one", "", "{}"),
        ("/one", "application/json", String(repeating: " ", count: 201)),
        ("/one", "application/json", #"{"name": }"#),
        ("/one", "application/json", "[[[[[[[[[[]]]]]]]]]]"),
        ("/one", "application/json", #"{"a":1,"a":2}"#),
        ("/one", "application/json", "{} {}"),
        ("/one", "application/problem+json", #"{"name":"a","peer_asn":1,"address":"x","families":[],"zz":{"a":1},"colour":1}"#),
        ("/one", "application/json", #"{"name":"a","address":"x","families":[]}"#),
        ("/one", "application/json", #"{"name":"a","peer_asn":-1,"address":"x","families":[]}"#),
        ("/one", "application/json", #"{"name":"a","peer_asn":1,"address":"x","families":["a",2]}"#),
        ("/one", "application/json", #"{"name":"a","peer_asn":1,"address":"x","families":[],"timers":{"connect_retry":null}}"#),
        ("/one", "application/json", #"{"name":"a","peer_asn":1,"address":"x","families":[],"timers":{"connect_retry":1,"x":2}}"#),
        ("/one", "application/json", #"{"name":"a","peer_asn":1.5,"address":"x","families":[]}"#),
        ("/one", "application/json", #"["name"]"#),
        ("/each", "text/plain", "[]"),
        ("/each", "application/json", #"{"prefix":"a"}"#),
        ("/each", "application/json", #"[{"prefix":"a"},{"prefix":"b""#),
        ("/each", "application/json", #"[{"prefix":"a"},{"next_hops":["self"]}]"#),
        ("/each", "application/json", #"[{"prefix":"a","colour":"red","shade":1}]"#),
        ("/each", "application/json", #"[{"prefix":"a"},{"prefix":"b"},{"prefix":"c"}]"#),
        ("/each", "application/json", #"[{"prefix":"a"}] x"#),
        ("/each", "application/x-ndjson", "{\"prefix\":\"a\"}\n\n\u{1E}{\"prefix\":\r\n"),
        ("/each", "application/json-seq", "{\"prefix\":\"a\"} 1"),
        ("/each", "application/jsonl", "{\"prefix\":\"a\"}\n{\"prefix\":7}"),
        ("/scan", "application/json", #"[{"prefix":"a"},"x"]"#),
        ("/scan", "application/json", #"[{"prefix":null}]"#),
        ("/scan", "application/json", #"[{"prefix":32}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","name":7}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","next_hops":"self"}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","next_hops":["self",null]}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","next_hops":["self",1]}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","next_hops":[[[]]]}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","labels":{"a":"b"}}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","labels":{"a":{"b":[]}}}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","colour":1}]"#),
        ("/scan", "application/json", #"[{"prefix":"a","prefix":"b"}]"#),
        ("/scan", "application/json", #"[{"next_hops":[]}]"#),
        ("/scan", "application/json", #"[{"prefix":"a"#),
        ("/scan", "application/json", #"[{"prefix":"a"},{"prefix":"b"},{"prefix":"c"},{"prefix":"d"}]"#),
        ("/scan", "application/x-ndjson", "{\"prefix\":\"a\"}\n{\"prefix\":\"b\"}\n{\"prefix\":\"c\"}\n{\"prefix\":\"d\"}\n"),
        ("/scan", "application/x-ndjson", "{\"prefix\":\"a\"}\n{\"prefix\":\"b\"}\n\n{\"prefix\":\"c\",}\n"),
        ("/scan", "application/x-ndjson", "{\"prefix\":\"a\"}\n{\"prefix\":\"b\"}\n\n{\"prefix\":\"c\",\"x\":1}\n"),
        ("/scan", "application/x-ndjson", "{\"prefix\":\"a\"}\n[1]"),
        ("/scan", "text/json", "[]"),
    ]

    @Test func refusedBodiesAreAnsweredAsBefore() async throws {
        var lines: [String] = []
        for c in Self.cases {
            let r = await router.respond(to: try postJSON(c.path, c.body, contentType: c.contentType))
            lines.append("\(r.status.code) \(r.headers["Content-Type"] ?? "-") \(String(decoding: r.bodyBytes, as: UTF8.self))")
        }
        for (got, expected) in zip(lines, Self.expected.split(separator: "\n", omittingEmptySubsequences: false)) {
            #expect(got == expected)
        }
        #expect(lines.count == Self.expected.split(separator: "\n", omittingEmptySubsequences: false).count)
    }

    @Test func aJSONInputErrorThrownByAHandlerIsAnsweredTheSame() async throws {
        for c in Self.cases where c.path == "/one" && c.contentType.hasSuffix("json") {
            let one = await router.respond(to: try postJSON("/one", c.body))
            let direct = await router.respond(to: try postJSON("/direct", c.body))
            #expect(direct.status == one.status && direct.headers["Content-Type"] == one.headers["Content-Type"], "\(c.body)")
            #expect(direct.bodyBytes == one.bodyBytes, "\(c.body)")
        }
    }

    static let expected = """
        415 application/problem+json {"detail":"expected Content-Type: application/json","status":415,"title":"Unsupported Media Type","type":"about:blank"}
        415 application/problem+json {"detail":"expected Content-Type: application/json","status":415,"title":"Unsupported Media Type","type":"about:blank"}
        413 application/problem+json {"detail":"JSON body larger than 200 bytes","status":413,"title":"Content Too Large","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON: invalid value at byte 9","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON: nesting deeper than 8 at byte 8","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON: duplicate member \\"a\\" at byte 10","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON: unexpected data after the JSON value at byte 3","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body has unknown fields.","errors":[{"field":"colour","message":"unknown field"},{"field":"zz","message":"unknown field"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"peer_asn","message":"is required"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"peer_asn","message":"-1 is not an integer in 0...4294967295"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"families[1]","message":"expected a string, found a number"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"timers.connect_retry","message":"must be an integer, not null"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body has unknown fields.","errors":[{"field":"timers.x","message":"unknown field"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"peer_asn","message":"1.5 is not an integer in 0...4294967295"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"$","message":"expected an object, found an array"}],"status":400,"title":"Bad Request","type":"about:blank"}
        415 application/problem+json {"detail":"expected Content-Type: application/json (an array) or application/x-ndjson","status":415,"title":"Unsupported Media Type","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON: expected a JSON array at byte 0; expected an array of objects (or NDJSON)","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON after item 1: unexpected end of input at byte 29","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[1].prefix","message":"is required"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body has unknown fields.","errors":[{"field":"[0].colour","message":"unknown field"},{"field":"[0].shade","message":"unknown field"}],"status":400,"title":"Bad Request","type":"about:blank"}
        413 application/problem+json {"detail":"more than 2 items in one request","status":413,"title":"Content Too Large","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON after item 1: unexpected data after the JSON value at byte 17","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON on line 3: unexpected end of input at byte 10 of the line","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON on line 1: unexpected data after the JSON value at byte 15 of the line","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[1].prefix","message":"expected a string, found a number"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[1]","message":"expected an object, found a string"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].prefix","message":"must be a string, not null"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].prefix","message":"expected a string, found a number"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].name","message":"expected a string, found a number"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].next_hops","message":"expected an array, found a string"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].next_hops[1]","message":"must be a string, not null"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].next_hops[1]","message":"expected a string, found a number"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON after item 0: nesting deeper than 4 at byte 29","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].labels.a","message":"expected an integer, found a string"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON after item 0: nesting deeper than 4 at byte 34","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body has unknown fields.","errors":[{"field":"[0].colour","message":"unknown field"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON after item 0: duplicate member \\"prefix\\" at byte 23","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[0].prefix","message":"is required"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON after item 0: unterminated string at byte 13","status":400,"title":"Bad Request","type":"about:blank"}
        413 application/problem+json {"detail":"more than 3 items in one request","status":413,"title":"Content Too Large","type":"about:blank"}
        413 application/problem+json {"detail":"more than 3 items in one request","status":413,"title":"Content Too Large","type":"about:blank"}
        400 application/problem+json {"detail":"invalid JSON on line 4: expected a member name at byte 14 of the line","status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body has unknown fields.","errors":[{"field":"[2].x","message":"unknown field"}],"status":400,"title":"Bad Request","type":"about:blank"}
        400 application/problem+json {"detail":"The JSON body does not match the expected shape.","errors":[{"field":"[1]","message":"expected an object, found an array"}],"status":400,"title":"Bad Request","type":"about:blank"}
        415 application/problem+json {"detail":"expected Content-Type: application/json (an array) or application/x-ndjson","status":415,"title":"Unsupported Media Type","type":"about:blank"}
        """
}
