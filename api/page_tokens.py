"""Page tokens (pure). MLflow's tokens are base64 JSON ``{"offset": N}``; clients treat them
as opaque, and so may we, but matching the format keeps tokens portable between servers."""

from __future__ import annotations

import base64
import binascii

import orjson

from schemas.mlflow_errors import invalid_parameter


def encode_offset(offset: int) -> str:
    return base64.b64encode(orjson.dumps({"offset": offset})).decode()


def decode_offset(token: str | None) -> int:
    """Offset a token points at; 0 for no token; MLflow's 400 for a malformed one."""
    if not token:
        return 0
    try:
        raw = base64.b64decode(token, validate=False)
    except (binascii.Error, ValueError):
        raise invalid_parameter("Invalid page token, could not base64-decode") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_parameter("Invalid page token, decoded value=" + repr(raw)) from None
    offset = doc.get("offset") if isinstance(doc, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise invalid_parameter(f"Invalid page token, parsed value={doc!r}")
    return offset
