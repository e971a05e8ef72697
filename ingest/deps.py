"""What ingest handlers need, built once per app by ingest/app.py."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from ingest.experiments import Experiments
from ingest.produce import Producer
from ingest.runs import RunStates
from ingest.stored_traces import StoredTraces


@dataclass(frozen=True, slots=True)
class Deps:
    pool: asyncpg.Pool
    runs: RunStates
    producer: Producer
    max_body_bytes: int
    experiments: Experiments
    trace_producer: Producer  # the traces topic, same Kafka producer
    stored_traces: StoredTraces  # what MLflow 2.x EndTrace reads


deps_key = web.AppKey("deps", Deps)
