#!/usr/bin/env bash
# Runs the browser tests (the H5 app, then the admin console): starts the local stack
# (against AWS_ENDPOINT_URL, set by with-moto.sh) on a free port, drives it with
# headless Chromium, stops it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# `make test` built target/debug/local-stack with the test build's features already
# (STACK_PREBUILT=1): building it alone would resolve other features and put a
# second copy of most dependencies on disk.
[ -n "${STACK_PREBUILT:-}" ] || cargo build --locked -q -p local-stack
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp -t stack.XXXXXX.log)"
export ADMIN_API_KEY="browser-test-admin-key-0123456789"
# Known to the console test, which signs a really expired session with it.
export SESSION_SECRET="browser-test-session-secret-0123456789abcdef"
PORT="$port" RUST_LOG=warn target/debug/local-stack >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 150); do
  grep -q "ingest token" "$log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.2
done
status=0
INGEST_TOKEN="$(awk '/ingest token/ {print $3}' "$log")" \
STACK_URL="http://127.0.0.1:$port" ARTIFACTS="$root/tests/artifacts" \
  node tests/browser/h5.test.mjs || status=1
# The admin console (GET /console), against the same stack: each test prints its own
# "browser: N passed, M failed" line, run-tests.sh adds them up.
STACK_URL="http://127.0.0.1:$port" ARTIFACTS="$root/tests/artifacts" \
  node tests/browser/console.test.mjs || status=1
exit "$status"
