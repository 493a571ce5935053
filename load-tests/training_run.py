"""Training must-show (issue 24), driven by load-tests/training.sh against a
running `voxline serve` with the example config's `training` route.

Scripted trainees (load-tests/training/trainees.toml, written before any
run) call the training number: the good one and the poor one, each RUNS
times through `voxline call` (Piper's voice, taking turns) and through
baresip (espeak-ng's voice, one recording with fixed gaps). Each call's
report is read back from the API; every criterion (scorecard item,
objection, fact, the customer's outcome) is compared between the good and
the poor trainee, and the good one must score at least as well on every
criterion they differ on. One good and one poor report are printed.
"""

import argparse
import json
import subprocess
import sys
import time
import tomllib
import urllib.request
import wave
from pathlib import Path


def api(base, token, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def speak(voxline, voice, text, raw, out):
    if voice == "piper":
        subprocess.run([voxline, "say", "--out", str(raw), text], check=True, capture_output=True)
    else:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True)


def wav_seconds(path):
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def one_recording(parts, lead_s, gap_s, out):
    """The lines in one 8 kHz recording: `lead_s` of silence (the
    customer's opening), then each line followed by `gap_s` of silence."""
    cmd = ["sox"]
    silence = out.parent / "silence-lead.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(silence), "trim", "0", str(lead_s)], check=True)
    gap = out.parent / "silence-gap.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(gap), "trim", "0", str(gap_s)], check=True)
    cmd.append(str(silence))
    for p in parts:
        cmd += [str(p), str(gap)]
    cmd.append(str(out))
    subprocess.run(cmd, check=True)


def call_cli(a, name, lines, log):
    args = [a.voxline, "call", f"sip:training@{a.sip}", "--from", f"sip:{name}@127.0.0.1",
            "--play", str(lines[0]), "--after-quiet-ms", "2500", "--hangup-after-reply", "--max-seconds", "150"]
    for l in lines[1:]:
        args += ["--play", str(l)]
    with open(log, "w") as f:
        subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, check=False)


def call_baresip(a, name, recording, work):
    d = work / f"baresip-{name}"
    (d / "snd").mkdir(parents=True, exist_ok=True)
    port = 20000 + (abs(hash(name)) % 20000)
    (d / "config").write_text(
        f"poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\n"
        f"audio_player aubridge,x\naudio_source aufile,{recording}\naudio_alert aubridge,x\n"
        "ausrc_srate 8000\nauplay_srate 8000\nausrc_channels 1\nauplay_channels 1\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\n"
        "module_app account.so\nmodule_app menu.so\n")
    (d / "accounts").write_text(f"<sip:{name}@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
    quit_after = int(wav_seconds(recording)) + 8
    with open(d / "baresip.log", "w") as f:
        subprocess.run(["timeout", str(quit_after + 20), "baresip", "-f", str(d),
                        "-e", f"/dial sip:training@{a.sip}", "-t", str(quit_after)],
                       stdout=f, stderr=subprocess.STDOUT, check=False)


def wait_report(a, token, name, within=240):
    deadline = time.time() + within
    while time.time() < deadline:
        rows = api(a.api, token, f"/api/training?trainee={name}")
        if rows and rows[0]["state"] in ("done", "failed"):
            row = rows[0]
            whole = api(a.api, token, f"/api/calls/{row['call_id']}/training")
            return next(r for r in whole if r.get("record_id") == row["record_id"])
        time.sleep(1)
    raise SystemExit(f"no report for {name} within {within} s")


def criteria(session):
    """Each criterion of a session: 1 met, 0 not, None not judged."""
    r = session["report"]
    out = {}
    for i in r["items"]:
        out[f"item {i['id']}"] = {"pass": 1, "fail": 0}.get(i["verdict"])
    for n, o in enumerate(r["objections"], 1):
        out[f"objection {n}"] = 1 if o["state"] == "settled" else 0
    for f in r["facts"]:
        out[f"fact {f['id']}"] = 1 if f["stated"] else 0
    out["customer satisfied"] = 1 if r.get("outcome") == "satisfied" else 0
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--voxline", required=True)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--trainees", default="load-tests/training/trainees.toml")
    p.add_argument("--sip", default="127.0.0.1:5060")
    p.add_argument("--api", default="http://127.0.0.1:8080")
    p.add_argument("--token", required=True)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    token = Path(a.token).read_text().strip()
    trainees = tomllib.loads(Path(a.trainees).read_text())
    stamp = time.strftime("%H%M%S")
    sessions = []
    for kind in ("good", "poor"):
        t = trainees[kind]
        for peer, voice in (("cli", "piper"), ("baresip", "espeak")):
            parts = []
            for n, text in enumerate(t["lines"]):
                raw, out = a.work / f"{kind}-{voice}-raw-{n}.wav", a.work / f"{kind}-{voice}-{n}.wav"
                speak(a.voxline, voice, text, raw, out)
                parts.append(out)
            recording = a.work / f"{kind}-{voice}-all.wav"
            one_recording(parts, 8.0, t["gap_s"], recording)
            for run in range(1, a.runs + 1):
                name = f"{kind}-{peer}-{run}-{stamp}"
                started = time.time()
                if peer == "cli":
                    call_cli(a, name, parts, a.work / f"{name}.log")
                else:
                    call_baresip(a, name, recording, a.work)
                s = wait_report(a, token, name)
                took = time.time() - started
                print(f"{name}: state {s['state']}, score {s['score']}, customer {s['outcome']}, "
                      f"missed {len(s['missed'] or [])} ({took:.0f} s)", flush=True)
                if s["state"] != "done":
                    raise SystemExit(f"{name}: the report failed: {s['error']}")
                sessions.append((kind, peer, name, s))
    (a.work / "sessions.json").write_text(json.dumps([s for *_, s in sessions], indent=1))

    # Per criterion: the share of good and of poor sessions that met it.
    names = []
    for *_, s in sessions:
        for c in criteria(s):
            if c not in names:
                names.append(c)
    def share(kind, c):
        vals = [criteria(s).get(c) for k, _, _, s in sessions if k == kind]
        judged = [v for v in vals if v is not None]
        return (sum(judged) / len(judged)) if judged else None, len(judged)
    print()
    print(f"| criterion | good ({len([1 for k, *_ in sessions if k == 'good'])} calls) | poor | differs | good >= poor |")
    print("|---|---:|---:|---|---|")
    failing = []
    for c in names:
        (g, gn), (b, bn) = share("good", c), share("poor", c)
        differs = g is not None and b is not None and abs(g - b) > 1e-9
        ok = (not differs) or g >= b
        if not ok:
            failing.append(c)
        fmt = lambda v, n: "–" if v is None else f"{100 * v:.0f}% of {n}"
        print(f"| {c} | {fmt(g, gn)} | {fmt(b, bn)} | {'yes' if differs else 'no'} | {'yes' if ok else 'NO'} |")
    for kind in ("good", "poor"):
        scores = [s["score"] for k, _, _, s in sessions if k == kind and s["score"] is not None]
        print(f"{kind}: scorecard score {', '.join(f'{v:.0f}' for v in scores)}")
    print()
    for kind in ("good", "poor"):
        s = next(s for k, _, _, s in sessions if k == kind)
        print(f"--- a {kind} trainee's report, as printed ---")
        print(s["printed"])
    if failing:
        print(f"VERDICT: the poor trainee did better on {', '.join(failing)}")
        sys.exit(1)
    print("VERDICT: the good trainee scored at least as well on every criterion they differ on")


if __name__ == "__main__":
    main()
