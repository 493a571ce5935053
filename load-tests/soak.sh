#!/usr/bin/env bash
# Soak: a steady mix of agent and media calls against one `voxline serve`
# for SOAK_MINUTES (default 30), with the server's memory, file
# descriptors, sockets, threads and media-clock lateness sampled throughout
# and compared idle-to-idle (after a warm-up, and after the load drains).
#
#   load-tests/soak.sh            # 30 minutes
#   SOAK_MINUTES=3 load-tests/soak.sh
#
# The load (load-tests/soak.py): one caller after another speaks two
# questions (Piper voice, 8 kHz) into the demo bank agent and hangs up after
# its answer (`voxline call --after-quiet-ms`); beside it SIPp keeps about
# MEDIA_CALLS (default 6) echo calls up, each sending PCMU for MEDIA_SECONDS
# (default 20 s). Every call is then checked in the call records: ended by
# the caller, completed, agent calls with a reply to each question, echo
# calls with audio received. Prints the samples and a summary table; exits
# non-zero when a call failed or a resource did not come back to its level.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
BIN=${CARGO_TARGET_DIR:-$CACHE/target}/release
VOXLINE=${VOXLINE:-$BIN/voxline}
DEMO_BANK=${DEMO_BANK:-$BIN/voxline-demo-bank}
PYTHON=${PYTHON:-$CACHE/bench-venv/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
WORK=$(mktemp -d /tmp/voxline-soak.XXXXXX)
LOG=$WORK/serve.log
# The example config with its own store (the soak's records stay out of the
# user's database), beside a link to the packs its routes name (../domains).
mkdir -p "$WORK/sip-config"
ln -s "$PWD/domains" "$WORK/domains"
CONFIG=$WORK/sip-config/voxline.toml
sed "s|^url = \"sqlite://.*\"|url = \"sqlite://$WORK/calls.db\"|" sip-config/voxline.toml >"$CONFIG"
grep -q "sqlite://$WORK/calls.db" "$CONFIG" || { echo "soak: could not point [store] url at $WORK"; exit 1; }

head -3 load-tests/latency/questions.txt | grep -v '^#' >"$WORK/questions.txt"
. load-tests/speak-questions.sh
n=$(speak_questions piper "$WORK/questions.txt" "$WORK")
[ "$n" -ge 2 ] || { echo "soak: no questions spoken"; exit 1; }
sox -n -r 8000 -c 1 -t ul "$WORK/caller.ulaw" synth 2 sine 300:3000 vol 0.3
cp load-tests/sipp/uac_soak_media.xml "$WORK/"

. load-tests/agent-server.sh
start_bank_and_agent_server
echo "soak: server pid $SERVER, work dir $WORK"
# The callers' own config: the example's, with a store of their own.
sed "s|^url = \"sqlite://.*\"|url = \"sqlite://$WORK/caller.db\"|" sip-config/voxline.toml >"$WORK/sip-config/caller.toml"
VOXLINE_API_TOKEN=$API_TOKEN "$PYTHON" load-tests/soak.py --voxline "$VOXLINE" --work "$WORK" --pid "$SERVER" \
	--questions "$n" --minutes "${SOAK_MINUTES:-30}" \
	--media-calls "${MEDIA_CALLS:-6}" --media-seconds "${MEDIA_SECONDS:-20}"
