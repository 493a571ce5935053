#!/usr/bin/env python3
"""The driver of load-tests/soak.sh: keeps a steady mix of calls on one
`voxline serve` and watches its resources.

Load, for --minutes:
  * agent calls, one after another: `voxline call sip:demo@…` speaks the
    spoken questions q-1.wav… one per turn (--after-quiet-ms) and hangs up
    once the agent answered the last one;
  * media calls: SIPp (load-tests/sipp/uac_soak_media.xml) keeps about
    --media-calls echo calls up, each sending PCMU for --media-seconds.

Samples every 15 s from /proc and /metrics: resident memory, file
descriptors (sockets among them), threads, calls up, and the media clock
(slots started over 1 ms late, frames skipped, longest slot). The idle
baseline is taken after a warm-up (the first agent call and a minute of
media calls, then drained); the end after the load has drained. Every call
is checked in the call records. Exits 1 when a call failed or a resource
did not come back to its level.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

SAMPLE_S = 15
# After the last call: long enough for idle blocking-pool threads to exit
# (10 s), pooled HTTP connections to the tools' service to close (90 s) and
# post-call work (summaries) to finish, so "idle" means the same thing at
# the start and at the end.
SETTLE_S = int(os.environ.get("SOAK_SETTLE_S", "100"))
# Warm-up: the soak's own mix for this long before the idle baseline, so the
# baseline is taken after the server has carried the full load once (its
# pools, caches and allocator arenas at their working size). Run 4 warmed up
# with one agent call and a minute of media calls: its heap rose 54 MiB in
# the first 90 s of load and then stayed level for 28 minutes, which the
# idle-to-idle bound counted as growth.
WARM_S = int(os.environ.get("SOAK_WARM_S", "240"))
# Flat memory: anonymous memory (the heap) at the idle end within 5 % of the
# idle baseline, and the load's last quarter within 2 % of its second
# quarter (medians): a leak grows with the calls served, a settled heap does
# not. (Total RSS is printed too; it also counts the models' file pages.)
IDLE_GROWTH = 0.05
# The server's SQLite pool opens up to this many connections (voxline-store)
# as record writes and API reads overlap, each with the database and its
# WAL open and one worker thread, and keeps them: descriptors and threads may
# grow by what the pool added, nothing else.
STORE_POOL_MAX = 4
LOADED_GROWTH = 0.02


def metrics(token):
    req = urllib.request.Request("http://127.0.0.1:8080/metrics", headers={"Authorization": f"Bearer {token}"})
    out = {}
    with urllib.request.urlopen(req, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("#") or " " not in line:
                continue
            name, value = line.rsplit(" ", 1)
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def api(token, path):
    req = urllib.request.Request(f"http://127.0.0.1:8080{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def proc_sample(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    fds = os.listdir(f"/proc/{pid}/fd")
    sockets = 0
    kinds = {}
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith("socket:"):
            sockets += 1
            target = "socket"
        kinds[target] = kinds.get(target, 0) + 1
    return {
        "kinds": kinds,
        "rss_kib": int(status["VmRSS"].split()[0]),
        # Anonymous memory (the heap): what a leak grows. The rest of RSS
        # is mostly the models' mapped files, whose pages come in as they
        # are first touched.
        "anon_kib": int(status["RssAnon"].split()[0]),
        "threads": int(status["Threads"]),
        "fds": len(fds),
        "sockets": sockets,
    }


class Sampler:
    """Samples the server every SAMPLE_S seconds until stopped."""

    def __init__(self, pid, token):
        self.pid, self.token = pid, token
        self.rows = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def sample(self, phase):
        m = metrics(self.token)
        row = proc_sample(self.pid)
        row.update(
            t=time.monotonic() - self.t0,
            phase=phase,
            calls=m.get("voxline_calls_active", 0),
            slots=m.get("voxline_media_clock_slots_total", 0),
            late=m.get("voxline_media_clock_late_slots_total", 0),
            skipped=m.get("voxline_media_clock_skipped_frames_total", 0),
            max_slot_us=m.get("voxline_media_clock_max_slot_us", 0),
            pending=m.get("voxline_records_pending", 0),
        )
        self.rows.append(row)
        return row

    def run(self, phase_of):
        while not self.stop.wait(SAMPLE_S):
            self.sample(phase_of())


def wait_idle(sampler, phase, within_s=120):
    """Waits until no call is up and no record write is pending, then
    SETTLE_S more (sampling on the way); returns the last sample."""
    deadline = time.monotonic() + within_s
    while True:
        row = sampler.sample(phase)
        if row["calls"] == 0 and row["pending"] == 0:
            break
        if time.monotonic() > deadline:
            sys.exit(f"soak: calls still up after {within_s} s: {row}")
        time.sleep(1)
    for _ in range(SETTLE_S // 25):
        time.sleep(25)
        row = sampler.sample(phase)
    return row


class Load:
    """The agent-call loop and the SIPp media load."""

    def __init__(self, a):
        self.a = a
        self.agent_runs = []  # (exit code, seconds)
        self.stop = threading.Event()
        self.sipp = None

    def agent_loop(self):
        plays = []
        for i in range(1, self.a.questions + 1):
            plays += ["--play", f"{self.a.work}/q-{i}.wav"]
        # The caller's own store: its outbound records stay out of the
        # server's, which the soak checks.
        config = f"{self.a.work}/sip-config/caller.toml"
        n = 0
        while not self.stop.is_set():
            n += 1
            t = time.monotonic()
            with open(f"{self.a.work}/agent-call-{n}.log", "w") as log:
                code = subprocess.call(
                    [self.a.voxline, "call", "sip:demo@127.0.0.1:5060", *plays, "--after-quiet-ms", "1500",
                     "--hangup-after-reply", "--max-seconds", "120", "--config", config],
                    stdout=log, stderr=subprocess.STDOUT)
            self.agent_runs.append((code, time.monotonic() - t))

    def start_media(self, calls_total):
        # Rate: one new call every media_seconds / media_calls seconds keeps
        # about media_calls up.
        period_ms = int(1000 * self.a.media_seconds / self.a.media_calls)
        self.sipp = subprocess.Popen(
            ["sipp", "127.0.0.1:5060", "-sf", "uac_soak_media.xml", "-s", "echo", "-i", "127.0.0.1",
             "-mi", "127.0.0.1", "-r", "1", "-rp", str(period_ms), "-m", str(calls_total),
             "-l", str(self.a.media_calls * 2), "-d", str(self.a.media_seconds * 1000), "-nostdin",
             "-trace_stat", "-fd", "60", "-stf", "media-stats.csv", "-trace_err", "-error_file", "sipp-errors.log",
             "-timeout", str(int(self.a.minutes * 60 + 300)), "-timeout_error"],
            cwd=self.a.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sipp_counts(work):
    """SuccessfulCall(C) and FailedCall(C) from SIPp's last statistics line."""
    with open(f"{work}/media-stats.csv") as f:
        lines = [l.rstrip("\n").split(";") for l in f if l.strip()]
    head, last = lines[0], lines[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


def check_records(token, questions, since_ms):
    """Every call of the soak in the records: (agent ok, agent failed, media
    ok, media failed, failure lines)."""
    listed = api(token, "/api/calls?limit=1000")
    if len(listed) >= 1000:
        sys.exit("soak: 1000 records or more: the API lists 1000 at most; run a shorter soak or fewer calls")
    records = [r for r in listed if r["invite_at"] >= since_ms and r["direction"] == "inbound"]
    counts = {"demo": [0, 0], "echo": [0, 0]}
    failures = []
    for r in records:
        route = r.get("route")
        if route not in counts:
            failures.append(f"unexpected route {route}: {r['call_id']}")
            continue
        why = None
        if r["status"] != "completed" or r.get("hangup_by") != "caller":
            why = f"status {r['status']}, end {r.get('end_reason')}, hung up by {r.get('hangup_by')}"
        elif route == "echo" and not r.get("packets_received"):
            why = "no audio received"
        elif route == "demo":
            turns = api(token, f"/api/calls/{r['call_id']}/turns")
            answered = sum(len(x.get("turns", [])) for x in turns)
            if answered < questions:
                why = f"{answered} agent turns for {questions} questions"
        if why:
            counts[route][1] += 1
            failures.append(f"{route} {r['call_id']}: {why}")
        else:
            counts[route][0] += 1
    return counts, failures


def main():
    p = argparse.ArgumentParser()
    for name in ("voxline", "work"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--questions", type=int, required=True)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--media-calls", type=int, default=6)
    p.add_argument("--media-seconds", type=int, default=20)
    a = p.parse_args()
    a.token = os.environ["VOXLINE_API_TOKEN"]

    since_ms = int(time.time() * 1000) - 1000
    sampler = Sampler(a.pid, a.token)
    sampler.sample("start")

    # Warm-up: models load on first use, pools and caches fill; the full
    # mix for WARM_S.
    warm = Load(a)
    warm.start_media(int(WARM_S * a.media_calls / a.media_seconds))
    warming = threading.Thread(target=warm.agent_loop)
    warming.start()
    time.sleep(WARM_S)
    warm.stop.set()
    warming.join()
    warm.sipp.wait()
    base = wait_idle(sampler, "baseline")
    print(f"soak: warmed up in {base['t']:.0f} s; idle baseline: RSS {base['rss_kib'] / 1024:.1f} MiB, "
          f"{base['fds']} fds ({base['sockets']} sockets), {base['threads']} threads", flush=True)

    load = Load(a)
    phase = ["load"]
    threading.Thread(target=sampler.run, args=(lambda: phase[0],), daemon=True).start()
    seconds = a.minutes * 60
    load.start_media(int(seconds * a.media_calls / a.media_seconds))
    agent = threading.Thread(target=load.agent_loop)
    agent.start()
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and load.sipp.poll() is None:
        time.sleep(5)
    load.stop.set()
    agent.join()
    load.sipp.wait()
    phase[0] = "drain"
    sampler.stop.set()
    end = wait_idle(sampler, "end")

    print("\n   t s  phase     calls  RSS MiB  anon MiB  fds  sockets  threads  late slots ‰  skipped  max slot µs")
    prev = None
    for r in sampler.rows:
        late = 0.0
        if prev and r["slots"] > prev["slots"]:
            late = 1000 * (r["late"] - prev["late"]) / (r["slots"] - prev["slots"])
        print(f"{r['t']:6.0f}  {r['phase']:<8} {r['calls']:5.0f}  {r['rss_kib'] / 1024:7.1f}  {r['anon_kib'] / 1024:8.1f}  {r['fds']:3d}  "
              f"{r['sockets']:7d}  {r['threads']:7d}  {late:12.2f}  {r['skipped']:7.0f}  {r['max_slot_us']:11.0f}")
        prev = r

    # Lateness in the first and the second half of the load, to see drift.
    loaded = [r for r in sampler.rows if r["phase"] == "load"]
    halves = []
    if len(loaded) >= 4:
        mid = len(loaded) // 2
        for lo, hi in ((loaded[0], loaded[mid]), (loaded[mid], loaded[-1])):
            slots = hi["slots"] - lo["slots"]
            halves.append(1000 * (hi["late"] - lo["late"]) / slots if slots else 0.0)
    peak = max(r["rss_kib"] for r in sampler.rows)

    media_ok, media_failed = sipp_counts(a.work)
    agent_failed_runs = sum(1 for code, _ in load.agent_runs + warm.agent_runs if code != 0)
    counts, failures = check_records(a.token, a.questions, since_ms)

    grew = end["rss_kib"] - base["rss_kib"]
    grew_anon = end["anon_kib"] - base["anon_kib"]
    q = len(loaded) // 4
    median = lambda rows: sorted(r["anon_kib"] for r in rows)[len(rows) // 2]
    second, last = (median(loaded[q:2 * q]), median(loaded[3 * q:])) if q else (0, 0)
    store = os.path.join(os.path.realpath(a.work), "calls.db")
    conns = lambda row: row["kinds"].get(store, 0)
    store_fds = lambda row: sum(n for k, n in row["kinds"].items() if k.startswith(store))
    pool_added = conns(end) - conns(base)
    # Descriptors, sockets and threads come and go by one while idle (a
    # pooled HTTP connection, a blocking-pool thread kept 10 s): the idle
    # end's least against the idle baseline's most.
    base_rows = [r for r in sampler.rows if r["phase"] == "baseline"] or [base]
    end_rows = [r for r in sampler.rows if r["phase"] == "end"] or [end]
    least = lambda key: min(key(r) for r in end_rows)
    most = lambda key: max(key(r) for r in base_rows)
    other_fds = lambda r: r["fds"] - store_fds(r)
    verdicts = {
        "memory": grew_anon <= IDLE_GROWTH * base["anon_kib"] and last <= (1 + LOADED_GROWTH) * second,
        "file descriptors": least(other_fds) <= most(other_fds) and conns(end) <= STORE_POOL_MAX,
        "sockets (ports)": least(lambda r: r["sockets"]) <= most(lambda r: r["sockets"]),
        "threads": least(lambda r: r["threads"]) <= most(lambda r: r["threads"]) + max(pool_added, 0),
        "calls": not failures and media_failed == 0 and agent_failed_runs == 0,
    }
    print(f"\nsoak: {a.minutes:g} min of load; agent calls {counts['demo'][0]} ok / {counts['demo'][1]} failed "
          f"({len(load.agent_runs)} placed in the load, {agent_failed_runs} callers exited non-zero); "
          f"echo calls {counts['echo'][0]} ok / {counts['echo'][1]} failed (SIPp: {media_ok} ok, {media_failed} failed)")
    print(f"soak: idle baseline → end: RSS {base['rss_kib'] / 1024:.1f} → {end['rss_kib'] / 1024:.1f} MiB "
          f"({grew / 1024:+.1f} MiB; peak {peak / 1024:.1f} MiB), anonymous {base['anon_kib'] / 1024:.1f} → "
          f"{end['anon_kib'] / 1024:.1f} MiB ({grew_anon / 1024:+.1f} MiB, bound +{IDLE_GROWTH:.0%}), "
          f"fds {base['fds']} → {end['fds']}, sockets {base['sockets']} → {end['sockets']}, "
          f"threads {base['threads']} → {end['threads']}; store connections {conns(base)} → {conns(end)} "
          f"(pool bound {STORE_POOL_MAX})")
    if q:
        print(f"soak: anonymous memory under load (medians): second quarter {second / 1024:.1f} MiB, last quarter "
              f"{last / 1024:.1f} MiB ({(last - second) / 1024:+.1f} MiB, bound +{LOADED_GROWTH:.0%})")
    if halves:
        print(f"soak: media clock slots started over 1 ms late: {halves[0]:.2f} ‰ in the first half of the load, "
              f"{halves[1]:.2f} ‰ in the second; frames skipped {end['skipped']:.0f}")
    if end["kinds"] != base["kinds"]:
        changed = {k: (base["kinds"].get(k, 0), end["kinds"].get(k, 0))
                   for k in set(base["kinds"]) | set(end["kinds"])
                   if base["kinds"].get(k, 0) != end["kinds"].get(k, 0)}
        print(f"soak: descriptors that differ (baseline, end): {changed}")
    for f in failures[:20]:
        print(f"soak: FAILED {f}")
    for what, ok in verdicts.items():
        print(f"soak: {what}: {'held' if ok else 'NOT HELD'}")
    sys.exit(0 if all(verdicts.values()) else 1)


if __name__ == "__main__":
    main()
