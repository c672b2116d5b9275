GO ?= go
GOFMT ?= gofmt

.PHONY: build ensure-redis test lint clean demo bench

build:
	$(GO) build -o bin/resque-expire .

# The tests start their own throwaway redis-server on 127.0.0.1; make sure
# the binary is there (installs it with apt-get when running as root).
ensure-redis:
	scripts/ensure-redis.sh

test: ensure-redis
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

lint:
	@unformatted="$$($(GOFMT) -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	$(GO) vet ./...

# The main job on a throwaway local Redis seeded with sample Resque data.
demo: ensure-redis build
	$(GO) run ./internal/cmd/demo -bin bin/resque-expire

# Speed, Redis blocking and memory on generated data (see docs/performance.md).
# BENCH_SIZES=10000,100000,1000000 BENCH_REPS=3 BENCH_REF_LIMIT=120s
bench: ensure-redis build
	$(GO) run ./bench -bin bin/resque-expire

clean:
	rm -rf bin
