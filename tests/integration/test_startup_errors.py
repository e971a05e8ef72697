"""An operator starting a service against a dependency that does not answer gets one line
naming it and its address, never a traceback (`sluice migrate` and the services alike)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.stack import Stack


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args],
        env=stack.service_env(**env),
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("command", ["migrate", "api", "writer"])
def test_unreachable_postgresql_is_one_line(stack: Stack, command: str) -> None:
    port = _closed_port()
    done = _run(stack, command, SLUICE_PG_DSN=f"postgresql://app:pw@127.0.0.1:{port}/x")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"sluice {command}: cannot reach PostgreSQL at postgresql://app:***@127.0.0.1:{port}/x"
        )
    )


@pytest.mark.parametrize("command", ["ingest", "writer"])
def test_unreachable_kafka_is_one_line(stack: Stack, command: str) -> None:
    port = _closed_port()
    done = _run(
        stack,
        command,
        SLUICE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        SLUICE_INGEST_PORT=str(_closed_port()),
        SLUICE_WRITER_METRICS_PORT=str(_closed_port()),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"sluice {command}: cannot reach Kafka at 127.0.0.1:{port}")
    )


def test_a_taken_port_is_one_line(stack: Stack) -> None:
    # The session's own api already listens there.
    done = _run(stack, "api", SLUICE_API_PORT=str(stack.ports.api))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"sluice api: cannot listen on 127.0.0.1:{stack.ports.api}")
    )
