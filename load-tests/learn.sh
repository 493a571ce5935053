#!/usr/bin/env bash
# Learn (issue 24): documents the demo bank pack has never seen (the five
# formats of crates/voxline-analysis/tests/fixtures/learn: Markdown, text,
# HTML, DOCX, PDF) learned into a copy of the pack with `voxline learn`
# (timed), then the question set it drafted (eval-learned.toml) run on the
# pack as drafted, no question edited: `voxline chat --domain --eval`.
# The copy's rules stop listing mortgages and loans as not offered (the
# documents now cover them), as the knowledge manager taking them would.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$CACHE/target}/release/voxline}
WORK=$(mktemp -d /tmp/voxline-learn.XXXXXX)
cp -r domains/demo-bank "$WORK/bank"
sed -i -E 's/"(mortgage|mortgages|loan|loans)", //g' "$WORK/bank/rules.toml"
! grep -q '"mortgage"' "$WORK/bank/rules.toml" || { echo "learn: could not edit not_offered"; exit 1; }
DOCS=crates/voxline-analysis/tests/fixtures/learn
"$VOXLINE" learn "$DOCS/mortgages.md" "$DOCS/travel-money.txt" "$DOCS/branch-services.html" \
	"$DOCS/savings-accounts.docx" "$DOCS/personal-loans.pdf" --pack "$WORK/bank"
echo
"$VOXLINE" chat --domain "$WORK/bank" --eval "$WORK/bank/eval-learned.toml"
