#!/usr/bin/env bash
# Browser calls against phone calls (issue 25): the same spoken question to
# the demo bank agent over SIP (`voxline call`) and from Chromium's talk
# page over WebRTC, alternating, ROUNDS times each, on one server; prints
# the answer's first audio after the question's end (the turn record's
# first_rtp_ms) per channel side by side, with the turn's stages, and the
# talk page's and the console pages' first load time and size over the
# wire (PAGES_ONLY=1: only those, after one SIP call). CALLER_NICE=10 runs
# both callers (Chromium, `voxline call`) below the server's priority, so
# that on one machine they take only the CPU the server leaves;
# CALLER_SCHED=idle runs them under SCHED_IDLE (only on a core the server
# leaves idle).
# (load-tests/browser_latency.py). On two cores the browser shares the
# CPU with the models (see the stage table).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$CACHE/target}/release/voxline}
CONFIG=${CONFIG:-sip-config/voxline.toml}
WORK=$(mktemp -d /tmp/voxline-browser-latency.XXXXXX)
LOG=$WORK/serve.log
. load-tests/agent-server.sh
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
start_agent_server
echo "browser latency: server up (log $LOG, work dir $WORK)"
python3 load-tests/browser_latency.py --voxline "$VOXLINE" --work "$WORK" \
	--token "$CACHE/api-token" --rounds "${ROUNDS:-8}" ${PAGES_ONLY:+--pages-only}
