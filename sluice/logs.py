"""Structured logging: one JSON object per line on stderr.

Every line logged while a request is handled carries its ``request_id`` (a context variable
set by the HTTP edge, ``sluice.http``; the writer sets it from a record's header). The access
log (logger ``sluice.access``, one line per request) is off unless ``SLUICE_ACCESS_LOG``."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# The request being handled ("" outside requests): accepted from X-Request-Id or made.
request_id: ContextVar[str] = ContextVar("request_id", default="")
ACCESS_LOGGER = "sluice.access"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Fields passed with ``extra=`` become top-level keys.
        doc.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def stamp_request_ids() -> None:
    """Make every log record carry the current request id as the field ``request_id`` (taken
    when the record is created, so handlers that format later still see it). Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "stamps_request_ids", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        current = request_id.get()
        if current:
            record.request_id = current
        return record

    make.stamps_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


def configure(service: str, level: str, access_log: bool = False) -> None:
    stamp_request_ids()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every retried connection at ERROR; our own code reports outages once.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.CRITICAL)
