// The "talk to the agent" page: a WebRTC call to one agent route.
// Signalling over /api/talk/<route> (see http/talk.rs): hello with the API
// token, ready (ICE servers), offer with gathered candidates, then answer,
// connected, transcript lines and the end. Keys go in-band (RFC 4733).
"use strict";

const route = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const params = new URLSearchParams(location.hash.slice(1));
const $ = (id) => document.getElementById(id);
let pc = null;
let ws = null;
let sender = null;
let ended = false;

$("route").textContent = route;
const tokenInput = $("token");
tokenInput.value = params.get("token") || sessionStorage.getItem("voxline-token") || "";
$("token-form").hidden = tokenInput.value !== "";

function status(text, state) {
  const s = $("status");
  s.textContent = text;
  s.dataset.state = state;
}

function fail(message) {
  const e = $("error");
  e.textContent = message;
  e.hidden = false;
  status("Call failed", "failed");
  finish();
}

function addLine(speaker, text) {
  const li = document.createElement("li");
  li.className = "line " + speaker;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = speaker === "agent" ? "Agent" : speaker === "caller" ? "You" : speaker;
  const said = document.createElement("span");
  said.className = "said";
  said.textContent = text;
  li.append(who, said);
  $("transcript").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function finish() {
  ended = true;
  $("call").disabled = false;
  $("hangup").disabled = true;
  if (pc) { pc.close(); pc = null; }
  if (ws && ws.readyState <= 1) { ws.close(); }
  ws = null;
}

// Waits until the connection's candidates are gathered (at most 3 s: a
// STUN server that does not answer must not hold the call up).
function gathered(conn) {
  if (conn.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (conn.iceGatheringState === "complete") resolve(); };
    conn.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

async function call() {
  const token = tokenInput.value.trim();
  if (!token) { $("token-form").hidden = false; fail("An API token is needed to call."); return; }
  sessionStorage.setItem("voxline-token", token);
  $("error").hidden = true;
  $("transcript").replaceChildren();
  $("call").disabled = true;
  ended = false;
  status("Getting the microphone…", "connecting");
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
  } catch (e) {
    fail("No microphone: " + e.message);
    return;
  }
  status("Connecting…", "connecting");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(scheme + "//" + location.host + "/api/talk/" + encodeURIComponent(route));
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token }));
  ws.onclose = () => { if (!ended) { fail("The server closed the connection."); } };
  ws.onmessage = async (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { fail("Bad message from the server."); return; }
    if (m.type === "ready") {
      pc = new RTCPeerConnection({ iceServers: m.ice_servers || [] });
      pc.ontrack = (t) => { $("voice").srcObject = t.streams[0] || new MediaStream([t.track]); };
      pc.onconnectionstatechange = () => {
        if (pc && (pc.connectionState === "failed")) fail("The media connection failed.");
      };
      const track = mic.getAudioTracks()[0];
      sender = pc.addTrack(track, mic);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await gathered(pc);
      ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }));
    } else if (m.type === "answer") {
      $("call-id").textContent = m.call_id;
      await pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
    } else if (m.type === "connected") {
      status("Connected", "connected");
      $("hangup").disabled = false;
    } else if (m.type === "line") {
      addLine(m.speaker, m.text);
    } else if (m.type === "ended") {
      status("Call ended (" + m.reason + ")", "ended");
      finish();
    } else if (m.type === "error") {
      fail(m.message);
    }
  };
}

$("call").addEventListener("click", call);
$("hangup").addEventListener("click", () => {
  if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "hangup" }));
});
for (const b of document.querySelectorAll("#keypad button")) {
  b.addEventListener("click", () => {
    // Keys pressed while others still play are queued after them.
    if (sender && sender.dtmf && sender.dtmf.canInsertDTMF) {
      sender.dtmf.insertDTMF(sender.dtmf.toneBuffer + b.textContent, 120, 70);
    }
  });
}
if (params.get("autostart") === "1") call();
