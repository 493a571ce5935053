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
  e.textContent = message;
  e.hidden = !message;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || "HTTP " + status);
    this.status = status;
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
      if (m.type === "calls") { state("live", "connected"); retry = 1000; }
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
    document.body.dataset.loaded = "calls";
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

async function callView(callId) {
  $("call-title").textContent = callId;
  const enc = encodeURIComponent(callId);
  const [records, transcripts, turns, flows, qas, summaries] = await Promise.all([
    getJson("/api/calls/" + enc),
    getJson("/api/calls/" + enc + "/transcript"),
    getJson("/api/calls/" + enc + "/turns"),
    getJson("/api/calls/" + enc + "/flow"),
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
  const steps = of(flows).steps || [];
  $("flow").replaceChildren(...(steps.length ? steps.map((s) => el("li", {}, el("b", {}, s.flow + " › " + s.step), " ", el("span", { class: "meta" }, "at " + clock(s.at_ms) + " (" + s.via + ")"))) : [el("li", { class: "meta" }, "No flow steps on this call.")]));
  quality(of(qas), of(summaries));
  await recording(callId, record);
  document.body.dataset.loaded = "call";
}

// ---- start -----------------------------------------------------------------
async function start() {
  if (!token()) {
    showLogin();
    return;
  }
  const parts = location.pathname.split("/").filter(Boolean);
  const view = parts[1] === "calls" ? (parts[2] ? "call" : "calls") : "live";
  for (const a of document.querySelectorAll(".nav a[data-view]")) {
    a.classList.toggle("here", a.dataset.view === (view === "call" ? "calls" : view));
  }
  $("view-" + view).hidden = false;
  try {
    await loadRoutes();
    if (view === "live") { liveView(); document.body.dataset.loaded = "live"; }
    else if (view === "calls") await callsView();
    else await callView(decodeURIComponent(parts.slice(2).join("/")));
  } catch (e) {
    if (e.status !== 401) showError(e.message);
  }
}
start();
