#!/usr/bin/env python3
"""Crash durability: 16 clients PUT and DELETE allocations and static routes against a running
`herald serve` while it is killed with SIGKILL at random moments and restarted on the same database.

After every restart, and at the end:
  - every request that got a 2xx is reflected in the database (per name, the state the last
    acknowledged request left, unless a later request went unanswered: then either state);
  - nothing unanswered is half-applied (an allocation exists with its address, or not at all);
  - no address is held by two allocations; PRAGMA integrity_check says ok.
With --bird, a BIRD on loopback (127.0.0.2, graceful restart helper, no kernel protocol, so no
forwarding table is touched) peers with Herald throughout; after the last restart, once the
clients stop, BIRD must hold exactly the derived table (every allocation's address, nothing else).
Exit status 0 when every check passed.

  scripts/reliability/crash-durability.py PATH/TO/herald [--kills 20] [--clients 16] [--bird]
"""
import argparse, atexit, json, os, random, shutil, signal, sqlite3, subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request, urllib.error


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("herald")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--names", type=int, default=12, help="names per client")
    parser.add_argument("--bird", action="store_true", help="check a GR-helper BIRD's table at the end")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="herald-crash-")
    db = os.path.join(workdir, "herald.db")
    # Below the kernel's ephemeral range (32768-60999 by default): while Herald is down, a client's
    # connect() could otherwise get Herald's own port as its source port and connect to itself
    # (TCP simultaneous open), leaving the port taken when Herald restarts.
    port = random.randint(20000, 24999)
    bgp_port = random.randint(25000, 27499)
    bird_port = random.randint(27500, 29999)
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(workdir, "serve.log"), "ab")

    def start():
        process = subprocess.Popen([args.herald, "serve", "--db", db, "--api-listen", f"127.0.0.1:{port}",
                                    "--bgp-listen", f"127.0.0.1:{bgp_port}", "--asn", "65020", "--router-id", "192.0.2.1",
                                    "--log-level", "warning"], stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                return process
            except Exception:
                if process.poll() is not None:
                    sys.exit(f"herald exited during start-up with {process.returncode}; see {workdir}/serve.log")
                time.sleep(0.02)
        sys.exit("herald did not start")

    def call(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except Exception:
            return None, b""  # no answer: the outcome is unknown

    def all_allocations():
        """Every allocation the API lists, following next_cursor through the pages (a single GET
        gives only the first page, 1,000 by default)."""
        allocations, cursor = [], None
        while True:
            path = "/v1/allocations?limit=10000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            status, body = call("GET", path)
            if status != 200:
                raise SystemExit(f"GET {path} answered {status}: {body[:200]!r}")
            page = json.loads(body)
            allocations += page["allocations"]
            cursor = page.get("next_cursor")
            if not cursor:
                return allocations

    bird = None
    if args.bird:
        birdc_socket = os.path.join(workdir, "bird.ctl")
        with open(os.path.join(workdir, "bird.conf"), "w") as conf:
            conf.write(f"""router id 192.0.2.2;
log "{workdir}/bird.log" all;
protocol device {{ }}
protocol bgp herald {{
  local 127.0.0.2 port {bird_port} as 65010;
  neighbor 127.0.0.1 as 65020;
  passive on;
  multihop 2;
  strict bind on;
  graceful restart on;
  hold time 9;
  ipv4 {{ import all; export none; }};
}}
""")
        # /usr/sbin may be missing from PATH (the test runner passes a minimal one).
        bird_binary = shutil.which("bird") or "/usr/sbin/bird"
        birdc_binary = shutil.which("birdc") or "/usr/sbin/birdc"
        # An empty signal mask: a test runner may start this script with SIGTERM blocked, and
        # the mask survives exec.
        bird = subprocess.Popen([bird_binary, "-f", "-c", os.path.join(workdir, "bird.conf"), "-s", birdc_socket],
                                stdout=log, stderr=log, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, set()))

        def bird_table():
            out = subprocess.run([birdc_binary, "-s", birdc_socket, "show", "route", "protocol", "herald"],
                                 capture_output=True, text=True, timeout=10).stdout
            return {line.split()[0] for line in out.splitlines() if line[:1].isdigit() and "/" in line.split()[0]}

    herald = start()
    # Whatever happens below (an exception included), leave no daemon of ours running.
    atexit.register(lambda: [p.kill() for p in (herald, bird) if p is not None and p.poll() is None])
    status, _ = call("PUT", "/v1/pools/lb", {"blocks": ["10.0.0.0/16"]})
    assert status in (200, 201), status
    if bird:
        status, body = call("POST", "/v1/peers", {"name": "bird", "address": "127.0.0.2", "port": bird_port, "asn": 65010})
        assert status == 201, (status, body)

    lock = threading.Lock()
    # Per name: the state after the last acknowledged request, and whether a request after it is in
    # flight or went unanswered (then the database may hold either state, but never half of one).
    acked = {}       # name -> ("present", address) | ("absent", None)
    uncertain = {}   # name -> True when a request after the last ack got no answer
    stop = threading.Event()
    counts = {"acked": 0, "unanswered": 0, "refused": 0}

    def client(index):
        rng = random.Random(index)
        names = [f"c{index}-a{k}" for k in range(args.names)]
        while not stop.is_set():
            name = rng.choice(names)
            # In flight: until an answer comes, the name may be in either state.
            with lock:
                was_uncertain = uncertain.get(name, False)
                uncertain[name] = True
            if rng.random() < 0.7:
                status, body = call("PUT", f"/v1/allocations/{name}", {"pool": "lb"})
                outcome = ("present", json.loads(body)["addresses"][0]) if status in (200, 201) else None
            else:
                status, body = call("DELETE", f"/v1/allocations/{name}")
                outcome = ("absent", None) if status in (204, 404) else None
            with lock:
                if outcome is not None:
                    acked[name] = outcome
                    uncertain[name] = False
                    counts["acked"] += 1
                elif status is None:
                    counts["unanswered"] += 1  # stays uncertain until the next acknowledged request
                else:
                    uncertain[name] = was_uncertain  # refused: nothing changed
                    counts["refused"] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for thread in threads:
        thread.start()

    failures = []

    def verify(label):
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
            if integrity != "ok":
                failures.append(f"{label}: integrity_check {integrity}")
            rows = connection.execute(
                "SELECT a.name, x.address FROM allocations a LEFT JOIN allocation_addresses x ON x.allocation_id = a.id").fetchall()
        finally:
            connection.close()
        stored = {}
        for name, address in rows:
            if address is None:
                failures.append(f"{label}: allocation {name} has no address (half-applied)")
            stored[name] = address
        addresses = [a for a in stored.values() if a is not None]
        if len(addresses) != len(set(addresses)):
            failures.append(f"{label}: an address is held twice")
        with lock:
            for name, (state, address) in acked.items():
                if uncertain.get(name):
                    continue
                if state == "present" and stored.get(name) != address:
                    failures.append(f"{label}: {name} was acknowledged with {address}, database has {stored.get(name)}")
                if state == "absent" and name in stored:
                    failures.append(f"{label}: {name} was acknowledged as deleted, database still has it")

    for kill in range(args.kills):
        time.sleep(random.uniform(0.2, 0.8))
        herald.send_signal(signal.SIGKILL)
        herald.wait()
        verify(f"after kill {kill + 1}")
        herald = start()

    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    bird_result = ""
    if bird:
        # After the last restart: BIRD (GR helper, stale routes flushed at End-of-RIB) must end
        # with exactly the derived table.
        derived = {address + "/32" for allocation in all_allocations() for address in allocation["addresses"]}
        deadline = time.time() + 60
        held = bird_table()
        while held != derived and time.time() < deadline:
            time.sleep(0.5)
            held = bird_table()
        if held != derived:
            failures.append(f"BIRD holds {len(held)} routes, derived table has {len(derived)}: "
                            f"missing {sorted(derived - held)[:5]}, extra {sorted(held - derived)[:5]}")
        bird_result = f", BIRD table: {len(held)} routes{' = derived' if held == derived else ' != derived'}"
        bird.terminate()
        try:
            bird.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bird.kill()
            bird.wait()
    herald.send_signal(signal.SIGTERM)
    herald.wait(timeout=20)
    verify("at the end")
    print(f"kills: {args.kills}, clients: {args.clients}, acknowledged: {counts['acked']}, "
          f"unanswered: {counts['unanswered']}, refused: {counts['refused']}, failures: {len(failures)}{bird_result}")
    for failure in failures[:20]:
        print("FAIL", failure)
    if herald.returncode != 0:
        print(f"FAIL herald exited {herald.returncode} on SIGTERM; see {workdir}")
        return 1
    if failures:
        print(f"the database and log are kept in {workdir}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
