"""`sluice up-ha`'s pure parts: the process plan, the balancer's ingest paths, and the settings
that keep state shared when several processes of a service run."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import pytest

from benchmarks import scaleout
from sluice import config
from sluice.commands import ha, supervise
from tests.fault.oracle import wait_until


def test_plan_names_roles_ports_and_instance_counts() -> None:
    settings = config.load(
        {
            "SLUICE_INGEST_PORT": "7001",
            "SLUICE_API_PORT": "7002",
            "SLUICE_WRITER_METRICS_PORT": "7003",
        }
    )
    plan = ha.plan(settings)
    assert [(p.name, p.role, p.port) for p in plan] == [
        ("writer-1", "writer", 7003),
        ("writer-2", "writer", 7004),
        ("api-1", "api", 7002),
        ("api-2", "api", 7012),
        ("ingest-1", "ingest", 7001),
        ("ingest-2", "ingest", 7011),
    ]
    assert plan[3].env == {"SLUICE_API_PORT": "7012", "SLUICE_INSTANCES": "2"}
    assert plan[5].env == {"SLUICE_INGEST_PORT": "7011", "SLUICE_INSTANCES": "2"}


def test_process_command_lines_name_their_role() -> None:
    argv = ha.sluice_argv("ingest")
    assert " ".join(argv).endswith("sluice ingest") or argv[-2:] == ["sluice.cli", "ingest"]


def test_balancer_configuration_names_every_process_and_the_port() -> None:
    settings = config.load(
        {"SLUICE_PORT": "7000", "SLUICE_INGEST_PORT": "7001", "SLUICE_API_PORT": "7002"}
    )
    text = ha.balancer_config(settings, ha.plan(settings))
    assert "bind 127.0.0.1:7000" in text
    for address in ("127.0.0.1:7001", "127.0.0.1:7011", "127.0.0.1:7002", "127.0.0.1:7012"):
        assert f" {address} check" in text
    assert "127.0.0.1:7003" not in text  # writers take no HTTP traffic


def test_rate_limit_is_shared_among_instances() -> None:
    def share(instances: str) -> tuple[float, int]:
        settings = config.instance_share(
            config.load(
                {
                    "SLUICE_AUTH_RATE_PER_S": "100",
                    "SLUICE_AUTH_RATE_BURST": "25",
                    "SLUICE_INSTANCES": instances,
                }
            )
        )
        return settings.auth.rate_per_s, settings.auth.rate_burst

    assert share("1") == (100.0, 25)
    assert share("2") == (50.0, 13)
    assert share("0") == (100.0, 25)


def test_several_apis_need_a_shared_artifact_store() -> None:
    local = {"SLUICE_INSTANCES": "2", "SLUICE_API_ARTIFACT_ROOT": "/srv/artifacts"}
    with pytest.raises(config.ConfigError, match="need one artifact store"):
        config.require_shared_artifacts(config.load(local))
    config.require_shared_artifacts(
        config.load({**local, "SLUICE_API_ARTIFACT_ROOT_SHARED": "true"})
    )
    config.require_shared_artifacts(
        config.load({**local, "SLUICE_API_ARTIFACT_ROOT": "s3://bucket/prefix"})
    )
    config.require_shared_artifacts(config.load({"SLUICE_API_ARTIFACT_ROOT": "/srv/artifacts"}))


async def test_supervisor_restarts_a_child_that_dies_and_stops_the_rest() -> None:
    """A child that exits is started again (backoff 0.5 s, then 1 s); on stop, a child that
    runs is terminated and its exit code reported."""
    dies = supervise.Child("dies", [sys.executable, "-c", "pass"], dict(os.environ))
    runs = supervise.Child(
        "runs", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ)
    )
    stop, hurry = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(supervise.supervise([dies, runs], stop, hurry))

    async def restarted_twice() -> bool:
        return dies.restarts >= 2

    await wait_until(restarted_twice, 30)
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert dies.restarts >= 2
    assert runs.restarts == 0
    assert runs.process is not None and runs.process.returncode == -signal.SIGTERM


def test_scaleout_report_gives_cpu_per_verified_point() -> None:
    result: dict[str, Any] = {
        "found_points": 1_000_000,
        "verified": True,
        "verified_points_per_s": 50_000.0,
        "wall_s": 20.0,
        "cpu_cores": {"ingest": 0.5, "writer0": 0.25, "haproxy": 0.05},
        "latency": {"p50_ms": 10.0, "p99_ms": 30.0},
    }
    row = scaleout.summarise(scaleout.Layout(1, 1), result)
    # 0.5 cores x 20 s over 1e6 points = 10 us a point
    assert row["cpu_us_per_point_by_group"] == {"ingest": 10.0, "writer0": 5.0, "haproxy": 1.0}
    assert row["cpu_us_per_point"] == 16.0
    doc: dict[str, Any] = {"started_at": "x", "profile": {"name": "smoke"}, "layouts": [row]}
    doc |= {"load_before": [1.0], "load_after": [1.0]}
    line = scaleout.markdown(doc).splitlines()[6]
    assert line.startswith("| 1 | 1 | 50,000 | 0.80 | 16.0 us | 10.00 | 5.00 |"), line
