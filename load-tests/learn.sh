#!/usr/bin/env bash
# Learn (issue 24): documents the demo bank pack has never seen, learned
# into a copy of the pack with `voxline learn` (timed), then the question set
# it drafted (eval-learned.toml) run on the pack as drafted, no question
# edited: `voxline chat --domain --eval`. Two sets:
#   - the learn tests' fixtures (crates/voxline-analysis/tests/fixtures/learn:
#     Markdown, text, HTML, DOCX, PDF; mortgages, travel money, branch
#     services, savings, loans);
#   - a larger set written for this must-show before any run with it
#     (load-tests/learn/docs, its DOCX and PDFs made by make_docs.py:
#     business banking, home insurance, safe deposit boxes, a student
#     account, car finance, pensions).
# Each copy's rules stop listing what its documents now cover as not
# offered, as the knowledge manager taking them would.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$CACHE/target}/release/voxline}
WORK=$(mktemp -d /tmp/voxline-learn.XXXXXX)

# learn_set NAME "NOT-OFFERED WORDS REGEX" DOCS...: learns DOCS into
# $WORK/NAME (a copy of the demo bank) and runs the drafted set.
learn_set() {
	local name=$1 offered=$2
	shift 2
	cp -r domains/demo-bank "$WORK/$name"
	sed -i -E "s/\"($offered)\", //g; s/, \"($offered)\"\\]/]/g" "$WORK/$name/rules.toml"
	! grep -qE "\"($offered)\"" "$WORK/$name/rules.toml" || { echo "learn: could not edit not_offered"; exit 1; }
	echo "learn: $name ($# documents)"
	"$VOXLINE" learn "$@" --pack "$WORK/$name"
	echo
	"$VOXLINE" chat --domain "$WORK/$name" --eval "$WORK/$name/eval-learned.toml"
	echo
}

DOCS=crates/voxline-analysis/tests/fixtures/learn
learn_set fixtures "mortgage|mortgages|loan|loans" "$DOCS/mortgages.md" "$DOCS/travel-money.txt" \
	"$DOCS/branch-services.html" "$DOCS/savings-accounts.docx" "$DOCS/personal-loans.pdf"

LARGER=load-tests/learn/docs
python3 load-tests/learn/make_docs.py "$WORK/made"
learn_set larger "insurance|pension|pensions|business account|car finance" "$LARGER/business-accounts.md" \
	"$LARGER/home-insurance.html" "$LARGER/safe-deposit-boxes.txt" "$WORK/made/student-account.docx" \
	"$WORK/made/car-finance.pdf" "$WORK/made/pensions.pdf"
