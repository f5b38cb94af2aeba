# Two commands take a fresh checkout to a working system:
#   make run   - create .venv, install, bring up what exists (see README)
#   make test  - install what the tests need and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VAR    ?= var/aio

# Debian packages the tests need; installed only when run as root and missing.
# libvirt-python is built from source by pip, against libvirt-dev (with gcc,
# pkg-config and the Python headers), so these come before `pip install`;
# qemu-utils gives qemu-img for the instances' copy-on-write disks.
DEBIAN_PACKAGES := libvirt-dev pkg-config gcc python3-dev qemu-utils

.PHONY: all install system-deps run stop status test bench clean

all: install

# Order-only: the Debian packages are checked first on every install, but
# a phony prerequisite must not force a reinstall each time.
$(STAMP): setup.py setup.cfg | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

system-deps:
	@bash .ci/system-deps $(DEBIAN_PACKAGES)

# Foreground: the objstore cluster, the compute API and a local agent;
# Ctrl-C (or SIGTERM) stops every process. In the background:
# .venv/bin/compute-aio start / stop / status --var var/aio
run: install
	$(BIN)/compute-aio run --var $(VAR)

stop:
	$(BIN)/compute-aio stop --var $(VAR)

status:
	$(BIN)/compute-aio status --var $(VAR)

test: install system-deps
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python test/bench/ring_bench.py

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache .hypothesis
