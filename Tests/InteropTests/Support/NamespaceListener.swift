import Foundation
import Glibc
import Synchronization

/// A TCP listener the test itself opens inside a namespace (e.g. on 127.0.0.2 in Herald's):
/// a dedicated thread enters the namespace with setns(2) — a per-thread setting, so nothing else
/// in the test process moves — binds, listens, and accepts and drops connections until `close()`,
/// after which connects to it are refused. No child process, so closing it is instant.
final class NamespaceListener: @unchecked Sendable {
    let address: String
    let port: UInt16
    private final class Flags: Sendable {
        let stopped = Atomic<Bool>(false)
        let accepted = Atomic<Int>(0)
    }
    private let flags = Flags()
    private let done = DispatchSemaphore(value: 0)
    var accepted: Int { flags.accepted.load(ordering: .relaxed) }

    init(in namespace: NetworkNamespace, address: String, port: UInt16 = 0) throws {
        self.address = address
        let ready = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<UInt16, HarnessError>?>(nil)
        let flags = self.flags, done = self.done
        let thread = Thread {
            defer { done.signal() }
            let nsfd = open("/run/netns/\(namespace.name)", O_RDONLY | O_CLOEXEC)
            guard nsfd >= 0, Self.setns(nsfd, Self.cloneNewNet) == 0 else {
                outcome.withLock { $0 = .failure(HarnessError("setns into \(namespace): \(String(cString: strerror(errno)))")) }
                ready.signal()
                return
            }
            Glibc.close(nsfd)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            inet_pton(AF_INET, address, &sin.sin_addr)
            let size = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
            guard fd >= 0, bound == 0, listen(fd, 1024) == 0 else {
                outcome.withLock { $0 = .failure(HarnessError("listen on \(address):\(port) in \(namespace): \(String(cString: strerror(errno)))")) }
                if fd >= 0 { Glibc.close(fd) }
                ready.signal()
                return
            }
            var length = size
            _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            outcome.withLock { $0 = .success(UInt16(bigEndian: sin.sin_port)) }
            ready.signal()
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while !flags.stopped.load(ordering: .relaxed) {
                if poll(&poller, 1, 20) > 0 {
                    let client = accept(fd, nil, nil)
                    if client >= 0 {
                        flags.accepted.add(1, ordering: .relaxed)
                        Glibc.close(client)
                    }
                }
            }
            Glibc.close(fd)
        }
        thread.start()
        ready.wait()
        switch outcome.withLock({ $0 })! {
        case .success(let bound): self.port = bound
        case .failure(let error): throw error
        }
    }

    /// setns(2) and CLONE_NEWNET are behind _GNU_SOURCE, which Swift's Glibc module does not
    /// define: look the libc function up by name.
    private static let cloneNewNet: Int32 = 0x4000_0000
    private static let setns: @convention(c) (Int32, Int32) -> Int32 = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { fatalError("libc has no setns") }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()

    /// Stops accepting and closes the socket (connects are refused from then on). Idempotent.
    func close() {
        guard !flags.stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }

    deinit { close() }
}
