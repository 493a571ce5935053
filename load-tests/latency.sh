#!/usr/bin/env bash
# Voice-to-voice latency of the demo bank agent, measured on the callers'
# side: starts `voxline serve` with the example config (SIP 127.0.0.1:5060),
# runs `voxline bench turn` (real SIP calls at 1, 2, 5, 10 at once), stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$HOME/.cache/voxline/target}/release/voxline}
LOG=${LOG:-/tmp/voxline-latency-serve.log}
CONFIG=${CONFIG:-sip-config/voxline.toml}
. load-tests/agent-server.sh
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
start_agent_server
METRICS=${METRICS:-http://127.0.0.1:8080/metrics}
snapshot() { curl -fsS "${AUTH[@]}" "$METRICS" 2>/dev/null | grep -E '^voxline_(asr_decode_seconds|asr_audio_seconds|llm_[a-z_]+)_total ' || true; }
BEFORE=$(snapshot)
STARTED=$(date +%s.%N)
"$VOXLINE" bench turn "$@"
ENDED=$(date +%s.%N)
AFTER=$(snapshot)
echo
echo "where the CPU went during the bench (from /metrics, summed over all calls):"
{ echo "$BEFORE" | sed 's/^/before /'; echo "$AFTER" | sed 's/^/after /'; } | awk -v wall="$(echo "$ENDED - $STARTED" | bc)" '
	{ v[$1 " " $2] = $3 }
	END {
		d = "after"; b = "before"
		n = split("asr_decode_seconds asr_audio_seconds llm_decode_seconds llm_prompt_tokens llm_reused_prompt_tokens llm_generated_tokens llm_replies llm_decode_steps llm_batched_decode_steps", k, " ")
		for (i = 1; i <= n; i++) x[k[i]] = v[d " voxline_" k[i] "_total"] - v[b " voxline_" k[i] "_total"]
		printf "  wall %.0f s; Whisper decoding %.0f s (%.0f s of audio); model decoding %.0f s\n", wall, x["asr_decode_seconds"], x["asr_audio_seconds"], x["llm_decode_seconds"]
		printf "  model: %d replies and prefills, %d prompt tokens read (%d more reused from the cache), %d generated\n", x["llm_replies"], x["llm_prompt_tokens"] - x["llm_reused_prompt_tokens"], x["llm_reused_prompt_tokens"], x["llm_generated_tokens"]
		if (x["llm_decode_steps"] > 0) printf "  model: %d decode steps (%d carrying more than one reply), %.1f ms each on average\n", x["llm_decode_steps"], x["llm_batched_decode_steps"], 1000 * x["llm_decode_seconds"] / x["llm_decode_steps"]
	}'
echo
echo "server-side stage times per turn (final transcript -> first reply audio queued):"
grep "turn: first reply audio queued" "$LOG" | sed 's/.*final_to_first_audio_ms=\([0-9]*\).*/\1/' | sort -n |
	awk '{a[NR]=$1} END {if (NR) printf "  n=%d p50=%d ms p95=%d ms\n", NR, a[int((NR+1)/2)], a[int(NR*0.95+0.5)]}'
