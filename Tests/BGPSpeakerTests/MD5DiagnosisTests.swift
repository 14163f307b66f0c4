import Testing
@testable import BGPSpeaker

@Suite struct MD5DiagnosisTests {
    /// `/proc/net/netstat`: the TcpExt names line, then its values; other sections ignored.
    @Test func readsTheKernelsMD5CountersFromNetstat() {
        let text = """
            TcpExt: SyncookiesSent TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPSackShifted
            TcpExt: 0 3 1 17 9
            IpExt: InNoRoutes TCPMD5Failure
            IpExt: 0 99
            """
        #expect(KernelMD5Counters.parse(text) == KernelMD5Counters(failure: 17, notFound: 3, unexpected: 1))
        #expect(KernelMD5Counters.parse("TcpExt: A B\nTcpExt: 1 2\n") == nil)
        #expect(KernelMD5Counters.parse("TcpExt: TCPMD5Failure\nTcpExt: 1 2\n") == nil, "names and values must pair up")
        #expect(KernelMD5Counters.read() != nil, "this kernel counts MD5 drops")
    }
}
