#!/usr/bin/env python3
"""Cluster mode against one SQLite file, in one run (loopback only, no root needed).

1. Durable allocations/s and latency: wrk PUTs distinct allocations (one connection, then 16), on
   a fresh single-file Herald and on a fresh three-replica cluster (through the leader and through
   a follower). Every 2xx is committed (single file: synchronous=FULL; cluster: by a Raft quorum);
   the count is read back from the API, not taken from wrk.
2. Failover: `kill -9` of the leader, then PUTs to a survivor every 10 ms until one succeeds; the
   time from the kill to that 2xx, median of N rounds (the killed replica is restarted and has
   caught up before the next round).
3. Commit-to-announce on followers: after a PUT answered on the leader, how long until each
   follower's table — what its speaker is handed — holds the new route (its
   `herald_routes_originated`, polled every 2 ms).

Standard library only. Usage: clusterbench.py HERALD_BINARY [--seconds S] [--rounds N] [--writes N]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = 20000 + os.getpid() % 5000


def call(port, method, path, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, None


def count_allocations(port, timeout=5):
    """How many allocations the API lists, every page of it (following next_cursor): a single
    GET would count only the first page (1,000 by default)."""
    count, cursor = 0, None
    while True:
        path = "/v1/allocations?limit=10000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, body = call(port, "GET", path, timeout=timeout)
        if status != 200 or body is None:
            raise SystemExit(f"GET {path} on API port {port} answered {status}")
        count += len(body.get("allocations", []))
        cursor = body.get("next_cursor")
        if not cursor:
            return count


def wait_up(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if call(port, "GET", "/healthz")[0] == 200:
            return
        time.sleep(0.05)
    raise SystemExit(f"herald on API port {port} did not start")


class Replica:
    def __init__(self, binary, directory, index, join):
        self.binary, self.index = binary, index
        self.api = BASE + 10 + index
        self.raft = f"127.0.0.1:{BASE + 20 + index}"
        self.directory = os.path.join(directory, f"r{index}")
        self.join = join
        self.log = open(os.path.join(directory, f"r{index}.log"), "ab")
        self.process = None

    def start(self):
        arguments = [self.binary, "serve", "--cluster-dir", self.directory, "--cluster-listen", self.raft,
                     "--api-listen", f"127.0.0.1:{self.api}", "--bgp-listen", "127.0.0.1:0",
                     "--router-id", f"10.0.0.{self.index + 1}", "--log-level", "error"]
        if self.join:
            arguments += ["--cluster-join", self.join]
        self.process = subprocess.Popen(arguments, stdout=self.log, stderr=self.log)
        wait_up(self.api)

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_cluster(binary, directory):
    first = Replica(binary, directory, 0, None)
    first.start()
    others = [Replica(binary, directory, i, first.raft) for i in (1, 2)]
    for replica in others:
        replica.start()
    return [first] + others


def leader_of(replicas):
    for replica in replicas:
        if replica.process and replica.process.poll() is None:
            status, cluster = call(replica.api, "GET", "/v1/cluster")
            if status == 200 and cluster.get("leader"):
                for other in replicas:
                    if other.raft == cluster["leader"]:
                        return other
    return None


WRK_SCRIPT = """
local counter = 0
local thread_id = 0
function setup(thread) thread:set("id", thread_id); thread_id = thread_id + 1 end
function init(args) prefix = "RUN-t" .. id .. "-" end
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v1/allocations/" .. prefix .. counter, {["Content-Type"] = "application/json"}, '{"pool":"bench"}')
end
"""


def latency_ms(text, label):
    match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", text, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def allocations(port, seconds, connections, directory, tag, reader_port=None):
    call(port, "PUT", "/v1/pools/bench", {"blocks": ["10.0.0.0/8"]})
    # Names unique to this run: a second run on the same cluster must create, not update.
    run = re.sub(r"[^a-z0-9]", "", tag.lower())[:12] + str(connections)
    script = os.path.join(directory, f"put-{run}.lua")
    with open(script, "w") as handle:
        handle.write(WRK_SCRIPT.replace("RUN", run))
    before = count_allocations(reader_port or port)
    output = subprocess.run(["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script,
                             f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    after = count_allocations(reader_port or port, timeout=60)
    count = after - before
    return {"case": tag, "connections": connections, "committed": count, "per_second": round(count / seconds),
            "p50_ms": latency_ms(output, "50"), "p99_ms": latency_ms(output, "99")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=50)
    options = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt-get install wrk)")
    directory = tempfile.mkdtemp(prefix="herald-cluster-bench-")
    results = {"load_average": os.getloadavg(), "rows": []}
    replicas = []
    single = None
    try:
        # 1. Durable allocations: single file, then cluster (leader, follower).
        for connections in (1, 16):
            db = os.path.join(directory, f"single-{connections}.db")
            port = BASE + 1
            single = subprocess.Popen([options.binary, "serve", "--db", db, "--api-listen", f"127.0.0.1:{port}",
                                       "--bgp-listen", "127.0.0.1:0", "--log-level", "error"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_up(port)
            results["rows"].append(allocations(port, options.seconds, connections, directory, "single file"))
            single.terminate()
            single.wait()
            single = None
        for connections in (1, 16):
            cluster_directory = os.path.join(directory, f"cluster-{connections}")
            os.makedirs(cluster_directory)
            replicas = start_cluster(options.binary, cluster_directory)
            leader = leader_of(replicas)
            follower = next(r for r in replicas if r is not leader)
            results["rows"].append(allocations(leader.api, options.seconds, connections, directory, "cluster, via the leader"))
            results["rows"].append(allocations(follower.api, options.seconds, connections, directory, "cluster, via a follower",
                                               reader_port=leader.api))
            if connections == 16:
                break
            for replica in replicas:
                replica.stop()
        for row in results["rows"]:
            print(f"allocations  {row['case']:<26} c={row['connections']:<3} {row['per_second']:>6}/s  "
                  f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  ({row['committed']} committed)")

        # 3. Commit-to-announce on followers (the cluster of the last step).
        leader = leader_of(replicas)
        followers = [r for r in replicas if r is not leader]
        delays = []

        def originated(port):
            status, _ = 0, None
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    match = re.search(r"^herald_routes_originated (\d+)", response.read().decode(), re.M)
                    return int(match.group(1)) if match else -1
            except OSError:
                return -1

        for i in range(options.writes):
            before = {follower.api: originated(follower.api) for follower in followers}
            status, body = call(leader.api, "PUT", f"/v1/allocations/announce-{i}", {"pool": "bench"})
            committed = time.monotonic()
            for follower in followers:
                while originated(follower.api) <= before[follower.api]:
                    if time.monotonic() - committed > 10:
                        break
                    time.sleep(0.002)
                delays.append((time.monotonic() - committed) * 1000)
        delays.sort()
        p50 = statistics.median(delays)
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        results["commit_to_announce_ms"] = {"p50": p50, "p99": p99, "max": delays[-1], "samples": len(delays)}
        print(f"commit → follower's table  p50 {p50:.0f} ms  p99 {p99:.0f} ms  max {delays[-1]:.0f} ms  ({len(delays)} samples)")

        # 2. Failover: kill -9 of the leader, time to the first successful write.
        failovers = []
        for round_number in range(options.rounds):
            leader = leader_of(replicas)
            survivor = next(r for r in replicas if r is not leader)
            killed_at = time.monotonic()
            leader.kill9()
            attempt = 0
            while True:
                attempt += 1
                status, _ = call(survivor.api, "PUT", f"/v1/allocations/failover-{round_number}-{attempt}", {"pool": "bench"}, timeout=2)
                if status in (200, 201):
                    failovers.append((time.monotonic() - killed_at) * 1000)
                    break
                if time.monotonic() - killed_at > 60:
                    failovers.append(float("inf"))
                    break
                time.sleep(0.01)
            leader.start()
            time.sleep(1.0)
        print(f"kill -9 of the leader → first successful write: median {statistics.median(failovers):.0f} ms "
              f"(rounds: {', '.join(f'{v:.0f}' for v in failovers)} ms)")
        results["failover_ms"] = failovers
        results["load_average_after"] = os.getloadavg()
        print(json.dumps(results, indent=1), file=open(os.path.join(directory, "results.json"), "w"))
        print(f"load average before {results['load_average'][0]:.2f}, after {results['load_average_after'][0]:.2f}")
    finally:
        for replica in replicas:
            replica.stop()
        if single:
            single.kill()
        if os.environ.get("HERALD_BENCH_KEEP") != "1":
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
