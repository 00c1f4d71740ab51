#!/usr/bin/env bash
# `make bench-crypto`: the callback crypto criterion bench (quick mode) beside the Python
# dingtalk-sdk peer, then one line per operation: `rust X µs | python Y µs | ratio Zx`.
# The peer lives in its own venv (.venv-bench, from scripts/bench-crypto-requirements.txt),
# so the project's .venv and `make test` are unaffected. Extra arguments go to criterion.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-bench"
REQS="$ROOT/scripts/bench-crypto-requirements.txt"
STAMP="$VENV/.reqs-$(sha256sum "$REQS" | cut -c1-16)"
PYTHON="${PYTHON:-python3}"

if [[ ! -f "$STAMP" || ! -x "$VENV/bin/python" ]]; then
  echo "bench-crypto: installing the pinned dingtalk-sdk peer into ${VENV#"$ROOT"/}"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install -q -r "$REQS"
  touch "$STAMP"
fi

cd "$ROOT"
cargo bench --locked -p shared --bench callback_crypto -- \
  --warm-up-time 1 --measurement-time 3 "$@"
"$VENV/bin/python" scripts/bench_crypto_peer.py \
  --rust-estimates "${CARGO_TARGET_DIR:-$ROOT/target}/criterion"
