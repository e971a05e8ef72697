"""`sluice healthcheck` (the image's HEALTHCHECK) against real running services: 0 while the
role's /health/ready answers 200 on the port its settings name, 1 otherwise."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.stack import Stack


def _probe(stack: Stack, role: str, **overrides: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", "healthcheck", role],
        env=stack.service_env(**overrides),
        capture_output=True,
        timeout=60,
        check=False,
    ).returncode


@pytest.mark.parametrize("role", ["ingest", "api", "writer"])
def test_a_ready_service_is_healthy(stack: Stack, role: str) -> None:
    assert _probe(stack, role) == 0


def test_nothing_listening_is_unhealthy(stack: Stack) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = str(sock.getsockname()[1])
    assert _probe(stack, "api", SLUICE_API_PORT=free) == 1
