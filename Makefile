# The two commands of the quick start:
#   make up    -- everything needed, then the MLflow API on http://127.0.0.1:$(SLUICE_PORT)
#   make test  -- everything the tests need, then the whole suite (what .ci/run calls)
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
export SLUICE_VENV := $(VENV)

.PHONY: up up-ha test lint bootstrap services-stop clean

bootstrap:
	@scripts/bootstrap.sh >/dev/null

up: bootstrap
	@scripts/kafka.sh fetch
	@scripts/ui-bundle.sh install >/dev/null
	exec $(VENV)/bin/sluice up

# The production shape on one machine (docs/capacity.md): HAProxy on $(SLUICE_PORT) in front of
# 2 ingest + 2 api, 2 writers, 3 Kafka brokers, PostgreSQL primary + synchronous standby with
# automatic failover (pg_auto_failover, installed with apt-get), moto S3 for artifacts.
up-ha: bootstrap
	@scripts/kafka.sh fetch
	exec $(VENV)/bin/sluice up-ha

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Lint first (seconds), then every package, jar and tool the tests use (installed once, so no
# test spends its time limit on a download), then the suite; the test session starts and stops
# its own PostgreSQL, Kafka, S3 and Sluice processes under .state/test.
test: lint
	@scripts/kafka.sh fetch
	@scripts/haproxy.sh >/dev/null
	@scripts/helm.sh >/dev/null
	@scripts/promtool.sh check
	@scripts/pgha.sh install
	@scripts/spark.sh fetch
	@scripts/mlflow-ref.sh install
	@scripts/ui-bundle.sh install >/dev/null
	@scripts/browser.sh install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# For a quick local loop only: the suite without the tests marked slow (CI runs them all).
.PHONY: test-quick
test-quick:
	$(MAKE) test PYTEST_ARGS='-m "not slow" $(PYTEST_ARGS)'

# The differential suite against a reference `mlflow server` on PostgreSQL (issue 14; `make
# test` uses the SQLite reference: both must pass, the second costs ~6 more minutes).
.PHONY: test-compat-pg
test-compat-pg: lint
	@scripts/kafka.sh fetch
	@scripts/mlflow-ref.sh install
	SLUICE_COMPAT_REFERENCE=postgresql $(VENV)/bin/pytest tests/compat -p no:cacheprovider $(PYTEST_ARGS)

services-stop:
	-scripts/kafka.sh stop --all
	-scripts/pg.sh stop
	-scripts/pgha.sh stop

clean: services-stop
	rm -rf .state

# Sluice vs MLflow, same workloads in one run (benchmarks/README.md): under 30 minutes; results
# in benchmarks/results/<date>-<host>.{json,md}. BENCH_PROFILE=long grows metrics to 5e7 points.
.PHONY: bench bench-smoke bench-deps bench-scaleout
BENCH_PROFILE ?= default

# psutil is in the dev extras too, so py-spy (bench only) is what tells whether they are in.
bench-deps: bootstrap
	@test -x $(VENV)/bin/py-spy \
		|| $(VENV)/bin/python -m pip install --disable-pip-version-check -q -e '.[dev,bench]'
	@scripts/kafka.sh fetch
	@scripts/ui-bundle.sh install >/dev/null
	@scripts/browser.sh install

bench: bench-deps
	$(VENV)/bin/python -m benchmarks --profile $(BENCH_PROFILE)
	$(VENV)/bin/python -m benchmarks.scaleout --profile $(BENCH_PROFILE)

# Scale-out alone (~6 min): writers 1 -> 2 -> 4 and ingest 1 -> 2 behind HAProxy, points/s and CPU
# per point; results in benchmarks/results/<date>-<host>-scaleout.{json,md} (docs/capacity.md).
bench-scaleout: bench-deps
	$(VENV)/bin/python -m benchmarks.scaleout --profile $(BENCH_PROFILE)

# A few seconds per workload, both systems: checks that the benchmark works (not how fast).
bench-smoke: bench-deps
	$(VENV)/bin/python -m benchmarks --profile smoke --out .state/bench-smoke
