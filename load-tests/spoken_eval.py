#!/usr/bin/env python3
"""Helper of load-tests/spoken-eval.sh.

  spoken_eval.py questions SET.toml           the asks to speak, one per line
  spoken_eval.py grade SET.toml TRANSCRIPT.json

Grades each reply of a call's stored transcript against its case with the
rules of `voxline chat --eval` (crates/voxline-agent/src/eval.rs): right
when it holds every `contains` (alternatives split by "|") and no `lacks`;
a wrong fact when it holds a `lacks`, or states a figure while missing the
case; asked again when it is the pack's "say that again" line. Replies are
the agent's own text (what it sent to the voice), so no recognition error
on the agent's side is graded; the caller's side is heard by Whisper.
"""

import json
import re
import sys
import tomllib
from pathlib import Path

SPOKEN = ("answer", "decline", "unknown")


def cases(set_path):
    with open(set_path, "rb") as f:
        return [c for c in tomllib.load(f)["case"] if c["expect"] in SPOKEN]


# The pack's defaults for these lines (crates/voxline-agent/src/pack.rs).
DEFAULTS = {
    "unclear": "Sorry, I didn't quite catch that. Could you say it again in other words?",
    "unclear_again": "I'm sorry, I still didn't understand. Would you like me to transfer you to a colleague?",
}


def rules(set_path):
    with open(Path(set_path).parent / "rules.toml", "rb") as f:
        return {**DEFAULTS, **tomllib.load(f)["domain"]}


def norm(text):
    t = text.lower().replace("%", " percent")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)
    t = re.sub(r"[^\w.' ]+", " ", t)
    t = re.sub(r"\.(?!\d)", " ", t)
    return " " + " ".join(t.split()) + " "


def numbers(text):
    return re.findall(r"\d+(?:\.\d+)?", norm(text))


def holds(said, alts):
    w = norm(said)
    for alt in alts.split("|"):
        alt = alt.strip()
        if norm(alt) in w:
            return True
        if re.fullmatch(r"\d+(?:\.\d+)?", alt) and alt in numbers(said):
            return True
    return False


def turns(transcript):
    lines = sorted((l for call in transcript for l in call["lines"]), key=lambda l: l["seq"])
    out = []
    for line in lines:
        if line["speaker"] == "caller":
            out.append([line["text"], []])
        elif out:
            out[-1][1].append(line["text"])
    return [(heard, " ".join(said)) for heard, said in out]


def grade(case, said, domain):
    again = [domain.get(k, "") for k in ("unclear", "unclear_again")]
    asked_again = any(a and a.strip() in said for a in again)
    unknown = domain.get("unknown", "").strip()
    decline = domain.get("decline", "").strip()
    answered = bool(said) and not asked_again and unknown not in said and decline not in said
    kind = case["expect"]
    if kind == "answer":
        right = (
            answered
            and case.get("contains")
            and all(holds(said, c) for c in case["contains"])
            and not any(holds(said, l) for l in case.get("lacks", []))
        )
    elif kind == "decline":
        right = decline in said
    else:
        right = unknown in said or "don't have that information" in said.lower()
    if right:
        return "right"
    wrong = next((l for l in case.get("lacks", []) if holds(said, l)), None)
    if wrong:
        return f"WRONG ({wrong})"
    if answered and numbers(said):
        return f"WRONG ({numbers(said)[0]})"
    return "AGAIN" if asked_again else "MISS"


def main():
    if sys.argv[1] == "questions":
        for c in cases(sys.argv[2]):
            print(c["ask"])
        return
    set_path, transcript_path = sys.argv[2], sys.argv[3]
    cs = cases(set_path)
    domain = rules(set_path)
    with open(transcript_path) as f:
        heard = turns(json.load(f))
    if len(heard) != len(cs):
        print(f"note: {len(heard)} caller turns for {len(cs)} questions; paired in order")
    tally = {}
    for i, case in enumerate(cs):
        h, said = heard[i] if i < len(heard) else ("(not heard)", "")
        g = grade(case, said, domain)
        key = g.split(" ")[0]
        tally[key] = tally.get(key, 0) + 1
        print(f"{g:<22} {case['ask']}\n{'':<22} heard: {h}\n{'':<22} said:  {said}")
    total = len(cs)
    print(
        f"\n{total} questions: right {tally.get('right', 0)}, wrong facts {tally.get('WRONG', 0)}, "
        f"asked again {tally.get('AGAIN', 0)}, missed {tally.get('MISS', 0)}"
    )


if __name__ == "__main__":
    main()
