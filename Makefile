# The two commands a newcomer needs: `make run` (start the platform) and `make test`.
# uv is bootstrapped into .tools/ when it is not on PATH; only Python 3.11 is required.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export ENVIRONMENT ?= development

.PHONY: help install run allinone up test test-fast lint bench images clean

help:
	@echo "make run    start the platform (all-in-one with demo data; distributed when POSTGRES_URL and AMQP_URL are set)"
	@echo "make test   run every test (needs PostgreSQL and RabbitMQ; see README)"
	@echo "make up     distributed: every service its own process on POSTGRES_URL / AMQP_URL (default: local servers)"
	@echo "make lint   ruff, and mypy on every package (tests/house/test_types.py runs it too)"
	@echo "make bench  gateway vs direct throughput and latency, memory per process"
	@echo "make images build every image, tagged voucher-<name>:<version> (pyproject.toml's version)"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is written ahead (--compile-bytecode, compileall): where PYTHONDONTWRITEBYTECODE is
# set (this machine and CI), every process would otherwise compile every module it imports,
# about 4 s of CPU for each service process the tests and `make up` start (1.6 s with it).
.venv/.synced: uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml gateway/pyproject.toml web/pyproject.toml) | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.synced
	@$(UV) run --frozen python -m compileall -q -j 0 libs services tools gateway web bench tests >/dev/null

run: install
	@if [ -n "$$POSTGRES_URL" ] && [ -n "$$AMQP_URL" ]; then \
		exec $(UV) run --frozen python -m gateway.launcher up; \
	else \
		exec $(UV) run --frozen python -m gateway.launcher allinone; \
	fi

allinone: install
	$(UV) run --frozen python -m gateway.launcher allinone

up: install
	$(UV) run --frozen python -m gateway.launcher up

# Three workers (pytest-xdist): the suite waits mostly on PostgreSQL, RabbitMQ and the
# services it starts, so three share two cores well (about 12 minutes instead of 30). A portal
# module's tests stay on one worker (conftest.py's scheduler): they share one platform.
test: install
	$(UV) run --frozen pytest -n 3

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy libs/common/common gateway/gateway web/web tools/invariants/invariants \
		$(foreach s,identity quota catalog orders contracts payments demands,services/$(s)/$(s))

bench: install
	$(UV) run --frozen python bench/gateway_overhead.py

# The release version, the one source of every image tag: the root pyproject.toml's `version`.
# deploy/k8s/release (newTag) and docker-compose.yml (${VOUCHER_VERSION:-...}) name the same,
# tests/deploy/test_versions.py holds them to it. `make images VOUCHER_VERSION=1.2.0-rc1` for
# another tag; never `latest` (the clusters pull IfNotPresent: a moved tag would not be pulled).
VOUCHER_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml | head -n 1)
# name:port of each image built from deploy/Dockerfile (docker-compose.yml's build args).
APP_IMAGES := gateway:8000 identity:8001 quota:8002 catalog:8003 orders:8004 contracts:8005 \
	payments:8006 demands:8007 web:8008
DOCKER ?= docker

images:
	@test -n "$(VOUCHER_VERSION)" || { echo "no version in pyproject.toml"; exit 1; }
	@for image in $(APP_IMAGES); do \
		name=$${image%%:*}; port=$${image##*:}; \
		$(DOCKER) build -f deploy/Dockerfile --build-arg SERVICE=$$name --build-arg PORT=$$port \
			-t voucher-$$name:$(VOUCHER_VERSION) . || exit 1; \
	done
	$(DOCKER) build -f deploy/Dockerfile --build-arg SERVICE=invariants \
		-t voucher-invariants:$(VOUCHER_VERSION) .
	$(DOCKER) build -f deploy/backup/Dockerfile -t voucher-backup:$(VOUCHER_VERSION) .

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
