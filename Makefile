# The README's commands: `make demo` runs the experiment, `make test` every test.
# Both install what they need first (`make setup`); a second run skips what is done.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMPS := .setup
PYTHON ?= python3
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# Debian packages: the testbed (iproute2, nftables), media peers for interop tests
# (ffmpeg, nginx with the RTMP module), bwm-ng for the recorder comparison, QEMU with
# debootstrap for the molecule VMs, and chromium to check that report.html renders.
APT_PACKAGES := iproute2 iputils-ping nftables iptables ethtool iperf3 procps python3-venv util-linux \
	ffmpeg nginx-light libnginx-mod-rtmp bwm-ng chromium \
	qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client dpkg-dev

.PHONY: help setup demo test lint unit integration interop molecule vm-experiment testbed-down clean

help:
	@echo "make demo   deploy the emulated testbed and run the failover experiment"
	@echo "make test   lint and run every test, molecule too (needs root)"
	@echo "make molecule  only the roles in QEMU VMs (part of make test)"
	@echo "make vm-experiment  deploy.yml and failover.yml over SSH against QEMU VMs (part of make molecule)"
	@echo "make setup  install apt packages, the virtual environment and collections"

setup: $(STAMPS)/apt $(STAMPS)/venv $(STAMPS)/collections $(STAMPS)/ansible-test

$(STAMPS)/apt: Makefile scripts/apt-install
	scripts/apt-install $(APT_PACKAGES)
	@mkdir -p $(STAMPS) && touch $@

# requirements.txt names what we chose; requirements.lock pins everything under it.
$(STAMPS)/venv: requirements.txt requirements.lock relay/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -c requirements.lock
	$(BIN)/pip install -q -e 'relay[report]' -c requirements.lock
	@mkdir -p $(STAMPS) && touch $@

# This repository is the collection mpstream.nornet: linked, not installed.
$(STAMPS)/collections: requirements.yml galaxy.yml scripts/ensure-collections $(STAMPS)/venv
	scripts/ensure-collections requirements.yml
	@mkdir -p $(STAMPS) && touch $@

# The wheels that ansible-test's sanity venvs install, fetched once: the test runs offline.
$(STAMPS)/ansible-test: scripts/ansible-sanity $(STAMPS)/venv
	scripts/ansible-sanity prepare
	@mkdir -p $(STAMPS) && touch $@

demo: setup
	$(BIN)/ansible-playbook deploy.yml
	$(BIN)/ansible-playbook failover.yml

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ansible-lint

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

interop: setup
	$(BIN)/pytest tests/interop

molecule: setup
	scripts/molecule-all

# The whole experiment over SSH, as at real sites: three node VMs at three sites and a
# router VM with netem delays per provider (molecule/experiment); results are kept in
# results/vm-experiment/.
vm-experiment: setup
	MOLECULE_EXPERIMENT_RESULTS=$(CURDIR)/results/vm-experiment scripts/molecule-all experiment

# pytest, and beside it the molecule scenarios at a small CPU share until it ends (the
# namespace tests measure timing and leave half the cores idle): scripts/test-all.
test: lint
	scripts/ansible-sanity
	scripts/test-all tests --durations=25

testbed-down: setup
	$(BIN)/ansible-playbook playbooks/testbed.yml -e testbed_state=absent

# Peers of benchmarks/relay_fanout.py, not part of `make test`: node-media-server from npm on
# Debian's nodejs, and pyrtmp (with the versions it was measured with) in a venv of its own,
# both under .cache/bench-peers/ (nginx-rtmp comes with `make setup`).
BENCH_PEERS := .cache/bench-peers
NODE_MEDIA_SERVER_VERSION := 4.4.3
PYRTMP_PINS := pyrtmp==0.3.1 bitstring==4.1.4 bitarray==2.9.3

.PHONY: bench-peers
bench-peers: $(BENCH_PEERS)/.node-media-server-$(NODE_MEDIA_SERVER_VERSION) $(BENCH_PEERS)/.pyrtmp-0.3.1

$(BENCH_PEERS)/.node-media-server-$(NODE_MEDIA_SERVER_VERSION):
	command -v npm >/dev/null || scripts/apt-install nodejs npm  # (a nodejs with its own npm conflicts with Debian's)
	npm install --prefix $(BENCH_PEERS) --no-audit --no-fund node-media-server@$(NODE_MEDIA_SERVER_VERSION)
	@touch $@

$(BENCH_PEERS)/.pyrtmp-0.3.1:
	$(PYTHON) -m venv $(BENCH_PEERS)/pyrtmp-venv
	$(BENCH_PEERS)/pyrtmp-venv/bin/pip install -q $(PYRTMP_PINS)
	@touch $@

clean:
	rm -rf $(VENV) $(STAMPS) .cache
