#!/usr/bin/env bash
# Standard Webhooks conformance: the `standardwebhooks` library from PyPI (pinned), used
# unmodified in a small Python receiver, verifies real deliveries from a running
# `hubhook serve` (signed with the webhookSecret returned at creation, then with both
# secrets after a rotation). Exits non-zero on any failure.
#
# SW_PROFILE=release builds with --release (default: the debug build CI makes anyway).
# Everything it writes goes under target/standardwebhooks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
HERE="$ROOT/crates/hubhook/tests/standardwebhooks"
WORK="$ROOT/target/standardwebhooks"
SW_VERSION="1.1.0"
rm -rf "$WORK/run" && mkdir -p "$WORK/run"
cd "$ROOT"

echo "== installing standardwebhooks $SW_VERSION"
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
fi
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "standardwebhooks==$SW_VERSION"

echo "== building hubhook"
PROFILE="${SW_PROFILE:-debug}"
PROFILE_FLAG=()
if [ "$PROFILE" = "release" ]; then PROFILE_FLAG=(--release); fi
cargo build "${PROFILE_FLAG[@]}" -q -p hubhook
HUBHOOK="$ROOT/target/$PROFILE/hubhook"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SIM_PORT="$(free_port)"; API_PORT="$(free_port)"; RECEIVER_PORT="$(free_port)"
DB="sqlite://$WORK/run/hubhook.db"
export HUBHOOK_MASTER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
PIDS=()
trap 'for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

"$HUBHOOK" sim connectwise --listen "127.0.0.1:$SIM_PORT" --records 5 >"$WORK/run/sim.log" 2>&1 &
PIDS+=($!)
"$WORK/venv/bin/python" "$HERE/receiver.py" "$RECEIVER_PORT" "$WORK/run/secrets" "$WORK/run/received.jsonl" \
  >"$WORK/run/receiver.log" 2>&1 &
PIDS+=($!)
ORG="$("$HUBHOOK" org create --name standardwebhooks --database-url "$DB")"
"$HUBHOOK" serve --listen "127.0.0.1:$API_PORT" --database-url "$DB" --allow-private-callbacks \
  --min-refresh-interval 1 --retry-schedule 1s,1s,1s >"$WORK/run/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")

for _ in $(seq 1 150); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$API_PORT/readyz', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server exited:"; cat "$WORK/run/server.log"; exit 1
  fi
  sleep 0.2
done

export HUBHOOK_URL="http://127.0.0.1:$API_PORT" SIM_URL="http://127.0.0.1:$SIM_PORT/v4_6_release/apis/3.0"
export RECEIVER_URL="http://127.0.0.1:$RECEIVER_PORT/webhook"
export SECRETS_FILE="$WORK/run/secrets" LOG_FILE="$WORK/run/received.jsonl"
export ORG
if ! python3 "$HERE/check.py"; then
  echo "standardwebhooks: FAILED; server log:"; tail -n 50 "$WORK/run/server.log"
  exit 1
fi
