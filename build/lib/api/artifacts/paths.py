"""Artifact path validation (pure): the only way a client path becomes storage segments.

Every traversal fix in MLflow was bypassed by another encoding (reliability.md B3: CVE-2023-6730
double-encoded ``%252e%252e%252f``, CVE-2024-1560 double decoding on DELETE, CVE-2024-1483/3848
``#`` fragments, CVE-2023-2780 backslashes). So a path is checked in two forms, the one that is
used (decoded once, as HTTP delivers it) and the one left after decoding until stable, and is
refused when either form holds: an empty, ``.`` or ``..`` segment, a leading ``/`` (absolute),
a Windows drive (``C:``), a backslash, ``#``, NUL or another control character. Storage then
joins the validated segments below its root or prefix and never resolves anything else.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

from schemas.mlflow_errors import MlflowError, invalid_parameter

MAX_SEGMENT_BYTES: Final = 255  # a file-name component on every common file system and S3 UI
MAX_PATH_BYTES: Final = 1024  # S3's key limit, prefix not counted
_MAX_DECODE_ROUNDS: Final = 8
_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f\\#]")
_DRIVE: Final = re.compile(r"^[A-Za-z]:")

Segments = tuple[str, ...]


def invalid_path(path: str) -> MlflowError:
    return invalid_parameter(f"Invalid path: '{path}'")


def _fully_decoded(text: str, original: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = urllib.parse.unquote(text, errors="strict")
        if decoded == text:
            return text
        text = decoded
    raise invalid_path(original)


def _segments(form: str, original: str) -> Segments:
    if _FORBIDDEN.search(form) or _DRIVE.match(form) or form.startswith("/"):
        raise invalid_path(original)
    parts = tuple(form.split("/"))
    if any(p in ("", ".", "..") for p in parts):
        raise invalid_path(original)
    return parts


def from_decoded(path: str, *, allow_root: bool = False) -> Segments:
    """Segments of an already once-decoded path (a query parameter, or a URL tail that was
    decoded once). ``allow_root``: "" is the root (listing only). A trailing ``/`` is ignored."""
    if path.startswith("/"):
        raise invalid_path(path)
    try:
        if path.endswith("/"):
            path = path[:-1]
        if path == "":
            if allow_root:
                return ()
            raise invalid_path(path)
        used = _segments(path, path)
        _segments(_fully_decoded(path, path), path)
    except UnicodeDecodeError:
        raise invalid_path(path) from None
    if len(path.encode()) > MAX_PATH_BYTES or any(
        len(p.encode()) > MAX_SEGMENT_BYTES for p in used
    ):
        raise invalid_path(path)
    return used


def from_raw_tail(raw: str, *, allow_root: bool = False) -> Segments:
    """Segments of a raw (still percent-encoded) URL tail, decoded once like HTTP does."""
    try:
        once = urllib.parse.unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise invalid_path(raw) from None
    return from_decoded(once, allow_root=allow_root)


def display(parts: Segments) -> str:
    return "/".join(parts)
