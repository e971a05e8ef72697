# The two commands of the quick start:
#   make up    -- everything needed, then the MLflow API on http://127.0.0.1:$(SLUICE_PORT)
#   make test  -- everything the tests need, then the whole suite (what .ci/run calls)
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export SLUICE_VENV := $(VENV)

.PHONY: up test lint bootstrap services-stop clean

bootstrap:
	@scripts/bootstrap.sh >/dev/null

up: bootstrap
	@scripts/kafka.sh fetch
	exec $(VENV)/bin/sluice up

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Lint first (seconds), then the suite; the test session starts and stops its own PostgreSQL,
# Kafka, S3 and Sluice processes under .state/test.
test: lint
	@scripts/kafka.sh fetch
	@scripts/haproxy.sh >/dev/null
	@scripts/helm.sh >/dev/null
	@scripts/promtool.sh check
	$(VENV)/bin/pytest $(PYTEST_ARGS)

services-stop:
	-scripts/kafka.sh stop
	-scripts/pg.sh stop

clean: services-stop
	rm -rf .state

# Sluice vs MLflow, same workloads in one run (benchmarks/README.md): under 30 minutes; results
# in benchmarks/results/<date>-<host>.{json,md}. BENCH_PROFILE=long grows metrics to 5e7 points.
.PHONY: bench bench-smoke bench-deps
BENCH_PROFILE ?= default

# psutil is in the dev extras too, so py-spy (bench only) is what tells whether they are in.
bench-deps: bootstrap
	@test -x $(VENV)/bin/py-spy \
		|| $(VENV)/bin/python -m pip install --disable-pip-version-check -q -e '.[dev,bench]'
	@scripts/kafka.sh fetch

bench: bench-deps
	$(VENV)/bin/python -m benchmarks --profile $(BENCH_PROFILE)

# A few seconds per workload, both systems: checks that the benchmark works (not how fast).
bench-smoke: bench-deps
	$(VENV)/bin/python -m benchmarks --profile smoke --out .state/bench-smoke
