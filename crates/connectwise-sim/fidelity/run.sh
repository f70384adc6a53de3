#!/usr/bin/env bash
# Proof of fidelity: two ConnectWise clients written by others, used
# unmodified (pyconnectwise from PyPI, connectwise-rest from npm), run their
# list/paging/conditions/get/create/patch/delete flows against the simulator.
# Exits non-zero on any failure.
#
# The simulator is started as `hubhook sim connectwise` (release build).
# CWSIM_USE_EXAMPLE=1 starts the crate's own example binary instead (no
# dependency on the rest of the workspace). Installs go under target/cw-fidelity.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/crates/connectwise-sim/fidelity"
WORK="$ROOT/target/cw-fidelity"
PYCW_VERSION="0.6.1.2"
CWREST_VERSION="1.3.0"
mkdir -p "$WORK"
cd "$ROOT"

echo "== installing pyconnectwise $PYCW_VERSION and connectwise-rest $CWREST_VERSION"
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
fi
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "pyconnectwise==$PYCW_VERSION"
mkdir -p "$WORK/node"
if [ ! -f "$WORK/node/package.json" ]; then
  (cd "$WORK/node" && npm init -y >/dev/null)
fi
(cd "$WORK/node" && npm install --silent --no-audit --no-fund "connectwise-rest@$CWREST_VERSION")

echo "== building the simulator"
# CWSIM_PROFILE=debug reuses the debug build CI makes anyway (default: release).
PROFILE="${CWSIM_PROFILE:-release}"
PROFILE_FLAG=(--release)
if [ "$PROFILE" = "debug" ]; then PROFILE_FLAG=(); fi
if [ "${CWSIM_USE_EXAMPLE:-0}" = "1" ]; then
  cargo build "${PROFILE_FLAG[@]}" -q -p connectwise-sim --example sim
  SIM=("$ROOT/target/$PROFILE/examples/sim")
else
  cargo build "${PROFILE_FLAG[@]}" -q -p hubhook
  SIM=("$ROOT/target/$PROFILE/hubhook" sim connectwise)
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$WORK/sim.log"
"${SIM[@]}" --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/login/companyinfo/demo', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    echo "simulator exited:"; cat "$LOG"; exit 1
  fi
  sleep 0.2
done

export CW_HOST="127.0.0.1:$PORT" CW_COMPANY=demo CW_PUBLIC=demo-public CW_PRIVATE=demo-private
status=0
echo "== pyconnectwise"
"$WORK/venv/bin/python" "$HERE/pyconnectwise_check.py" || status=1
echo "== connectwise-rest"
# connectwise-rest logs each failed request it makes to stderr, and the checks expect some (400,
# 401), so stderr goes to a file that is shown only when the check fails.
if ! NODE_PATH="$WORK/node/node_modules" node "$HERE/connectwise_rest_check.js" 2>"$WORK/node.err"; then
  status=1
  cat "$WORK/node.err"
fi

if [ "$status" -ne 0 ]; then
  echo "fidelity: FAILED"
else
  echo "fidelity: all clients passed"
fi
exit "$status"
