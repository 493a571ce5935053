#!/usr/bin/env python3
"""Helper of load-tests/asr-confidence.sh.

  asr_confidence.py table QUESTIONS.txt HEARD.jsonl [THRESHOLD…]

QUESTIONS.txt holds the questions as written, one per line, in the order of
HEARD.jsonl (`voxline transcribe --confidence`, one line per clip). Each
decode is compared with what was said (word error rate after Whisper-style
normalising: case, punctuation and thousands separators aside): "heard
right" up to MAX_WER, "misheard" above. For each threshold on the mean token
log-probability it prints how many misheard turns a doubt catches and how
many rightly heard turns it would ask again for nothing.
"""

import json
import re
import sys

MAX_WER = 0.25


def norm(text):
    text = text.lower().replace(",000", "000")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return text.split()


def wer(said, heard):
    a, b = norm(said), norm(heard)
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)] / max(len(a), 1)


def main():
    if len(sys.argv) < 4 or sys.argv[1] != "table":
        sys.exit(__doc__)
    said = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
    heard = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
    if len(said) != len(heard):
        sys.exit(f"{len(said)} questions but {len(heard)} decodes")
    rows = []
    for s, h in zip(said, heard):
        w = wer(s, h["text"])
        rows.append((w, h))
        mark = "ok " if w <= MAX_WER else "BAD"
        print(f"{mark} wer={w:.2f} lp={h['mean_logprob']:.2f} min={h['min_prob']:.2f} "
              f"nosp={h['no_speech']:.2f} | {s} | {h['text']}")
    right = [h for w, h in rows if w <= MAX_WER]
    wrong = [h for w, h in rows if w > MAX_WER]
    print(f"\n{len(rows)} decodes: {len(right)} heard right, {len(wrong)} misheard (WER > {MAX_WER})")
    print("threshold  misheard caught  right asked again")
    for t in [float(x) for x in sys.argv[4:]] or [-0.3, -0.4, -0.5, -0.6, -0.7, -0.8, -1.0]:
        caught = sum(h["mean_logprob"] < t for h in wrong)
        asked = sum(h["mean_logprob"] < t for h in right)
        print(f"{t:9.2f}  {caught:3d}/{len(wrong):<3d}          {asked:3d}/{len(right)}")


if __name__ == "__main__":
    main()
