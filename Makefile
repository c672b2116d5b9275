GO ?= go
GOFMT ?= gofmt

.PHONY: build ensure-redis ensure-prometheus test lint clean demo bench test-interop fuzz fuzz-short

build:
	$(GO) build -o bin/resque-expire .

# The tests start their own throwaway redis-server on 127.0.0.1; make sure
# the binary is there (installs it with apt-get when running as root).
ensure-redis:
	scripts/ensure-redis.sh

# prometheus and promtool (Debian's prometheus package) for the deploy/
# rule tests and the Prometheus end-to-end test; skipped when impossible.
ensure-prometheus:
	scripts/ensure-prometheus.sh

test: ensure-redis ensure-prometheus
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz-short
	$(MAKE) test-interop

# Fuzz the payload decoder, the id paths, the deadline and duration parsers
# (corpus in internal/resque/testdata/fuzz) and the loner-digest encoder
# (audit). Each target is package:Fuzz name. fuzz-short is make test's run.
FUZZ_TARGETS = internal/resque:FuzzDecodePayload internal/resque:FuzzParseDeadline \
	internal/resque:FuzzParsePathLookup internal/resque:FuzzParseDuration audit:FuzzLonerDigests
FUZZTIME ?= 60s
fuzz:
	@for pt in $(FUZZ_TARGETS); do \
		pkg=$${pt%%:*}; t=$${pt#*:}; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$pkg/ || exit 1; \
	done

# A count rather than a time: a time-bound run can end on "context deadline
# exceeded" when the clock runs out in the middle of an input, a failure of
# the fuzzer, not of the code.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

# The node-resque interop suite (test/interop): needs Node.js >= 20 with npm,
# and redis-server (ensure-redis). Skipped, with a message, without node/npm.
test-interop: build ensure-redis
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "test-interop: SKIPPED: node and npm not found; install Node.js >= 20 to run test/interop (resque-expire against node-resque)"; \
	elif ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then \
		echo "test-interop: SKIPPED: node $$(node --version) is older than 20; test/interop needs Node.js >= 20"; \
	else \
		cd test/interop && npm ci --no-audit --no-fund && \
		RESQUE_EXPIRE_BIN="$(CURDIR)/bin/resque-expire" npm test; \
	fi

# staticcheck comes from the Go module proxy at a pinned version.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@unformatted="$$($(GOFMT) -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The main job on a throwaway local Redis seeded with sample Resque data.
demo: ensure-redis build
	$(GO) run ./internal/cmd/demo -bin bin/resque-expire

# Speed, Redis blocking and memory on generated data (see docs/performance.md).
# BENCH_SIZES=10000,100000,1000000 BENCH_REPS=3 BENCH_REF_LIMIT=120s
bench: ensure-redis build
	$(GO) run ./bench -bin bin/resque-expire

clean:
	rm -rf bin
