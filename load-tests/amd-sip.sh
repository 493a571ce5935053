#!/usr/bin/env bash
# Answering-machine detection over SIP on the whole labelled sets
# (load-tests/amd/answers-a.toml and answers-b.toml, 44 people and 44
# machines): `voxline serve` dials a campaign through a trunk leading back to
# itself; each contact's number reaches a playback route that answers with
# one labelled answer (rendered by `voxline bench amd --render`, as the line
# carries it) and records the call. The campaign leaves its message on
# machines (--amd message). From the callees' recordings: when a person first
# hears the agent after the end of their greeting (the 2 s rule, p50/p95),
# when a machine gets the message after its beep (never before it), and the
# agent side's verdicts (a confusion table). Runs at each of CONCURRENT
# (default "1 4") calls at once.
set -euo pipefail
cd "$(dirname "$0")/.."
VOXLINE_BUILT=${VOXLINE:-${CARGO_TARGET_DIR:-$HOME/.cache/voxline/target}/release/voxline}
CONCURRENT=${CONCURRENT:-1 4}
SETS=${SETS:-load-tests/amd/answers-a.toml load-tests/amd/answers-b.toml}
OUT=${OUT:-/tmp/voxline-amd-sip}
rm -rf "$OUT"
mkdir -p "$OUT"
# The binary under test, copied with llama.cpp's libraries beside it.
cp "$VOXLINE_BUILT" "$OUT/voxline"
cp -a "$(dirname "$VOXLINE_BUILT")"/lib*.so* "$OUT/"
VOXLINE="$OUT/voxline"
. load-tests/agent-server.sh
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; true' EXIT

set_args=()
for s in $SETS; do set_args+=(--set "$s"); done
"$VOXLINE" bench amd "${set_args[@]}" --render "$OUT/answers" | tail -1
VOICEMAIL="Hello {first_name}, this is Harbor Bank about your new card. Please call us back."

status=0
for n in $CONCURRENT; do
	dir="$OUT/at-$n"
	mkdir -p "$dir"
	sip_port=$(free_port)
	CONFIG="$dir/voxline.toml"
	LOG="$dir/serve.log"
	cat >"$CONFIG" <<-EOF
		[node]
		name = "amd-1"
		[sip]
		[[sip.listener]]
		transport = "udp"
		bind = "127.0.0.1:$sip_port"
		[media]
		bind_ip = "127.0.0.1"
		rtp_port_min = 40000
		rtp_port_max = 49999
		record = true
		recordings_dir = "$dir/recordings"
		[store]
		url = "sqlite://$dir/calls.db"
		[campaigns]
		max_calls = $n
		# The callees: calls the server places to itself arrive from 127.0.0.1.
		[[trunk]]
		name = "local"
		kind = "ip"
		allow = ["127.0.0.1/32"]
		host = "127.0.0.1:5999"
		max_calls = 100
		max_cps = 100
		# The campaign's way out, back to this server.
		[[trunk]]
		name = "self"
		kind = "ip"
		allow = ["127.0.0.9/32"]
		host = "127.0.0.1:$sip_port"
		max_calls = $n
		max_cps = 5
		[[route]]
		name = "renewal"
		trunk = "self"
		handler = "agent"
		params = { domain = "$PWD/domains/demo-renewal", record = false, max_seconds = 60 }
	EOF
	python3 load-tests/amd_sip_report.py setup "$OUT/answers" "$CONFIG" "$dir/contacts.csv"
	start_agent_server
	"$VOXLINE" campaign create amd --config "$CONFIG" --route renewal --trunk self --timezone Europe/London \
		--window "mon-sun=00:00-24:00" --max-calls "$n" --max-cps 5 --ring-timeout 10 --max-attempts 1 \
		--amd message --voicemail "$VOICEMAIL" >/dev/null
	"$VOXLINE" campaign import amd "$dir/contacts.csv" --config "$CONFIG" >/dev/null
	started=$(date +%s.%N)
	"$VOXLINE" campaign start amd --config "$CONFIG" >/dev/null
	# Until the campaign is finished (bounded: 1 h).
	for _ in $(seq 1 7200); do
		"$VOXLINE" campaign status amd --config "$CONFIG" >"$dir/status.txt"
		grep -q ": finished," "$dir/status.txt" && break
		sleep 0.5
	done
	ended=$(date +%s.%N)
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null || true
	SERVER=
	echo
	printf '%s at once: %d contacts in %.0f s\n' "$n" "$(($(wc -l <"$dir/contacts.csv") - 1))" "$(echo "$ended - $started" | bc)"
	python3 load-tests/amd_sip_report.py report "$OUT/answers" "$dir/calls.db" "$dir/contacts.csv" || status=1
done
exit $status
