#!/usr/bin/env bash
# How well Whisper's own confidence tells a misheard question from a rightly
# heard one: each fact, off-domain and unknown question of the SETs is
# spoken by VOICE (piper or espeak), sent through G.711 μ-law at 8 kHz as on
# a call, decoded by `voxline transcribe --confidence`, and compared with
# what was said (load-tests/asr_confidence.py). Prints, per threshold on the
# mean token log-probability, the misheard turns a doubt catches and the
# rightly heard ones it would ask again for nothing (asr.doubt_mean_logprob).
#
#   load-tests/asr-confidence.sh espeak domains/demo-bank/eval-neighbours.toml …
#
# MODEL=path/to/ggml-model.bin takes another Whisper model (default: tiny.en).
set -euo pipefail
cd "$(dirname "$0")/.."
VOICE=${1:?usage: asr-confidence.sh piper|espeak SET.toml…}
shift
[ $# -gt 0 ] || { echo "usage: asr-confidence.sh piper|espeak SET.toml…" >&2; exit 2; }
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$CACHE/target}/release/voxline}
WORK=$(mktemp -d /tmp/voxline-asr-confidence.XXXXXX)

for set in "$@"; do python3 load-tests/spoken_eval.py questions "$set"; done >"$WORK/questions.txt"
. load-tests/speak-questions.sh
n=$(speak_questions "$VOICE" "$WORK/questions.txt" "$WORK")
clips=()
for i in $(seq 1 "$n"); do
	# The call's path: G.711 μ-law, then back to linear samples.
	sox "$WORK/q-$i.wav" -e u-law "$WORK/ulaw-$i.wav"
	sox "$WORK/ulaw-$i.wav" -e signed-integer -b 16 "$WORK/g711-$i.wav"
	clips+=("$WORK/g711-$i.wav")
done
echo "$n questions spoken by $VOICE in $WORK" >&2
"$VOXLINE" transcribe --confidence ${MODEL:+--model "$MODEL"} "${clips[@]}" 2>/dev/null >"$WORK/heard.jsonl"
python3 load-tests/asr_confidence.py table "$WORK/questions.txt" "$WORK/heard.jsonl"
