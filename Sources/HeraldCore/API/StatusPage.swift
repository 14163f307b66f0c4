public import HTTPServer

/// `GET /`: one self-contained HTML page (no external assets, no build step, works offline):
/// peers with state colour, uptime and last error; nodes with their health-check state; pools with
/// usage bars; allocations; the newest history; updated
/// live from `/v1/events`. It asks for the API token when the API answers 401, and keeps it in
/// the browser's session storage only.
///
/// The page itself holds no data, which is why `/` is served without a token: everything it shows
/// comes from API calls that carry the token. Rendering a snapshot into the HTML would show the
/// first view sooner but would put `/` behind the token (a browser cannot send one on the first
/// load), so instead the script draws each table as soon as its own answer arrives.
public struct StatusPage: Sendable {
    public init() {}

    public func register(on router: Router) {
        router.get("/", query: ["live"]) { request, _ in
            // The contract says 0 or 1 (issue #17 item 9): anything else is refused, not ignored.
            if let live = request.query["live"], live != "0" && live != "1" {
                throw ValidationError(field: "live", "expected 0 (no live event stream) or 1", status: .badRequest)
            }
            return HTTPResponse(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"],
                         body: .bytes(Array(Self.html.utf8)))
        }
    }

    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Herald</title>
    <style>
      :root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; }
      body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
      h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
      #meta { color: var(--muted); }
      table { border-collapse: collapse; width: 100%; }
      th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
      th { font-weight: 600; color: var(--muted); }
      .state { font-weight: 600; } .established { color: var(--ok); } .idle, .connect, .active, .bfd.down { color: var(--bad); } .bfd.up { color: var(--ok); }
      .opensent, .openconfirm { color: var(--warn); } .disabled { color: var(--muted); }
      .up { color: var(--ok); } .down { color: var(--bad); } .unknown { color: var(--muted); }
      .bar { background: #eaeef2; width: 12rem; height: .7rem; border-radius: .35rem; overflow: hidden; display: inline-block; }
      .bar > span { display: block; height: 100%; background: var(--ok); }
      .muted, .note { color: var(--muted); } .note { margin: .3rem 0 0; } .note:empty { display: none; }
      .error { color: var(--bad); } #login { display: none; margin: 1rem 0; }
      code { font-family: ui-monospace, monospace; }
    </style>
    </head>
    <body>
    <h1>Herald</h1>
    <div id="meta">loading…</div>
    <form id="login"><label>API token <input id="token" type="password" autocomplete="off"></label> <button>Use</button></form>
    <section id="cluster" hidden><h2>Cluster</h2>
    <p id="cluster-meta"></p>
    <table id="members"><thead><tr><th>Member</th><th>Address</th><th>Role</th><th>Leader</th><th>Reachable</th></tr></thead><tbody></tbody></table></section>
    <h2>Peers</h2>
    <table id="peers"><thead><tr><th>Name</th><th>Address</th><th>ASN</th><th>State</th><th>BFD</th><th>Uptime</th><th>Received</th><th>Advertised</th><th>Last error</th></tr></thead><tbody></tbody></table>
    <p class="note" id="peers-note"></p>
    <h2>Nodes</h2>
    <table id="nodes"><thead><tr><th>Name</th><th>Addresses</th><th>Health check</th><th>Health</th><th>Since</th><th>Last result</th></tr></thead><tbody></tbody></table>
    <p class="note" id="nodes-note"></p>
    <h2>Pools</h2>
    <table id="pools"><thead><tr><th>Name</th><th>Blocks</th><th>Usage</th><th>Allocated</th></tr></thead><tbody></tbody></table>
    <p class="note" id="pools-note"></p>
    <h2>Allocations</h2>
    <table id="allocations"><thead><tr><th>Name</th><th>Addresses</th><th>Pool</th><th>Traffic policy</th><th>Nodes</th></tr></thead><tbody></tbody></table>
    <p class="note" id="allocations-note"></p>
    <h2>Recent history</h2>
    <table id="history"><thead><tr><th>Time</th><th>Action</th><th>Prefix</th><th>Next hops</th><th>Reason</th></tr></thead><tbody></tbody></table>
    <p class="note" id="history-note"></p>
    <script>
    "use strict";
    let token = sessionStorage.getItem("herald-token") || "";
    const $ = (s) => document.querySelector(s);
    function cell(text, cls) { const td = document.createElement("td"); td.textContent = text ?? "–"; if (cls) td.className = cls; return td; }
    function duration(s) { if (s == null) return "–"; s = Math.floor(s); if (s < 60) return s + "s"; if (s < 3600) return Math.floor(s / 60) + "m";
      if (s < 86400) return Math.floor(s / 3600) + "h" + Math.floor(s % 3600 / 60) + "m"; return Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h"; }
    async function api(path) {
      const response = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
      if (response.status === 401) { $("#login").style.display = "block"; throw new Error("a token is required"); }
      if (!response.ok) throw new Error(path + ": " + response.status);
      return response.json();
    }
    // Every page of a list: follows next_cursor and joins the pages' items under `key`. At most
    // 50 pages (50,000 items at the default page size), so a server that kept answering with a
    // cursor could never keep the page looping; a list cut there says so.
    async function apiAll(path, key) {
      const items = [];
      let cursor = null;
      for (let page = 0; page < 50; page++) {
        const reply = await api(cursor == null ? path : path + (path.includes("?") ? "&" : "?") + "cursor=" + encodeURIComponent(cursor));
        items.push(...(reply[key] ?? []));
        if (!reply.next_cursor) return { [key]: items };
        cursor = reply.next_cursor;
      }
      return { [key]: items, truncated: true };
    }
    function fill(id, rows) { const body = $(id + " tbody"); body.replaceChildren(...rows); }
    function note(id, text, cls) { const p = $(id + "-note"); p.textContent = text; p.className = "note" + (cls ? " " + cls : ""); }
    // Counts above 2^53 (IPv6 pools) reach the page as JSON numbers the API has already rounded
    // to doubles (openapi.yaml: approximate), so their digits would be partly invented
    // ("18446744073709552000" for 2^64 − 1): such a count is shown as a power of two.
    function count(n) {
      if (n == null) return "–";
      if (n <= Number.MAX_SAFE_INTEGER) return String(n);
      const bits = Math.log2(n);
      return "≈2^" + (Number.isInteger(bits) ? bits : bits.toFixed(1));
    }
    // Allocations can be one per Service, thousands: the page shows the first page only.
    const allocationsShown = 200;
    async function showStatus() {
      const status = await api("/v1/status");
      $("#meta").className = "";
      $("#meta").textContent = `version ${status.version} · AS ${status.speaker?.asn ?? "?"} · router id ${status.speaker?.router_id ?? "?"} · up ${duration(status.uptime_seconds)}`;
      if (status.cluster) {
        const cluster = await api("/v1/cluster");
        $("#cluster").hidden = false;
        $("#cluster-meta").textContent = `this replica ${cluster.address} · leader ${cluster.leader ?? "none"} · quorum ${cluster.has_quorum ? "yes" : "NO"}` +
          (cluster.degraded ? " · announcing worse paths (no quorum)" : "") + ` · revision ${cluster.revision}`;
        $("#cluster-meta").className = cluster.has_quorum ? "" : "error";
        fill("#members", (cluster.members ?? []).map((m) => { const tr = document.createElement("tr");
          tr.append(cell(m.id + (m.this ? " (this)" : "")), cell(m.address), cell(m.role), cell(m.leader ? "yes" : ""),
            cell(m.reachable ? "yes" : "no", m.reachable ? "up" : "down")); return tr; }));
      }
    }
    async function showPeers() {
      const peers = await apiAll("/v1/peers", "peers");
      fill("#peers", peers.peers.map((p) => { const tr = document.createElement("tr"); tr.dataset.peer = p.name;
        const state = p.state ?? (p.enabled ? "unknown" : "disabled");
        const bfd = p.bfd?.session; const bfdText = !p.bfd?.enabled ? "–" : !bfd ? "on" : bfd.state + (bfd.detection_time ? ` ${bfd.detection_time} ms` : "");
        // Once the session is up again its last error is history, not a problem: muted, and said so.
        const error = !p.last_error ? cell(p.hint ?? "") : state === "established"
          ? cell(`previous error (${p.last_error.at}): ${p.last_error.reason}`, "muted") : cell(p.last_error.reason, "error");
        tr.append(cell(p.name), cell(p.address), cell(String(p.asn)), cell(state, "state " + state), cell(bfdText, "bfd " + (bfd?.state ?? "")), cell(duration(p.uptime_seconds)),
          cell(String(p.counters?.prefixes_received ?? "–")), cell(String(p.counters?.prefixes_advertised ?? "–")), error); return tr; }));
      note("#peers", peers.truncated ? "only the first 50 pages shown" : "");
    }
    async function showNodes() {
      const nodes = await apiAll("/v1/nodes", "nodes");
      fill("#nodes", nodes.nodes.map((n) => { const tr = document.createElement("tr"); tr.dataset.node = n.name;
        const state = n.health?.state ?? (n.health_check ? "unknown" : "not checked");
        tr.append(cell(n.name), cell(n.addresses.join(", ")), cell(n.health?.target ?? (n.health_check ? n.health_check.kind + " :" + n.health_check.port : "–")),
          cell(state, "state " + state.replace(" ", "-")), cell(n.health?.last_change),
          cell(n.health?.last_result?.detail, n.health?.last_result && !n.health.last_result.ok ? "error" : "")); return tr; }));
      note("#nodes", nodes.truncated ? "only the first 50 pages shown" : "");
    }
    async function showPools() {
      const pools = await apiAll("/v1/pools", "pools");
      fill("#pools", pools.pools.map((p) => { const tr = document.createElement("tr"); tr.dataset.pool = p.name;
        const used = p.size > 0 ? Math.min(100, 100 * p.allocated / p.size) : 0;
        const bar = document.createElement("td"); bar.innerHTML = '<span class="bar"><span></span></span>'; bar.querySelector("span > span").style.width = used + "%";
        tr.append(cell(p.name), cell(p.blocks.join(", ")), bar, cell(`${p.allocated} of ${count(p.size)}`)); return tr; }));
      note("#pools", pools.truncated ? "only the first 50 pages shown" : "");
    }
    async function showAllocations() {
      const page = await api("/v1/allocations?limit=" + allocationsShown);
      fill("#allocations", page.allocations.map((a) => { const tr = document.createElement("tr"); tr.dataset.allocation = a.name;
        const nodes = a.nodes.length ? a.nodes.join(", ") : a.traffic_policy === "cluster" ? "the pool's nodes" : "–";
        tr.append(cell(a.name), cell(a.addresses.join(", ")), cell(a.pool), cell(a.traffic_policy), cell(nodes)); return tr; }));
      note("#allocations", page.next_cursor ? `the first ${page.allocations.length} shown; more… (herald alloc, or GET /v1/allocations)` : "");
    }
    // Times (here, a node's last change, a peer's previous error) are shown as the API gives them:
    // UTC in ISO 8601 with its "Z", not converted to the browser's zone, so that they read the
    // same as in the API, the CLI and the logs.
    async function showHistory() {
      const history = await api("/v1/history?order=desc&limit=50");
      fill("#history", history.events.map((e) => { const tr = document.createElement("tr"); tr.dataset.event = e.id;
        tr.append(cell(e.at), cell(e.action), cell(e.prefix), cell(e.paths.map((p) => p.next_hop).join(", ")), cell(e.reason)); return tr; }));
      note("#history", history.next_cursor ? "the newest 50 events; older ones: herald history --cursor " + history.next_cursor : "");
    }
    // Each part of the page is drawn as soon as its own answer arrives, so a slow list (thousands
    // of peers or pools) never keeps the others at "loading…"; a part that fails says so in place.
    const parts = [["#meta", showStatus], ["#peers-note", showPeers], ["#nodes-note", showNodes], ["#pools-note", showPools],
      ["#allocations-note", showAllocations], ["#history-note", showHistory]];
    // One refresh at a time, so that a slow answer from an earlier one cannot overwrite a newer
    // table; a change meanwhile asks for one more when it ends.
    let refreshing = false, again = false;
    async function refresh() {
      if (refreshing) { again = true; return; }
      refreshing = true;
      try {
        await Promise.all(parts.map(([where, show]) => show().catch((error) => { $(where).textContent = String(error.message || error); $(where).classList.add("error"); })));
      } finally {
        refreshing = false;
        if (again) { again = false; refresh(); }
      }
    }
    // Live: any event refreshes the tables (EventSource cannot send a token, so with tokens the page polls).
    let pending = false;
    function soon() { if (!pending) { pending = true; setTimeout(() => { pending = false; refresh(); }, 200); } }
    // ?live=0 turns the event stream off (kiosks behind proxies that buffer, headless renderers).
    const live = new URLSearchParams(location.search).get("live") !== "0";
    if (live && !token) { try { const es = new EventSource("/v1/events"); ["change", "route", "peer", "node"].forEach((k) => es.addEventListener(k, soon)); es.onerror = () => {}; } catch (e) {} }
    setInterval(refresh, token ? 5000 : 30000);
    $("#login").addEventListener("submit", (event) => { event.preventDefault(); token = $("#token").value.trim(); sessionStorage.setItem("herald-token", token); $("#login").style.display = "none"; refresh(); });
    refresh();
    </script>
    </body>
    </html>
    """#
}
