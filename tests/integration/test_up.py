"""The quick start's first command: `sluice up` (what `make up` runs) brings up PostgreSQL,
Kafka and the four services, serves the MLflow API on one port, restarts a service that dies,
and stops everything it started however it is signalled: Ctrl-C or SIGTERM to the process
group (a terminal, systemd, `timeout`, `kill -- -PGID`), or SIGTERM to `up` alone.

The tests of this module share ports and a state folder: PostgreSQL's initdb and Kafka's
storage format happen once, and each `up` starting on the ports the previous one used shows
those were freed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from tests.stack import REPO, Ports, StackError, _http_ok, kafka_test_env

UP_DEADLINE_S = 180.0


def _children(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` and their command lines (from /proc)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _child_named(pid: int, service: str) -> int:
    for child, cmdline in _children(pid).items():
        if cmdline.rstrip().endswith(f"sluice.cli {service}"):
            return child
    raise AssertionError(f"no {service} child of {pid}: {_children(pid)}")


@pytest.fixture(scope="module")
def up_env() -> Iterator[tuple[Ports, dict[str, str]]]:
    ports = Ports.free()
    # Under the repo, not tmp_path: PostgreSQL runs as an unprivileged user that must be able
    # to traverse the path, and pytest's tmp dirs are private.
    state = REPO / ".state" / "test" / f"up-{ports.front}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_STATE_DIR=str(state),
        **kafka_test_env(),
        SLUICE_PG_PORT=str(ports.pg),
        SLUICE_KAFKA_PORT=str(ports.kafka),
        SLUICE_KAFKA_CONTROLLER_PORT=str(ports.kafka_controller),
        SLUICE_PORT=str(ports.front),
        SLUICE_INGEST_PORT=str(ports.ingest),
        SLUICE_API_PORT=str(ports.api),
        SLUICE_WRITER_METRICS_PORT=str(ports.writer),
        SLUICE_API_ARTIFACT_ROOT=str(state / "artifacts"),
    )
    try:
        yield ports, env
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def up(
    up_env: tuple[Ports, dict[str, str]], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Ports, dict[str, str]]]:
    ports, env = up_env
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    # A session of its own, as a shell job or a systemd unit: its process group is its pid.
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "up"],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        _wait_ready(process, f"http://127.0.0.1:{ports.front}/health/ready", tmp_path / "up.log")
        yield process, ports, env
    finally:
        if process.poll() is None:
            process.kill()  # the test failed before its own signal: leave nothing behind
            process.wait()
        for script in ("kafka.sh", "pg.sh"):
            subprocess.run(
                [str(REPO / "scripts" / script), "stop"],
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + UP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"sluice up exited {process.returncode}: {log.read_text()[-3000:]}")
        if _http_ok(url):
            return
        time.sleep(0.2)
    raise StackError(f"sluice up not ready in {UP_DEADLINE_S}s: {log.read_text()[-3000:]}")


def _log_and_read(client: MlflowClient, run_id: str, base_step: int) -> None:
    now = int(time.time() * 1000)
    client.log_batch(
        run_id, metrics=[Metric("m", float(i), now, base_step + i) for i in range(1000)]
    )
    steps = {m.step for m in client.get_metric_history(run_id, "m")}
    assert set(range(base_step, base_step + 1000)) <= steps


def test_up_serves_restarts_passes_doctor_and_stops_on_sigterm(
    up: tuple[subprocess.Popen[bytes], Ports, dict[str, str]], tmp_path: Path
) -> None:
    process, ports, env = up
    client = MlflowClient(f"http://127.0.0.1:{ports.front}")
    exp_id = client.create_experiment(f"up-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id).info.run_id
    client.log_param(run_id, "p", "1")
    _log_and_read(client, run_id, 0)

    writer = _child_named(process.pid, "writer")
    os.kill(writer, signal.SIGKILL)
    _log_and_read(client, run_id, 1000)  # the supervisor restarted the writer
    assert _child_named(process.pid, "writer") != writer
    assert client.get_run(run_id).data.params == {"p": "1"}

    # `sluice doctor` from the checkout, with the environment `up` was started with.
    healthy = _doctor(env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.strip().endswith("all checks passed")
    drifted = _doctor(env, SLUICE_KAFKA_PARTITIONS="16")
    assert drifted.returncode == 1
    assert "topic sluice.metrics.v1 has 8 partitions, SLUICE_KAFKA_PARTITIONS=16" in drifted.stdout
    assert "SLUICE_KAFKA_PARTITIONS is 8 there, 16 here" in drifted.stdout

    process.send_signal(signal.SIGTERM)  # to `up` alone
    assert process.wait(timeout=120) == 0
    assert _children(process.pid) == {}
    _assert_stopped_cleanly(tmp_path / "up.log", ports, env)


def _log_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint-group", "sigterm-group"])
def test_up_stops_everything_however_signalled(
    up: tuple[subprocess.Popen[bytes], Ports, dict[str, str]], tmp_path: Path, how: str
) -> None:
    process, ports, env = up
    if how == "sigint-group":  # Ctrl-C in the terminal
        os.killpg(process.pid, signal.SIGINT)
    else:
        # systemd's default, `timeout`, `kill -- -PGID`; GNU make (`make up`) also forwards
        # SIGTERM to its child, so `up` gets a second copy in the same millisecond.
        os.killpg(process.pid, signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    _assert_stopped_cleanly(tmp_path / "up.log", ports, env)
    # (SIGTERM to `up` alone: test_up_serves_restarts_passes_doctor_and_stops_on_sigterm.)


def _assert_stopped_cleanly(log: Path, ports: Ports, env: dict[str, str]) -> None:
    """Every service drained and exited 0, and nothing `up` started is left running."""
    lines = _log_lines(log)
    stopped = {str(x["service"]): x["code"] for x in lines if x["msg"] == "service stopped"}
    assert stopped == {name: 0 for name in ("writer-0", "api", "ingest", "front")}, stopped
    # Each service logged its own orderly end (the writer's after its last flush).
    drained = {x["service"] for x in lines if x["msg"] == "stopped"}
    assert drained == {"writer", "api", "ingest", "front", "up"}, drained
    assert not [x for x in lines if "exiting now" in str(x["msg"])]
    for name in ("pg", "kafka", "kafka_controller", "front", "ingest", "api", "writer"):
        assert not _port_taken(getattr(ports, name)), f"port of {name} still taken"
    for script in ("pg.sh", "kafka.sh"):
        status = subprocess.run([str(REPO / "scripts" / script), "status"], env=env, check=False)
        assert status.returncode == 3, f"{script} still running after `up` stopped"


def _doctor(env: dict[str, str], *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", "doctor", *args],
        env={**env, **overrides},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
