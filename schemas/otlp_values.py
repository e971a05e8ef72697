"""OTLP attribute values as plain Python (pure): shared by ingest (previews, tags) and the api
(the span-dict form)."""

from __future__ import annotations

import base64
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue, as MLflow decodes it (bytes as base64 text, which
    JSON can hold)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)
