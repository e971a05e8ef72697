"""Integration fixtures beyond the shared stack: a PostgreSQL connection planned like the api's,
moto (S3, server mode) and a second api + front pair whose artifact root is an S3 bucket prefix
(same PostgreSQL, Kafka, ingest and writer)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import boto3  # type: ignore[import-untyped]
import pytest

from tests.stack import Stack

S3_BUCKET = "sluice-test-artifacts"
S3_PREFIX = "root/prefix"
# moto accepts any credentials; they only have to exist for botocore to sign requests.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
async def conn(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    # As the api pool: every execution planned with its parameter values (sluice/pg.py).
    c = await asyncpg.connect(stack.dsn, server_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        yield c
    finally:
        await c.close()


@dataclass(frozen=True, slots=True)
class S3:
    endpoint: str
    bucket: str
    prefix: str

    def client(self) -> object:
        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials())


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": FAKE_AWS["AWS_DEFAULT_REGION"],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3(stack: Stack) -> S3:
    """moto on the stack's S3 port (scripts/s3.sh; stopped with the stack) and one bucket."""
    stack.ensure_server("s3.sh")
    target = S3(f"http://127.0.0.1:{stack.ports.s3}", S3_BUCKET, S3_PREFIX)
    boto3.client("s3", endpoint_url=target.endpoint, **_boto_credentials()).create_bucket(
        Bucket=S3_BUCKET
    )
    return target


@pytest.fixture(scope="session")
def s3_services(stack: Stack, s3: S3) -> dict[str, str]:
    """A second api (artifact root s3://bucket/prefix) and a front in front of it:
    {"front": url, "api": url}. Same PostgreSQL, Kafka, ingest and writer as the stack."""
    api_port, front_port = _free_port(), _free_port()
    overrides = {
        "SLUICE_API_PORT": str(api_port),
        "SLUICE_PORT": str(front_port),
        "SLUICE_API_ARTIFACT_ROOT": f"s3://{s3.bucket}/{s3.prefix}",
        "SLUICE_API_ARTIFACT_S3_ENDPOINT_URL": s3.endpoint,
        **FAKE_AWS,
    }
    stack.start("api", "api-s3", api_port, **overrides)
    stack.start("front", "front-s3", front_port, **overrides)
    return {"front": f"http://127.0.0.1:{front_port}", "api": f"http://127.0.0.1:{api_port}"}


@pytest.fixture(scope="session")
def s3_sluice_url(s3_services: dict[str, str]) -> str:
    """A tracking URI whose api stores artifacts in s3://bucket/prefix."""
    return s3_services["front"]
