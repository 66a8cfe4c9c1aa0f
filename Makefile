# kesu: the two commands a newcomer needs are `make run` and `make test`.
.PHONY: run test bench eval deps build lint fmt ci clean

CARGO ?= cargo

## run: build, start nats-server + the five services (one `kesu all`) on SQLite, feed demo feedback (Ctrl-C stops)
run:
	@scripts/run.sh

## test: unit and system tests (each test starts its own nats-server; PostgreSQL variants use 127.0.0.1:5432)
# The system tests run the `kesu` binary: it is built first.
test: deps
	$(CARGO) build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --profile ci; \
	else \
		echo "(cargo-nextest not found: using cargo test)"; \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

## bench: release build; durable and fast configurations, each against a raw JetStream baseline; table + target/bench/latest.json
bench: deps
	$(CARGO) run --release -p kesu-bench

## eval: routing's text classifier against the labelled corpus (tests/data/classification): accuracy per class, confusion table
eval:
	$(CARGO) run -q -p kesu-eval -- tests/data/classification

## deps: check nats-server, or install the pinned one into .tools/ (protoc is not needed)
deps:
	@scripts/deps.sh

build:
	$(CARGO) build --workspace --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## ci: what .ci/run does
ci: lint test

clean:
	$(CARGO) clean
	rm -rf .run data
