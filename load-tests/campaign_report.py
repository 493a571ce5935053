#!/usr/bin/env python3
"""Helpers of load-tests/campaign.sh.

  contacts N CSV         writes N contacts (+44 20 7946 0000..; the last digit
                         picks the callee farm's kind); the last tenth live in
                         Pacific/Auckland, where the calling window printed on
                         stdout is closed now (they must wait, never be dialled)
  done DB                prints how many contacts are done and how many are dialing
  report DB FARM_LOG     the campaign's figures on the callees' side and in the
                         store; exit 1 when a rule is broken
"""
import collections
import datetime
import re
import sqlite3
import sys

KIND = {"0": "person", "1": "person", "8": "person", "9": "person", "2": "busy", "3": "not found",
        "4": "no answer", "5": "declines", "6": "early media", "7": "hangs up"}
EXPECT = {"person": "answered", "busy": "attempts_exhausted", "not found": "invalid_number",
          "no answer": "no_answer", "declines": "rejected", "early media": "answered", "hangs up": "answered"}
CLOSED_TZ = "Pacific/Auckland"


def contacts(n, path):
    # London's hour now; the window opens an hour before and closes three
    # after, which Auckland (12-13 h ahead) is outside of.
    now = datetime.datetime.now(datetime.timezone.utc)
    h = now.hour  # London is UTC in winter, UTC+1 in summer: either way inside
    start, end = h - 2, h + 4
    ranges = []
    if start < 0:
        ranges += [f"{24 + start:02d}:00-24:00", f"00:00-{end:02d}:00"]
    elif end > 24:
        ranges += [f"00:00-{end - 24:02d}:00", f"{start:02d}:00-24:00"]
    else:
        ranges.append(f"{start:02d}:00-{end:02d}:00")
    with open(path, "w") as f:
        f.write("phone,first_name,timezone\n")
        for i in range(n):
            tz = CLOSED_TZ if i >= n - n // 10 else "Europe/London"
            f.write(f"+442079460{i:03d},Contact{i},{tz}\n")
    print("mon-sun=" + ",".join(sorted(ranges)))


def done(db):
    c = sqlite3.connect(db)
    d = c.execute("SELECT COUNT(*) FROM campaign_contacts WHERE state = 'done'").fetchone()[0]
    g = c.execute("SELECT COUNT(*) FROM campaign_contacts WHERE state = 'dialing'").fetchone()[0]
    print(d, g)


def farm_calls(log):
    """Per Call-ID: number, start, end (s), from SIPp's message trace."""
    calls = {}
    text = open(log, errors="replace").read()
    for block in text.split("----------------------------------------------- ")[1:]:
        head, _, rest = block.partition("\n")
        try:
            at = datetime.datetime.strptime(head.strip()[:26], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        received = "received" in rest.split("\n", 1)[0]
        body = rest.split("\n\n", 1)[-1] if "\n\n" in rest else rest
        first = body.lstrip().split("\n", 1)[0].strip()
        m = re.search(r"^Call-ID:\s*(\S+)", body, re.M)
        if not m:
            continue
        cid = m.group(1)
        c = calls.setdefault(cid, {"number": None, "start": None, "end": None, "last": at})
        c["last"] = at
        if received and first.startswith("INVITE sip:"):
            num = first[len("INVITE sip:"):].split("@")[0]
            if c["start"] is None:
                c["start"], c["number"] = at, num
        ends = (first.startswith("BYE ") or (received and first.startswith("CANCEL "))
                or (not received and re.match(r"SIP/2.0 [3-6]\d\d", first)))
        if ends and c["end"] is None:
            c["end"] = at
    return {k: v for k, v in calls.items() if v["start"] is not None}


def report(db, log):
    c = sqlite3.connect(db)
    contacts = c.execute("SELECT seq, number, tz, state, disposition, attempts FROM campaign_contacts").fetchall()
    attempts = c.execute("SELECT number, call_id, result, started_at, ended_at FROM campaign_attempts").fetchall()
    calls = farm_calls(log)
    ok = True

    # Concurrency and rate on the callees' side.
    edges = []
    for v in calls.values():
        end = v["end"] if v["end"] is not None else v["last"]
        edges += [(v["start"], 1), (end, -1)]
    up = most = 0
    for _, d in sorted(edges, key=lambda e: (e[0], e[1])):
        up += d
        most = max(most, up)
    starts = sorted(v["start"] for v in calls.values())
    cps = max((sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts)), default=0)
    wall = (max(v["last"] for v in calls.values()) - starts[0]) if starts else 0

    by_number = collections.defaultdict(list)
    for v in calls.values():
        by_number[v["number"]].append(v)
    stored = collections.defaultdict(list)
    for number, call_id, result, *_ in attempts:
        stored[number].append((call_id, result))
    unknown = sum(1 for cid, v in calls.items() if cid not in {a[1] for a in attempts})
    after_answer = 0
    for number, rows in stored.items():
        results = [r for _, r in rows]
        if "answered" in results[:-1]:
            after_answer += 1
    closed_dialled = sum(len(by_number.get(n, [])) for _, n, tz, *_ in contacts if tz == CLOSED_TZ)
    dialable = [r for r in contacts if r[2] != CLOSED_TZ]
    undone = sum(1 for r in dialable if r[3] != "done" or not r[4])
    open_attempts = sum(1 for a in attempts if a[2] is None)

    table = collections.defaultdict(collections.Counter)
    for _, number, tz, state, disp, _ in dialable:
        table[KIND[number[-1]]][disp or f"({state})"] += 1
    wrong = interrupted = 0
    for kind, counts in table.items():
        for disp, n in counts.items():
            if disp == "interrupted":
                interrupted += n
            elif disp != EXPECT[kind]:
                wrong += n

    print(f"  contacts {len(contacts)} ({len(dialable)} in their window, {len(contacts) - len(dialable)} outside it all run)")
    print(f"  attempts written {len(attempts)}; INVITEs the farm received {len(calls)}; wall {wall:.0f} s")
    print(f"  most calls up at once (farm side) {most}; most new calls in one second {cps}")
    print(f"  {'callee kind':<12} {'contacts':>8}  dispositions")
    for kind in ["person", "busy", "not found", "no answer", "declines", "early media", "hangs up"]:
        counts = table.get(kind, {})
        print(f"  {kind:<12} {sum(counts.values()):>8}  " + ", ".join(f"{d} {n}" for d, n in sorted(counts.items())))
    print(f"  INVITEs unknown to the store {unknown}; contacts dialled again after an answer {after_answer}")
    print(f"  INVITEs to contacts outside their window {closed_dialled}")
    print(f"  contacts in their window without a final disposition {undone}; attempts left open {open_attempts}")
    cut = [a for a in attempts if a[2] == "interrupted"]
    print(f"  attempts cut by the stop {len(cut)}: answered (not called again, `interrupted`) {interrupted}, "
          f"not answered (tried again) {len(cut) - interrupted}")
    print(f"  wrong dispositions {wrong}")
    for bad, what in [(unknown, "INVITEs unknown to the store"), (after_answer, "dialled again after an answer"),
                      (closed_dialled, "dialled outside the window"), (undone, "left without a disposition"),
                      (open_attempts, "attempts left open"), (wrong, "wrong dispositions")]:
        if bad:
            print(f"  FAIL: {bad} {what}")
            ok = False
    return ok


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "contacts":
        contacts(int(sys.argv[2]), sys.argv[3])
    elif cmd == "done":
        done(sys.argv[2])
    elif cmd == "report":
        sys.exit(0 if report(sys.argv[2], sys.argv[3]) else 1)
    else:
        sys.exit(__doc__)
