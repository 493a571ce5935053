// The operators' console: live calls (pushed over /api/live/socket), the
// call history (GET /api/calls with filters) and one call's page (record,
// recording, transcript aligned to it, per-turn stage waterfall, flow
// steps, quality). The API token is kept in this tab (sessionStorage).
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "voxline-token";
const hashParams = new URLSearchParams(location.hash.slice(1));
if (hashParams.get("token")) {
  sessionStorage.setItem(TOKEN_KEY, hashParams.get("token"));
  history.replaceState(null, "", location.pathname + location.search);
}
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

// The view shows its data: said on the page (tests wait for it) and as a
// performance mark (load tests read when it came).
function ready(view) {
  if (!document.body.dataset.loaded) performance.mark("voxline-ready");
  document.body.dataset.loaded = view;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c);
  }
  return e;
}

function showError(message) {
  const e = $("error");
  e.className = "error";
  e.textContent = message;
  e.hidden = !message;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || "HTTP " + status);
    this.status = status;
    this.field = body && body.field;
  }
}

async function api(path, options) {
  const r = await fetch(path, {
    ...(options || {}),
    headers: { Authorization: "Bearer " + token(), ...((options && options.headers) || {}) },
  });
  if (r.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("The token was refused: sign in again.");
    throw new ApiError(401, null);
  }
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(r.status, body);
  }
  return r;
}
const getJson = async (path) => (await api(path)).json();
// POSTs `body` as JSON; the response.
const postJson = (path, body) => api(path, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

function showLogin(message) {
  $("login").hidden = false;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
  showError(message || "");
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  location.reload();
});

const pad = (n) => String(n).padStart(2, "0");
function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return Math.floor(s / 60) + ":" + pad(s % 60);
}
function when(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}
const party = (r) => (r.direction === "outbound" ? r.to_uri : r.from_uri) || "";
const callLink = (id, text) => el("a", { href: "/console/calls/" + encodeURIComponent(id) }, text);

function line(speaker, text, atMs) {
  return el("li", { class: "line " + speaker, "data-start": String(atMs ?? "") },
    atMs === undefined ? null : el("span", { class: "at" }, clock(atMs)),
    el("span", { class: "who" }, speaker === "agent" ? "Agent" : speaker === "caller" ? "Caller" : speaker),
    el("span", { class: "said" }, text));
}

// ---- the header: agent routes with a talk page --------------------------
async function loadRoutes() {
  const packs = await getJson("/api/packs");
  const links = $("talk-links");
  const select = document.querySelector("#filters select[name=route]");
  for (const p of packs) {
    if (p.webrtc) {
      links.append(el("a", { href: "/talk/" + encodeURIComponent(p.route), title: "Talk to the agent from this browser" }, "Talk: " + p.route));
    }
    if (select) select.append(el("option", { value: p.route }, p.route));
  }
  return packs;
}

// ---- live calls ------------------------------------------------------------
function liveView() {
  const calls = new Map();
  const key = (c) => c.call_id + "|" + c.direction;
  const box = $("live-calls");

  function count() {
    $("live-empty").hidden = calls.size > 0;
    $("live-count").textContent = calls.size === 1 ? "1 call up" : calls.size + " calls up";
  }

  function add(call, lines) {
    const k = key(call);
    const transcript = el("ol", { class: "transcript" });
    const hang = el("button", { type: "button", class: "hangup" }, "Hang up");
    const duration = el("span", { class: "duration" }, "0:00");
    const card = el("article", { class: "card live", "data-call": call.call_id },
      el("div", { class: "row" },
        el("b", { class: "party" }, call.party || "(unknown)"),
        el("span", { class: "tag" }, call.direction),
        el("span", { class: "tag" }, call.route),
        el("span", { class: "tag" }, call.channel),
        duration, hang),
      transcript,
      el("p", { class: "meta" }, "Call ", callLink(call.call_id, call.call_id)));
    hang.addEventListener("click", async () => {
      hang.disabled = true;
      try {
        await api("/api/calls/" + encodeURIComponent(call.call_id) + "/hangup", { method: "POST" });
        hang.textContent = "Hanging up…";
      } catch (e) {
        hang.disabled = false;
        showError("Could not hang up: " + e.message);
      }
    });
    for (const l of lines || []) transcript.append(line(l.speaker, l.text));
    calls.set(k, { call, card, transcript, duration });
    box.append(card);
    count();
  }

  function onEvent(m) {
    if (m.type === "calls") {
      calls.clear();
      box.replaceChildren();
      for (const c of m.calls) add(c, c.lines);
      count();
    } else if (m.type === "started") {
      add(m.call, []);
    } else if (m.type === "line") {
      const c = calls.get(m.call_id + "|" + m.direction);
      if (c) {
        c.transcript.append(line(m.line.speaker, m.line.text));
        c.transcript.lastChild.scrollIntoView({ block: "nearest" });
      }
    } else if (m.type === "ended") {
      const k = m.call_id + "|" + m.direction;
      const c = calls.get(k);
      if (c) { c.card.remove(); calls.delete(k); }
      count();
    } else if (m.type === "error") {
      showError(m.message);
    }
  }

  function state(text, s) {
    $("live-state").textContent = text;
    $("live-state").dataset.state = s;
  }

  let retry = 1000;
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/live/socket");
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: token() }));
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "calls") { state("live", "connected"); retry = 1000; ready("live"); }
      onEvent(m);
    };
    ws.onclose = () => {
      state("reconnecting…", "failed");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }
  connect();
  setInterval(() => {
    const now = Date.now();
    for (const c of calls.values()) c.duration.textContent = clock(now - c.call.since);
  }, 1000);
}

// ---- history ---------------------------------------------------------------
function callsView() {
  const form = $("filters");
  const fromQuery = new URLSearchParams(location.search);
  for (const [k, v] of fromQuery) {
    if (form.elements[k]) form.elements[k].value = v;
  }
  async function search() {
    const q = new URLSearchParams();
    for (const e of form.elements) {
      if (!e.name || !e.value) continue;
      if (e.name === "since") q.set("since", String(new Date(e.value + "T00:00:00").getTime()));
      else if (e.name === "until") q.set("until", String(new Date(e.value + "T00:00:00").getTime() + 86400000));
      else q.set(e.name, e.value);
    }
    q.set("limit", "200");
    const shown = new URLSearchParams();
    for (const e of form.elements) if (e.name && e.value) shown.set(e.name, e.value);
    history.replaceState(null, "", location.pathname + (shown.toString() ? "?" + shown : ""));
    const rows = await getJson("/api/calls?" + q);
    const body = document.querySelector("#calls-table tbody");
    body.replaceChildren(...rows.map((r) => el("tr", { "data-call": r.call_id },
      el("td", {}, callLink(r.call_id, when(r.invite_at))),
      el("td", {}, r.direction),
      el("td", {}, party(r)),
      el("td", {}, r.route || "—"),
      el("td", {}, r.channel),
      el("td", {}, r.answer_at && r.end_at ? clock(r.end_at - r.answer_at) : "—"),
      el("td", {}, r.end_reason || r.status),
      el("td", {}, r.outcome || ""))));
    $("calls-count").textContent = rows.length === 1 ? "1 call" : rows.length + " calls" + (rows.length === 200 ? " (the newest 200)" : "");
    ready("calls");
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    search().catch((e) => showError(e.message));
  });
  return search();
}

// ---- one call --------------------------------------------------------------
const STAGES = ["end_declared", "asr_final", "llm_first_token", "first_phrase", "tts_first_audio", "first_rtp"];

function waterfall(turns) {
  const box = $("waterfall");
  if (!turns.length) {
    box.replaceChildren(el("p", { class: "meta" }, "No agent turns were timed on this call."));
    return;
  }
  const top = Math.max(1, ...turns.flatMap((t) => STAGES.map((s) => t[s + "_ms"] || 0)));
  box.replaceChildren(...turns.map((t) => {
    const bars = el("div", { class: "bars" });
    let last = 0;
    for (const s of STAGES) {
      const v = t[s + "_ms"];
      if (v === null || v === undefined) continue;
      const from = Math.max(0, last);
      const to = Math.max(from, v);
      bars.append(el("span", {
        class: "bar-part " + s,
        title: s.replace(/_/g, " ") + ": " + Math.round(v) + " ms",
      }));
      const part = bars.lastChild;
      part.style.left = (100 * from / top) + "%";
      part.style.width = Math.max(0.5, 100 * (to - from) / top) + "%";
      last = to;
    }
    if (t.barge_in_onset_ms !== null && t.barge_in_onset_ms !== undefined) {
      const mark = el("span", { class: "barge", title: "the caller talked over the reply at " + Math.round(t.barge_in_onset_ms) + " ms" });
      mark.style.left = Math.min(100, 100 * Math.max(0, t.barge_in_onset_ms) / top) + "%";
      bars.append(mark);
    }
    const first = t.first_rtp_ms ?? t.tts_first_audio_ms;
    return el("div", { class: "turn", "data-turn": String(t.seq) },
      el("div", { class: "turn-head" },
        el("b", {}, "Turn " + t.seq), " ",
        el("span", { class: "tag" }, t.intent),
        t.barge_in_onset_ms != null ? el("span", { class: "tag bad" }, "cut off") : null,
        el("span", { class: "meta" }, first != null ? " first audio " + Math.round(first) + " ms" : " no audio")),
      el("div", { class: "asked" }, "“" + t.caller_text + "”"),
      bars);
  }));
}

function quality(qa, summary) {
  const box = $("quality");
  const parts = [];
  if (qa && qa.state === "done") {
    parts.push(el("p", {}, el("b", {}, "Score " + Math.round(qa.score) + " / 100 "),
      el("span", { class: "tag " + (qa.passed ? "good" : "bad") }, qa.passed ? "passed" : "failed"),
      " ", el("span", { class: "meta" }, qa.scorecard)));
    const items = (qa.result && qa.result.items) || [];
    if (items.length) {
      parts.push(el("ul", { class: "items" }, ...items.map((i) =>
        el("li", { class: i.verdict }, el("b", {}, i.id + ": " + i.verdict), " ", i.why || ""))));
    }
  } else if (qa && qa.state !== "none") {
    parts.push(el("p", { class: "meta" }, "Quality inspection: " + qa.state + (qa.error ? " (" + qa.error + ")" : "")));
  }
  if (summary && summary.summary) {
    parts.push(el("p", {}, el("b", {}, "Summary: "), summary.summary.summary || ""));
  }
  if (parts.length) box.replaceChildren(...parts);
}

async function recording(callId, record) {
  const player = $("player");
  if (!record.recording_path) {
    player.hidden = true;
    $("no-recording").hidden = false;
    return;
  }
  try {
    const r = await api("/api/calls/" + encodeURIComponent(callId) + "/recording?record=" + encodeURIComponent(record.id));
    player.src = URL.createObjectURL(await r.blob());
  } catch (e) {
    player.hidden = true;
    $("no-recording").hidden = false;
    $("no-recording").textContent = "The recording cannot be played: " + e.message;
  }
}

// The business tools a call called: when, arguments (secret digits come
// masked from the server), and what came back.
function toolsCalled(tools) {
  document.querySelector("#tools tbody").replaceChildren(...tools.map((t) => el("tr", { "data-tool": t.tool, class: t.ok ? "ok" : "failed" },
    el("td", {}, clock(t.at_ms)),
    el("td", {}, t.tool),
    el("td", {}, Object.entries(t.args).map(([k, v]) => k + " = " + v).join(", ") || "—"),
    el("td", {}, t.ok ? "answered" + (t.took_ms === null ? "" : " in " + t.took_ms + " ms") : "failed: " + (t.error || "no reason given")))));
  $("tools").hidden = tools.length === 0;
  $("no-tools").hidden = tools.length > 0;
}

async function callView(callId) {
  $("call-title").textContent = callId;
  const enc = encodeURIComponent(callId);
  const [records, transcripts, turns, flows, tools, qas, summaries] = await Promise.all([
    getJson("/api/calls/" + enc),
    getJson("/api/calls/" + enc + "/transcript"),
    getJson("/api/calls/" + enc + "/turns"),
    getJson("/api/calls/" + enc + "/flow"),
    getJson("/api/calls/" + enc + "/tools"),
    getJson("/api/calls/" + enc + "/qa"),
    getJson("/api/calls/" + enc + "/summary"),
  ]);
  // A call the server placed to itself has two records: its answered side first.
  const record = records.find((r) => r.direction === "inbound") || records[0];
  const of = (list) => list.find((x) => x.id === record.id) || {};
  const facts = [
    ["Started", when(record.invite_at)],
    ["Direction", record.direction],
    ["From", record.from_uri],
    ["To", record.to_uri],
    ["Route", record.route || "—"],
    ["Channel", record.channel],
    ["Codec", record.codec || "—"],
    ["Length", record.answer_at && record.end_at ? clock(record.end_at - record.answer_at) : "—"],
    ["Ended", (record.end_reason || record.status) + (record.hangup_by ? " by " + record.hangup_by : "")],
    ["Outcome", record.outcome || "—"],
    ["Packets", record.packets_received + " in, " + record.packets_sent + " out, " + record.packets_lost + " lost"],
  ];
  $("call-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "—")]));
  const lines = of(transcripts).lines || [];
  const list = $("call-transcript");
  list.replaceChildren(...lines.map((l) => line(l.speaker, l.text, l.start_ms)));
  // Aligned to the recording: a line's time seeks the player; the line
  // being played is marked.
  const player = $("player");
  list.addEventListener("click", (ev) => {
    const li = ev.target.closest("li");
    if (li && li.dataset.start !== "" && player.src) {
      player.currentTime = Number(li.dataset.start) / 1000;
      player.play().catch(() => {});
    }
  });
  player.addEventListener("timeupdate", () => {
    const now = player.currentTime * 1000;
    lines.forEach((l, i) => list.children[i].classList.toggle("playing", now >= l.start_ms && now < l.end_ms));
  });
  waterfall(of(turns).turns || []);
  toolsCalled(of(tools).tools || []);
  const steps = of(flows).steps || [];
  $("flow").replaceChildren(...(steps.length ? steps.map((s) => el("li", {}, el("b", {}, s.flow + " › " + s.step), " ", el("span", { class: "meta" }, "at " + clock(s.at_ms) + " (" + s.via + ")"))) : [el("li", { class: "meta" }, "No flow steps on this call.")]));
  quality(of(qas), of(summaries));
  await recording(callId, record);
  ready("call");
}

// ---- latency and load over time ----------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// A line chart of `series` ([{name, points: [[t, v|null]]}]) from `from` to `to` (ms).
function chart(box, series, from, to, unit) {
  // Drawn at the box's own width, so the labels keep their size.
  const W = Math.max(320, Math.round(box.clientWidth) || 1000), H = 220, L = 56, B = 24, T = 8;
  const values = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null));
  // A top that divides into four round steps (whole calls, 100s of ms).
  const step = unit ? 100 : 1;
  const top = 4 * step * Math.max(1, Math.ceil(Math.max(0, ...values) * 1.1 / (4 * step)));
  const x = (t) => L + (W - L - 8) * (t - from) / Math.max(1, to - from);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img" });
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4;
    g.append(svg("line", { x1: L, x2: W - 8, y1: y(v), y2: y(v), class: "grid" }));
    const label = svg("text", { x: L - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    label.textContent = Math.round(v) + unit;
    g.append(label);
  }
  for (const [t, anchor] of [[from, "start"], [to, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 6, class: "axis", "text-anchor": anchor });
    label.textContent = when(t).slice(11, 16);
    g.append(label);
  }
  for (const s of series) {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null) { pen = false; continue; }
      d += (pen ? " L" : " M") + x(t).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
      g.append(svg("circle", { cx: x(t), cy: y(v), r: 2.5, class: "dot " + s.name }));
    }
    if (d) g.append(svg("path", { d, class: "series " + s.name }));
  }
  box.replaceChildren(g);
}

function loadView() {
  const range = $("load-range");
  async function draw() {
    const minutes = Number(range.value);
    const data = await getJson("/api/load?minutes=" + minutes);
    const all = data.samples.concat(data.now.turns > 0 || !data.samples.length ? [data.now] : []);
    const to = Date.now();
    const from = to - minutes * 60000;
    chart($("chart-v2v"), [
      { name: "p50", points: all.map((s) => [s.at, s.v2v_p50_ms]) },
      { name: "p95", points: all.map((s) => [s.at, s.v2v_p95_ms]) },
    ], from, to, " ms");
    chart($("chart-calls"), [{ name: "calls", points: all.map((s) => [s.at, s.calls]) }], from, to, "");
    const turns = all.reduce((n, s) => n + s.turns, 0);
    $("load-now").textContent = data.now.calls + (data.now.calls === 1 ? " call up now, " : " calls up now, ") +
      turns + (turns === 1 ? " turn" : " turns") + " in range";
    ready("load");
  }
  range.addEventListener("change", () => draw().catch((e) => showError(e.message)));
  setInterval(() => draw().catch((e) => showError(e.message)), 10000);
  return draw();
}

// ---- campaigns ---------------------------------------------------------------
const campaignLink = (name) => el("a", { href: "/console/campaigns/" + encodeURIComponent(name) }, name);

async function campaignsView(packs) {
  const rows = await getJson("/api/campaigns");
  document.querySelector("#campaigns-table tbody").replaceChildren(...rows.map((c) => el("tr", { "data-campaign": c.name },
    el("td", {}, campaignLink(c.name)), el("td", {}, c.route), el("td", {}, c.state), el("td", {}, when(c.created_at)))));
  $("campaigns-empty").hidden = rows.length > 0;
  const form = $("new-campaign");
  form.elements.route.replaceChildren(...packs.map((p) => el("option", { value: p.route }, p.route)));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const report = $("upload-report");
    const [days, ...hours] = f.window.value.trim().split(/\s+/);
    const settings = {
      timezone: f.timezone.value.trim(),
      windows: { [days]: hours.join(",") },
      max_calls: Number(f.max_calls.value) || 1,
    };
    if (f.trunk.value.trim()) settings.trunk = f.trunk.value.trim();
    if (f.default_country.value.trim()) settings.default_country = f.default_country.value.trim().toUpperCase();
    try {
      const name = f.name.value.trim();
      await postJson("/api/campaigns", { name, route: f.route.value, settings });
      const csv = f.contacts.files[0];
      const up = await (await api("/api/campaigns/" + encodeURIComponent(name) + "/contacts", {
        method: "POST",
        headers: { "Content-Type": "text/csv" },
        body: await csv.text(),
      })).json();
      sessionStorage.setItem("voxline-upload", JSON.stringify(up));
      location.href = "/console/campaigns/" + encodeURIComponent(name);
    } catch (e) {
      report.textContent = "Not created: " + e.message + (e.field ? " (" + e.field + ")" : "");
      report.classList.add("error");
    }
  });
  ready("campaigns");
}

function uploadNote(up) {
  const parts = [up.added + " contacts added"];
  if (up.merged && up.merged.length) parts.push(up.merged.length + " merged into an earlier line");
  if (up.rejected && up.rejected.length) {
    parts.push(up.rejected.length + " refused: " + up.rejected.map((r) => "line " + r.line + " (" + r.why + ")").join("; "));
  }
  return parts.join(", ");
}

async function campaignView(name) {
  const enc = encodeURIComponent(name);
  $("campaign-name").textContent = name;
  const up = sessionStorage.getItem("voxline-upload");
  if (up) {
    sessionStorage.removeItem("voxline-upload");
    showNote(uploadNote(JSON.parse(up)));
  }
  for (const b of document.querySelectorAll("[data-move]")) {
    b.addEventListener("click", async () => {
      try {
        await api("/api/campaigns/" + enc + "/" + b.dataset.move, { method: "POST" });
        showError("");
        await refresh();
      } catch (e) {
        showError("Could not " + b.dataset.move + ": " + e.message);
      }
    });
  }
  $("results-csv").addEventListener("click", async () => {
    const blob = await (await api("/api/campaigns/" + enc + "/results.csv")).blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: name + "-results.csv" });
    document.body.append(a);
    a.click();
    a.remove();
  });
  async function refresh() {
    const [p, t] = await Promise.all([
      getJson("/api/campaigns/" + enc + "/progress"),
      getJson("/api/campaigns/" + enc + "/timeline?bucket_s=60"),
    ]);
    $("campaign-state").textContent = p.state;
    $("campaign-state").dataset.state = p.state;
    const total = Math.max(1, p.total);
    document.querySelector(".progress .done").style.width = (100 * p.done / total) + "%";
    document.querySelector(".progress .dialing").style.width = (100 * p.dialing / total) + "%";
    $("campaign-progress").textContent = p.done + " of " + p.total + " contacts done, " + p.dialing + " dialling, " +
      p.pending + " waiting; " + p.calls_last_minute + " calls in the last minute" +
      (p.eta_seconds ? ", about " + clock(p.eta_seconds * 1000) + " left" : "");
    for (const b of document.querySelectorAll("[data-move]")) {
      const allowed = { start: ["draft"], pause: ["running"], resume: ["paused"], stop: ["draft", "running", "paused"] };
      b.disabled = !allowed[b.dataset.move].includes(p.state);
    }
    const disp = Object.entries(p.by_disposition);
    document.querySelector("#dispositions tbody").replaceChildren(...(disp.length
      ? disp.map(([k, v]) => el("tr", { "data-disposition": k }, el("td", {}, k), el("td", {}, String(v))))
      : [el("tr", {}, el("td", { class: "meta" }, "No contact is done yet."))]));
    const results = [...new Set(t.spans.flatMap((s) => Object.keys(s.results)))].sort();
    const to = Date.now();
    const from = t.spans.length ? Math.min(t.spans[0].at, to - 10 * 60000) : to - 10 * 60000;
    chart($("chart-attempts"), results.map((r, i) => ({
      name: "r" + (i % 6),
      points: t.spans.map((s) => [s.at, s.results[r] || 0]),
    })), from, to, "");
    $("attempts-legend").replaceChildren(...results.map((r, i) => el("span", {}, el("span", { class: "swatch r" + (i % 6) }), " " + r + " ")));
    ready("campaign");
    document.body.dataset.campaignState = p.state;
  }
  await refresh();
  setInterval(() => refresh().catch((e) => showError(e.message)), 3000);
}

function showNote(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = !text;
  e.className = "note";
}

// ---- packs -------------------------------------------------------------------
function packsView(packs) {
  document.querySelector("#packs-table tbody").replaceChildren(...packs.map((p) => el("tr", { "data-route": p.route },
    el("td", {}, el("a", { href: "/console/packs/" + encodeURIComponent(p.route) }, p.route)),
    el("td", {}, p.dir), el("td", {}, String(p.sentences)), el("td", {}, String(p.curated)),
    el("td", {}, when(p.loaded_at_ms)), el("td", {}, String(p.reloads)), el("td", {}, p.refused || "—"))));
  ready("packs");
}

function fileBox(name, shown) {
  return el("details", {}, el("summary", {}, name + (shown.cut ? " (first 256 KiB)" : "")), el("pre", {}, shown.text));
}

async function packView(route) {
  const enc = encodeURIComponent(route);
  $("pack-route").textContent = route;
  async function refresh() {
    const p = await getJson("/api/packs/" + enc);
    $("pack-dir").textContent = p.dir + " · " + p.sentences + " knowledge sentences · loaded " + when(p.loaded_at_ms);
    $("pack-refused").hidden = !p.refused;
    $("pack-refused").textContent = p.refused ? "The last reload was refused: " + p.refused : "";
    $("knowledge").replaceChildren(...p.knowledge.map((k) => fileBox(k.file, k)));
    $("rules").replaceChildren(p.rules ? fileBox("rules.toml", p.rules) : el("p", { class: "meta" }, "No rules file."));
    const curated = p.curated_answers || [];
    document.querySelector("#curated tbody").replaceChildren(...(curated.length
      ? curated.map((c) => el("tr", {}, el("td", {}, c.asked.join(" / ")), el("td", {}, c.say), el("td", { class: "meta" }, c.by || "")))
      : [el("tr", {}, el("td", { class: "meta" }, "None yet: mark an answer wrong in the test chat."))]));
  }
  $("pack-reload").addEventListener("click", async () => {
    try {
      await api("/api/packs/" + enc + "/reload", { method: "POST" });
      showNote("Reloaded.");
      await refresh();
    } catch (e) { showError("Not reloaded: " + e.message); }
  });
  const chatList = $("chat");
  const form = $("chat-form");
  function teachForm(asked, said, li) {
    const box = el("form", { class: "teach" },
      el("label", {}, "The right answer ", el("textarea", { name: "answer", required: true, rows: 2, cols: 40 })),
      el("button", { type: "submit", class: "primary" }, "Save the correction"));
    box.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await postJson("/api/packs/" + enc + "/corrections", { asked, said, answer: box.elements.answer.value.trim() });
        box.replaceWith(el("p", { class: "note" }, "Corrected: the pack was reloaded with it."));
        await refresh();
      } catch (e) {
        box.append(el("p", { class: "error" }, "Not saved: " + e.message));
      }
    });
    li.append(box);
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const said = form.elements.said.value.trim();
    if (!said) return;
    const button = form.querySelector("button");
    button.disabled = true;
    chatList.append(line("caller", said));
    try {
      const r = await (await postJson("/api/packs/" + enc + "/chat", { said })).json();
      for (const l of r.reply) {
        const li = line(l.kind === "note" ? "system" : "agent", l.text);
        li.classList.add(l.kind);
        if (l.kind === "answer" || l.kind === "say") {
          const wrong = el("button", { type: "button", class: "small wrong" }, "Wrong…");
          const good = el("button", { type: "button", class: "small good" }, "Good");
          wrong.addEventListener("click", () => { wrong.disabled = true; teachForm(said, l.text, li); });
          good.addEventListener("click", async () => {
            try {
              await postJson("/api/packs/" + enc + "/good", { asked: said, said: l.text });
              good.textContent = "Marked good";
              good.disabled = true;
            } catch (e) { showError("Not marked: " + e.message); }
          });
          li.append(el("span", { class: "marks" }, good, wrong));
        }
        chatList.append(li);
      }
      chatList.dataset.answers = String(chatList.querySelectorAll(".line.answer, .line.say").length);
      chatList.dataset.replies = String(Number(chatList.dataset.replies || 0) + 1);
    } catch (e) {
      showError("The agent did not answer: " + e.message);
    } finally {
      button.disabled = false;
    }
  });
  await refresh();
  ready("pack");
}

// ---- start -----------------------------------------------------------------
async function start() {
  if (!token()) {
    showLogin();
    return;
  }
  const parts = location.pathname.split("/").filter(Boolean);
  const view = parts[1] === "calls" ? (parts[2] ? "call" : "calls")
    : parts[1] === "campaigns" ? (parts[2] ? "campaign" : "campaigns")
    : parts[1] === "packs" ? (parts[2] ? "pack" : "packs")
    : parts[1] === "load" ? "load" : "live";
  for (const a of document.querySelectorAll(".nav a[data-view]")) {
    a.classList.toggle("here", a.dataset.view === ({ call: "calls", campaign: "campaigns", pack: "packs" }[view] || view));
  }
  $("view-" + view).hidden = false;
  try {
    const packs = await loadRoutes();
    if (view === "live") liveView();
    else if (view === "calls") await callsView();
    else if (view === "load") await loadView();
    else if (view === "campaigns") await campaignsView(packs);
    else if (view === "campaign") await campaignView(decodeURIComponent(parts[2]));
    else if (view === "packs") packsView(packs);
    else if (view === "pack") await packView(decodeURIComponent(parts[2]));
    else await callView(decodeURIComponent(parts.slice(2).join("/")));
  } catch (e) {
    if (e.status !== 401) showError(e.message);
  }
}
start();
