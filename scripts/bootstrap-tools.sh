#!/usr/bin/env bash
# Installs the project's Python-distributed tools into $ROOT/.venv:
#   moto_server (local DynamoDB/SQS), cfn-lint, sam, cargo-lambda (+ zig for arm64 builds),
#   schemathesis (the OpenAPI property tests of scripts/schemathesis.sh).
# Idempotent: a stamp file named after the hash of the pin list makes a second run a no-op.
# Use the tools via .venv/bin/<tool>, or put "$ROOT/.venv/bin" on PATH (needed for `cargo lambda`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

# Pinned, mutually compatible versions (checked against PyPI 2026-11).
# aws-sam-cli 1.170.0 requires cfn-lint>=1.52.0,<1.59 and Flask<3.2; moto[server] accepts both.
# schemathesis 4.32.5 installs beside them without changing any of their versions.
PINS=(
  "moto[server]==5.2.5"
  "cfn-lint==1.58.0"
  "aws-sam-cli==1.170.0"
  "cargo-lambda==1.9.2"
  "ziglang==0.15.2"
  "schemathesis==4.32.5"
  # scripts/schemathesis.sh validates openapi.yaml with it (moto brings it too).
  "openapi-spec-validator==0.9.0"
)

HASH="$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-16)"
STAMP="$VENV/.tools-$HASH"

# Fast path: already installed with exactly these pins.
if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
  exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "bootstrap-tools: $PYTHON not found" >&2; exit 1; }

# Serialize concurrent runs (e.g. `make dev` and `make test` started together).
mkdir -p "$VENV"
if command -v flock >/dev/null; then
  exec 9>"$VENV/.bootstrap.lock"
  flock 9
  # Another run may have finished while we waited.
  if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
    exit 0
  fi
fi

echo "bootstrap-tools: installing ${PINS[*]} into ${VENV#"$ROOT"/}"

# Debian splits venv/ensurepip into python3-venv; install it only when missing.
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq python3-venv "python${pyver}-venv" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv "python${pyver}-venv" >/dev/null; }
  else
    echo "bootstrap-tools: '$PYTHON -m venv' needs the python3-venv package (apt-get install python3-venv)" >&2
    exit 1
  fi
fi

# (Re)create the venv when it is missing or broken (e.g. the base python moved).
if ! "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
  find "$VENV" -mindepth 1 -maxdepth 1 ! -name .bootstrap.lock -exec rm -rf {} +
  "$PYTHON" -m venv "$VENV"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$VENV/bin/python" -m pip install -q "${PINS[@]}"

rm -f "$VENV"/.tools-*
touch "$STAMP"
