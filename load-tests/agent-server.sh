# Sourced by the agent load tests: starts `voxline serve --config $CONFIG`
# with its log in $LOG and waits until it is ready (at most 60 s); sets
# $SERVER. The caller's EXIT trap should kill $SERVER (start_bank_and_agent_server
# sets one). $AUTH is the curl
# option that sends the API token (the file `make run` makes, or
# $VOXLINE_API_TOKEN).
API_TOKEN=${VOXLINE_API_TOKEN:-$(cat "${VOXLINE_CACHE:-$HOME/.cache/voxline}/api-token" 2>/dev/null || true)}
AUTH=(-H "Authorization: Bearer $API_TOKEN")
start_agent_server() {
	"$VOXLINE" serve --config "$CONFIG" >"$LOG" 2>&1 &
	SERVER=$!
	for _ in $(seq 1 120); do
		grep -q "voxline ready" "$LOG" && return 0
		kill -0 $SERVER 2>/dev/null || { cat "$LOG"; return 1; }
		sleep 0.5
	done
	echo "voxline did not start"
	cat "$LOG"
	return 1
}

# The demo bank's tool service ($DEMO_BANK, log in $WORK/demo-bank.log) and
# then the server; an EXIT trap stops both. Sets $BANK and $SERVER.
start_bank_and_agent_server() {
	"$DEMO_BANK" >"$WORK/demo-bank.log" 2>&1 &
	BANK=$!
	SERVER=
	trap 'kill $SERVER $BANK 2>/dev/null; wait $SERVER $BANK 2>/dev/null || true' EXIT
	start_agent_server
}
