// libFuzzer target for the JSON body parser (Sources/JSON/JSONParser.swift). Built only by
// scripts/fuzz/http.sh, never by `swift build`: it compiles the parser's source directly together
// with this file. Properties: never traps; accepted documents never nest deeper than the bound;
// the result does not depend on the depth bound when the document fits in it (also checked by
// Tests/JSONTests/FuzzRegressionTests.swift).

func depth(_ v: JSONValue) -> Int {
    switch v {
    case .array(let items): 1 + (items.map(depth).max() ?? 0)
    case .object(let members): 1 + (members.map { depth($0.value) }.max() ?? 0)
    default: 0
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var small = JSONParser(bytes: bytes, maxDepth: 8)
    var large = JSONParser(bytes: bytes, maxDepth: 10_000)
    let a = try? small.parseDocument()
    let b = try? large.parseDocument()
    if let a {
        precondition(depth(a) <= 8, "depth bound exceeded")
        precondition(b != nil, "accepted only with the smaller bound")
    }
    if let b, depth(b) <= 8 { precondition(a != nil, "rejected within the bound") }
    return 0
}
