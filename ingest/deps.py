"""What ingest handlers need, built once per app by ingest/app.py."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from ingest.experiments import Experiments
from ingest.produce import Producer
from ingest.runs import RunStates


@dataclass(frozen=True, slots=True)
class Deps:
    pool: asyncpg.Pool
    runs: RunStates
    producer: Producer
    max_body_bytes: int
    experiments: Experiments
    trace_producer: Producer  # the traces topic, same Kafka producer


deps_key = web.AppKey("deps", Deps)
