# extsvc — every target does its own setup on a fresh Debian machine (root, Python 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all install system-deps metrics-deps test lint golden bench bench-compare bench-peers demo demo-real clean fuzz

all: test

# runc and busybox-static come from Debian; apt-get update first, as on a fresh machine.
# faketime (libfaketime) steps the wall clock of one executor in tests.
# mmdebstrap and systemd-container (systemd-nspawn) build and boot the real systemd of
# tests/boot (tests/support/nspawn.py; its image is cached in /var/cache/extsvc/nspawn).
SYSTEM_PACKAGES := runc busybox-static faketime mmdebstrap systemd-container
system-deps:
	@if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		echo ">> installing $(SYSTEM_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

# Prometheus's own tools for the metrics tests: promtool (check metrics, check/test rules)
# and node_exporter's textfile collector. Installed without starting their daemons (a
# policy-rc.d that refuses, only while installing: a machine without systemd as PID 1
# would otherwise start them through their init scripts).
metrics-deps:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus-node-exporter >/dev/null 2>&1; then \
		echo ">> installing promtool and node_exporter (Debian's prometheus packages)"; \
		[ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; touch /tmp/.extsvc-policy-rc; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-node-exporter >/dev/null; \
		status=$$?; [ ! -e /tmp/.extsvc-policy-rc ] || rm -f /usr/sbin/policy-rc.d /tmp/.extsvc-policy-rc; exit $$status; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: system-deps $(STAMP)

lint: install
	$(BIN)/ruff check --no-cache extsvc compiler executor extension tests bench examples
	$(BIN)/ruff format --no-cache --check extsvc compiler executor extension
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install metrics-deps lint
	$(BIN)/pytest -q

# Rewrite tests/golden/*/expected, tests/review/*/*/expected.* and the output of the
# command examples in README.md and docs/ (tests/docs.py) from the inputs (never the
# inputs, the commands or the prose). Review the diff.
golden: install
	$(BIN)/python -m tests.golden --update
	$(BIN)/python -m tests.review.cases --update
	$(BIN)/python -m tests.docs --update

# Nightly-size fuzzing of the compiler (docs/reliability.md): over 100,000 randomized
# cases (about an hour); `make test` runs a small derandomized share of the same tests.
fuzz: install
	EXTSVC_FUZZ=nightly $(BIN)/pytest -q -p no:cacheprovider tests/compiler/test_fuzz.py

bench: install
	$(BIN)/python bench/run.py

# The benchmarks of BEFORE (a git revision) and of this checkout, taking turns, side by
# side: `make bench-compare BEFORE=v0.3.0`.
bench-compare: install
	@test -n "$(BEFORE)" || { echo "usage: make bench-compare BEFORE=<git revision>"; exit 2; }
	$(BIN)/python bench/compare.py $(BEFORE)

# The lifecycle benchmark with containerd (`ctr`) and podman measured beside extsvc.
# Installs Debian's containerd and podman; the benchmark runs them on private sockets
# and state dirs (no system daemon is started or touched).
bench-peers: install
	@if ! command -v ctr >/dev/null 2>&1 || ! command -v podman >/dev/null 2>&1; then \
		echo ">> installing containerd and podman"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends containerd podman >/dev/null; \
	fi
	$(BIN)/python bench/lifecycle_bench.py --peers

demo: install
	$(BIN)/python examples/demo.py

# A real daemon: chrony's extension image built from Debian's packages (apt-get download,
# cached in ~/.cache/extsvc/debs), installed, compiled and run (examples/chrony/).
demo-real: install
	$(BIN)/python examples/chrony/demo.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache out demo-out
