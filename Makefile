# The two commands a newcomer needs: `make run` (start the platform) and `make test`.
# uv is bootstrapped into .tools/ when it is not on PATH; only Python 3.11 is required.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export ENVIRONMENT ?= development

.PHONY: help install run allinone up test test-fast lint bench clean

help:
	@echo "make run    start the platform (all-in-one with demo data; distributed when POSTGRES_URL and AMQP_URL are set)"
	@echo "make test   run every test (needs PostgreSQL and RabbitMQ; see README)"
	@echo "make up     distributed: every service its own process on POSTGRES_URL / AMQP_URL (default: local servers)"
	@echo "make lint   ruff, and mypy on libs/common"
	@echo "make bench  gateway vs direct throughput and latency, memory per process"

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
	$(UV) run --frozen mypy libs/common/common tools/invariants/invariants

bench: install
	$(UV) run --frozen python bench/gateway_overhead.py

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
