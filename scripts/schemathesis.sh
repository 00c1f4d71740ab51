#!/usr/bin/env bash
# Property tests of openapi.yaml against the local stack (`make dev`'s, against
# AWS_ENDPOINT_URL when with-moto.sh set it): schemathesis generates requests for
# every admin, ingest and H5 operation, from the document the admin function serves at
# GET /api/openapi.yaml, and checks that no answer is a 5xx, that every status,
# content type and body is the one the document gives, and that requests outside the
# document (wrong types, values, missing fields) are refused with a 4xx
# (negative_data_rejection; except the DingTalk-robot endpoint, see below).
# DingTalk's signed callbacks are covered by the Rust tests instead.
# Prints "schemathesis: N passed, N failed" (operations) for run-tests.sh's totals.
# Arguments are passed on to `schemathesis run` (e.g. --report har --report-dir DIR).
# Environment: ST_MAX_EXAMPLES (default 20 per operation), ST_WORKERS (default 1:
# with more, hypothesis under schemathesis 4.32 on Python 3.11 sometimes fails in
# its own code, "AST constructor recursion depth mismatch").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv/bin"
[ -x "$venv/schemathesis" ] || { echo "schemathesis missing: run scripts/bootstrap-tools.sh" >&2; exit 1; }
"$venv/openapi-spec-validator" openapi.yaml

# `make test` built target/debug/local-stack with the test build's features already
# (STACK_PREBUILT=1): building it alone would resolve other features and put a
# second copy of most dependencies on disk.
[ -n "${STACK_PREBUILT:-}" ] || cargo build --locked -q -p local-stack
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
work="$(mktemp -d -t schemathesis.XXXXXX)"
export ADMIN_API_KEY="schemathesis-admin-key-0123456789"
# Its own table and queue: the browser test's stack, on the same moto server, sealed
# its integrations with another (generated) SECRETS_KEY.
run_id="st$(date +%s)$$"
TABLE_NAME="schemathesis-$run_id" QUEUE_URL="http://queue.invalid/schemathesis-$run_id" \
PORT="$port" RUST_LOG=error target/debug/local-stack >"$work/stack.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
  grep -q "ingest token" "$work/stack.log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/stack.log" >&2; exit 1; }
  sleep 0.2
done
base="http://127.0.0.1:$port"
setup_failed() {
  echo "schemathesis: $1 failed; the stack said:" >&2
  tail -n 30 "$work/stack.log" >&2
  echo "schemathesis: 0 passed, 1 failed (set-up)"
  exit 1
}

# A fresh integration for the run, so that paths name real things (the demo
# integration stays as printed): its id, ingest token, a member, a schedule and a
# policy.
read -r ST_INTEGRATION ST_INGEST_TOKEN ST_SCHEDULE ST_POLICY < <(python3 - "$base" "$ADMIN_API_KEY" <<'EOF'
import json, sys, urllib.request
base, key = sys.argv[1], sys.argv[2]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=10))
created = post("/api/integrations", {
    "name": "schemathesis", "corp_id": "dingschemathesis", "agent_id": "3000000099",
    "client_id": "dingschemathesisapp", "client_secret": "schemathesis-secret",
    "aes_key": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ", "token": "stoken",
    "locale": "en-US"})
root = "/api/integrations/" + created["id"]
post(root + "/members", {"email": "alice@example.com", "name": "Alice", "licensed": True})
schedule = post(root + "/schedules", {"name": "st", "timezone": "Asia/Shanghai", "rotations": [
    {"members": ["alice@example.com"], "start": "2026-12-01T09:00", "shift": {"days": 1}}]})
policy = post(root + "/escalation-policies", {"name": "st", "layers": [
    {"targets": {"members": ["alice@example.com"]}, "escalate_after_secs": 60}]})
print(created["id"], created["ingest_token"], schedule["id"], policy["id"])
EOF
) || true
[ -n "${ST_POLICY:-}" ] || setup_failed "the admin API set-up"
export ST_INTEGRATION ST_INGEST_TOKEN ST_SCHEDULE ST_POLICY

# The H5 API as Alice of the demo integration (bound to alice0001): a session from a
# sandbox auth code, and an incident of hers to act on.
demo="$(awk '/demo integration/ {print $3; exit}' "$work/stack.log")"
demo_token="$(awk '/ingest token/ {print $3; exit}' "$work/stack.log")"
read -r ST_DEMO ST_SESSION ST_INCIDENT < <(python3 - "$base" "$demo" "$demo_token" <<'EOF'
import json, sys, time, urllib.parse, urllib.request
base, demo, token = sys.argv[1:4]
def call(path, body, headers, form=False):
    data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"Content-Type": kind, **headers})
    return json.load(urllib.request.urlopen(req, timeout=10))
code = call("/sandbox/actions/auth-code", {"user_id": "alice0001"}, {}, form=True)["code"]
session = call(f"/dingtalk/{demo}/app/api/login", {"code": code}, {})["session"]
call(f"/api/integrations/{demo}/alerts", {"version": 1, "alert": {
    "key": "schemathesis", "status": "firing", "severity": "warning", "title": "schemathesis",
    "labels": {"alertname": "Schemathesis"}}, "targets": {"members": ["alice@example.com"]}},
    {"Authorization": "Bearer " + token})
for _ in range(100):
    req = urllib.request.Request(f"{base}/dingtalk/{demo}/app/api/incidents?view=all",
                                 headers={"Authorization": "Bearer " + session})
    found = [i["id"] for i in json.load(urllib.request.urlopen(req, timeout=10))
             if i["key"] == "schemathesis"]
    if found:
        break
    time.sleep(0.2)
print(demo, session, found[0])
EOF
) || true
[ -n "${ST_INCIDENT:-}" ] || setup_failed "the H5 set-up (login, an incident)"
export ST_DEMO ST_SESSION ST_INCIDENT

# Which credentials and ids each operation gets. Deletions and rotating the ingest
# token get generated ids, so that what the run set up lives on.
cat >"$work/schemathesis.toml" <<'EOF'
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
negative_data_rejection.enabled = true

[[operations]]
include-tag = "admin"
exclude-operation-id = ["deleteIntegration", "rotateIngestToken", "deleteMember", "deleteSchedule", "deletePolicy"]
headers = { Authorization = "Bearer ${ADMIN_API_KEY}" }
parameters = { "path.id" = "${ST_INTEGRATION}", "path.schedule_id" = "${ST_SCHEDULE}", "path.policy_id" = "${ST_POLICY}", "path.email" = "alice@example.com" }

[[operations]]
include-operation-id = ["deleteIntegration", "rotateIngestToken", "deleteMember", "deleteSchedule", "deletePolicy"]
headers = { Authorization = "Bearer ${ADMIN_API_KEY}" }
# Not the ids other answers showed either (the run's own integration among them).
phases.coverage.extra-data-sources.responses = false
phases.fuzzing.extra-data-sources.responses = false

[[operations]]
include-operation-id = "ingestAlerts"
headers = { Authorization = "Bearer ${ST_INGEST_TOKEN}" }
parameters = { "path.id" = "${ST_INTEGRATION}" }

# DingTalk's robot answers bad input with HTTP 200 and a non-zero errcode (its own
# error shape, which senders expect): not a 4xx, so that check is off here; the Rust
# tests check each errcode.
[[operations]]
include-operation-id = "robotSend"
parameters = { "path.id" = "${ST_INTEGRATION}", "query.access_token" = "${ST_INGEST_TOKEN}" }
checks.negative_data_rejection.enabled = false

[[operations]]
include-operation-id = "pagerDutyEnqueue"
parameters = { "path.id" = "${ST_INTEGRATION}" }

# Unlinking would end Alice's association for the rest of the run: it gets no session.
[[operations]]
include-tag = "h5"
exclude-operation-id = "h5Unlink"
headers = { Authorization = "Bearer ${ST_SESSION}" }
parameters = { "path.id" = "${ST_DEMO}", "path.incident_id" = "${ST_INCIDENT}" }
EOF

start=$SECONDS
status=0
"$venv/schemathesis" --config-file "$work/schemathesis.toml" --no-color run "$base/api/openapi.yaml" \
  --url "$base" \
  --include-tag admin --include-tag ingest --include-tag h5 --include-tag meta \
  --phases examples,coverage,fuzzing \
  --max-examples "${ST_MAX_EXAMPLES:-20}" --workers "${ST_WORKERS:-1}" \
  --request-timeout 30 --generation-deterministic \
  --report junit --report-junit-path "$work/junit.xml" "$@" \
  >"$work/run.log" 2>&1 || status=$?
# Its findings and summary (the progress lines before them say little).
awk '/^=+ (ERRORS|FAILURES|WARNINGS|SUMMARY) =+$/ {on = 1} on' "$work/run.log"
if [ "$status" -ne 0 ] && [ ! -s "$work/junit.xml" ]; then
  echo "schemathesis: 0 passed, 1 failed (it did not run; status $status)"
  exit 1
fi
python3 - "$work/junit.xml" "$((SECONDS - start))" <<'EOF'
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
failed = passed = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is None:
        passed += 1
print(f"schemathesis: {passed} passed, {failed} failed (operations, {sys.argv[2]} s)")
EOF
exit "$status"
