#!/usr/bin/env python3
"""BGP benchmarks: Herald side by side with BIRD, GoBGP and FRR, each run in network namespaces
this script creates (run as root). Called by the wrappers in scripts/bench/ (bgp-convergence.sh,
bgp.sh, announce-latency.sh, fanout.sh); see docs/performance.md.

  bgpbench.py convergence --herald BIN [--runs 3] [--senders herald,bird,gobgp,frr] [--family ipv4] [N …]
  bgpbench.py latency     --herald BIN [--count 200]
  bgpbench.py fanout      --herald BIN [--prefixes 100000] [--peers 1,4,16]

Safety: every namespace is `hrld-<pid>-b<k>` and every work file lives in `/tmp/hrld-<pid>-bench`
(the interop harness's naming, so `scripts/interop/sweep.sh` also removes leftovers of a killed
run); both ends of every veth pair are created inside those namespaces, with 100.127.0.0/16 (part
of 100.64.0.0/10) and fd64:7f::/32 addresses; only processes this script started are stopped,
by PID; everything is removed on exit, also on an error or Ctrl-C.
"""
import argparse, calendar, ctypes, http.client, ipaddress, json, os, shutil, signal, socket, statistics, struct, subprocess
import sys, threading, time

PID = os.getpid()
WORK = f"/tmp/hrld-{PID}-bench"
BIRD, BIRDC = os.environ.get("HERALD_BIRD", "/usr/sbin/bird"), os.environ.get("HERALD_BIRDC", "/usr/sbin/birdc")
GOBGPD, GOBGP = os.environ.get("HERALD_GOBGPD", "/usr/bin/gobgpd"), os.environ.get("HERALD_GOBGP", "/usr/bin/gobgp")
FRR_BGPD, VTYSH = os.environ.get("HERALD_FRR_BGPD", "/usr/lib/frr/bgpd"), os.environ.get("HERALD_VTYSH", "/usr/bin/vtysh")
HERALD_ASN, PEER_ASN = 64512, 65001
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# MARK: - namespaces, links, processes

class Lab:
    """Namespaces, veth pairs and processes of one measurement; `close()` removes them all."""
    counter = 0

    def __init__(self):
        self.namespaces, self.processes = [], []

    def namespace(self):
        Lab.counter += 1
        name = f"hrld-{PID}-b{Lab.counter}"
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def link(self, a, b, index):
        """veth a<->b; a gets 100.127.X.Y (even) and fd64:7f:index::1, b the next ones (X.Y from index)."""
        Lab.counter += 1
        ifa, ifb = f"hb{PID}x{Lab.counter}a", f"hb{PID}x{Lab.counter}b"
        run(["ip", "link", "add", ifa, "netns", a, "type", "veth", "peer", "name", ifb, "netns", b])
        v4 = int(ipaddress.IPv4Address("100.127.0.0")) + 2 * index
        ends = []
        for side, (ns, interface) in enumerate([(a, ifa), (b, ifb)]):
            v4addr = str(ipaddress.IPv4Address(v4 + side))
            v6addr = f"fd64:7f:{index:x}::{side + 1}"
            # No IPv6 link-local address: BIRD would add a link-local next hop once DAD finishes.
            run(["ip", "-n", ns, "link", "set", interface, "addrgenmode", "none"])
            run(["ip", "-n", ns, "addr", "add", f"{v4addr}/31", "dev", interface])
            run(["ip", "-n", ns, "-6", "addr", "add", f"{v6addr}/64", "dev", interface, "nodad"])
            run(["ip", "-n", ns, "link", "set", interface, "up"])
            ends.append({"ns": ns, "ipv4": v4addr, "ipv6": v6addr})
        return ends

    def spawn(self, ns, argv, logname):
        """`ip netns exec NS argv…`: ip execs the command, so the Popen PID is the daemon's PID."""
        out = open(os.path.join(WORK, logname), "ab")
        process = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def close(self):
        for process in reversed(self.processes):
            stop(process)
        self.processes = []
        for ns in reversed(self.namespaces):
            # Anything else still inside is a child of a process we started (e.g. a CLI call).
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self.namespaces = []


LABS = []


def cleanup_all():
    for lab in LABS:
        lab.close()
    if os.environ.get("HERALD_BENCH_KEEP") != "1":
        shutil.rmtree(WORK, ignore_errors=True)


def stop(process):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(argv, check=True, timeout=600, ns=None):
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:8])} → {result.returncode}: {result.stderr.strip()[:400]} {result.stdout.strip()[:400]}")
    return result


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def memory_mib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_for(predicate, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


# The API of a Herald inside a namespace is reached by a socket created in that namespace: setns(2)
# moves only the calling thread, and a socket stays in the namespace it was created in.
libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000
_ns_lock = threading.Lock()


def socket_in_namespace(ns, create):
    with _ns_lock:
        home = os.open(f"/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            try:
                return create()
            finally:
                if libc.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(home)
            os.close(target)


class API:
    """A keep-alive HTTP/1.1 connection to Herald's API inside namespace `ns`."""

    def __init__(self, ns, port):
        self.ns, self.port = ns, port
        self.connection = None

    def connect(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        socket_in_namespace(self.ns, connection.connect)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection = connection

    def call(self, method, path, body=None, content_type="application/json"):
        if self.connection is None:
            self.connect()
        headers = {}
        if body is not None:
            if not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} → {response.status}: {data[:400]!r}")
        try:
            return json.loads(data) if data else {}
        except ValueError:
            return data

    def wait_loc_rib(self, n, timeout=120):
        """Until the speaker's Loc-RIB holds n prefixes (`herald_bgp_loc_rib_prefixes`): the
        batch API answers at COMMIT, and the speaker takes the routes over just after. The table
        is loaded when the speaker has it, as BIRD's is when its routes are in master4."""
        def full():
            for line in self.call("GET", "/metrics").decode().splitlines():
                if line.startswith("herald_bgp_loc_rib_prefixes "):
                    return float(line.split()[-1]) >= n
            return False
        wait_for(full, timeout, f"{n} prefixes in Herald's Loc-RIB", interval=0.01)


# MARK: - daemons

def prefixes(n, family):
    """N distinct host prefixes: 10.0.0.0/8 (/32) or fd00:bench::/96 (/128)."""
    if family == "ipv4":
        base = int(ipaddress.IPv4Address("10.0.0.0"))
        return [str(ipaddress.IPv4Address(base + i)) + "/32" for i in range(n)]
    base = int(ipaddress.IPv6Address("fd00:be:ce::"))
    return [str(ipaddress.IPv6Address(base + i)) + "/128" for i in range(n)]


def start_bird(lab, ns, name, config):
    directory = os.path.join(WORK, name)
    os.makedirs(directory, exist_ok=True)
    path, sock = os.path.join(directory, "bird.conf"), os.path.join(directory, "bird.ctl")
    with open(path, "w") as f:
        f.write(config)
    run([BIRD, "-p", "-c", path])
    process = lab.spawn(ns, [BIRD, "-f", "-c", path, "-s", sock, "-P", os.path.join(directory, "bird.pid")], f"{name}.log")
    wait_for(lambda: process.poll() is None and os.path.exists(sock) and
             "Daemon is up" in run([BIRDC, "-s", sock, "show", "status"], check=False).stdout, 30, f"{name} up")
    return process, sock


def birdc(sock, *args):
    return run([BIRDC, "-s", sock] + list(args), check=False).stdout


def bird_route_count(sock, family):
    # "1000000 of 1000000 routes for 1000000 networks in table master4"
    text = birdc(sock, "show", "route", "count", "table", "master4" if family == "ipv4" else "master6")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[1] == "of" and parts[0].isdigit():
            return int(parts[0])
    return 0


def bird_established(sock, protocol):
    for line in birdc(sock, "show", "protocols", protocol).splitlines():
        if line.startswith(protocol + " ") and "Established" in line:
            return True
    return False


def receiver_config(me, sender, family, protocol="sess"):
    return f"""log stderr {{ warning, error, fatal }};
router id {me['ipv4']};
protocol device {{ scan time 10; }}
protocol bgp {protocol} {{
  local {me[family]} as {PEER_ASN};
  neighbor {sender[family]} as {HERALD_ASN};
  passive on;
  hold time 90;
  graceful restart off;
  {family} {{ import all; export none; }};
}}
"""


# MARK: - senders
# Each sender: preload(lab, ns, me, peer, family, routes) → (pid, load seconds); enable() starts the session.

class HeraldSender:
    name = "herald"

    def __init__(self, binary):
        self.binary = binary

    def available(self):
        return None if os.access(self.binary, os.X_OK) else f"no herald binary at {self.binary}"

    def preload(self, lab, ns, me, peer, family, routes):
        db = os.path.join(WORK, f"herald-{Lab.counter}.db")
        self.process = lab.spawn(ns, [self.binary, "serve", "--db", db, "--api-listen", "127.0.0.1:8179",
                                      "--bgp-listen", f"{me['ipv4']}:179", "--asn", str(HERALD_ASN),
                                      "--router-id", me["ipv4"], "--log-level", "error"], "herald.log")
        self.api = API(ns, 8179)

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"herald exited ({self.process.returncode}); see {WORK}/herald.log")
            try:
                self.api.connection = None
                self.api.call("GET", "/healthz")
                return True
            except (OSError, RuntimeError):
                return False
        wait_for(healthy, 30, "herald healthz")
        body = "".join(f'{{"prefix":"{p}"}}\n' for p in routes).encode()
        start = time.monotonic()
        self.api.call("POST", "/v1/routes:batch", body, "application/x-ndjson")
        self.api.wait_loc_rib(len(routes))
        loaded = time.monotonic() - start
        self.me, self.peer, self.family = me, peer, family
        return self.process.pid, loaded

    def enable(self):
        family = self.family
        self.api.call("POST", "/v1/peers", {"name": "receiver", "address": self.peer[family], "asn": PEER_ASN,
                                            "local_address": self.me[family], "families": [f"{family}-unicast"]})


class BIRDSender:
    name = "bird"

    def available(self):
        return None if os.access(BIRD, os.X_OK) and os.access(BIRDC, os.X_OK) else f"missing {BIRD} or {BIRDC}"

    def preload(self, lab, ns, me, peer, family, routes):
        static = "".join(f"  route {p} blackhole;\n" for p in routes)
        config = f"""log stderr {{ warning, error, fatal }};
router id {me['ipv4']};
protocol device {{ scan time 10; }}
protocol static st {{
  {family};
{static}}}
protocol bgp sess {{
  disabled;
  local {me[family]} as {HERALD_ASN};
  neighbor {peer[family]} as {PEER_ASN};
  connect delay time 1;
  connect retry time 1;
  graceful restart off;
  {family} {{ import none; export all; }};
}}
"""
        start = time.monotonic()
        process, self.sock = start_bird(lab, ns, "bird-sender", config)
        wait_for(lambda: bird_route_count(self.sock, family) >= len(routes), 600, "BIRD sender's static routes", 0.05)
        return process.pid, time.monotonic() - start

    def enable(self):
        birdc(self.sock, "enable", "sess")


def mrt_table_dump_v2(routes, family, next_hop, router_id):
    """RFC 6396 TABLE_DUMP_V2: a PEER_INDEX_TABLE with one peer, then one RIB_IPV4_UNICAST or
    RIB_IPV6_UNICAST record per prefix with one entry: ORIGIN IGP, empty AS_PATH (the route is
    originated here) and the next hop (NEXT_HOP, or for IPv6 an MP_REACH_NLRI, §4.3.4)."""
    now = int(time.time())

    def record(subtype, body):
        return struct.pack("!IHHI", now, 13, subtype, len(body)) + body

    v6 = family == "ipv6"
    hop = ipaddress.ip_address(next_hop).packed
    peer = struct.pack("!B", 0x03 if v6 else 0x02) + ipaddress.IPv4Address(router_id).packed + hop + struct.pack("!I", HERALD_ASN)
    out = [record(1, ipaddress.IPv4Address(router_id).packed + struct.pack("!HH", 0, 1) + peer)]
    attrs = bytes([0x40, 1, 1, 0]) + bytes([0x40, 2, 0])
    if v6:
        mp = struct.pack("!HBB", 2, 1, 16) + hop + b"\x00"  # AFI, SAFI, next hop, reserved; no NLRI
        attrs += bytes([0x80, 14, len(mp)]) + mp
    else:
        attrs += bytes([0x40, 3, 4]) + hop
    entry_tail = struct.pack("!HIH", 0, now, len(attrs)) + attrs
    for seq, p in enumerate(routes):
        net = ipaddress.ip_network(p)
        length = net.prefixlen
        body = struct.pack("!IB", seq, length) + net.network_address.packed[:(length + 7) // 8] + struct.pack("!H", 1) + entry_tail
        out.append(record(4 if v6 else 2, body))
    return b"".join(out)


class GoBGPSender:
    name = "gobgp"

    def available(self):
        return None if os.access(GOBGPD, os.X_OK) and os.access(GOBGP, os.X_OK) else f"missing {GOBGPD} or {GOBGP}"

    def preload(self, lab, ns, me, peer, family, routes):
        directory = os.path.join(WORK, "gobgp-sender")
        os.makedirs(directory, exist_ok=True)
        # `gobgp mrt inject` (3.10) exits before gobgpd has taken the last part of its stream: the
        # table then lacks a tail of the file (84 of 1,000, 428 of 100,000 in our runs; a second
        # inject of a 65-route tail added none). So the file ends with a copy of the first routes
        # (identical paths for prefixes already in the table: no change), and what is still
        # missing afterwards is injected again the same way; the extra work counts as load time.
        pad = routes[:4096]
        mrt = os.path.join(directory, "table.mrt")
        with open(mrt, "wb") as f:
            f.write(mrt_table_dump_v2(routes + pad, family, me[family], me["ipv4"]))
        self.family = family
        config = os.path.join(directory, "gobgpd.toml")
        with open(config, "w") as f:
            f.write(gobgp_config(me, HERALD_ASN, [(peer[family], PEER_ASN, family, False, True)]))
        self.ns, self.peer = ns, peer[family]
        start = time.monotonic()
        process = lab.spawn(ns, [GOBGPD, "-f", config, "-t", "toml", "--api-hosts", "127.0.0.1:50051", "--pprof-disable",
                                 "-l", "warn"], "gobgp-sender.log")
        wait_for(lambda: run([GOBGP, "-u", "127.0.0.1", "-p", "50051", "global"], check=False, ns=ns).returncode == 0,
                 30, "gobgpd API")
        delivered = 0
        for attempt in range(30):
            run([GOBGP, "-u", "127.0.0.1", "-p", "50051", "mrt", "inject", "global", mrt], ns=ns, timeout=3600)
            count = self.settled_count()
            if count >= len(routes):
                break
            if attempt and count <= delivered:
                raise RuntimeError(f"gobgp mrt inject makes no progress: {count} of {len(routes)} routes")
            delivered = count
            mrt = os.path.join(directory, f"tail-{attempt}.mrt")
            with open(mrt, "wb") as f:
                f.write(mrt_table_dump_v2(routes[count:] + pad, family, me[family], me["ipv4"]))
        else:
            raise RuntimeError(f"gobgp mrt inject: {count} of {len(routes)} routes after 30 attempts")
        return process.pid, time.monotonic() - start

    def rib_count(self):
        text = run([GOBGP, "-u", "127.0.0.1", "-p", "50051", "global", "rib", "summary", "-a", self.family], ns=self.ns).stdout
        # "Destination: 99572, Path: 99572"
        for line in text.splitlines():
            if line.startswith("Destination:"):
                return int(line.split()[1].rstrip(","))
        return 0

    def settled_count(self):
        """The global RIB's size once it has stopped growing for 0.3 s."""
        last, since = -1, time.monotonic()
        while True:
            count = self.rib_count()
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since >= 0.3:
                return count
            time.sleep(0.05)

    def enable(self):
        run([GOBGP, "-u", "127.0.0.1", "-p", "50051", "neighbor", self.peer, "enable"], ns=self.ns)


def gobgp_config(me, asn, neighbors):
    """neighbors: (address, asn, family, passive, admin_down)"""
    lines = ["[global.config]", f"  as = {asn}",
             f"  router-id = \"{me['ipv4']}\"", "  port = 179",
             f"  local-address-list = [\"{me['ipv4']}\", \"{me['ipv6']}\"]"]
    for address, asn, family, passive, admin_down in neighbors:
        lines += ["", "[[neighbors]]", "  [neighbors.config]", f"    neighbor-address = \"{address}\"", f"    peer-as = {asn}"]
        if admin_down:
            lines.append("    admin-down = true")
        lines += ["  [neighbors.timers.config]", "    hold-time = 90", "    keepalive-interval = 30", "    connect-retry = 1",
                  "  [neighbors.transport.config]", f"    passive-mode = {'true' if passive else 'false'}",
                  f"    local-address = \"{me[family]}\"",
                  "  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                  f"      afi-safi-name = \"{family}-unicast\""]
    return "\n".join(lines) + "\n"


class FRRSender:
    name = "frr"

    def available(self):
        return None if os.access(FRR_BGPD, os.X_OK) and os.access(VTYSH, os.X_OK) else f"missing {FRR_BGPD} or {VTYSH}"

    def preload(self, lab, ns, me, peer, family, routes):
        directory = os.path.join(WORK, f"frr-sender-{Lab.counter}")
        os.makedirs(directory, exist_ok=True)
        p = peer[family]
        networks = "".join(f"  network {r}\n" for r in routes)
        config = f"""frr defaults traditional
hostname bench-sender
log stdout warnings
!
router bgp {HERALD_ASN}
 bgp router-id {me['ipv4']}
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 bgp graceful-restart-disable
 neighbor {p} remote-as {PEER_ASN}
 neighbor {p} timers connect 1
 neighbor {p} update-source {me[family]}
 neighbor {p} shutdown
 !
 address-family {family} unicast
{networks}  neighbor {p} activate
 exit-address-family
!
"""
        path = os.path.join(directory, "bgpd.conf")
        with open(path, "w") as f:
            f.write(config)
        self.directory, self.peer, self.family = directory, p, family
        start = time.monotonic()
        process = lab.spawn(ns, [FRR_BGPD, "-f", path, "-i", os.path.join(directory, "bgpd.pid"), "-Z", "-S",
                                 "--vty_socket", directory, "-A", "127.0.0.1", "-P", "0"], "frr-sender.log")

        def loaded():
            if process.poll() is not None:
                raise RuntimeError(f"bgpd exited; see {WORK}/frr-sender.log")
            text = run([VTYSH, "--vty_socket", directory, "-c", f"show bgp {family} unicast summary json"], check=False).stdout
            try:
                summary = json.loads(text)
            except ValueError:
                return False
            block = summary.get(f"{family}Unicast", summary)
            return block.get("ribCount", 0) >= len(routes)
        wait_for(loaded, 3600, "FRR's network statements", 0.1)
        return process.pid, time.monotonic() - start

    def enable(self):
        run([VTYSH, "--vty_socket", self.directory, "-c", "configure terminal", "-c", f"router bgp {HERALD_ASN}",
             "-c", f"no neighbor {self.peer} shutdown"])


# MARK: - convergence

def convergence_once(sender, n, family, routes):
    lab = Lab()
    LABS.append(lab)
    try:
        s_ns, r_ns = lab.namespace(), lab.namespace()
        me, peer = lab.link(s_ns, r_ns, 0)
        config = receiver_config(peer, me, family).replace("protocol device", "timeformat protocol iso long ms;\nprotocol device")
        _, sock = start_bird(lab, r_ns, f"receiver-{Lab.counter}", config)
        pid, load = sender.preload(lab, s_ns, me, peer, family, routes)
        cpu_before = cpu_seconds(pid)
        offset = time.time() - time.monotonic()
        enabled = time.monotonic()
        sender.enable()
        wait_for(lambda: bird_established(sock, "sess"), 120, "Established", 0.005)
        # The moment comes from BIRD's own protocol timestamp: a `birdc` poll waits while BIRD is
        # busy importing, so the poll that sees Established can come late, most with a fast sender.
        established = bird_since(sock, "sess") - offset
        complete = wait_for(lambda: bird_route_count(sock, family) >= n and time.monotonic(), 1800, f"{n} routes at the receiver", 0.02)
        result = {"sender": sender.name, "n": n, "family": family, "load_s": load,
                  "enable_to_established_s": established - enabled, "converge_s": complete - established,
                  "cpu_session_s": cpu_seconds(pid) - cpu_before, "cpu_total_s": cpu_seconds(pid),
                  "rss_peak_mib": memory_mib(pid, "VmHWM"), "rss_mib": memory_mib(pid, "VmRSS"), "loadavg": loadavg()}
        log(f"  {sender.name:6} N={n:<8} load {load:7.2f} s  Established→complete {result['converge_s']:7.3f} s  "
            f"CPU {result['cpu_session_s']:6.2f} s (total {result['cpu_total_s']:.2f})  peak RSS {result['rss_peak_mib']:7.1f} MiB  "
            f"load avg {result['loadavg']}")
        return result
    finally:
        lab.close()
        LABS.remove(lab)


def median_of(results, key):
    return statistics.median(r[key] for r in results)


def convergence(args):
    senders = {"herald": HeraldSender(args.herald), "bird": BIRDSender(), "gobgp": GoBGPSender(), "frr": FRRSender()}
    chosen = []
    for name in args.senders.split(","):
        sender = senders[name]
        reason = sender.available()
        if reason:
            print(f"skipping sender {name}: {reason}")
        else:
            chosen.append(sender)
    rows = {}
    for n in args.n:
        routes = prefixes(n, args.family)
        for sender in chosen:
            if sender.name == "frr" and n > args.frr_max:
                print(f"skipping FRR at N={n} (--frr-max {args.frr_max})")
                continue
            log(f"{sender.name} → BIRD, {n} {args.family} prefixes, {args.runs} runs (uptime: {run(['uptime']).stdout.strip()})")
            results = [convergence_once(sender, n, args.family, routes) for _ in range(args.runs)]
            rows[(sender.name, n)] = {key: median_of(results, key) for key in
                                      ["load_s", "converge_s", "cpu_session_s", "cpu_total_s", "rss_peak_mib", "rss_mib"]}
            rows[(sender.name, n)]["loadavg"] = results[-1]["loadavg"]
            rows[(sender.name, n)]["runs"] = results
    print(f"\n### {args.family}: sender → BIRD 2 receiver, one eBGP session over a veth pair, median of {args.runs}\n")
    print("| sender | N | load into sender | Established → complete at receiver | sender CPU (session) | sender CPU (total) "
          "| sender RSS when complete (peak) | load avg (1/5/15 min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for (name, n), row in rows.items():
        print(f"| {name} | {n:,} | {row['load_s']:.2f} s | {row['converge_s']:.3f} s | {row['cpu_session_s']:.2f} s "
              f"| {row['cpu_total_s']:.2f} s | {row['rss_mib']:.0f} MiB ({row['rss_peak_mib']:.0f}) | {row['loadavg']} |")
    if any(name == "herald" for name, _ in rows):
        print("\nHerald ÷ alternative (below 1 means Herald is faster / smaller):\n")
        print("| vs | N | Established → complete | load | CPU (session) | peak RSS |")
        print("|---|---:|---:|---:|---:|---:|")
        for (name, n), row in rows.items():
            herald = rows.get(("herald", n))
            if name == "herald" or herald is None:
                continue
            ratio = lambda key: f"{herald[key] / row[key]:.3g}" if row[key] > 0 else "–"
            print(f"| {name} | {n:,} | {ratio('converge_s')} | {ratio('load_s')} | {ratio('cpu_session_s')} | {ratio('rss_peak_mib')} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"sender": k[0], "n": k[1], **v} for k, v in rows.items()], f, indent=1)
    print(f"\n(uptime at the end: {run(['uptime']).stdout.strip()})")


# MARK: - announce latency

class RibMonitor:
    """`gobgp monitor global rib -j` on the receiver: one JSON array of paths per line, a
    withdrawal carrying "withdrawal": true. Records when each (prefix, announce|withdraw) was
    first seen, on this process's monotonic clock."""

    def __init__(self, lab, ns):
        self.seen, self.cond = {}, threading.Condition()
        self.process = subprocess.Popen(["ip", "netns", "exec", ns, GOBGP, "-u", "127.0.0.1", "-p", "50051",
                                         "monitor", "global", "rib", "-j"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lab.processes.append(self.process)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            now = time.monotonic()
            try:
                paths = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                for path in paths if isinstance(paths, list) else [paths]:
                    key = (path.get("nlri", {}).get("prefix"), "withdraw" if path.get("withdrawal") else "announce")
                    self.seen.setdefault(key, now)
                self.cond.notify_all()

    def wait(self, prefix, kind, timeout=10):
        with self.cond:
            if not self.cond.wait_for(lambda: (prefix, kind) in self.seen, timeout):
                raise RuntimeError(f"the receiver never saw {kind} {prefix}")
            return self.seen[(prefix, kind)]


def start_gobgpd(lab, ns, name, config):
    path = os.path.join(WORK, f"{name}.toml")
    with open(path, "w") as f:
        f.write(config)
    process = lab.spawn(ns, [GOBGPD, "-f", path, "-t", "toml", "--api-hosts", "127.0.0.1:50051", "--pprof-disable", "-l", "warn"],
                        f"{name}.log")
    wait_for(lambda: run([GOBGP, "-u", "127.0.0.1", "-p", "50051", "global"], check=False, ns=ns).returncode == 0, 30, f"{name} API")
    return process


def gobgp_established(ns, neighbor):
    text = run([GOBGP, "-u", "127.0.0.1", "-p", "50051", "neighbor", "-j"], check=False, ns=ns).stdout
    try:
        peers = json.loads(text)
    except ValueError:
        return False
    return any(p.get("state", {}).get("session_state") in (6, "ESTABLISHED", "established") for p in peers or [])


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def latency_series(name, count, announce, withdraw, monitor):
    """count × (announce prefix → seen, withdraw → seen); returns the two lists of milliseconds."""
    up, down, returned = [], [], []
    for i in range(count):
        prefix = f"10.1.{(i + 1) // 256}.{(i + 1) % 256}/32"
        start = time.monotonic()
        announce(i, prefix)
        returned.append((time.monotonic() - start) * 1000)
        up.append((monitor.wait(prefix, "announce") - start) * 1000)
        start = time.monotonic()
        withdraw(i, prefix)
        returned.append((time.monotonic() - start) * 1000)
        down.append((monitor.wait(prefix, "withdraw") - start) * 1000)
    log(f"  {name}: announce p50 {statistics.median(up):.2f} ms p99 {percentile(up, 99):.2f} ms; "
        f"withdraw p50 {statistics.median(down):.2f} ms p99 {percentile(down, 99):.2f} ms; "
        f"command returned p50 {statistics.median(returned):.2f} ms p99 {percentile(returned, 99):.2f} ms (load avg {loadavg()})")
    return up, down, returned


def latency(args):
    results = {}
    for sender in args.senders.split(","):
        if sender == "herald" and not os.access(args.herald, os.X_OK):
            print(f"skipping herald: no binary at {args.herald}")
            continue
        if not (os.access(GOBGPD, os.X_OK) and os.access(GOBGP, os.X_OK)):
            sys.exit(f"needs GoBGP ({GOBGPD}, {GOBGP}) for the receiver")
        lab = Lab()
        LABS.append(lab)
        try:
            s_ns, r_ns = lab.namespace(), lab.namespace()
            me, peer = lab.link(s_ns, r_ns, 0)
            start_gobgpd(lab, r_ns, "receiver", gobgp_config(peer, PEER_ASN, [(me["ipv4"], HERALD_ASN, "ipv4", True, False)]))
            monitor = RibMonitor(lab, r_ns)
            if sender == "herald":
                db = os.path.join(WORK, "latency.db")
                process = lab.spawn(s_ns, [args.herald, "serve", "--db", db, "--api-listen", "127.0.0.1:8179",
                                           "--bgp-listen", f"{me['ipv4']}:179", "--asn", str(HERALD_ASN),
                                           "--router-id", me["ipv4"], "--log-level", "error"], "herald-latency.log")
                api = API(s_ns, 8179)

                def healthy():
                    if process.poll() is not None:
                        raise RuntimeError("herald exited")
                    try:
                        api.connection = None
                        api.call("GET", "/healthz")
                        return True
                    except (OSError, RuntimeError):
                        return False
                wait_for(healthy, 30, "herald healthz")
                api.call("PUT", "/v1/pools/lat", {"blocks": ["10.1.0.0/16", "10.2.0.0/16"]})
                api.call("POST", "/v1/peers", {"name": "receiver", "address": peer["ipv4"], "asn": PEER_ASN,
                                               "local_address": me["ipv4"]})
                wait_for(lambda: gobgp_established(r_ns, me["ipv4"]), 60, "Herald → GoBGP Established", 0.05)
                time.sleep(0.5)
                if args.via == "allocation":
                    announce = lambda i, p: api.call("PUT", f"/v1/allocations/lat-{i}", {"pool": "lat", "address": p.split("/")[0]})
                    withdraw = lambda i, p: api.call("DELETE", f"/v1/allocations/lat-{i}")
                else:
                    announce = lambda i, p: api.call("PUT", f"/v1/routes/lat-{i}", {"prefix": p})
                    withdraw = lambda i, p: api.call("DELETE", f"/v1/routes/lat-{i}")
                label = f"herald (API: {'PUT/DELETE /v1/allocations' if args.via == 'allocation' else 'PUT/DELETE /v1/routes'})"
            else:
                start_gobgpd(lab, s_ns, "sender", gobgp_config(me, HERALD_ASN, [(peer["ipv4"], PEER_ASN, "ipv4", False, False)]))
                wait_for(lambda: gobgp_established(r_ns, me["ipv4"]), 120, "GoBGP → GoBGP Established", 0.05)
                time.sleep(0.5)
                cli = ["ip", "netns", "exec", s_ns, GOBGP, "-u", "127.0.0.1", "-p", "50051", "global", "rib"]
                announce = lambda i, p: subprocess.run(cli + ["add", p, "nexthop", me["ipv4"], "origin", "igp"], check=True)
                withdraw = lambda i, p: subprocess.run(cli + ["del", p], check=True)
                label = "gobgp (CLI: gobgp global rib add/del, through ip netns exec)"
            for i in range(5):  # warm-up, not counted
                p = f"10.2.0.{i + 1}/32"
                announce(100000 + i, p)
                monitor.wait(p, "announce")
                withdraw(100000 + i, p)
                monitor.wait(p, "withdraw")
            results[label] = latency_series(sender, args.count, announce, withdraw, monitor) + (loadavg(),)
        finally:
            lab.close()
            LABS.remove(lab)
    # What `ip netns exec` alone costs, which the GoBGP CLI figures include.
    lab = Lab()
    LABS.append(lab)
    try:
        ns = lab.namespace()
        samples = []
        for _ in range(50):
            start = time.monotonic()
            subprocess.run(["ip", "netns", "exec", ns, "true"], check=True)
            samples.append((time.monotonic() - start) * 1000)
    finally:
        lab.close()
        LABS.remove(lab)
    print(f"\n### Single-route latency, command → seen by a GoBGP receiver (`gobgp monitor global rib -j`), {args.count} each\n")
    print("| sender (command) | announce p50 | announce p99 | withdraw p50 | withdraw p99 | command returned p50 / p99 "
          "| load avg (1/5/15 min) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, (up, down, returned, load) in results.items():
        print(f"| {label} | {statistics.median(up):.2f} ms | {percentile(up, 99):.2f} ms | {statistics.median(down):.2f} ms "
              f"| {percentile(down, 99):.2f} ms | {statistics.median(returned):.2f} / {percentile(returned, 99):.2f} ms | {load} |")
    print(f"\n`ip netns exec NS true` alone: p50 {statistics.median(samples):.2f} ms, p99 {percentile(samples, 99):.2f} ms "
          "(included in the GoBGP CLI figures; the Herald figures are one HTTP request on a kept-alive connection).")
    print(f"(uptime at the end: {run(['uptime']).stdout.strip()})")


# MARK: - fan-out

def bird_since(sock, protocol):
    """Wall-clock time (seconds since the epoch) of the protocol's last state change, from
    `show protocols` with `timeformat protocol iso long ms` ("2026-11-27 01:40:00.123")."""
    for line in birdc(sock, "show", "protocols", protocol).splitlines():
        parts = line.split()
        if parts and parts[0] == protocol and len(parts) >= 6:
            stamp = time.strptime(f"{parts[4]} {parts[5].split('.')[0]}", "%Y-%m-%d %H:%M:%S")
            return calendar.timegm(stamp) + float("0." + parts[5].split(".")[1])
    raise RuntimeError(f"no protocol {protocol} in BIRD's show protocols")


def fanout_once(args, peers, routes):
    lab = Lab()
    LABS.append(lab)
    try:
        h_ns = lab.namespace()
        links = []
        for k in range(peers):
            r_ns = lab.namespace()
            me, peer = lab.link(h_ns, r_ns, k)
            config = receiver_config(peer, me, "ipv4").replace("protocol device", "timeformat protocol iso long ms;\nprotocol device")
            _, sock = start_bird(lab, r_ns, f"receiver-{peers}-{k}", config)
            links.append((me, peer, sock))
        first = links[0][0]
        db = os.path.join(WORK, f"fanout-{peers}.db")
        process = lab.spawn(h_ns, [args.herald, "serve", "--db", db, "--api-listen", "127.0.0.1:8179",
                                   "--bgp-listen", f"{first['ipv4']}:179", "--asn", str(HERALD_ASN),
                                   "--router-id", first["ipv4"], "--log-level", "error"], f"herald-fanout-{peers}.log")
        api = API(h_ns, 8179)

        def healthy():
            if process.poll() is not None:
                raise RuntimeError("herald exited")
            try:
                api.connection = None
                api.call("GET", "/healthz")
                return True
            except (OSError, RuntimeError):
                return False
        wait_for(healthy, 30, "herald healthz")
        body = "".join(f'{{"prefix":"{p}"}}\n' for p in routes).encode()
        api.call("POST", "/v1/routes:batch", body, "application/x-ndjson")
        api.wait_loc_rib(len(routes))
        rss_loaded = memory_mib(process.pid, "VmRSS")
        cpu_before = cpu_seconds(process.pid)
        offset = time.time() - time.monotonic()
        start = time.monotonic()
        for k, (me, peer, _) in enumerate(links):
            api.call("POST", "/v1/peers", {"name": f"r{k}", "address": peer["ipv4"], "asn": PEER_ASN, "local_address": me["ipv4"]})
        done = {}
        deadline = start + 1800
        while len(done) < peers and time.monotonic() < deadline:
            for k, (_, _, sock) in enumerate(links):
                if k not in done and bird_route_count(sock, "ipv4") >= len(routes):
                    done[k] = time.monotonic()
            time.sleep(0.01)
        if len(done) < peers:
            raise RuntimeError(f"only {len(done)} of {peers} receivers complete after 1800 s")
        per_peer = [done[k] - (bird_since(sock, "sess") - offset) for k, (_, _, sock) in enumerate(links)]
        result = {"peers": peers, "all_complete_s": max(done.values()) - start, "max_est_to_complete_s": max(per_peer),
                  "median_est_to_complete_s": statistics.median(per_peer),
                  "rss_loaded_mib": rss_loaded, "rss_mib": memory_mib(process.pid, "VmRSS"),
                  "rss_peak_mib": memory_mib(process.pid, "VmHWM"), "cpu_session_s": cpu_seconds(process.pid) - cpu_before,
                  "loadavg": loadavg()}
        log(f"  {peers:2} peers: all complete {result['all_complete_s']:.2f} s after the peers were created; "
            f"Established→complete median {result['median_est_to_complete_s']:.2f} s, max {result['max_est_to_complete_s']:.2f} s; "
            f"Herald RSS {rss_loaded:.0f} → {result['rss_mib']:.0f} MiB (peak {result['rss_peak_mib']:.0f}); "
            f"CPU {result['cpu_session_s']:.2f} s; load avg {result['loadavg']}")
        return result
    finally:
        lab.close()
        LABS.remove(lab)


def fanout(args):
    if not os.access(args.herald, os.X_OK):
        sys.exit(f"no herald binary at {args.herald}")
    if not (os.access(BIRD, os.X_OK) and os.access(BIRDC, os.X_OK)):
        sys.exit(f"needs BIRD ({BIRD}, {BIRDC}) for the receivers")
    routes = prefixes(args.prefixes, "ipv4")
    rows = []
    for peers in [int(p) for p in args.peers.split(",")]:
        log(f"Herald → {peers} BIRD receivers, {args.prefixes} prefixes, {args.runs} run(s) (uptime: {run(['uptime']).stdout.strip()})")
        results = [fanout_once(args, peers, routes) for _ in range(args.runs)]
        row = {key: median_of(results, key) for key in results[0] if key not in ("peers", "loadavg")}
        row["peers"], row["loadavg"] = peers, results[-1]["loadavg"]
        rows.append(row)
    print(f"\n### Fan-out: {args.prefixes:,} IPv4 prefixes from one Herald to K BIRD receivers at once "
          f"(one namespace and veth pair each), median of {args.runs}\n")
    print("| peers | peers created → complete at every peer | Established → complete (median / max peer) "
          "| Herald RSS with the table loaded | Herald RSS after | extra RSS per peer | Herald CPU (sessions) | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        extra = (row["rss_mib"] - row["rss_loaded_mib"]) / row["peers"]
        print(f"| {row['peers']} | {row['all_complete_s']:.2f} s | {row['median_est_to_complete_s']:.2f} / {row['max_est_to_complete_s']:.2f} s "
              f"| {row['rss_loaded_mib']:.0f} MiB | {row['rss_mib']:.0f} MiB | {extra:.1f} MiB | {row['cpu_session_s']:.2f} s | {row['loadavg']} |")
    print(f"\n(uptime at the end: {run(['uptime']).stdout.strip()})")


# MARK: - main

def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convergence")
    c.add_argument("--herald", required=True)
    c.add_argument("--runs", type=int, default=3)
    c.add_argument("--senders", default="herald,bird,gobgp,frr")
    c.add_argument("--family", choices=["ipv4", "ipv6"], default="ipv4")
    c.add_argument("--frr-max", type=int, default=1_000_000)
    c.add_argument("--json")
    c.add_argument("n", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    l = sub.add_parser("latency")
    l.add_argument("--herald", required=True)
    l.add_argument("--count", type=int, default=200)
    l.add_argument("--senders", default="herald,gobgp")
    l.add_argument("--via", choices=["allocation", "route"], default="allocation")
    f = sub.add_parser("fanout")
    f.add_argument("--herald", required=True)
    f.add_argument("--prefixes", type=int, default=100_000)
    f.add_argument("--peers", default="1,4,16")
    f.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates network namespaces")
    os.makedirs(WORK, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        {"convergence": convergence, "latency": latency, "fanout": fanout}[args.command](args)
    finally:
        cleanup_all()


if __name__ == "__main__":
    main()
