GO ?= go
GOFMT ?= gofmt

.PHONY: build ensure-redis test lint clean

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

clean:
	rm -rf bin
