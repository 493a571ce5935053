#!/usr/bin/env python3
"""Browser (WebRTC) against phone (SIP) calls to the demo bank agent, side
by side on one server: the same question (the Piper voice), ROUNDS times
each, alternating. For each call the turn record's first_rtp_ms (the
answer's first audio after the caller's last voiced audio) is read from
the API; the table gives p50 and p95 per channel and the difference of the
p50s. The talk page's and each console page's first load (Navigation
Timing, and when the console page showed its data) and their bytes over
the wire are printed too (`--pages-only`: only those, after one SIP call). Chromium is driven through chromedriver's
W3C WebDriver API (plain HTTP + JSON)."""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

QUESTION = "Where is the Downtown branch?"
API = "http://127.0.0.1:8080"
SIP_TARGET = "sip:demo@127.0.0.1:5060"
# The callers (Chromium and `voxline call`) run at this niceness: on a
# machine shared with the server they take only the CPU it leaves, as
# callers on other machines would (0: the same priority as the server).
CALLER_NICE = int(os.environ.get("CALLER_NICE", "0"))


CALLER_SCHED = os.environ.get("CALLER_SCHED", "")


def niced(argv):
    """The callers' command: at CALLER_NICE, or (CALLER_SCHED=idle) under
    SCHED_IDLE, run only when the server leaves a core idle: the nearest
    this one machine comes to the caller's own computer."""
    if CALLER_SCHED == "idle":
        argv = ["chrt", "--idle", "0"] + argv
    return ["nice", "-n", str(CALLER_NICE)] + argv if CALLER_NICE else argv


def http(method, url, body=None, token=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Chromium:
    """One headless Chromium session whose microphone plays `mic` once."""

    def __init__(self, mic, profile):
        self.port = free_port()
        self.driver = subprocess.Popen(niced(["chromedriver", f"--port={self.port}"]),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("chromedriver did not start")
                time.sleep(0.05)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}%noloop",
                "--autoplay-policy=no-user-gesture-required",
                "--allow-loopback-in-peer-connection"]}}}}
        self.session = http("POST", self.base + "/session", caps)["value"]["sessionId"]

    def goto(self, url):
        http("POST", f"{self.base}/session/{self.session}/url", {"url": url}, timeout=60)

    def js(self, script):
        return http("POST", f"{self.base}/session/{self.session}/execute/sync",
                    {"script": script, "args": []})["value"]

    def wait(self, script, within, what):
        deadline = time.time() + within
        while True:
            v = self.js(script)
            if v:
                return v
            if time.time() > deadline:
                raise RuntimeError(f"{what} not seen within {within} s: {self.js('return document.body.innerText')}")
            time.sleep(0.2)

    def close(self):
        try:
            http("DELETE", f"{self.base}/session/{self.session}")
        finally:
            self.driver.kill()
            self.driver.wait()


STAGES = ["end_declared_ms", "asr_final_ms", "llm_first_token_ms", "first_phrase_ms", "tts_first_audio_ms", "first_rtp_ms"]


def first_rtp(call_id, token):
    """The stage times of the call's first answered turn (waits for the record)."""
    deadline = time.time() + 20
    while True:
        turns = http("GET", f"{API}/api/calls/{urllib.request.quote(call_id)}/turns", token=token)
        for rec in turns:
            for t in rec.get("turns", []):
                if (t.get("caller_text") or "").strip() and t.get("first_rtp_ms") is not None:
                    return {s: t.get(s) for s in STAGES}, t["caller_text"]
        if time.time() > deadline:
            raise RuntimeError(f"no answered turn in {call_id}: {turns}")
        time.sleep(0.2)


def sip_call(voxline, wav, work, token):
    before = {r["call_id"] for r in http("GET", f"{API}/api/calls?limit=50", token=token)}
    subprocess.run(niced([voxline, "call", SIP_TARGET, "--play", wav, "--after-quiet-ms", "2500",
                          "--hangup-after-reply", "--max-seconds", "45"]), cwd=work, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        new = [r for r in http("GET", f"{API}/api/calls?limit=50", token=token)
               if r["call_id"] not in before and r["direction"] == "inbound" and r["channel"] == "sip"]
        if new and new[0]["end_at"] is not None:
            return new[0]["call_id"]
        if time.time() > deadline:
            raise RuntimeError("the SIP call's record did not appear")
        time.sleep(0.2)


def browser_call(mic, work, n, token):
    b = Chromium(mic, os.path.join(work, f"profile-{n}"))
    try:
        b.goto(f"{API}/talk/demo#token={token}&autostart=1")
        b.wait("return document.getElementById('status').dataset.state === 'connected'", 20, "connected")
        b.wait("return [...document.querySelectorAll('#transcript li')].map(l => l.className).join(' ')"
               ".includes('caller') && [...document.querySelectorAll('#transcript li')].slice(-1)[0]"
               ".className.includes('agent')", 60, "the answer")
        call_id = b.js("return document.getElementById('call-id').textContent")
        b.js("document.getElementById('hangup').click(); return true")
        b.wait("return document.getElementById('status').dataset.state === 'ended'", 15, "the end")
        return call_id
    finally:
        b.close()


def page_load(work, token):
    """The talk page's first load in a fresh profile: times and bytes."""
    silent = os.path.join(work, "silence.wav")
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", silent, "trim", "0", "1"], check=True)
    b = Chromium(silent, os.path.join(work, "profile-load"))
    try:
        b.goto(f"{API}/talk/demo")
        return b.js("""const n = performance.getEntriesByType('navigation')[0];
            const r = performance.getEntriesByType('resource');
            return {ttfb_ms: n.responseStart, dom_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd,
                    html_bytes: n.transferSize, resources: r.map(x => [x.name.split('/').pop(), x.transferSize]),
                    total_bytes: n.transferSize + r.reduce((a, x) => a + x.transferSize, 0)};""")
    finally:
        b.close()


CONSOLE_PAGES = ["/console", "/console/calls", "/console/calls/{call_id}", "/console/campaigns",
                 "/console/packs", "/console/packs/demo", "/console/load"]


def console_loads(work, token, call_id):
    """Each console page's first load in a fresh profile: navigation times,
    when its data showed (the page's `voxline-ready` mark, after its API
    reads), and every byte over the wire (page, script, style, API)."""
    silent = os.path.join(work, "silence.wav")
    rows = []
    for i, path in enumerate(CONSOLE_PAGES):
        b = Chromium(silent, os.path.join(work, f"profile-console-{i}"))
        try:
            b.goto(f"{API}{path.format(call_id=urllib.request.quote(call_id))}#token={token}")
            b.wait("return !!document.body.dataset.loaded", 15, f"{path} showing its data")
            rows.append((path, b.js("""const n = performance.getEntriesByType('navigation')[0];
                const r = performance.getEntriesByType('resource');
                const m = performance.getEntriesByName('voxline-ready')[0];
                return {dom_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd, ready_ms: m ? m.startTime : null,
                        requests: 1 + r.length, bytes: n.transferSize + r.reduce((a, x) => a + x.transferSize, 0)};""")))
        finally:
            b.close()
    print("\n| console page (fresh profile) | DOM ready ms | load ms | data shown ms | requests | bytes |")
    print("|---|---|---|---|---|---|")
    for path, v in rows:
        print(f"| {path} | {v['dom_ms']:.0f} | {v['load_ms']:.0f} | {v['ready_ms']:.0f} | {v['requests']} | {v['bytes']:,} |")
    return rows


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def report(got):
    """Prints the side-by-side tables; returns browser p50 - phone p50."""
    print()
    print("| channel | calls | first audio p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|---|")
    for channel, turns in got.items():
        xs = [t["first_rtp_ms"] for t in turns]
        print(f"| {channel} | {len(xs)} | {pct(xs, 0.5):.0f} | {pct(xs, 0.95):.0f} | {statistics.mean(xs):.0f} |")
    print("\nstage p50s, ms after the caller's last voiced audio:\n")
    print("| channel | " + " | ".join(s[:-3] for s in STAGES) + " |")
    print("|---|" + "---|" * len(STAGES))
    for channel, turns in got.items():
        cells = [f"{pct([t[s] for t in turns if t[s] is not None], 0.5):.0f}" for s in STAGES]
        print(f"| {channel} | " + " | ".join(cells) + " |")
    diff = pct([t["first_rtp_ms"] for t in got["webrtc"]], 0.5) - pct([t["first_rtp_ms"] for t in got["sip"]], 0.5)
    print(f"\nbrowser p50 - phone p50 = {diff:+.0f} ms (target: at most +50 ms)")
    return diff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxline", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--pages-only", action="store_true", help="only the pages' first loads (after one SIP call)")
    a = ap.parse_args()
    token = open(a.token).read().strip()
    said = os.path.join(a.work, "question.wav")
    subprocess.run([a.voxline, "say", QUESTION, "--out", said], check=True, stdout=subprocess.DEVNULL)
    # The browser's microphone: the question after the greeting and the
    # recording notice (~7 s after the connection), then silence.
    mic = os.path.join(a.work, "mic.wav")
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", os.path.join(a.work, "lead.wav"), "trim", "0", "9.5"], check=True)
    subprocess.run(["sox", os.path.join(a.work, "lead.wav"), said, os.path.join(a.work, "lead.wav"), mic], check=True)
    load = page_load(a.work, token)
    if a.pages_only:
        console_loads(a.work, token, sip_call(a.voxline, said, a.work, token))
        print(f"\ntalk page, first load in a fresh profile: {json.dumps(load)}")
        return
    got = {"sip": [], "webrtc": []}
    for n in range(a.rounds):
        for channel in ("sip", "webrtc"):
            call_id = sip_call(a.voxline, said, a.work, token) if channel == "sip" else browser_call(mic, a.work, n, token)
            stages, heard = first_rtp(call_id, token)
            got[channel].append(stages)
            print(f"round {n + 1} {channel:6} first audio {stages['first_rtp_ms']:7.0f} ms after the question's end (heard: {heard!r})", flush=True)
    print(f"\ncallers' niceness: {CALLER_NICE}, scheduling: {CALLER_SCHED or 'normal'}")
    diff = report(got)
    console_loads(a.work, token, call_id)
    print(f"\ntalk page, first load in a fresh profile: {json.dumps(load)}")
    sys.exit(0 if diff <= 50 else 1)


if __name__ == "__main__":
    main()
