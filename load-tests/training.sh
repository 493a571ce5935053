#!/usr/bin/env bash
# Training (issue 24): scripted good and poor trainees call the example
# config's `training` number (the bot plays domains/demo-bank's
# overdraft-fee customer), RUNS times each through `voxline call` and
# through baresip; every report is read back and the good trainee must do at
# least as well on every criterion they differ on (load-tests/training_run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${VOXLINE_CACHE:-$HOME/.cache/voxline}
VOXLINE=${VOXLINE:-${CARGO_TARGET_DIR:-$CACHE/target}/release/voxline}
DEMO_BANK=${DEMO_BANK:-$(dirname "$VOXLINE")/voxline-demo-bank}
PYTHON=${PYTHON:-$CACHE/bench-venv/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
CONFIG=${CONFIG:-sip-config/voxline.toml}
WORK=$(mktemp -d /tmp/voxline-training.XXXXXX)
LOG=$WORK/serve.log
. load-tests/agent-server.sh
start_bank_and_agent_server
echo "training: server up (log $LOG, work dir $WORK)"
"$PYTHON" load-tests/training_run.py --voxline "$VOXLINE" --work "$WORK" \
	--token "$CACHE/api-token" --runs "${RUNS:-3}"
