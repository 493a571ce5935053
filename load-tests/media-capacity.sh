#!/usr/bin/env bash
# Media capacity: a fresh `voxline serve` (playback route, recording off) and
# `voxline bench media` placing N concurrent calls that send 20 ms G.711
# packets both ways. Prints, per N: calls answered, packets lost, the spacing
# of voxline's packets as received (send-interval jitter |Δt − 20 ms| p50/p99)
# and voxline's CPU per call (share of one core). With two or more CPUs the
# server is pinned to CPU 0 and the generator to CPU 1, so "calls per core"
# is read directly and the generator does not steal the server's time
# (SERVER_CPUS / BENCH_CPUS override; empty = unpinned).
#
# Usage: load-tests/media-capacity.sh [N,N,...]   (default 250,500,1000,1500)
# Env:   SECONDS_PER_STEP (default 10); VOXLINE (binary path); SERVER_VOXLINE
#        (the server's binary, default $VOXLINE: compare two builds with one
#        generator).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/voxline/target}"
VOXLINE=${VOXLINE:-$CARGO_TARGET_DIR/release/voxline}
STEPS=${1:-250,500,1000,1500}
SECONDS_PER_STEP=${SECONDS_PER_STEP:-10}
[ -x "$VOXLINE" ] || { echo "build first: cargo build --release"; exit 1; }
ulimit -n 65536 2>/dev/null || true

WORK=$(mktemp -d /tmp/voxline-media.XXXXXX)
trap 'kill $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=16060
if [ "$(nproc)" -ge 2 ]; then
  : "${SERVER_CPUS=0}" "${BENCH_CPUS=1}"
fi
BENCH_PIN=()
[ -n "${BENCH_CPUS:-}" ] && BENCH_PIN=(taskset -c "$BENCH_CPUS")
. load-tests/voxline-server.sh
VOXLINE=${SERVER_VOXLINE:-$VOXLINE} start_voxline media-capacity "$PORT" 600 3600
echo "server CPUs: ${SERVER_CPUS:-all}; generator CPUs: ${BENCH_CPUS:-all}"
VOXLINE_LOG=error "${BENCH_PIN[@]}" "$VOXLINE" bench media --target "sip:demo@127.0.0.1:$PORT" --calls "$STEPS" \
  --seconds "$SECONDS_PER_STEP" --server-pid "$SERVER_PID"
