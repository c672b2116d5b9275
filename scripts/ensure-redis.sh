#!/usr/bin/env bash
# Makes sure redis-server is available for the tests, which start their own
# throwaway servers on 127.0.0.1. Installs it with apt-get when running as
# root on Debian/Ubuntu; otherwise explains how to install it.
#
# The Sentinel tests run `redis-server --sentinel` (what redis-sentinel is a
# link to), so no separate redis-sentinel package or binary is needed; the
# check below makes sure this build has Sentinel mode.
set -euo pipefail

bin="${REDIS_SERVER_BIN:-redis-server}"

found() {
	local path
	path="$(command -v "$bin" 2>/dev/null)" || return 1
	echo "ensure-redis: using $path ($("$path" --version))" >&2
	case "$("$path" --help 2>&1 || true)" in
	*--sentinel*) ;;
	*) echo "ensure-redis: $path has no Sentinel mode (redis-server --sentinel); the Sentinel tests will fail" >&2 ;;
	esac
}

if found; then
	exit 0
fi

if [ -n "${REDIS_SERVER_BIN:-}" ]; then
	echo "ensure-redis: REDIS_SERVER_BIN=$REDIS_SERVER_BIN is not an executable redis-server" >&2
	exit 1
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-redis: redis-server not found; installing it with apt-get" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
	# The package may start a system redis on 6379; the tests start their
	# own servers, so stop it.
	service redis-server stop 2>/dev/null || true
	systemctl disable --now redis-server 2>/dev/null || true
	if found; then
		exit 0
	fi
	echo "ensure-redis: installed redis-server but it is still not in PATH" >&2
	exit 1
fi

cat >&2 <<'MSG'
redis-server is required for the tests (they start their own throwaway server on 127.0.0.1). Install it: sudo apt-get install -y redis-server (Debian/Ubuntu), brew install redis (macOS), or set REDIS_SERVER_BIN=/path/to/redis-server
MSG
exit 1
