// The dashboard's script: polls /api/v1 every two seconds with the bearer token and
// draws per-pool share bars and charts, incidents, guard decisions and the journal.
// Everything is built with DOM calls and textContent: no data is parsed as HTML.
"use strict";

const POLL_MS = 2000;
const KEEP_MS = 15 * 60 * 1000;
const COLORS = ["#e8590c", "#1c7ed6", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5f3dc4"];
const GUARD_TYPES = ["config_applied", "config_rejected", "config_rolled_back", "config_rollback_failed", "canary_passed", "canary_extended", "canary_ended"];
const SVG = "http://www.w3.org/2000/svg";

const state = { history: [], journal: [], journalKeys: new Set() };

// The token: from ?token= (then dropped from the address bar), or the sign-in form;
// kept for this tab only.
function takeTokenFromUrl() {
  const url = new URL(location.href);
  const t = url.searchParams.get("token");
  if (t) {
    sessionStorage.setItem("tango-token", t);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

async function api(path) {
  const headers = {};
  const t = sessionStorage.getItem("tango-token");
  if (t) headers["Authorization"] = "Bearer " + t;
  const r = await fetch("/api/v1/" + path, { headers, cache: "no-store" });
  if (r.status === 401) throw new Error("unauthorized");
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function s(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

const pct = (x) => (x === null || x === undefined || isNaN(x) ? "–" : (100 * x).toFixed(1) + "%");
const ms = (x) => (x === null || x === undefined ? "–" : x < 10 ? x.toFixed(2) + " ms" : x.toFixed(0) + " ms");
// Non-finite numbers arrive as null in JSON.
const fixed = (x, d) => (typeof x === "number" && isFinite(x) ? x.toFixed(d) : "–");
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });

function bar(kind, share) {
  const fill = h("div");
  fill.style.width = Math.max(0, Math.min(100, 100 * (share || 0))) + "%";
  return h("div", { class: "bar " + kind, title: kind + " " + pct(share) }, fill);
}

// One pool: a row per backend (health, weights, the three shares as bars) and charts.
function renderPool(pool, latest, points) {
  // Configured and effective: the weights in force now; observed: over the watch's
  // window (the chart shows how it got there).
  const observed = new Map((latest ? latest.backends : []).map((b) => [b.backend, b.observed]));
  const sum = (f) => pool.backends.reduce((a, b) => a + Number(f(b)), 0);
  const [cfgSum, effSum] = [sum((b) => b.configured_weight), sum((b) => b.effective_weight)];
  const rows = pool.backends.map((b, i) => {
    const sh = {
      configured: cfgSum > 0 ? b.configured_weight / cfgSum : 0,
      effective: effSum > 0 ? b.effective_weight / effSum : 0,
      observed: observed.get(b.name),
    };
    const up = b.healthy && !b.ejected;
    return h("tr", {
      class: "share",
      "data-backend": b.name,
      "data-configured": sh.configured,
      "data-effective": sh.effective,
      "data-observed": sh.observed,
    },
      h("td", null, h("span", { class: "dot", "data-color": i }), b.name),
      h("td", { class: "health " + (up ? "ok" : "no") }, b.ejected ? "ejected" : b.healthy ? "up" : "down"),
      h("td", null, b.configured_weight + " / " + Number(b.effective_weight).toFixed(1)),
      h("td", { class: "bars" }, bar("configured", sh.configured), bar("effective", sh.effective), bar("observed", sh.observed)),
      h("td", null, pct(sh.configured) + " / " + pct(sh.effective) + " / ", h("b", null, pct(sh.observed))));
  });
  const table = h("table", null,
    h("tr", null, h("th", null, "backend"), h("th", null, "health"), h("th", null, "weight cfg / eff"),
      h("th", null, "share"), h("th", null, "configured / effective / observed")),
    rows);
  const legend = h("div", { class: "legend" },
    ["configured", "effective", "observed"].map((k) => h("span", null, h("span", { class: "swatch " + k }), k + " share")));
  const rate = latest ? fixed(latest.rate_rps, 0) + " req/s, " + ms(latest.latency_ms) : "no traffic yet";
  const names = pool.backends.map((b) => b.name);
  const sec = h("section", { class: "pool-card", "data-pool": pool.name },
    h("h2", null, "Pool " + pool.name + " ", h("span", { class: "muted" }, pool.policy + " · " + rate)),
    h("div", { class: "pool" },
      h("div", null, legend, table),
      h("div", null,
        h("h3", null, "Observed share ", h("span", { class: "muted" }, "(dashed: effective)")),
        shareChart(points, names),
        h("h3", null, "Mean latency"),
        latencyChart(points))));
  for (const d of sec.querySelectorAll(".dot")) d.style.background = COLORS[d.dataset.color % COLORS.length];
  return sec;
}

// The time axis spans the history there is: a minute at least, fifteen at most.
function span(points) {
  const oldest = points.length ? points[0].ts_ms : Date.now();
  const minutes = Math.ceil((Date.now() - oldest) / 60000);
  return Math.max(1, Math.min(15, minutes)) * 60000;
}

function frame(width, height, yTicks, fmt, ymax, spanMs) {
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" });
  const now = Date.now();
  const x = (t) => 40 + ((t - (now - spanMs)) / spanMs) * (width - 50);
  const y = (v) => height - 16 - (v / ymax) * (height - 26);
  for (const v of yTicks) {
    svg.append(s("line", { class: "grid", x1: 40, x2: width - 10, y1: y(v), y2: y(v) }));
    const t = s("text", { x: 34, y: y(v) + 3, "text-anchor": "end" });
    t.textContent = fmt(v);
    svg.append(t);
  }
  for (let i = 4; i >= 0; i--) {
    const ago = (spanMs * i) / 4;
    const t = s("text", { x: x(now - ago), y: height - 3, "text-anchor": "middle" });
    t.textContent = ago === 0 ? "now" : ago >= 60000 && ago % 60000 === 0 ? "-" + ago / 60000 + "m" : "-" + Math.round(ago / 1000) + "s";
    svg.append(t);
  }
  return { svg, x, y };
}

function line(f, pts, color, dashed) {
  if (pts.length === 0) return;
  const d = pts.map(([t, v], i) => (i ? "L" : "M") + f.x(t).toFixed(1) + "," + f.y(v).toFixed(1)).join("");
  const p = s("path", { class: "series", d, stroke: color });
  if (dashed) p.setAttribute("stroke-dasharray", "4 3");
  f.svg.append(p);
}

function shareChart(points, names) {
  const f = frame(600, 170, [0, 0.25, 0.5, 0.75, 1], (v) => v * 100 + "%", 1, span(points));
  names.forEach((name, i) => {
    const obs = [], eff = [];
    for (const p of points) {
      const b = p.backends.find((b) => b.backend === name);
      if (b && typeof b.observed === "number") obs.push([p.ts_ms, b.observed]);
      if (b && typeof b.effective === "number") eff.push([p.ts_ms, b.effective]);
    }
    line(f, eff, COLORS[i % COLORS.length], true);
    line(f, obs, COLORS[i % COLORS.length], false);
  });
  return f.svg;
}

function latencyChart(points) {
  const pts = points.filter((p) => p.latency_ms !== null && p.latency_ms !== undefined).map((p) => [p.ts_ms, p.latency_ms]);
  const top = Math.max(1, ...pts.map((p) => p[1])) * 1.15;
  const f = frame(600, 90, [0, top / 2, top], (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0)) + "ms", top, span(points));
  line(f, pts, "#495057", false);
  return f.svg;
}

// Active alerts with one cause in one pool, as one item headed by the alert on the
// backend the cause concerns (else the largest over-share).
function groupAlerts(active) {
  const groups = new Map();
  for (const a of active) {
    const key = a.evidence.pool + "\n" + (a.cause.clause || a.cause.sentence);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  return [...groups.values()].map((as) => {
    const rank = (a) => (a.evidence.backend === a.cause.backend ? 2 : 0) +
      (a.evidence.kind === "over_share" ? 1 : 0) + Math.min(a.evidence.ratio, 100) / 1000;
    const head = as.reduce((x, y) => (rank(y) > rank(x) ? y : x));
    return { pool: head.evidence.pool, cause: head.cause, evidence: [head, ...as.filter((a) => a !== head)].map((a) => a.evidence) };
  });
}

// Incidents when the API groups alerts into them (as `incidents`, or the open ones as
// `open`), otherwise the active alerts grouped by cause.
function renderIncidents(alerts) {
  const box = document.getElementById("incidents");
  const incidents = Array.isArray(alerts.incidents) ? alerts.incidents : Array.isArray(alerts.open) ? alerts.open : null;
  const items = incidents
    ? incidents.filter((i) => !i.resolved_ms).map((i) => ({
      pool: i.pool, cause: i.cause, active: true, id: i.id,
      evidence: (i.signals || []).map((g) => g.evidence),
    }))
    : groupAlerts(alerts.active || []);
  if (items.length === 0) {
    box.replaceChildren(h("p", { class: "muted" }, "Nothing is wrong."));
    return;
  }
  box.replaceChildren(...items.map((it) => h("div", { class: "incident", "data-pool": it.pool },
    h("div", { class: "cause" }, it.cause ? it.cause.sentence : ""),
    h("table", null,
      h("tr", null, ["pool", "backend", "signal", "basis", "observed", "expected", "ratio", "z", "requests", "window", "since"].map((c) => h("th", null, c))),
      it.evidence.map((e) => h("tr", { class: "evidence", "data-backend": e.backend, "data-observed": e.observed, "data-expected": e.expected },
        h("td", null, e.pool), h("td", null, e.backend), h("td", null, e.kind), h("td", null, e.basis),
        h("td", null, pct(e.observed)), h("td", null, pct(e.expected)), h("td", null, fixed(e.ratio, 2) + "×"),
        h("td", null, fixed(e.z, 1)), h("td", null, e.requests + " of " + e.pool_requests),
        h("td", null, (e.window_ms / 1000).toFixed(0) + " s"), h("td", null, clock(e.onset_ms))))))));
}

function changeText(c) {
  const who = c.pool + (c.backend ? "/" + c.backend : "");
  const what = c.setting ? c.change + " " + c.setting : c.change;
  const fromTo = c.from !== undefined ? ": " + c.from + " → " + c.to : c.address ? " " + c.address : "";
  return who + " " + what + fromTo;
}

function eventSummary(e) {
  switch (e.type) {
    case "config_applied": return e.source + ", " + (e.changes.length ? e.changes.map(changeText).join("; ") : "no change");
    case "config_rejected": return e.source + ": " + e.errors.join(" ");
    case "config_rolled_back": return "generation " + e.from_generation + " rolled back to " + e.to_generation;
    case "canary_passed": return e.pools.join(", ") + " watched for " + (e.window_ms / 1000).toFixed(0) + " s, nothing caused";
    case "canary_extended": return "too few requests to judge yet: " + e.traffic.map((t) => t.pool + " " + t.requests + " of " + t.needed).join(", ");
    case "canary_ended": return "not judged: " + e.reason;
    case "config_rollback_failed": return "rolling generation " + e.from_generation + " back to " + e.to_generation + " failed: " + e.reason + (e.retrying ? "; retrying" : "; given up");
    case "health_transition": return e.pool + "/" + e.backend + (e.healthy ? " healthy" : " unhealthy") + ": " + e.reason;
    case "ejected": return e.pool + "/" + e.backend + ": " + e.reason;
    case "returned": return e.pool + "/" + e.backend;
    case "panic_mode": return e.pool + (e.entered ? " entered" : " left") + " panic mode";
    case "alert_fired": case "alert_resolved":
      return e.evidence.pool + "/" + e.evidence.backend + " " + e.evidence.kind + (e.evidence.detail ? ": " + e.evidence.detail : "");
    default: return e.incident ? e.incident.cause.sentence : "";
  }
}

function eventItem(e, detailed) {
  const li = h("li", { "data-type": e.type },
    h("span", { class: "when" }, clock(e.ts_ms) + " g" + e.generation),
    h("span", { class: "type " + e.type }, e.type.replace(/_/g, " ")),
    eventSummary(e));
  if (detailed) {
    const lines = [
      ...(e.findings || []).map((f) => f.severity + " " + f.rule + " at " + f.location + ": " + f.message + (f.allowed ? " (allowed: " + f.allowed + ")" : "")),
      ...(e.predicted || []).map((p) => "predicted " + p.pool + "/" + p.backend + ": " + fixed(p.from_pct, 1) + "% → " + fixed(p.to_pct, 1) + "%"),
      ...(e.overrides || []),
      ...(e.evidence && Array.isArray(e.evidence) ? e.evidence.map((v) => "evidence: " + v.backend + " " + v.kind + " " + pct(v.observed) + " vs " + pct(v.expected)) : []),
    ];
    if (lines.length) li.append(h("ul", { class: "detail" }, lines.map((l) => h("li", null, l))));
  }
  return li;
}

function renderJournal() {
  const newest = state.journal.slice().reverse();
  document.getElementById("guard").replaceChildren(
    ...newest.filter((e) => GUARD_TYPES.includes(e.type)).slice(0, 50).map((e) => eventItem(e, true)));
  document.getElementById("timeline").replaceChildren(...newest.slice(0, 200).map((e) => eventItem(e, false)));
}

async function pollJournal() {
  const last = state.journal.length ? state.journal[state.journal.length - 1].ts_ms : 0;
  const j = await api("journal" + (last ? "?from_ms=" + last : ""));
  for (const e of j.events) {
    const key = JSON.stringify(e);
    if (!state.journalKeys.has(key)) { state.journalKeys.add(key); state.journal.push(e); }
  }
}

async function pollHistory() {
  const last = state.history.length ? state.history[state.history.length - 1].ts_ms : -1;
  const r = await api("history?from_ms=" + (last + 1));
  state.history.push(...r.points);
  const cutoff = Date.now() - KEEP_MS;
  while (state.history.length && state.history[0].ts_ms < cutoff) state.history.shift();
}

async function poll() {
  const pill = document.getElementById("state");
  try {
    const [status, alerts] = await Promise.all([api("status"), api("alerts"), pollHistory(), pollJournal()]);
    const latest = state.history[state.history.length - 1];
    document.getElementById("pools").replaceChildren(...status.pools.map((p) => {
      const points = state.history.flatMap((pt) => {
        const q = pt.pools.find((q) => q.pool === p.name);
        return q ? [{ ...q, ts_ms: pt.ts_ms }] : [];
      });
      return renderPool(p, latest && latest.pools.find((q) => q.pool === p.name), points);
    }));
    renderIncidents(alerts);
    renderJournal();
    document.getElementById("summary").textContent = "generation " + status.generation + " · " +
      status.listeners.map((l) => l.name + " " + l.address).join(", ") + " · updated " + clock(Date.now());
    pill.textContent = "live";
    pill.className = "pill live";
  } catch (err) {
    if (err.message === "unauthorized") {
      document.getElementById("main").hidden = true;
      document.getElementById("login").hidden = false;
      if (sessionStorage.getItem("tango-token")) {
        document.getElementById("login-error").textContent = "That token was not accepted.";
      }
      return; // polling resumes on sign-in
    }
    pill.textContent = "unreachable";
    pill.className = "pill down";
  }
  setTimeout(poll, POLL_MS);
}

function setUpLogin() {
  document.getElementById("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("tango-token", document.getElementById("token").value);
    document.getElementById("login").hidden = true;
    document.getElementById("main").hidden = false;
    poll();
  });
}

takeTokenFromUrl();
setUpLogin();
poll();
