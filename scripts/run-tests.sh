#!/usr/bin/env bash
# Runs every test: `cargo test "$@"` (unit + integration, against AWS_ENDPOINT_URL),
# then the browser tests of the H5 app and the admin console (headless Chromium
# against the local stack; one "browser:" line each, both counted) and the
# OpenAPI property tests (schemathesis against the local stack). Prints one
# closing line with the totals ("tests: N passed, N failed, N skipped").
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
log="$(mktemp -t tests.XXXXXX.log)"
trap 'rm -f "$log"' EXIT
cargo test --no-fail-fast "$@" 2>&1 | tee "$log"
cargo_status=${PIPESTATUS[0]}
"$root/scripts/browser-test.sh" 2>&1 | tee -a "$log"
browser_status=${PIPESTATUS[0]}
"$root/scripts/schemathesis.sh" 2>&1 | tee -a "$log"
schemathesis_status=${PIPESTATUS[0]}
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     /^browser: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
     /^schemathesis: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
[ "$cargo_status" -eq 0 ] && [ "$browser_status" -eq 0 ] && [ "$schemathesis_status" -eq 0 ]
