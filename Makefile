# drconsole: the two set-up commands of the README are `make demo` and `make test`.
# Both are idempotent and work on a fresh Debian 12 machine as root (or a user with sudo).

SHELL := /bin/bash
VENV ?= .venv
# Debian's interpreter: the lab's Barman runs as other OS users, who cannot read a pyenv under /root.
BASE_PYTHON ?= /usr/bin/python3
# The Barman installed in the venv and run by the default lab. `BARMAN_VERSION=3.10.1 make test`
# runs the suite on a lab of that version instead (the lab builds its own venv for it).
DEFAULT_BARMAN := 3.19.1
BARMAN_VERSION ?= $(DEFAULT_BARMAN)
# After the whole suite, the compatibility subset (pytest -m compat) runs on a fresh lab of
# each of these (COMPAT_VERSIONS= skips it).
COMPAT_VERSIONS ?= 3.4.0 3.10.1 3.12.1 3.16.2 3.19.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := postgresql-15 openssh-server openssh-client rsync python3-venv python3-dev libpq5 procps iproute2 util-linux prometheus prometheus-node-exporter
PYTEST_ARGS ?=

.PHONY: demo test system-deps venv lint clean-venv recordings bench

demo: system-deps venv
	$(SUDO) $(VENV)/bin/drconsole demo

test: system-deps venv
	$(SUDO) env DRCONSOLE_BARMAN_VERSION=$(BARMAN_VERSION) $(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	@for v in $(COMPAT_VERSIONS); do \
	  [ "$$v" = "$(BARMAN_VERSION)" ] && continue; \
	  echo "== the compatibility subset on a lab of Barman $$v"; \
	  $(SUDO) env DRCONSOLE_BARMAN_VERSION=$$v $(VENV)/bin/python -m pytest -m compat \
	    tests/integration $(PYTEST_ARGS) || exit 1; \
	done

# Installs only what is missing. policy-rc.d keeps apt from starting the system sshd or the
# packaged PostgreSQL cluster; it is removed again if we created it.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  made_policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	    $(SUDO) chmod 755 /usr/sbin/policy-rc.d; made_policy=1; \
	  fi; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
	  [ -n "$$made_policy" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; \
	  exit $$rc; \
	fi

# One virtualenv holds drconsole (editable, with dev tools) and Barman. Barman is installed
# with --no-deps after psycopg2-binary, so pip does not compile psycopg2 from source.
venv: $(VENV)/.drconsole-stamp

$(VENV)/.drconsole-stamp: pyproject.toml
	[ -x $(VENV)/bin/python ] || $(BASE_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q psycopg2-binary python-dateutil argcomplete setuptools
	$(VENV)/bin/python -m pip install -q --no-deps barman==$(DEFAULT_BARMAN)
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy dr_console

# Every tested Barman's output (BARMAN_VERSIONS="3.4.0 3.10.1" for some), then the fleet the
# console's tests replay (recorded on the default lab).
recordings: system-deps venv
	$(SUDO) $(VENV)/bin/python scripts/record_versions.py $(BARMAN_VERSIONS)
	$(SUDO) $(VENV)/bin/python scripts/record_fleet.py

bench: system-deps venv
	$(SUDO) $(VENV)/bin/python -m bench

clean-venv:
	rm -rf $(VENV)
