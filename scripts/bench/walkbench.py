#!/usr/bin/env python3
"""Issue #16's walk: a million static routes advertised to a BIRD peer with BFD at 50 ms × 3,
then every page of the peer's advertised routes and of GET /v1/routes (1,000 a page), and an
NDJSON export of the table read at 20 MB/s. It reports the page times (median, p99), the RSS
before and after the walk and during the export, and whether BFD or the session ever went down
(BIRD's BFD state sampled every 20 ms; Herald's flap counter). Run as root, through walk.sh.

  walkbench.py --herald BIN [--routes 1000000] [--runs 3]

Namespaces, links and processes come from bgpbench.py's Lab (same naming and clean-up rules).
"""
import argparse, json, os, signal, statistics, subprocess, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpbench as b


def receiver_config(me, sender):
    return f"""log stderr {{ warning, error, fatal }};
router id {me['ipv4']};
protocol device {{ scan time 10; }}
protocol bfd {{ interface "*" {{ min rx interval 50 ms; min tx interval 50 ms; multiplier 3; }}; }}
protocol bgp sess {{
  local {me['ipv4']} as {b.PEER_ASN};
  neighbor {sender['ipv4']} as {b.HERALD_ASN};
  passive on;
  hold time 90;
  bfd on;
  ipv4 {{ import all; export none; }};
}}
"""


class Sampler(threading.Thread):
    """Calls `probe` every `interval` seconds until stopped; keeps what it returns."""

    def __init__(self, probe, interval):
        super().__init__(daemon=True)
        self.probe, self.interval, self.values, self.done = probe, interval, [], threading.Event()

    def run(self):
        while not self.done.is_set():
            value = self.probe()
            if value is not None:
                self.values.append(value)
            time.sleep(self.interval)

    def stop(self):
        self.done.set()
        self.join()
        return self.values


def bfd_state(sock, neighbor):
    for line in b.birdc(sock, "show", "bfd", "sessions").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == neighbor:
            return fields[2]
    return None


def walk(api, target):
    """Every page of `target`; the time of each page in ms (request sent to last byte read, on a
    kept-alive connection; the client's JSON parsing is not counted) and the routes seen."""
    times, routes, cursor = [], 0, None
    if api.connection is None:
        api.connect()
    while True:
        start = time.monotonic()
        api.connection.request("GET", target + (f"&cursor={cursor}" if cursor else ""))
        response = api.connection.getresponse()
        data = response.read()
        times.append((time.monotonic() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"GET {target} → {response.status}: {data[:300]!r}")
        page = json.loads(data)
        routes += len(page["routes"])
        cursor = page.get("next_cursor")
        if not cursor:
            return times, routes


def once(args, routes):
    lab = b.Lab()
    b.LABS.append(lab)
    try:
        h_ns, r_ns = lab.namespace(), lab.namespace()
        me, peer = lab.link(h_ns, r_ns, 0)
        _, sock = b.start_bird(lab, r_ns, f"walk-{b.Lab.counter}", receiver_config(peer, me))
        sender = b.HeraldSender(args.herald)
        pid, load = sender.preload(lab, h_ns, me, peer, "ipv4", routes)
        api = sender.api
        states = Sampler(lambda: bfd_state(sock, me["ipv4"]), 0.02)
        states.start()
        api.call("POST", "/v1/peers", {"name": "receiver", "address": peer["ipv4"], "asn": b.PEER_ASN, "local_address": me["ipv4"],
                                       "bfd": {"enabled": True, "min_tx": 50, "min_rx": 50, "multiplier": 3}})
        b.wait_for(lambda: b.bird_route_count(sock, "ipv4") >= len(routes), 600, "every route at BIRD", 0.05)
        b.wait_for(lambda: bfd_state(sock, me["ipv4"]) == "Up", 30, "BFD Up")
        rss_before = b.memory_mib(pid, "VmRSS")
        advertised, n_advertised = walk(api, "/v1/peers/receiver/routes/advertised?limit=1000")
        originated, n_originated = walk(api, "/v1/routes?limit=1000")
        rss_after = b.memory_mib(pid, "VmRSS")
        peak = Sampler(lambda: b.memory_mib(pid, "VmRSS"), 0.02)
        peak.start()
        exported = subprocess.run(["ip", "netns", "exec", h_ns, "sh", "-c",
                                   "curl -s -S --limit-rate 20M http://127.0.0.1:8179/v1/routes:export | wc -l"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        export_peak = max(peak.stop() or [0])
        seen = states.stop()
        # Down and Init come first, while BFD comes up; after the first Up, anything else is a failure.
        after_up = seen[seen.index("Up"):] if "Up" in seen else []
        counters = api.call("GET", "/v1/peers/receiver")["counters"]
        result = {
            "routes": len(routes), "load_s": load, "advertised_routes": n_advertised, "originated_routes": n_originated,
            "exported_lines": int(exported), "page_ms_median": statistics.median(advertised + originated),
            "page_ms_p99": b.percentile(advertised + originated, 99), "first_page_ms": [advertised[0], originated[0]],
            "rss_before_mib": rss_before, "rss_after_mib": rss_after, "export_peak_mib": export_peak,
            "bfd_states": sorted(set(after_up)), "bfd_samples": len(after_up), "flaps": counters["flaps"], "loadavg": b.loadavg(),
        }
        b.log(f"  walk N={len(routes)}: pages median {result['page_ms_median']:.2f} ms, p99 {result['page_ms_p99']:.2f} ms "
              f"(first {advertised[0]:.0f} / {originated[0]:.0f} ms); RSS {rss_before:.0f} → {rss_after:.0f} MiB, export peak "
              f"{export_peak:.0f} MiB; BFD at BIRD {result['bfd_states']} after the first Up ({len(after_up)} samples), flaps {counters['flaps']}; "
              f"load avg {result['loadavg']}")
        return result
    finally:
        lab.close()
        b.LABS.remove(lab)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--herald", required=True)
    parser.add_argument("--routes", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates network namespaces")
    os.makedirs(b.WORK, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        routes = b.prefixes(args.routes, "ipv4")
        results = [once(args, routes) for _ in range(args.runs)]
        print(f"\n### Walking {args.routes:,} routes with BFD at 50 ms × 3 (median of {args.runs})\n")
        print("| page of 1,000: median | p99 | first page (advertised / routes) | RSS before → after walk | export peak RSS "
              "| BFD at BIRD after Up | flaps | load avg |")
        print("|---:|---:|---:|---:|---:|---|---:|---|")
        for r in results:
            print(f"| {r['page_ms_median']:.2f} ms | {r['page_ms_p99']:.2f} ms | {r['first_page_ms'][0]:.0f} / {r['first_page_ms'][1]:.0f} ms "
                  f"| {r['rss_before_mib']:.0f} → {r['rss_after_mib']:.0f} MiB "
                  f"| {r['export_peak_mib']:.0f} MiB | {', '.join(r['bfd_states'])} ({r['bfd_samples']}) | {r['flaps']} | {r['loadavg']} |")
        print(f"\nmedian page {statistics.median(r['page_ms_median'] for r in results):.2f} ms; "
              f"median p99 {statistics.median(r['page_ms_p99'] for r in results):.2f} ms")
    finally:
        b.cleanup_all()


if __name__ == "__main__":
    main()
