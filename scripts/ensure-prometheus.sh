#!/usr/bin/env bash
# Makes sure prometheus and promtool are available for the tests that use
# them (deploy/: promtool check/test rules; internal/e2e: promtool check
# metrics, and a real Prometheus server on 127.0.0.1 scraping `serve`).
# Installs Debian's prometheus package with apt-get when running as root;
# otherwise says the tests will be SKIPPED and how to install it. Never
# fails the build: those tests skip themselves without the binaries.
set -euo pipefail

found() {
	local p t
	p="$(command -v prometheus 2>/dev/null)" || return 1
	t="$(command -v promtool 2>/dev/null)" || return 1
	echo "ensure-prometheus: using $p and $t ($("$t" --version 2>&1 | head -n1))" >&2
}

if found; then
	exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-prometheus: prometheus/promtool not found; installing Debian's prometheus package with apt-get" >&2
	if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; then
		# The package starts a system Prometheus on :9090; the tests start
		# their own on a free loopback port, so stop it.
		service prometheus stop 2>/dev/null || true
		systemctl disable --now prometheus 2>/dev/null || true
		if found; then
			exit 0
		fi
	fi
	echo "ensure-prometheus: SKIPPED: could not install the prometheus package; the promtool and Prometheus tests will be skipped" >&2
	exit 0
fi

echo "ensure-prometheus: SKIPPED: prometheus/promtool not found and not root; the promtool and Prometheus tests will be skipped (install: sudo apt-get install -y prometheus)" >&2
exit 0
