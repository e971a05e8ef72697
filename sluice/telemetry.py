"""OpenTelemetry tracing of Sluice's own path, off unless ``SLUICE_OTEL_ENDPOINT`` is set.

Spans: the HTTP request at the edge (``sluice.http``; a caller's ``traceparent`` is its parent),
``kafka.produce`` (ingest: send and wait for the ack), then in the writer ``writer.flush``
(linked to the spans that produced its records, whose context travels in the Kafka record's
``traceparent`` header) and its ``postgresql.flush`` transaction. Exported over OTLP/HTTP in
batches. Off, the OpenTelemetry API's no-op tracer costs about a microsecond per span and no
header is added.
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import ParamSpec, TypeVar

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanContext

tracer = trace.get_tracer("sluice")

P = ParamSpec("P")
R = TypeVar("R")


def configure(service: str, endpoint: str) -> None:
    """Export this process's spans to ``endpoint`` (an OTLP/HTTP traces URL); "" = off."""
    if not endpoint:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"sluice-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # the last batch goes out when the process ends


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run an async function inside a span called ``name``."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracer.start_as_current_span(name):
                return await fn(*args, **kwargs)

        return wrapper

    return decorate


def headers() -> list[tuple[str, bytes]]:
    """The current span's context as Kafka record headers (empty when tracing is off)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def span_context(record_headers: Iterable[tuple[str, bytes]] | None) -> SpanContext | None:
    """The producer's span context carried in a record's headers, if any."""
    headers = list(record_headers or ())
    if not any(k == "traceparent" for k, _ in headers):  # tracing off: the common case, cheap
        return None
    carrier = {k: bytes(v).decode(errors="replace") for k, v in headers}
    found = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def links(contexts: Sequence[SpanContext]) -> list[Link]:
    return [Link(c) for c in contexts]


def extract(carrier: dict[str, str]) -> context.Context:
    """The caller's context from HTTP headers (``traceparent``), for a server span's parent."""
    return propagate.extract(carrier)
