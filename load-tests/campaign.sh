#!/usr/bin/env bash
# A campaign of 1,000 contacts (CONTACTS=N) dialled by `voxline serve` (the
# demo renewal agent) through a trunk to a SIPp callee farm
# (sipp/uas_callee_farm.xml: people, busy, not found, no answer, declines,
# early media, hang-ups by the number's last digit), twice: straight through,
# then with a `kill -9` of the server at KILL_AT (default half the contacts
# done) and a restart. A tenth of the contacts live where the calling window
# is closed: they must never be dialled. Busy numbers are tried twice (20 s
# apart); a call cut by the kill that had not been answered counts as a
# failed attempt, tried again 5 s later; an answered one is not called again. Prints, on the callees' side, the
# most calls up at once and the most new calls in one second (against the
# limits set), each callee kind's dispositions, INVITEs the store does not
# know of, contacts dialled again after an answer, contacts left without a
# disposition, and the wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
VOXLINE_BUILT=${VOXLINE:-${CARGO_TARGET_DIR:-$HOME/.cache/voxline/target}/release/voxline}
CONTACTS=${CONTACTS:-1000}
KILL_AT=${KILL_AT:-0.5}
MAX_CALLS=${MAX_CALLS:-6}
MAX_CPS=${MAX_CPS:-3}
OUT=${OUT:-/tmp/voxline-campaign-load}
rm -rf "$OUT"
mkdir -p "$OUT"
# The binary under test, copied with llama.cpp's libraries beside it (its
# rpath is $ORIGIN): a build meanwhile does not change it.
cp "$VOXLINE_BUILT" "$OUT/voxline"
cp -a "$(dirname "$VOXLINE_BUILT")"/lib*.so* "$OUT/"
VOXLINE="$OUT/voxline"
. load-tests/agent-server.sh
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

SERVER=
FARM=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	[ -n "$FARM" ] && kill "$FARM" 2>/dev/null && wait "$FARM" 2>/dev/null
	true
}
trap cleanup EXIT

# run NAME KILL(0|1): one campaign from scratch in $OUT/NAME.
run() {
	local name=$1 kill=$2 dir="$OUT/$1"
	mkdir -p "$dir"
	local farm_port sip_port
	farm_port=$(free_port)
	sip_port=$(free_port)
	(cd "$dir" && exec sipp -sf "$OLDPWD/load-tests/sipp/uas_callee_farm.xml" -i 127.0.0.1 -p "$farm_port" \
		-mi 127.0.0.1 -mp "$(free_port)" -m 1000000 -nostdin -trace_msg -message_file farm.log \
		>/dev/null 2>&1) &
	FARM=$!
	CONFIG="$dir/voxline.toml"
	LOG="$dir/serve.log"
	cat >"$CONFIG" <<-EOF
		[node]
		name = "load-1"
		[sip]
		[[sip.listener]]
		transport = "udp"
		bind = "127.0.0.1:$sip_port"
		[media]
		bind_ip = "127.0.0.1"
		rtp_port_min = 40000
		rtp_port_max = 49999
		[store]
		url = "sqlite://$dir/calls.db"
		[campaigns]
		max_calls = $MAX_CALLS
		[[trunk]]
		name = "farm"
		kind = "ip"
		allow = ["127.0.0.9/32"]
		host = "127.0.0.1:$farm_port"
		max_calls = $MAX_CALLS
		max_cps = $MAX_CPS
		[[route]]
		name = "renewal"
		trunk = "farm"
		handler = "agent"
		params = { domain = "$PWD/domains/demo-renewal", record = false, max_seconds = 60 }
	EOF
	local window
	window=$(python3 load-tests/campaign_report.py contacts "$CONTACTS" "$dir/contacts.csv")
	start_agent_server
	"$VOXLINE" campaign create load --config "$CONFIG" --route renewal --trunk farm --timezone Europe/London \
		--country GB --window "$window" --max-calls "$MAX_CALLS" --max-cps "$MAX_CPS" --ring-timeout 10 \
		--max-attempts 2 --retry-busy 20 --retry-no-answer none --retry-failed 5 >/dev/null
	"$VOXLINE" campaign import load "$dir/contacts.csv" --config "$CONFIG" >"$dir/import.txt"
	sed -n 1p "$dir/import.txt"
	local started target dialable
	started=$(date +%s.%N)
	"$VOXLINE" campaign start load --config "$CONFIG" >/dev/null
	dialable=$((CONTACTS - CONTACTS / 10))
	if [ "$kill" = 1 ]; then
		target=$(python3 -c "print(int($dialable * $KILL_AT))")
		while read -r d _ < <(python3 load-tests/campaign_report.py done "$dir/calls.db"); [ "$d" -lt "$target" ]; do sleep 0.5; done
		echo "  kill -9 of the server with $(python3 load-tests/campaign_report.py done "$dir/calls.db" | awk '{print $1 " contacts done, " $2 " being dialled"}')"
		kill -9 "$SERVER"
		wait "$SERVER" 2>/dev/null || true
		mv "$LOG" "$dir/serve-killed.log"
		start_agent_server
	fi
	# Until every contact inside its window is done (bounded: 2 h).
	for _ in $(seq 1 14400); do
		read -r d g < <(python3 load-tests/campaign_report.py done "$dir/calls.db")
		[ "$d" -ge "$dialable" ] && [ "$g" = 0 ] && break
		sleep 0.5
	done
	local ended
	ended=$(date +%s.%N)
	"$VOXLINE" campaign stop load --config "$CONFIG" >/dev/null
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null || true
	SERVER=
	kill "$FARM" 2>/dev/null
	wait "$FARM" 2>/dev/null || true
	FARM=
	printf '  wall time from start to the last disposition: %.0f s\n' "$(echo "$ended - $started" | bc)"
	python3 load-tests/campaign_report.py report "$dir/calls.db" "$dir/farm.log" || status=1
}

echo "campaign of $CONTACTS contacts, limits: $MAX_CALLS calls at once, $MAX_CPS new calls per second; $(nproc) cores"
echo
echo "straight through:"
status=0
run straight 0
echo
echo "kill -9 at ${KILL_AT} of the contacts and a restart:"
run killed 1
exit $status
