"""Kafka security for managed clusters: ingest, writer, api and migrate talk to a broker
through a SASL_SSL listener (SCRAM-SHA-512, a certificate signed by a CA this test makes) and
points round-trip; wrong credentials or an unknown CA stop a service at start with one clear
message. The broker is a separate single-node cluster from scripts/kafka.sh (its SASL_SSL
listener is opt-in there), beside the session's plaintext one; PostgreSQL is the session's."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from tests.stack import SCRIPTS, Stack

pytestmark = pytest.mark.slow

USER = "sluice-svc"


@dataclass(frozen=True, slots=True)
class SecureKafka:
    bootstrap: str  # the SASL_SSL listener
    ca_file: Path
    password_file: Path
    other_ca_file: Path  # a CA that did not sign the broker's certificate


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip


def _make_certificates(directory: Path) -> None:
    """A test CA, and a broker certificate it signs for 127.0.0.1 (aiokafka checks hostnames)."""
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "broker.key", "-out", "broker.csr", cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.crt",
        cwd=directory,
    )  # fmt: skip
    # Kafka's PEM keystore: the PKCS#8 key (openssl 3 writes that with -nodes), then the chain.
    key = (directory / "broker.key").read_text()
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    chain = (directory / "broker.crt").read_text() + (directory / "ca.crt").read_text()
    (directory / "broker.pem").write_text(key + chain)


@pytest.fixture(scope="module")
def secure_kafka(stack: Stack) -> Iterator[SecureKafka]:
    directory = stack.state_dir / f"kafka-sasl-{stack.tag}"
    tls = directory / "tls"
    tls.mkdir(parents=True)
    _make_certificates(tls)
    password = uuid.uuid4().hex
    (tls / "scram-users").write_text(f"{USER} {password}\n")
    (tls / "password").write_text(password + "\n")  # as a mounted secret: trailing newline
    port, controller, sasl_port = _free_ports(3)
    env = stack.script_env()
    env.update(
        SLUICE_STATE_DIR=str(directory / "state"),
        SLUICE_KAFKA_PORT=str(port),
        SLUICE_KAFKA_CONTROLLER_PORT=str(controller),
        SLUICE_KAFKA_BROKERS="1",
        SLUICE_KAFKA_SASL_SSL_PORT=str(sasl_port),
        SLUICE_KAFKA_TLS_DIR=str(tls),
    )
    subprocess.run([str(SCRIPTS / "kafka.sh"), "start"], env=env, check=True, timeout=180)
    try:
        yield SecureKafka(
            f"127.0.0.1:{sasl_port}", tls / "ca.crt", tls / "password", tls / "other-ca.crt"
        )
    finally:
        subprocess.run([str(SCRIPTS / "kafka.sh"), "stop"], env=env, check=False, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


def _secure_env(kafka: SecureKafka, stack: Stack, **overrides: str) -> dict[str, str]:
    return {
        "SLUICE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SLUICE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SLUICE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "SLUICE_KAFKA_SASL_USERNAME": USER,
        "SLUICE_KAFKA_SASL_PASSWORD_FILE": str(kafka.password_file),
        "SLUICE_KAFKA_SSL_CAFILE": str(kafka.ca_file),
        "SLUICE_KAFKA_TOPIC": f"sluice.sasl-{stack.tag}.metrics",
        "SLUICE_WRITER_GROUP_ID": f"sluice-writer-sasl-{stack.tag}",
        **overrides,
    }


@pytest.fixture(scope="module")
def secure_url(stack: Stack, secure_kafka: SecureKafka) -> Iterator[str]:
    """migrate, writer, api, ingest and a front, all on the SASL_SSL listener; stopped after
    the module (left running, they retried the stopped cluster for the rest of the session,
    and a later test that waits for every service of the stack waited for them)."""
    ingest, api, writer, front = _free_ports(4)
    env = _secure_env(
        secure_kafka,
        stack,
        SLUICE_INGEST_PORT=str(ingest),
        SLUICE_API_PORT=str(api),
        SLUICE_WRITER_METRICS_PORT=str(writer),
        SLUICE_PORT=str(front),
    )
    stack.run_cli("migrate", **env)
    services = {"writer": writer, "api": api, "ingest": ingest, "front": front}
    try:
        for service, port in services.items():
            stack.start(service, f"{service}-sasl", port, **env)
        yield f"http://127.0.0.1:{front}"
    finally:
        for service in services:
            if f"{service}-sasl" in stack.processes:
                stack.kill(f"{service}-sasl", signal.SIGTERM)


def test_points_round_trip_through_a_sasl_ssl_listener(secure_url: str) -> None:
    client = MlflowClient(tracking_uri=secure_url)
    experiment = client.create_experiment(f"sasl-{uuid.uuid4().hex}")
    run_id = client.create_run(experiment).info.run_id
    now = int(time.time() * 1000)
    points = [Metric("loss", 1.0 / (step + 1), now + step, step) for step in range(500)]
    for start in range(0, len(points), 250):
        client.log_batch(run_id, metrics=points[start : start + 250])
    client.log_metric(run_id, "acc", 0.75, step=3)
    # The api's read fence asks the secured broker for end offsets, so this read also proves
    # the api's consumer; the values prove the writer consumed what ingest produced.
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(p.step, p.value) for p in points]
    assert client.get_run(run_id).data.metrics == {"loss": 1.0 / 500, "acc": 0.75}


def _start_fails(stack: Stack, command: str, env: dict[str, str]) -> str:
    """Run ``sluice COMMAND``; it must exit non-zero by itself. Returns its last stderr line."""
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli", command],
        env=stack.service_env(**env),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode != 0, result.stderr[-2000:]
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("command", ["migrate", "ingest", "writer", "api"])
def test_wrong_credentials_stop_the_service_at_start_with_one_message(
    stack: Stack, secure_kafka: SecureKafka, command: str, tmp_path: Path
) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    ingest, api, writer = _free_ports(3)
    env = _secure_env(
        secure_kafka,
        stack,
        SLUICE_KAFKA_SASL_PASSWORD_FILE=str(wrong),
        SLUICE_INGEST_PORT=str(ingest),
        SLUICE_API_PORT=str(api),
        SLUICE_WRITER_METRICS_PORT=str(writer),
    )
    line = _start_fails(stack, command, env)
    assert line == (
        f"sluice {command}: Kafka at {secure_kafka.bootstrap} rejected the credentials of user"
        f" '{USER}' (SCRAM-SHA-512): check SLUICE_KAFKA_SASL_USERNAME and"
        " SLUICE_KAFKA_SASL_PASSWORD (or SLUICE_KAFKA_SASL_PASSWORD_FILE)"
    )


def test_a_broker_certificate_from_another_ca_stops_the_service_at_start(
    stack: Stack, secure_kafka: SecureKafka
) -> None:
    env = _secure_env(secure_kafka, stack, SLUICE_KAFKA_SSL_CAFILE=str(secure_kafka.other_ca_file))
    line = _start_fails(stack, "migrate", env)
    assert line.startswith(f"sluice migrate: Kafka at {secure_kafka.bootstrap} failed the TLS")
    assert "SLUICE_KAFKA_SSL_CAFILE" in line
