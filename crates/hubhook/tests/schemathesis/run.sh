#!/usr/bin/env bash
# schemathesis (PyPI, pinned) against a live `hubhook serve`: every operation of /openapi.json
# is called with generated input (valid and invalid), and the run fails on any 5xx answer, any
# answer whose status, content type, headers or body the description does not allow.
#
# The server runs on a fresh SQLite database with one organization and one instance (events
# off) on the ConnectWise simulator, so hub routes have a site to read; requests carry the
# organization's secrets and the instance's token. Bounded: a few examples per operation, no
# shrinking, and the whole run under HUBHOOK_SCHEMATHESIS_SECONDS (default 240).
#
# HUBHOOK_PROFILE=release uses a release build (default: debug, which CI builds anyway).
# Installs go under target/schemathesis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
WORK="$ROOT/target/schemathesis"
ST_VERSION="4.32.5"
SECONDS_BUDGET="${HUBHOOK_SCHEMATHESIS_SECONDS:-240}"
mkdir -p "$WORK"
cd "$ROOT"

echo "== installing schemathesis $ST_VERSION"
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
fi
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION"

PROFILE="${HUBHOOK_PROFILE:-debug}"
PROFILE_FLAG=()
if [ "$PROFILE" = "release" ]; then PROFILE_FLAG=(--release); fi
cargo build "${PROFILE_FLAG[@]}" -q -p hubhook
HUBHOOK="$ROOT/target/$PROFILE/hubhook"

RUN="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
  local url="$1" pid="$2" log="$3"
  for _ in $(seq 1 150); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$url', timeout=1)" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "exited:"; cat "$log"; exit 1; fi
    sleep 0.2
  done
  echo "$url did not answer"; cat "$log"; exit 1
}

SIM_PORT="$(free_port)"
env -u HUBHOOK_LISTEN "$HUBHOOK" sim connectwise --listen "127.0.0.1:$SIM_PORT" --records 20 >"$RUN/sim.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$SIM_PORT/login/companyinfo/demo" "${PIDS[-1]}" "$RUN/sim.log"

export HUBHOOK_DATABASE_URL="sqlite://$RUN/hubhook.db"
export HUBHOOK_MASTER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
ORG="$("$HUBHOOK" org create --name schemathesis)"

PORT="$(free_port)"
"$HUBHOOK" serve --listen "127.0.0.1:$PORT" --allow-private-callbacks --min-refresh-interval 1 >"$RUN/serve.log" 2>&1 &
PIDS+=($!)
BASE="http://127.0.0.1:$PORT"
wait_for "$BASE/healthz" "${PIDS[-1]}" "$RUN/serve.log"

AUTH="$(ORG="$ORG" BASE="$BASE" SIM="http://127.0.0.1:$SIM_PORT/v4_6_release/apis/3.0" python3 - <<'PY'
import json, os, urllib.request
org = json.loads(os.environ["ORG"])
auth = f"User {org['userSecret']}, Organization {org['organizationSecret']}"
body = {
    "element": {"key": "connectwisecrmrest"},
    "name": "schemathesis",
    "configuration": {
        "baseUrl": os.environ["SIM"], "company": "demo",
        "public.key": "demo-public", "private.key": "demo-private",
        "event.notification.enabled": False,
    },
}
request = urllib.request.Request(
    os.environ["BASE"] + "/elements/api-v2/instances", data=json.dumps(body).encode(),
    headers={"Authorization": auth, "Content-Type": "application/json"}, method="POST")
instance = json.load(urllib.request.urlopen(request, timeout=30))
print(f"{auth}, Element {instance['token']}")
PY
)"

# Operations that take away the run's own access (secret rotation, deleting or disabling the
# instance whose token the requests carry) run last, in a second pass, so that they do not turn
# the rest of the run into 401s and 403s.
DESTRUCTIVE='^(POST .*/secret|DELETE /elements/api-v2/(instances|elements/\{keyOrId\}/instances)/\{id\}(/enabled)?|DELETE /elements/api-v2/instances/enabled)$'
schemathesis() {
  "$WORK/venv/bin/st" run "$BASE/openapi.json" \
    --url "$BASE" \
    --header "Authorization: $AUTH" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples 10 \
    --no-shrink \
    --seed 1 \
    --generation-database none \
    --request-timeout 30 \
    --workers 2 \
    --no-color \
    "$@"
}
# A pass that failed only because CPython 3.11 itself failed inside Hypothesis ("SystemError:
# AST constructor recursion depth mismatch", raised by `ast.parse` while Hypothesis describes a
# lambda, with two workers; seen once in CI, not an answer of ours) is run once more. Any other
# failure, or that one twice, fails the run.
once_more_on_cpython_bug() {
  local log
  log="$(mktemp)"
  if schemathesis "$@" 2>&1 | tee "$log"; then rm -f "$log"; return 0; fi
  if grep -q 'AST constructor recursion depth mismatch' "$log" \
    && ! grep -Eq 'Server error|Undocumented|Response violates|Unsupported content type|Missing header' "$log"; then
    rm -f "$log"
    echo "== the pass failed on CPython's AST bug inside Hypothesis, not on an answer: once more"
    schemathesis "$@"
    return
  fi
  rm -f "$log"
  return 1
}
echo "== schemathesis against $BASE/openapi.json (at most $SECONDS_BUDGET s)"
export -f schemathesis once_more_on_cpython_bug
export WORK BASE AUTH
timeout --signal=INT "$SECONDS_BUDGET" bash -c "
  set -o pipefail
  once_more_on_cpython_bug --exclude-name-regex '$DESTRUCTIVE' &&
  once_more_on_cpython_bug --include-name-regex '$DESTRUCTIVE'
"
