#!/usr/bin/env bash
# Soak: a running `herald serve` under steady churn, watched for leaks.
#
# Clients PUT and DELETE allocations, list them, scrape /metrics and open and drop event streams;
# a scripted BGP peer on loopback connects, takes the table to End-of-RIB, follows updates for a
# few seconds and disconnects (FIN or RST), over and over. After a warm-up (a fifth of the run)
# the server's RSS and open descriptors are sampled; at the end, with the churn stopped, both must
# be within the tolerance of the warm-up values, no request may have got a 5xx or no answer, a
# last BGP session must receive exactly the derived table, and PRAGMA integrity_check must say
# ok. Exit 0 when all of that holds.
#
#   scripts/reliability/soak.sh [--duration SECONDS] [--short] [--clients N] [--tolerance PERCENT] [--herald PATH]
#
# Default: 600 s. --short: 90 s. Loopback only (127.0.0.1 and 127.0.0.2); no root needed.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=600 clients=8 tolerance=10 herald=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --short) duration=90; shift ;;
        --clients) clients="$2"; shift 2 ;;
        --tolerance) tolerance="$2"; shift 2 ;;
        --herald) herald="$2"; shift 2 ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 64 ;;
    esac
done
if [ -z "$herald" ]; then
    swift build --product herald >&2
    herald="$(swift build --show-bin-path)/herald"
fi

exec python3 - "$herald" "$duration" "$clients" "$tolerance" <<'PYTHON'
import json, os, random, shutil, socket, sqlite3, struct, subprocess, sys, tempfile, threading, time
import urllib.parse, urllib.request, urllib.error

herald_path, duration, client_count, tolerance = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
workdir = tempfile.mkdtemp(prefix="herald-soak-")
db = os.path.join(workdir, "herald.db")
# Below the ephemeral range, so no client socket can take these ports.
api_port = random.randint(20000, 24999)
bgp_port = random.randint(25000, 29999)
base = f"http://127.0.0.1:{api_port}"
log = open(os.path.join(workdir, "serve.log"), "ab")
herald = subprocess.Popen([herald_path, "serve", "--db", db, "--api-listen", f"127.0.0.1:{api_port}",
                           "--bgp-listen", f"127.0.0.1:{bgp_port}", "--asn", "65020", "--router-id", "192.0.2.1",
                           "--log-level", "warning"], stdout=log, stderr=log)


def call(method, path, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except Exception:
        return None, b""


def all_allocations():
    """Every allocation the API lists, following next_cursor through the pages (a single GET
    gives only the first page, 1,000 by default)."""
    allocations, cursor = [], None
    while True:
        path = "/v1/allocations?limit=10000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, body = call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        page = json.loads(body)
        allocations += page["allocations"]
        cursor = page.get("next_cursor")
        if not cursor:
            return allocations


def sample():
    with open(f"/proc/{herald.pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{herald.pid}/fd"))


deadline = time.time() + 30
while call("GET", "/healthz")[0] != 200:
    if herald.poll() is not None or time.time() > deadline:
        sys.exit(f"FAIL herald did not start; see {workdir}/serve.log")
    time.sleep(0.05)
assert call("PUT", "/v1/pools/lb", {"blocks": ["10.0.0.0/16"]})[0] == 201
assert call("POST", "/v1/peers", {"name": "soak", "address": "127.0.0.2", "asn": 65099, "passive": True})[0] == 201


# --- a scripted BGP peer (RFC 4271 messages, 4-octet AS, IPv4 unicast) --------------------------
def message(kind, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body


def open_message():
    capabilities = bytes([1, 4, 0, 1, 0, 1]) + bytes([65, 4]) + struct.pack("!I", 65099)
    parameters = bytes([2, len(capabilities)]) + capabilities
    return message(1, struct.pack("!BHH4sB", 4, 65099, 30, socket.inet_aton("192.0.2.99"), len(parameters)) + parameters)


def nlri(data):
    out, i = [], 0
    while i < len(data):
        length = data[i]
        size = (length + 7) // 8
        out.append(socket.inet_ntoa(data[i + 1:i + 1 + size] + b"\0" * (4 - size)) + f"/{length}")
        i += 1 + size
    return out


def bgp_session(follow_seconds, reset):
    """Connects, reads to End-of-RIB, follows updates for `follow_seconds`, then closes (RST if
    `reset`). Returns the table held at the end."""
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.settimeout(1)
    s.connect(("127.0.0.1", bgp_port))
    s.sendall(open_message() + message(4, b""))
    table, buffer, until, started, last_keepalive = set(), b"", None, time.time(), time.time()
    try:
        while until is None or time.time() < until:
            if until is None and time.time() - started > 30:
                raise RuntimeError("no End-of-RIB within 30 s")
            if time.time() - last_keepalive > 5:
                s.sendall(message(4, b""))
                last_keepalive = time.time()
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise RuntimeError("Herald closed the session")
            buffer += chunk
            while len(buffer) >= 19:
                length, kind = struct.unpack("!HB", buffer[16:19])
                if len(buffer) < length:
                    break
                body, buffer = buffer[19:length], buffer[length:]
                if kind == 2:  # UPDATE
                    withdrawn_length = struct.unpack("!H", body[:2])[0]
                    table.difference_update(nlri(body[2:2 + withdrawn_length]))
                    attributes_length = struct.unpack("!H", body[2 + withdrawn_length:4 + withdrawn_length])[0]
                    table.update(nlri(body[4 + withdrawn_length + attributes_length:]))
                    if withdrawn_length == 0 and attributes_length == 0 and until is None:
                        until = time.time() + follow_seconds  # End-of-RIB (RFC 4724 §2)
                elif kind == 3:  # NOTIFICATION
                    raise RuntimeError(f"Herald sent NOTIFICATION {body[0]}/{body[1]}")
        return table
    finally:
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


stop = threading.Event()
lock = threading.Lock()
counts = {"requests": 0, "bad": 0, "sessions": 0, "session_errors": 0}
bad_examples = []


def record(status, what):
    with lock:
        counts["requests"] += 1
        if status is None or status >= 500:
            counts["bad"] += 1
            if len(bad_examples) < 10:
                bad_examples.append(f"{what}: {status}")


def client(index):
    rng = random.Random(index)
    names = [f"c{index}-{k}" for k in range(20)]
    while not stop.is_set():
        name = rng.choice(names)
        roll = rng.random()
        if roll < 0.45:
            status, _ = call("PUT", f"/v1/allocations/{name}", {"pool": "lb", "labels": {"round": str(rng.randint(0, 9))}})
            record(status, f"PUT {name}")
        elif roll < 0.8:
            status, _ = call("DELETE", f"/v1/allocations/{name}")
            record(status, f"DELETE {name}")
        elif roll < 0.9:
            status, _ = call("GET", "/v1/allocations")
            record(status, "GET /v1/allocations")
        elif roll < 0.95:
            status, _ = call("GET", "/metrics")
            record(status, "GET /metrics")
        else:
            # An event stream, dropped after a moment without reading to its end.
            try:
                with urllib.request.urlopen(base + "/v1/events", timeout=5) as response:
                    response.read1(256) if hasattr(response, "read1") else response.read(1)
                    record(response.status, "GET /v1/events")
            except Exception as error:
                record(None, f"GET /v1/events ({error})")


def flapper():
    rng = random.Random(99)
    while not stop.is_set():
        try:
            bgp_session(rng.uniform(1, 4), reset=rng.random() < 0.5)
            with lock:
                counts["sessions"] += 1
        except Exception as error:
            with lock:
                counts["session_errors"] += 1
                if len(bad_examples) < 10:
                    bad_examples.append(f"BGP session: {error}")
        time.sleep(rng.uniform(0.2, 1.0))


threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(client_count)]
threads.append(threading.Thread(target=flapper, daemon=True))
for thread in threads:
    thread.start()

started = time.time()
warmup = max(30.0, duration / 5)  # past the event replay ring filling up (10,000 events)
baseline = None
rss = fds = None
samples = []
while time.time() - started < duration:
    time.sleep(min(5.0, duration / 20))
    if herald.poll() is not None:
        break
    rss, fds = sample()
    samples.append((time.time() - started, rss, fds))
    if baseline is None and time.time() - started >= warmup:
        baseline = (rss, fds)
    print(f"t={time.time() - started:6.0f}s rss={rss} KiB fds={fds} requests={counts['requests']} sessions={counts['sessions']}", flush=True)
stop.set()
for thread in threads:
    thread.join(timeout=40)

failures = []
if herald.poll() is not None:
    failures.append(f"herald exited with {herald.returncode} during the soak")
else:
    # Quiet: in-flight connections close (the clients send Connection: close).
    time.sleep(3)
    rss, fds = sample()
    if baseline is None:
        failures.append("the run was too short for a baseline")
    else:
        if rss > baseline[0] * (1 + tolerance / 100):
            failures.append(f"RSS {rss} KiB is more than {tolerance}% above the warm-up value {baseline[0]} KiB")
        if fds > baseline[1] * (1 + tolerance / 100) + 1:
            failures.append(f"{fds} open descriptors, more than {tolerance}% above the warm-up value {baseline[1]}")
    # The last word: a fresh session gets exactly the derived table.
    try:
        derived = {address + "/32" for allocation in all_allocations() for address in allocation["addresses"]}
        table = bgp_session(1.0, reset=False)
        if table != derived:
            failures.append(f"BGP table differs from the derived set: {len(table)} vs {len(derived)} prefixes, "
                            f"missing {sorted(derived - table)[:5]}, extra {sorted(table - derived)[:5]}")
    except Exception as error:
        failures.append(f"final check (derived table, BGP session): {error}")
    herald.terminate()
    herald.wait(timeout=20)
    if herald.returncode != 0:
        failures.append(f"herald exited {herald.returncode} on SIGTERM")
if counts["bad"]:
    failures.append(f"{counts['bad']} requests got a 5xx or no answer, e.g. {bad_examples[:5]}")
if counts["session_errors"]:
    failures.append(f"{counts['session_errors']} BGP sessions failed, e.g. {[b for b in bad_examples if b.startswith('BGP')][:3]}")
connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
connection.close()
if integrity != "ok":
    failures.append(f"integrity_check: {integrity}")

print(f"soak {duration:.0f}s: {counts['requests']} requests, {counts['sessions']} BGP sessions; "
      f"warm-up rss={baseline[0] if baseline else '?'} KiB fds={baseline[1] if baseline else '?'}; "
      f"end rss={rss if herald.returncode == 0 else '?'} KiB fds={fds if herald.returncode == 0 else '?'}")
for failure in failures:
    print("FAIL", failure)
if failures:
    print(f"kept {workdir} (database and log)")
    sys.exit(1)
shutil.rmtree(workdir, ignore_errors=True)
print("PASS")
PYTHON
