#!/usr/bin/env bash
# The card-renewal reminder campaign, for `make run` users: with the server
# up (`make run` in another terminal), starts a SIPp callee farm on
# 127.0.0.1:5090 (the example config's trunk "demo-farm"; by each number's
# last digit: 0, 1, 8, 9 a person who listens 3 s; 2 busy; 3 not found;
# 4 no answer; 5 declines; 6 early media, then a person; 7 answers and hangs
# up), creates a campaign of examples/campaign/renewals.csv on the agent
# route "renewal", starts it, follows it to its end and prints each
# contact's disposition. Usage: make demo-campaign
set -euo pipefail
cd "$(dirname "$0")/../.."
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$HOME/.cache/voxline/target}/release/voxline}
CONFIG=${CONFIG:-sip-config/voxline.toml}
FARM_PORT=${FARM_PORT:-5090}
WORK=${WORK:-/tmp/voxline-demo-campaign}
mkdir -p "$WORK"

curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 || {
	echo "voxline is not running: start it with 'make run' in another terminal first"
	exit 1
}
(cd "$WORK" && exec sipp -sf "$OLDPWD/load-tests/sipp/uas_callee_farm.xml" -i 127.0.0.1 -p "$FARM_PORT" \
	-mi 127.0.0.1 -mp 5092 -m 1000 -nostdin >"$WORK/farm.out" 2>&1) &
FARM=$!
trap 'kill $FARM 2>/dev/null; wait $FARM 2>/dev/null || true' EXIT

NAME="renewals-$(date +%H%M%S)"
"$VOXLINE" campaign create "$NAME" --config "$CONFIG" --route renewal --trunk demo-farm \
	--timezone Europe/London --country GB --window mon-sun=00:00-24:00 \
	--max-calls 2 --max-cps 1 --ring-timeout 10 \
	--max-attempts 2 --retry-busy 15 --retry-no-answer none --retry-failed 10
"$VOXLINE" campaign import "$NAME" examples/campaign/renewals.csv --config "$CONFIG"
"$VOXLINE" campaign start "$NAME" --config "$CONFIG"
"$VOXLINE" campaign status "$NAME" --watch --config "$CONFIG"
echo
"$VOXLINE" campaign export "$NAME" --config "$CONFIG" --out "$WORK/$NAME.csv"
column -s, -t <"$WORK/$NAME.csv" | cut -c1-110
echo
echo "The calls: curl -s -H \"Authorization: Bearer \$(cat ~/.cache/voxline/api-token)\" http://127.0.0.1:8080/api/campaigns/$NAME/progress"
