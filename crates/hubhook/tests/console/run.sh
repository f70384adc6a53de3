#!/usr/bin/env bash
# The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`), against
# a running `hubhook serve`, the ConnectWise simulator and a callback receiver: sign in, create
# an instance through the form with two resources, see its pollers turn ok, change a contact in
# the simulator and see the event and its delivery, make the receiver fail and see the failed
# attempts, resend it once the receiver is back and see it delivered, see an invalid callback URL refused next to its field, and check that another
# organization's user gets 404 on the first one's instance page, and that a page refreshing
# itself goes to the sign-in once its session ends elsewhere. Screenshots of the main pages
# go to target/console-screenshots.
#
# The browser is driven over WebDriver (chromedriver) by console_test.py, which uses Python's
# standard library only: nothing is downloaded. Bounded: the whole run is killed after
# HUBHOOK_CONSOLE_SECONDS (default 240).
#
# HUBHOOK_PROFILE=release uses a release build (default: debug, which CI builds anyway).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
SHOTS="$ROOT/target/console-screenshots"
SECONDS_BUDGET="${HUBHOOK_CONSOLE_SECONDS:-240}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
cd "$ROOT"
for tool in "$CHROMIUM" "$CHROMEDRIVER"; do
  if [ ! -x "$tool" ]; then echo "missing $tool: apt-get install chromium chromium-driver"; exit 1; fi
done

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
HUBHOOK_PASSWORD="first-org-password" "$HUBHOOK" org create --name first --email first@example.test >/dev/null
HUBHOOK_PASSWORD="other-org-password" "$HUBHOOK" org create --name other --email other@example.test >/dev/null

# Retries wait ten minutes: a failed delivery stays failed (and, with Resend, is delivered by it).
PORT="$(free_port)"
"$HUBHOOK" serve --listen "127.0.0.1:$PORT" --allow-private-callbacks --min-refresh-interval 1 \
  --retry-schedule 10m >"$RUN/serve.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PORT/healthz" "${PIDS[-1]}" "$RUN/serve.log"

DRIVER_PORT="$(free_port)"
"$CHROMEDRIVER" --port="$DRIVER_PORT" >"$RUN/chromedriver.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$DRIVER_PORT/status" "${PIDS[-1]}" "$RUN/chromedriver.log"

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
if ! timeout "$SECONDS_BUDGET" python3 "$ROOT/crates/hubhook/tests/console/console_test.py" \
  --base "http://127.0.0.1:$PORT" --driver "http://127.0.0.1:$DRIVER_PORT" \
  --sim "http://127.0.0.1:$SIM_PORT/v4_6_release/apis/3.0" --chromium "$CHROMIUM" --shots "$SHOTS"; then
  echo "== console test failed; server log:"; tail -50 "$RUN/serve.log"
  exit 1
fi
echo "== console test passed; screenshots in $SHOTS"
