import Foundation
@testable import HTTPServer
import Testing

/// Bulk bodies: a larger limit for one path, and item-by-item decoding of JSON arrays and NDJSON
/// with errors that name the item.
@Suite("Bulk request bodies", .serialized)
struct BulkBodyTests {
    struct Item: Decodable, Equatable {
        let prefix: String
        let nextHops: [String]?
    }

    func request(_ body: String, contentType: String = "application/json") throws -> HTTPRequest {
        var headers = HTTPHeaders()
        headers.set("Content-Type", contentType)
        return try HTTPRequest(.POST, "/bulk", headers: headers, body: Array(body.utf8))
    }

    func items(_ request: HTTPRequest, maxItems: Int = 10) throws -> [Item] {
        var seen: [Item] = []
        try request.decodeEach(Item.self, maxItems: maxItems) { index, item in
            #expect(index == seen.count)
            seen.append(item)
        }
        return seen
    }

    @Test func theMediaTypeChoosesArrayOrLines() throws {
        let expected = [Item(prefix: "10.0.0.1/32", nextHops: nil), Item(prefix: "10.0.0.2/32", nextHops: ["self"])]
        #expect(try items(request(#"[{"prefix":"10.0.0.1/32"},{"prefix":"10.0.0.2/32","next_hops":["self"]}]"#)) == expected)
        for contentType in ["application/x-ndjson", "application/jsonl", "application/json-seq", "Application/X-NDJSON; charset=utf-8"] {
            #expect(try items(request("{\"prefix\":\"10.0.0.1/32\"}\n{\"prefix\":\"10.0.0.2/32\",\"next_hops\":[\"self\"]}",
                                      contentType: contentType)) == expected, "\(contentType)")
        }
    }

    @Test func errorsNameTheItem() throws {
        func problem(_ body: String, contentType: String = "application/json") -> (status: Int, text: String) {
            do {
                _ = try items(request(body, contentType: contentType), maxItems: 2)
                return (200, "")
            } catch let error as ValidationError {
                return (error.status.code, error.errors.map { "\($0.field): \($0.message)" }.joined(separator: "; "))
            } catch let error as HTTPError {
                return (error.status.code, error.detail ?? "")
            } catch {
                return (0, "\(error)")
            }
        }
        let missing = problem(#"[{"prefix":"10.0.0.1/32"},{"next_hops":["self"]}]"#)
        #expect(missing.status == 400 && missing.text.contains("[1].prefix: is required"), "\(missing)")
        let unknown = problem(#"[{"prefix":"10.0.0.1/32","colour":"red"}]"#)
        #expect(unknown.status == 400 && unknown.text.contains("[0].colour"), "\(unknown)")
        let badLine = problem("{\"prefix\":\"a\"}\n{\"prefix\":", contentType: "application/x-ndjson")
        #expect(badLine.status == 400 && badLine.text.contains("line 2"), "\(badLine)")
        let notArray = problem(#"{"prefix":"10.0.0.1/32"}"#)
        #expect(notArray.status == 400 && notArray.text.contains("expected a JSON array"), "\(notArray)")
        let trailing = problem(#"[{"prefix":"a"}] x"#)
        #expect(trailing.status == 400, "\(trailing)")
        let tooMany = problem(#"[{"prefix":"a"},{"prefix":"b"},{"prefix":"c"}]"#)
        #expect(tooMany.status == 413 && tooMany.text.contains("more than 2"), "\(tooMany)")
        let media = problem("x", contentType: "text/plain")
        #expect(media.status == 415, "\(media)")
        // An empty or parameters-only Content-Type is refused, not a crash (it once indexed an
        // empty split).
        for contentType in ["", ";", " ; charset=utf-8"] {
            let empty = problem("[]", contentType: contentType)
            #expect(empty.status == 415, "Content-Type \"\(contentType)\": \(empty)")
            var headers = HTTPHeaders()
            headers.set("Content-Type", contentType)
            let single = try HTTPRequest(.PUT, "/x", headers: headers, body: Array("{}".utf8))
            #expect(throws: HTTPError.self) { _ = try single.decode(Item.self) }
        }
    }

    @Test func onePathMayTakeALargerBodyThanTheRest() async throws {
        try await withServer(testRouter(), configure: { configuration in
            configuration.limits.maxBodyBytes = 1024
            configuration.bodyLimits = ["/upload": 3 * 1024 * 1024]
        }) { _, port in
            try await onThread {
                let big = String(repeating: "x", count: 2 * 1024 * 1024)
                let client = try TestClient(port: port)
                try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: \(big.utf8.count)\r\n\r\n" + big)
                let accepted = try client.readResponse()
                #expect(accepted?.status == 200 && accepted?.text == "got \(big.utf8.count)")

                // The same body to another path is refused before it is read.
                let other = try TestClient(port: port)
                try other.send("POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n")
                #expect(try other.readResponse()?.status == 413)

                // Chunked bodies are bounded by the path's limit too.
                let chunked = try TestClient(port: port)
                let chunk = String(repeating: "y", count: 1024 * 1024)
                let hex = String(chunk.utf8.count, radix: 16)
                try chunked.send("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in 0..<4 { try? chunked.send("\(hex)\r\n\(chunk)\r\n") }
                #expect(try chunked.readResponse()?.status == 413)
            }
        }
    }
}
