#!/usr/bin/env bash
# SIP call-rate benchmark: SIPp's built-in UAC places ~1 s calls against the
# playback route of a fresh `voxline serve` at rising rates. For each rate it
# prints completed/failed calls and call-setup time (INVITE -> 200) p50/p99,
# then the highest rate with 0 failed calls.
#
# Setup time is measured on the wire: every SIP packet on the test port is
# captured (dumpcap on lo) and INVITE -> 200 OK is timed per Call-ID.
#
# Usage: load-tests/sip-rate.sh [RATES...]      (default: 100 200 300 400 500 600 800 1000 1200)
# Env:   STEP_SECONDS (default 8) seconds of calls per rate; VOXLINE (binary path).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/voxline/target}"
VOXLINE=${VOXLINE:-$CARGO_TARGET_DIR/release/voxline}
STEP_SECONDS=${STEP_SECONDS:-8}
RATES=("$@")
[ ${#RATES[@]} -eq 0 ] && RATES=(100 200 300 400 500 600 800 1000 1200)
command -v sipp >/dev/null || { echo "sipp not found (apt-get install sip-tester)"; exit 1; }
command -v tshark >/dev/null || { echo "tshark not found (apt-get install tshark)"; exit 1; }
[ -x "$VOXLINE" ] || { echo "build first: cargo build --release"; exit 1; }

WORK=$(mktemp -d /tmp/voxline-rate.XXXXXX)
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=15060
. load-tests/voxline-server.sh
start_voxline rate-test "$PORT" 0.5 30

printf "%-8s %-10s %-8s %-10s %-10s %-10s %s\n" "rate" "calls" "failed" "setup_p50" "setup_p99" "setup_max" "voxline_cpu"
best=0
for rate in "${RATES[@]}"; do
  calls=$((rate * STEP_SECONDS))
  dir="$WORK/r$rate"; mkdir -p "$dir"
  dumpcap -q -i lo -f "udp port $PORT" -w "$dir/sip.pcapng" >/dev/null 2>&1 &
  CAP_PID=$!
  sleep 1
  cpu_before=$(awk '{print $14+$15}' /proc/$SERVER_PID/stat)
  t0=$(date +%s.%N)
  ( cd "$dir" && timeout $((STEP_SECONDS + 60)) sipp -sn uac 127.0.0.1:$PORT -s demo -r "$rate" -m "$calls" \
      -d 1000 -l $((rate * 4)) -i 127.0.0.1 -p $((PORT + 2)) -nostdin -timeout $((STEP_SECONDS + 50)) \
      -recv_timeout 8000 -trace_stat -fd 1 >/dev/null 2>&1 ) || true
  t1=$(date +%s.%N)
  cpu_after=$(awk '{print $14+$15}' /proc/$SERVER_PID/stat)
  sleep 1; kill -INT $CAP_PID 2>/dev/null || true; wait $CAP_PID 2>/dev/null || true
  stat=$(ls "$dir"/*_.csv 2>/dev/null | head -1 || true)
  read -r ok failed <<<"$(python3 - "$stat" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';')) if sys.argv[1] else []
if len(rows) < 2:
    print(0, -1); sys.exit()
h = rows[0]; last = rows[-1]
print(last[h.index('SuccessfulCall(C)')], last[h.index('FailedCall(C)')])
PY
)"
  read -r p50 p99 pmax <<<"$(tshark -r "$dir/sip.pcapng" -Y 'sip.CSeq.method == "INVITE"' -T fields \
      -e frame.time_epoch -e sip.Call-ID -e sip.Method -e sip.Status-Code 2>/dev/null | python3 -c '
import sys
invite, setup = {}, []
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    if len(f) < 4: continue
    t, cid, method, status = float(f[0]), f[1], f[2], f[3]
    if method == "INVITE" and cid not in invite: invite[cid] = t
    elif status == "200" and cid in invite:
        setup.append((t - invite.pop(cid)) * 1000)
setup.sort()
if not setup: print("- - -"); sys.exit()
q = lambda p: setup[min(len(setup) - 1, int(p * len(setup)))]
print(f"{q(0.5):.2f}ms {q(0.99):.2f}ms {setup[-1]:.2f}ms")
')"
  hz=$(getconf CLK_TCK)
  cpu=$(python3 -c "print(f'{($cpu_after-$cpu_before)/$hz/($t1-$t0)*100:.0f}%')")
  printf "%-8s %-10s %-8s %-10s %-10s %-10s %s\n" "$rate" "$ok" "$failed" "$p50" "$p99" "$pmax" "$cpu"
  if [ "$failed" = "0" ] && [ "$ok" = "$calls" ]; then best=$rate; fi
  rm -f "$dir/sip.pcapng"
  sleep 3
done
echo
echo "highest rate with 0 failed calls: $best calls/s (calls of ~1 s, playback route, $(nproc) cores)"
