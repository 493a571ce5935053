# Sourced by the load tests: starts a throwaway `voxline serve` on loopback
# with a playback route "demo", recording off, call records in $WORK.
#
#   start_voxline NAME PORT GREETING_SECONDS MAX_SECONDS
#
# Needs $VOXLINE (binary) and $WORK (a scratch folder); sets $SERVER_PID.
# $SERVER_CPUS (optional, e.g. "0") pins the server to those CPUs.
# The caller's EXIT trap should kill $SERVER_PID.
start_voxline() {
  local name=$1 port=$2 greeting_seconds=$3 max_seconds=$4
  sox -n -r 8000 -c 1 -b 16 "$WORK/greeting.wav" synth "$greeting_seconds" sine 440 vol 0.3 2>/dev/null
  cat > "$WORK/voxline.toml" <<CONF
[node]
name = "$name"
[sip]
max_calls = 20000
[[sip.listener]]
transport = "udp"
bind = "127.0.0.1:$port"
[media]
bind_ip = "127.0.0.1"
rtp_port_min = 20000
rtp_port_max = 60000
record = false
[store]
url = "sqlite://$WORK/calls.db"
[[trunk]]
name = "local"
kind = "ip"
allow = ["127.0.0.1/32"]
[[route]]
name = "demo"
trunk = "local"
handler = "playback"
params = { greeting = "greeting.wav", max_seconds = $max_seconds }
CONF
  local pin=()
  [ -n "${SERVER_CPUS:-}" ] && pin=(taskset -c "$SERVER_CPUS")
  VOXLINE_LOG=warn "${pin[@]}" "$VOXLINE" serve --config "$WORK/voxline.toml" 2> "$WORK/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q "SIP listening" "$WORK/serve.log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log"; return 1; }
    sleep 0.1
  done
  sleep 0.5
}
