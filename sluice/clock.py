"""The wall clock as MLflow stores it: milliseconds since the epoch, an int (int64 on the wire)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
