#!/usr/bin/env bash
# A question set spoken into one call: each fact, off-domain and unknown
# question of SET is spoken by VOICE (piper: voxline's own Piper voice;
# espeak: espeak-ng, a voice the tests never use), made 8 kHz (G.711 on the
# call), played one per turn into the demo agent (`voxline call
# --after-quiet-ms`), and each reply in the call's stored transcript graded
# against the case (load-tests/spoken_eval.py): right, wrong fact, asked
# again, missed.
#
#   load-tests/spoken-eval.sh domains/demo-bank/eval-neighbours.toml espeak
#
# Tool and transfer cases are left out: they change the call's course.
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${1:?usage: spoken-eval.sh SET.toml piper|espeak}
VOICE=${2:?usage: spoken-eval.sh SET.toml piper|espeak}
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
BIN=${CARGO_TARGET_DIR:-$CACHE/target}/release
VOXLINE=${VOXLINE:-$BIN/voxline}
DEMO_BANK=${DEMO_BANK:-$BIN/voxline-demo-bank}
CONFIG=${CONFIG:-sip-config/voxline.toml}
TARGET=${TARGET:-sip:demo@127.0.0.1:5060}
API=${API:-http://127.0.0.1:8080}
WORK=$(mktemp -d /tmp/voxline-spoken-eval.XXXXXX)
LOG=$WORK/serve.log

python3 load-tests/spoken_eval.py questions "$SET" >"$WORK/questions.txt"
. load-tests/speak-questions.sh
n=$(speak_questions "$VOICE" "$WORK/questions.txt" "$WORK")
plays=()
for i in $(seq 1 "$n"); do plays+=(--play "$WORK/q-$i.wav"); done
echo "$n questions spoken by $VOICE in $WORK"

. load-tests/agent-server.sh
start_bank_and_agent_server

"$VOXLINE" call "$TARGET" "${plays[@]}" --after-quiet-ms 1500 --hangup-after-reply \
	--max-seconds $((30 + n * 25)) >"$WORK/call.log" 2>&1
call_id=$(curl -fsS "${AUTH[@]}" "$API/api/calls" | python3 -c 'import json,sys; c=max(json.load(sys.stdin), key=lambda c: c["invite_at"]); print(c["call_id"])')
curl -fsS "${AUTH[@]}" "$API/api/calls/$call_id/transcript" >"$WORK/transcript.json"
echo "call $call_id"
python3 load-tests/spoken_eval.py grade "$SET" "$WORK/transcript.json" "$CONFIG"
