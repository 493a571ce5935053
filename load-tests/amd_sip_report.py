#!/usr/bin/env python3
"""Helpers of load-tests/amd-sip.sh.

  setup ANSWERS CONFIG CONTACTS   appends a playback route per rendered answer
                                  (ANSWERS/answers.csv, ANSWERS/ID.wav) to
                                  CONFIG, each on its own number, and writes the
                                  campaign's contacts (phone, first_name, answer)
  report ANSWERS DB CONTACTS      from the store and the callees' recordings:
                                  the verdicts, when people heard the agent
                                  after their greeting, when machines got the
                                  message after their beep; exit 1 when a
                                  person waited more than 2 s at p95, or a
                                  machine's message started before its beep
                                  ended
"""
import array
import csv
import math
import os
import sqlite3
import sys
import wave

# A 20 ms window carries sound when its RMS is above this (16-bit PCM).
SOUND_RMS = 500.0


def answers(root):
    with open(os.path.join(root, "answers.csv")) as f:
        return list(csv.DictReader(f))


def number(i):
    return f"+44207946{1000 + i}"


def setup(root, config, contacts):
    rows = answers(root)
    with open(config, "a") as f:
        for i, a in enumerate(rows):
            wav = os.path.join(root, a["id"] + ".wav")
            with wave.open(wav) as w:
                secs = w.getnframes() / w.getframerate()
            f.write(
                f'\n[[route]]\nname = "{a["id"]}"\ntrunk = "local"\nnumber = {{ exact = "{number(i)}" }}\n'
                f'handler = "playback"\nparams = {{ greeting = "{wav}", hangup_after_greeting = true, '
                f"max_seconds = {math.ceil(secs) + 5} }}\n"
            )
    with open(contacts, "w") as f:
        f.write("phone,first_name,answer\n")
        for i, a in enumerate(rows):
            f.write(f"{number(i)},Sam,{a['id']}\n")


def channel(path, ch):
    """One channel of a 16-bit WAV: samples and rate."""
    with wave.open(path) as w:
        n, rate, width = w.getnchannels(), w.getframerate(), w.getsampwidth()
        if width != 2:
            raise SystemExit(f"{path}: {8 * width}-bit samples, want 16-bit")
        data = array.array("h", w.readframes(w.getnframes()))
    return data[ch::n], rate


def loud(samples, start, win):
    """Whether the window of `win` samples at `start` carries sound."""
    power = sum(s * s for s in samples[start : start + win]) / win
    return math.sqrt(power) > SOUND_RMS


def first_sound(samples, rate, after=0.0):
    """Seconds from the start to the first 20 ms window with sound after `after` s."""
    win = rate // 50
    for start in range(int(after * rate) // win * win, len(samples) - win + 1, win):
        if loud(samples, start, win):
            return start / rate
    return None


def last_sound_end(samples, rate, before):
    """Seconds from the start to the end of the last 20 ms window with sound before `before` s."""
    win = rate // 50
    for start in range(int(before * rate) // win * win - win, -1, -win):
        if loud(samples, start, win):
            return (start + win) / rate
    return None


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[round((len(sorted_values) - 1) * p)]


def report(root, db, contacts_csv):
    by_id = {a["id"]: a for a in answers(root)}
    with open(contacts_csv) as f:
        answer_of = {r["phone"]: r["answer"] for r in csv.DictReader(f)}
    c = sqlite3.connect(db)
    rows = c.execute(
        "SELECT a.number, a.result, k.disposition, o.amd, o.amd_ms, i.recording_path "
        "FROM campaign_attempts a JOIN campaign_contacts k ON k.campaign_id = a.campaign_id AND k.seq = a.seq "
        "LEFT JOIN calls o ON o.call_id = a.call_id AND o.direction = 'outbound' "
        "LEFT JOIN calls i ON i.call_id = a.call_id AND i.direction = 'inbound'"
    ).fetchall()
    broken = []
    table = {"person": {"person": 0, "machine": 0, "-": 0}, "machine": {"person": 0, "machine": 0, "-": 0}}
    heard_after = []  # people told as people: agent heard after their last sound, s
    talked_over = []  # people whose greeting went on after the agent started
    message_after = []  # machines: message after the beep (or the greeting's end), s
    dialled = set()
    for num, result, disposition, amd, amd_ms, rec in rows:
        aid = answer_of.get(num)
        if aid is None:
            broken.append(f"{num}: dialled, not a contact")
            continue
        dialled.add(num)
        a = by_id[aid]
        said = "machine" if (amd or "").startswith("machine") else "person" if (amd or "").startswith("human") else "-"
        table[a["kind"]][said] += 1
        if rec is None or not os.path.exists(rec):
            broken.append(f"{aid}: no callee recording ({result}, {disposition})")
            continue
        heard, rate = channel(rec, 0)
        sent, srate = channel(rec, 1)
        wav, wrate = channel(os.path.join(root, aid + ".wav"), 0)
        # Where the answer's audio sits in the recording.
        sent_at, wav_at = first_sound(sent, srate), first_sound(wav, wrate)
        if sent_at is None or wav_at is None:
            broken.append(f"{aid}: the answer is not in the callee's recording")
            continue
        offset = sent_at - wav_at
        greeting_end = int(a["greeting_end_ms"]) / 1000 + offset
        agent_at = first_sound(heard, rate)
        note = ""
        if a["kind"] == "person" and said == "person":
            if agent_at is None:
                broken.append(f"{aid}: a person never heard the agent")
            else:
                # The silence they waited through: from their last sound
                # before the agent's first (the greeting's end, or the end
                # of its first phrase when the agent answered that).
                waited = agent_at - last_sound_end(sent, srate, agent_at)
                heard_after.append(waited)
                note = f"agent heard {waited:.2f} s after their last sound"
                if agent_at < greeting_end:
                    talked_over.append(aid)
                    note += f", {greeting_end - agent_at:.2f} s before the greeting's end"
        elif a["kind"] == "machine" and said == "machine":
            what = "the beep" if a["beep_end_ms"] else "the greeting"
            end = int(a["beep_end_ms"] or a["greeting_end_ms"]) / 1000 + offset
            if agent_at is None:
                broken.append(f"{aid}: a machine got no message")
            else:
                message_after.append(agent_at - end)
                note = f"message {agent_at - end:+.2f} s after {what}"
                if agent_at < end:
                    broken.append(f"{aid}: the message started {end - agent_at:.2f} s before {what} ended")
        ok = "ok   " if said == a["kind"] else "WRONG"
        print(f"  {ok} {aid:<6} {a['kind']:<8} -> {amd or '-'} at {amd_ms} ms; {disposition}; {note}")
    for num, aid in answer_of.items():
        if num not in dialled:
            broken.append(f"{aid}: never dialled")
    print()
    print("| answered by | n | said person | said machine | no verdict | right |")
    print("|---|---|---|---|---|---|")
    for kind in ("person", "machine"):
        t = table[kind]
        n = sum(t.values())
        print(f"| {kind} | {n} | {t['person']} | {t['machine']} | {t['-']} | {100 * t[kind] / max(n, 1):.0f}% |")
    heard_after.sort()
    message_after.sort()
    print()
    if heard_after:
        within = sum(1 for x in heard_after if x <= 2.0)
        print(
            f"people told as people heard the agent after their greeting: p50 {pct(heard_after, 0.5):.2f} s, "
            f"p95 {pct(heard_after, 0.95):.2f} s, max {heard_after[-1]:.2f} s, within 2 s {within}/{len(heard_after)}; "
            f"the agent began before their greeting ended for {len(talked_over)} ({', '.join(talked_over) or 'none'})"
        )
        if pct(heard_after, 0.95) > 2.0:
            broken.append(f"people waited {pct(heard_after, 0.95):.2f} s at p95 (rule: 2 s)")
    else:
        broken.append("no person heard the agent")
    if message_after:
        print(
            f"machines told as machines got the message after the beep or the greeting: p50 {pct(message_after, 0.5):.2f} s, "
            f"p95 {pct(message_after, 0.95):.2f} s, min {message_after[0]:+.2f} s (n={len(message_after)})"
        )
    for b in broken:
        print("BROKEN:", b)
    return 1 if broken else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "setup":
        setup(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        sys.exit(report(*sys.argv[2:]))
    else:
        sys.exit(__doc__)
