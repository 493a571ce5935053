#!/usr/bin/env bash
# Voice-to-voice latency of the demo bank agent, measured on the callers'
# side: starts `voxline serve` with the example config (SIP 127.0.0.1:5060),
# runs `voxline bench turn` (real SIP calls at 1, 2, 5, 10 at once), stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$HOME/.cache/voxline/target}/release/voxline}
LOG=${LOG:-/tmp/voxline-latency-serve.log}
CONFIG=${CONFIG:-sip-config/voxline.toml}
"$VOXLINE" serve --config "$CONFIG" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
	grep -q "voxline ready" "$LOG" && break
	kill -0 $SERVER 2>/dev/null || { cat "$LOG"; exit 1; }
	sleep 0.5
done
grep -q "voxline ready" "$LOG" || { echo "voxline did not start"; cat "$LOG"; exit 1; }
"$VOXLINE" bench turn "$@"
echo
echo "server-side stage times per turn (final transcript -> first reply audio queued):"
grep "turn: first reply audio queued" "$LOG" | sed 's/.*final_to_first_audio_ms=\([0-9]*\).*/\1/' | sort -n |
	awk '{a[NR]=$1} END {if (NR) printf "  n=%d p50=%d ms p95=%d ms\n", NR, a[int((NR+1)/2)], a[int(NR*0.95+0.5)]}'
