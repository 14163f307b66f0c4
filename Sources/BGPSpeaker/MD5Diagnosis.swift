import Glibc
import Sockets

// Why a session with a TCP MD5 password (RFC 2385) does not come up, within seconds.
//
// A wrong key fails silently: the receiving kernel drops every segment whose signature does not
// verify, before any socket sees it, so our connect only times out (after the ConnectRetry
// interval, 120 s by default) and the peer's SYNs to us vanish. Two things say it sooner:
// - an outgoing connect that has had no answer for `silentConnectHint` seconds, while the peer's
//   address is reachable, is explained at once (the hint names the MD5 password when one is set);
// - the kernel counts what it drops in this network namespace (`/proc/net/netstat`, TcpExt
//   TCPMD5Failure: wrong signature; TCPMD5NotFound: a signature was expected and missing;
//   TCPMD5Unexpected: a signature came where no key is set). A count rising while a peer is
//   not Established is the peer's SYNs being dropped: the passwords differ, or one side has none.

/// The kernel's TCP MD5 drop counters of this network namespace.
struct KernelMD5Counters: Equatable {
    var failure = 0
    var notFound = 0
    var unexpected = 0

    /// Reads the calling thread's network namespace's counters (`/proc/thread-self`: the event
    /// loop's thread may have entered another namespace than the process's); nil where the
    /// kernel has no such counters.
    static func read(path: String = "/proc/thread-self/net/netstat") -> KernelMD5Counters? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            text += buffer[0..<n]
        }
        return parse(String(decoding: text, as: UTF8.self))
    }

    /// The TcpExt lines: one of names, the next of values.
    static func parse(_ text: String) -> KernelMD5Counters? {
        let lines = text.split(separator: "\n")
        for (index, line) in lines.enumerated() where line.hasPrefix("TcpExt:") && index + 1 < lines.count {
            let names = line.split(separator: " ").dropFirst()
            let values = lines[index + 1].split(separator: " ").dropFirst()
            guard names.count == values.count else { return nil }
            var counters = KernelMD5Counters()
            var found = false
            for (name, value) in zip(names, values) {
                guard let number = Int(value) else { continue }
                switch name {
                case "TCPMD5Failure": counters.failure = number; found = true
                case "TCPMD5NotFound": counters.notFound = number; found = true
                case "TCPMD5Unexpected": counters.unexpected = number; found = true
                default: continue
                }
            }
            return found ? counters : nil
        }
        return nil
    }
}

extension SpeakerCore {
    /// How often the kernel's counters are read while a peer is down.
    static let md5CheckInterval: Duration = .seconds(2)

    /// Reads the counters every `md5CheckInterval` while the speaker runs; a rise is explained
    /// to the peers that are not Established (the namespace's counters name no peer, so every
    /// such peer of the kind concerned hears it).
    func startMD5Diagnosis() {
        md5Baseline = KernelMD5Counters.read()
        guard md5Baseline != nil else { return }
        scheduleMD5Check()
    }

    private func scheduleMD5Check() {
        md5Timer = loop.scheduleTimer(after: Self.md5CheckInterval) { [weak self] in
            guard let self, !self.stopped else { return }
            self.checkMD5Counters()
            self.scheduleMD5Check()
        }
    }

    func checkMD5Counters() {
        let down = peers.values.filter { $0.settings.enabled && $0.session == nil }
        guard !down.isEmpty, let now = KernelMD5Counters.read() else {
            md5Baseline = KernelMD5Counters.read() ?? md5Baseline
            return
        }
        defer { md5Baseline = now }
        guard let before = md5Baseline else { return }
        let wrong = now.failure - before.failure, missing = now.notFound - before.notFound, unexpected = now.unexpected - before.unexpected
        for peer in down {
            if peer.settings.password != nil, wrong > 0 {
                peer.explainMD5("the kernel dropped \(wrong) TCP segment(s) with a wrong MD5 signature in the last \(Self.md5CheckInterval) (TcpExt TCPMD5Failure): the MD5 password differs between Herald and the peer")
            } else if peer.settings.password != nil, missing > 0 {
                peer.explainMD5("the kernel dropped \(missing) TCP segment(s) without the MD5 signature Herald expects (TcpExt TCPMD5NotFound): the peer has no MD5 password set")
            } else if peer.settings.password == nil, unexpected > 0 {
                peer.explainMD5("the kernel dropped \(unexpected) TCP segment(s) signed with TCP MD5 (TcpExt TCPMD5Unexpected): the peer has an MD5 password and Herald has none for it")
            }
        }
    }
}

extension PeerDriver {
    /// Seconds without an answer to an outgoing connect after which the hint explains it (the
    /// attempt itself goes on until ConnectRetry; this only says why sooner).
    static let silentConnectHint = 5

    /// Explains an outgoing connect that is still unanswered.
    func armSilentConnectHint(_ attempt: SessionAttempt) {
        _ = loop.scheduleTimer(after: .seconds(Self.silentConnectHint)) { [weak self, weak attempt] in
            guard let self, let attempt, !attempt.retired, case .connect = attempt.fsm.state, attempt.connection != nil else { return }
            var reason = "no answer from \(self.settings.address) port \(self.settings.port) yet after \(Self.silentConnectHint) s"
            if let explanation = self.connectFailureExplanation() { reason += "; " + explanation }
            // The hint only: the attempt has not failed (it may still be answered), and
            // `noAnswer` records the failure if ConnectRetry ends it.
            self.hint = reason
        }
    }

    func explainMD5(_ text: String) {
        guard hint != text else { return }
        hint = text
        record(PeerError(at: wallClockMillis(), reason: text, notification: nil))
        logger.warning("TCP MD5 mismatch", metadata: ["detail": "\(text)"])
    }
}
