import Testing
@testable import HeraldCore
import IP

/// The default router ID (issue #18 item 6): the address of the interface toward the default
/// route, not the host's lowest address (docker0, cni0, a veth or Tailscale address there).
@Suite struct RouterIDChoiceTests {
    static let routes = """
        Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
        docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
        wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
        eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
        eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
        """

    @Test func theInterfaceTowardTheDefaultRouteWins() throws {
        #expect(HostAddresses.defaultRouteInterface(Self.routes) == "eth0", "the default route with the lowest metric")
        let addresses: [(interface: String, address: IPv4Address)] = [
            ("docker0", try IPv4Address(parsing: "172.17.0.1")), ("tailscale0", try IPv4Address(parsing: "100.101.1.2")),
            ("eth0", try IPv4Address(parsing: "192.168.0.20")), ("wlan0", try IPv4Address(parsing: "192.168.2.5")),
        ]
        let choice = try #require(HostAddresses.chooseRouterID(defaultInterface: "eth0", addresses: addresses))
        #expect(choice.routerID.description == "192.168.0.20" && choice.reason.contains("eth0"))
        let guess = try #require(HostAddresses.chooseRouterID(defaultInterface: HostAddresses.defaultRouteInterface(""), addresses: addresses))
        #expect(guess.routerID.description == "100.101.1.2" && guess.reason.contains("set --router-id"))
        #expect(HostAddresses.chooseRouterID(defaultInterface: nil, addresses: []) == nil)
    }
}
