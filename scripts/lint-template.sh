#!/usr/bin/env bash
# Lints template.yaml as it is (static egress IP off) and as copies with the egress
# parameter's default flipped on (two NAT gateways, then one), with cfn-lint, and runs
# `sam validate --lint` on the template and on the egress-on copy.
# Usage: scripts/lint-template.sh   (tools from .venv: `make tools`)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
template="$root/template.yaml"
export SAM_CLI_TELEMETRY=0

for tool in cfn-lint sam; do
  [[ -x "$venv/bin/$tool" ]] || { echo "lint-template: $venv/bin/$tool missing: run make tools" >&2; exit 1; }
done

work="$(mktemp -d -t lint-template.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Prints the template with parameter $1's Default set to $2 (the first Default line
# after `  $1:`); fails when the parameter or its Default is missing.
with_default() {
  awk -v param="$1" -v value="$2" '
    $0 == "  " param ":" { inside = 1; print; next }
    inside && /^    Default: / { print "    Default: \"" value "\""; inside = 0; done = 1; next }
    inside && /^  [A-Za-z]/ { inside = 0 }
    { print }
    END { if (!done) { print "lint-template: no Default for " param > "/dev/stderr"; exit 1 } }
  ' "$3"
}

egress_on="$work/template-egress-on.yaml"
egress_one_nat="$work/template-egress-one-nat.yaml"
with_default StaticEgressIp true "$template" >"$egress_on"
with_default EgressNatGateways 1 "$egress_on" >"$egress_one_nat"
grep -q '^    Default: "true"$' "$egress_on" || { echo "lint-template: the egress default was not flipped" >&2; exit 1; }

for copy in "$template" "$egress_on" "$egress_one_nat"; do
  echo "cfn-lint $(basename "$copy")"
  "$venv/bin/cfn-lint" "$copy"
done
for copy in "$template" "$egress_on"; do
  echo "sam validate --lint $(basename "$copy")"
  (cd "$root" && "$venv/bin/sam" validate --lint --region us-east-1 --template-file "$copy")
done
