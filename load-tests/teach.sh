#!/usr/bin/env bash
# Teach (issue 24): questions the demo bank pack answers wrong today,
# corrected with `voxline teach wrong` (load-tests/teach/corrections.toml,
# written before the run), then every question set run again on the
# corrected pack:
#   - the corrected questions as asked: each must now be right;
#   - the same questions in other words (load-tests/teach/other-words.toml,
#     written with the corrections, never used to tune): at least 8 of 10;
#   - the pack's own sets (eval.toml, eval-heldout, eval-fresh, eval-meaning,
#     eval-neighbours): no answer right before and not after ("lost"), and
#     none of them answered by a correction meant for another question.
# The pack is a copy: domains/demo-bank itself is not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$CACHE/target}/release/voxline}
PYTHON=${PYTHON:-$CACHE/bench-venv/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
WORK=$(mktemp -d /tmp/voxline-teach.XXXXXX)
cp -r domains/demo-bank "$WORK/bank"
rm -f "$WORK/bank/curated.toml" "$WORK/bank/eval-taught.toml"
SETS="eval.toml eval-heldout.toml eval-fresh.toml eval-meaning.toml eval-neighbours.toml"
"$PYTHON" load-tests/teach_report.py sets --work "$WORK"

run_sets() {
	for s in $SETS; do
		"$VOXLINE" chat --domain "$WORK/bank" --eval "domains/demo-bank/$s" >"$WORK/$1-$s.out" 2>"$WORK/$1-$s.err"
	done
	for s in corrected.toml other-words.toml; do
		"$VOXLINE" chat --domain "$WORK/bank" --eval "$WORK/$s" >"$WORK/$1-$s.out" 2>"$WORK/$1-$s.err"
	done
}

echo "teach: question sets before the corrections (work dir $WORK)"
run_sets before
"$PYTHON" load-tests/teach_report.py teach --work "$WORK" --voxline "$VOXLINE"
echo "teach: question sets after"
run_sets after
"$PYTHON" load-tests/teach_report.py report --work "$WORK" --sets "$SETS"
