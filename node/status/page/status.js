// The lock node's status page. It opens /status/live on the node that served it and draws each
// view the node pushes (node/status-view.ts has its shape). It sends no request of its own: the
// node pushes a fresh view every half second or so, and a local timer only ages the "pushed …
// ago" label and says so when the pushes stop. A lost connection is retried with backoff, and the
// last view stays on screen, dimmed and marked as frozen, never passed off as current.

const SVG = "http://www.w3.org/2000/svg";
/** The page calls the view silent when no push came for this long (the node pushes every ~0.5 s). */
const SILENT_AFTER_MS = 3000;
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 10_000;

let lastView;
let lastViewAtMs = 0;
let connected = false;
let retryAttempt = 0;
let retryAtMs = 0;

/** el builds an element; children are nodes or text (always text nodes: nothing is parsed as HTML). */
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** ago formats a duration in milliseconds for people. */
export function ago(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function utcTime(ms) {
  return `${new Date(ms).toISOString().slice(11, 23)} UTC`;
}

function roleWord(role) {
  return role === "pre_candidate" ? "pre-candidate" : role;
}

function setText(id, text) {
  const element = document.getElementById(id);
  if (element !== null) element.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Drawing one view.

function render(view) {
  document.title = `${view.nodeId} · SCTEC status`;
  setText("node-id", view.nodeId);
  renderLinks(view);
  renderSummary(view);
  renderWarnings(view);
  renderMembers(view);
  renderPicture(view);
  renderLeases(view);
  renderTimeline(view);
}

function renderLinks(view) {
  const links = document.getElementById("node-links");
  links.replaceChildren();
  for (const member of view.members) {
    if (member.url === null) continue;
    const attributes = { href: `${member.url}/`, "data-testid": "node-link" };
    if (member.isSelf) Object.assign(attributes, { class: "current", "aria-current": "page" });
    links.append(el("a", attributes, member.id), " ");
  }
  document.getElementById("booking-link").setAttribute("href", view.bookingUrl);
}

function renderSummary(view) {
  setText("self-role", `${view.nodeId}: ${roleWord(view.self.role)}`);
  setText("self-term", String(view.self.term));
  const leader = document.getElementById("leader");
  leader.replaceChildren();
  if (view.view.leaderId === null) leader.append("none known");
  else if (view.view.leaderUrl !== null && view.view.leaderId !== view.nodeId)
    leader.append(el("a", { href: `${view.view.leaderUrl}/` }, view.view.leaderId));
  else leader.append(view.view.leaderId === view.nodeId ? `${view.view.leaderId} (this node)` : view.view.leaderId);
  leader.dataset.leader = view.view.leaderId ?? "";
  // The admission gate's figures: client requests in flight against the limit, and those shed (503 overloaded).
  const load = view.load;
  setText(
    "load",
    load === null || load === undefined
      ? "—"
      : `${load.depth} of ${load.requestQueueMax}; shed ${load.shedTotal}${load.lastShedAgoMs === null ? "" : ` (last ${ago(load.lastShedAgoMs)} ago)`}`,
  );
  setText(
    "leader-contact",
    view.view.leaderId === view.nodeId
      ? "(this node leads)"
      : view.view.leaderContactAgoMs === null
        ? "—"
        : `${ago(view.view.leaderContactAgoMs)} ago`,
  );
}

function renderWarnings(view) {
  const box = document.getElementById("warnings");
  const lines = [];
  if (!connected) {
    lines.push(
      `Lost the connection to ${view.nodeId}: this view is frozen as of ${utcTime(view.generatedAtMs)} and may be wrong. Retrying; the other nodes' pages are linked above.`,
    );
  }
  for (const warning of view.view.warnings) lines.push(warning);
  box.replaceChildren(...lines.map((line) => el("p", {}, line)));
  box.dataset.stale = String(view.view.stale || !connected);
}

function renderMembers(view) {
  const body = document.querySelector("#members tbody");
  const rows = view.members.map((member) => {
    const classes = [
      member.isLeader ? "leader" : "",
      member.isSelf ? "self" : "",
      member.reachability === "unreachable" ? "unreachable" : "",
    ];
    const details = member.details;
    const shown = details?.current === true;
    const reachability = {
      self: "this node",
      reachable: "reachable",
      link_down: "HTTP only (peer link down)",
      unreachable: "unreachable",
    }[member.reachability];
    const role =
      details === null
        ? el("span", {}, member.reachability === "unreachable" ? "unknown" : "…")
        : shown
          ? roleWord(details.role)
          : el("span", { class: "last-known" }, `last known ${ago(details.ageMs)} ago: ${roleWord(details.role)}`);
    const value = (field) =>
      details === null ? "—" : shown ? String(details[field]) : el("span", { class: "last-known" }, String(details[field]));
    const name = member.url === null ? member.id : el("a", { href: `${member.url}/` }, member.id);
    const membership = member.membership === "voter" ? "" : ` (${member.membership.replaceAll("_", " ")})`;
    return el(
      "tr",
      {
        class: classes.filter(Boolean).join(" "),
        "data-testid": "member-row",
        "data-member": member.id,
        "data-role": shown ? details.role : "unknown",
        "data-reachability": member.reachability,
        "data-leader": String(member.isLeader),
      },
      el("td", {}, name, membership),
      el("td", {}, role),
      el("td", {}, value("term")),
      el("td", {}, el("span", { class: `badge ${member.reachability}` }, reachability)),
      el("td", {}, member.isSelf ? "—" : member.lastContactAgoMs === null ? "never" : `${ago(member.lastContactAgoMs)} ago`),
      el("td", {}, member.matchIndex === null ? "—" : String(member.matchIndex)),
      el("td", {}, value("commitIndex")),
      el("td", {}, value("appliedIndex")),
      el("td", {}, member.lag === null ? "—" : String(member.lag)),
      el("td", {}, value("logEntries")),
      el("td", {}, value("snapshotIndex")),
    );
  });
  body.replaceChildren(...rows);
  const source = {
    self: "Match and lag come from this node's own replication progress (it leads).",
    polled: `Match and lag come from the leader ${view.replication.leaderId}'s /status, polled by ${view.nodeId}.`,
    none: "Match and lag are unknown here: this node cannot see the leader's replication progress.",
  }[view.replication.source];
  setText(
    "members-note",
    `${source} Other members' role, term and indexes come from their /status, polled by ${view.nodeId} every second.`,
  );
}

/** layout places the members on a circle, the first at the top. */
function layout(count) {
  const cx = 170;
  const cy = 150;
  const radius = count <= 1 ? 0 : 100;
  return Array.from({ length: count }, (_, position) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * position) / count;
    return { x: cx + radius * Math.cos(angle), y: cy + radius * Math.sin(angle) };
  });
}

function renderPicture(view) {
  const members = view.members.filter((member) => member.membership !== "not_a_member" || member.isSelf);
  const places = new Map(members.map((member, position) => [member.id, layout(members.length)[position]]));
  const nodeRadius = 36;
  const linksGroup = document.getElementById("picture-links");
  const nodesGroup = document.getElementById("picture-nodes");
  const lines = [];
  const leader = places.get(view.view.leaderId ?? "");
  if (leader !== undefined) {
    const known = new Map(view.replication.links.map((link) => [link.to, link]));
    for (const member of members) {
      if (member.id === view.view.leaderId) continue;
      const target = places.get(member.id);
      const link = known.get(member.id);
      let kind = link === undefined ? "unknown" : link.active ? link.state : "inactive";
      if (member.reachability === "unreachable") kind = "broken";
      const dx = target.x - leader.x;
      const dy = target.y - leader.y;
      const length = Math.hypot(dx, dy) || 1;
      const ux = dx / length;
      const uy = dy / length;
      const line = svg("line", {
        x1: leader.x + ux * (nodeRadius + 2),
        y1: leader.y + uy * (nodeRadius + 2),
        x2: target.x - ux * (nodeRadius + 6),
        y2: target.y - uy * (nodeRadius + 6),
        class: kind,
        "marker-end": "url(#arrow)",
        "data-testid": "replication-link",
        "data-to": member.id,
      });
      const describe = {
        replicate: "replicating",
        probe: "probing for the match index",
        snapshot: "sending a snapshot",
        inactive: "not heard from lately",
        unknown: "progress unknown here",
        broken: "unreachable from this node",
      }[kind];
      line.append(svg("title", {}, `${view.view.leaderId} → ${member.id}: ${describe ?? kind}`));
      lines.push(line);
    }
  }
  linksGroup.replaceChildren(...lines);
  const circles = [];
  for (const member of members) {
    const place = places.get(member.id);
    const role = member.details?.current === true ? member.details.role : "unknown";
    const kind =
      member.reachability === "unreachable"
        ? "unreachable"
        : member.isLeader
          ? "leader"
          : role === "candidate" || role === "pre_candidate"
            ? "candidate"
            : "follower";
    const group = svg("g", { "data-testid": "picture-node", "data-member": member.id, "data-kind": kind });
    if (member.isSelf) group.append(svg("circle", { cx: place.x, cy: place.y, r: nodeRadius + 6, class: "self-ring" }));
    group.append(svg("circle", { cx: place.x, cy: place.y, r: nodeRadius, class: kind }));
    group.append(svg("text", { x: place.x, y: place.y - 2 }, member.id));
    const caption = kind === "unreachable" ? "unreachable" : member.isLeader ? "leader" : roleWord(role === "unknown" ? "?" : role);
    group.append(svg("text", { x: place.x, y: place.y + 13, class: "small" }, caption));
    group.append(svg("title", {}, `${member.id}: ${caption}${member.isSelf ? " (this node)" : ""}`));
    circles.push(group);
  }
  nodesGroup.replaceChildren(...circles);
}

function renderLeases(view) {
  const body = document.querySelector("#leases tbody");
  const rows = view.leases.rows.map((lease) =>
    el(
      "tr",
      { "data-testid": "lease-row", "data-resource": lease.resource },
      el("td", {}, lease.resource),
      el("td", {}, lease.owner),
      el("td", {}, lease.token),
      el(
        "td",
        { title: lease.timeLeftSource === "estimate" ? "estimated from when this node applied the grant; the leader decides" : "" },
        lease.timeLeftMs === null ? "—" : `${lease.timeLeftSource === "estimate" ? "≈ " : ""}${ago(lease.timeLeftMs)}`,
      ),
      el("td", {}, String(lease.waiters)),
    ),
  );
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 5 }, "no lease is held")));
  body.replaceChildren(...rows);
  const shown =
    view.leases.rows.length < view.leases.total
      ? `${view.leases.rows.length} of ${view.leases.total} leases shown`
      : `${view.leases.total} leases`;
  const timeLeft =
    view.self.role === "leader"
      ? "time left is the leader's own deadline"
      : "time left (≈) is estimated from when this node applied each grant or renewal; only the leader decides expiry";
  setText(
    "leases-note",
    `${shown}, ${view.leases.waitersTotal} waiting acquires; this node's applied state at index ${view.leases.appliedIndex}; ${timeLeft}.`,
  );
}

function renderTimeline(view) {
  const list = document.getElementById("timeline");
  const items = view.timeline.map((event) =>
    el(
      "li",
      { "data-testid": "timeline-event", "data-kind": event.kind },
      el("time", { datetime: new Date(event.atMs).toISOString() }, utcTime(event.atMs)),
      el("span", { class: `kind ${event.kind}` }, event.kind.replaceAll("_", " ")),
      el("span", {}, `${event.text}${event.count > 1 ? ` (×${event.count})` : ""}`),
    ),
  );
  list.replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------
// The connection and the page's own clock.

function setConnection(state, text) {
  const element = document.getElementById("connection");
  element.dataset.state = state;
  element.textContent = text;
  document.querySelector("main").classList.toggle("frozen", state === "disconnected" || state === "silent");
}

function connect() {
  const url = new URL("/status/live", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  setConnection("connecting", retryAttempt === 0 ? "connecting…" : "reconnecting…");
  socket.addEventListener("open", () => {
    connected = true;
    retryAttempt = 0;
  });
  socket.addEventListener("message", (event) => {
    lastView = JSON.parse(event.data);
    lastViewAtMs = performance.now();
    setConnection("live", "live: the node pushes its view as it changes");
    render(lastView);
  });
  socket.addEventListener("close", () => {
    const wasConnected = connected;
    connected = false;
    const delayMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** retryAttempt) * (0.5 + Math.random() / 2);
    retryAttempt += 1;
    retryAtMs = performance.now() + delayMs;
    setConnection("disconnected", `disconnected${wasConnected ? "" : " (the node did not answer)"}: retrying in ${ago(delayMs)}`);
    if (lastView !== undefined) render(lastView);
    setTimeout(connect, delayMs);
  });
}

// Ages the labels only; it sends nothing.
setInterval(() => {
  if (lastView === undefined) return;
  const silentMs = performance.now() - lastViewAtMs;
  setText("pushed-at", `${ago(silentMs)} ago (${utcTime(lastView.generatedAtMs)})`);
  if (connected && silentMs > SILENT_AFTER_MS) setConnection("silent", `no update for ${ago(silentMs)}: the node may be stuck`);
  if (!connected && retryAtMs > performance.now()) {
    setConnection("disconnected", `disconnected: retrying in ${ago(retryAtMs - performance.now())}`);
  }
}, 500);

connect();
