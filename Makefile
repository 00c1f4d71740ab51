# Two commands matter: `make dev` (the local stack) and `make test` (every check).
# Both install what they need on a fresh machine.

SHELL := /usr/bin/env bash
# The Lambda functions' packages (one binary each).
FUNCTIONS := -p event-callback -p admin-api -p ingest -p notifier -p h5-app
.SHELLFLAGS := -euo pipefail -c
# Every binary and test target of the workspace in one build (the features `cargo test
# --workspace` resolves, so the test run after it compiles nothing again).
TEST_BUILD := cargo build --locked --workspace --bins --tests
VENV := .venv
export SAM_CLI_TELEMETRY := 0
export CARGO_TERM_COLOR := never

.PHONY: bench bench-callback bench-crypto bench-coldstart smoke test dev tools browser-tools alertmanager-tools rust-tools fmt lint lint-template unit build clean

## test: formatting, clippy, template lint, then unit + integration + browser tests on a moto server
test: tools browser-tools alertmanager-tools fmt lint lint-template unit

## dev: the whole product on 127.0.0.1:$PORT (default 3000) with a moto server and the
## DingTalk sandbox (see README); Ctrl-C stops everything
dev: tools alertmanager-tools
	cargo run --locked -p local-stack

## tools: the pinned Python tools (moto server, cfn-lint, SAM CLI, cargo-lambda, zig) in .venv
tools: rust-tools
	@scripts/bootstrap-tools.sh

## browser-tools: Debian's Chromium, CJK fonts (so screenshots show Chinese) and
## playwright-core (for the H5 browser test)
browser-tools:
	@command -v chromium >/dev/null || { echo "installing chromium (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@for font in fonts-noto-cjk fonts-noto-color-emoji; do \
	  dpkg-query -W -f='$${Status}' $$font 2>/dev/null | grep -q 'ok installed' || { echo "installing $$font (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$font >/dev/null; }; done
	@[ -d tests/browser/node_modules/playwright-core ] || npm ci --prefix tests/browser --no-audit --no-fund --silent

## alertmanager-tools: Debian's Alertmanager, the real peer of the silence tests and of
## `make dev`'s silence demo
alertmanager-tools:
	@command -v prometheus-alertmanager >/dev/null || { echo "installing prometheus-alertmanager (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null; }

rust-tools:
	@command -v cargo >/dev/null || { echo "cargo is required (rustup.rs)" >&2; exit 1; }
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings

## lint-template: cfn-lint and `sam validate --lint` on template.yaml, static egress IP off and on
lint-template: tools
	scripts/lint-template.sh

## unit: every cargo test and the browser test, with AWS_ENDPOINT_URL pointing at a fresh moto server.
## One build first: every binary (the functions, for tests/tests/it/binary_smoke.rs; the local
## stack, for the browser and schemathesis runs) and every test, all with the same features,
## so that each dependency is compiled and stored once.
unit:
	$(TEST_BUILD)
	STACK_PREBUILT=1 scripts/with-moto.sh scripts/run-tests.sh --workspace --locked

## smoke: every sample event in events/ sent to its function's built (debug) binary under the
## Lambda Runtime API emulator, with a moto server and the DingTalk sandbox (also in `make test`)
smoke: tools
	$(TEST_BUILD)
	scripts/with-moto.sh cargo test --locked --workspace --test it binary_smoke -- --nocapture

## bench: 2,500 alerts through the local stack against the sandbox enforcing 20 QPS
bench: tools
	@# The notifier's CloudWatch metric lines (JSON on stdout) are left out of the report.
	bash -o pipefail -c 'scripts/with-moto.sh cargo run --locked -p local-stack --bin bench | grep --line-buffered -v "^{\"[A-Za-z_]*\":"'

## bench-callback: criterion bench of a card click's CPU work on the largest incident accepted
bench-callback:
	cargo bench --locked -p shared --bench card_callback

## bench-crypto: callback verify+decrypt and the encrypted reply, Rust (criterion) beside the
## Python dingtalk-sdk peer (pinned in .venv-bench): `rust X µs | python Y µs | ratio Zx`
bench-crypto:
	scripts/bench-crypto.sh

## bench-coldstart: init and first-invocation times and binary sizes of the release function
## binaries under a local Lambda Runtime API emulator (release builds: minutes; not in `make test`)
bench-coldstart:
	cargo build --release --locked $(FUNCTIONS)
	cargo run --locked -p local-stack --bin coldstart

## build: the Lambda bundle for arm64 (needs the aarch64-unknown-linux-gnu rust target)
build: tools
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build

clean:
	cargo clean
	rm -rf .aws-sam
