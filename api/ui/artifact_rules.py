"""How the UI's artifact routes name and type files (pure).

Every file is sent as an attachment with ``nosniff``: an HTML artifact is downloaded, never
rendered on the UI's origin (XSS). Text-like files MLflow previews (logs, configs, YAML, JSON,
MLmodel...) are ``text/plain``; the rest by extension, else ``application/octet-stream``.
"""

from __future__ import annotations

import mimetypes
import unicodedata
import urllib.parse
from typing import Final

from api.artifacts import paths
from api.registry import sources

# Extensions (or whole names, for files without one) MLflow's UI shows as plain text.
TEXT_NAMES: Final = frozenset(
    {
        *("txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop"),
        *("hocon", "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv"),
        *("md", "rst", "ipynb", "MLmodel", "MLproject"),
    }
)
_TYPES: Final = mimetypes.MimeTypes()
_ATTR_CHAR_SAFE: Final = "!#$&+-.^_`|~"  # RFC 5987 attr-char besides alphanumerics
_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def mime_type(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    key = extension if dot and stem else name
    if key in TEXT_NAMES:
        return "text/plain"
    guessed, _ = _TYPES.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _quoted(value: str) -> str:
    if value and all(c in _TOKEN_CHARS for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(name: str) -> str:
    """``attachment`` with the file name; a non-ASCII name gets an ASCII fallback and the
    exact name as ``filename*`` (RFC 6266 / 5987), since header values must be ASCII."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        ascii_name = (
            unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or "download"
        )
        exact = urllib.parse.quote(name, safe=_ATTR_CHAR_SAFE)
        return f"attachment; filename={_quoted(ascii_name)}; filename*=UTF-8''{exact}"
    return f"attachment; filename={_quoted(name)}"


def download_headers(name: str) -> dict[str, str]:
    return {
        "Content-Type": mime_type(name),
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def store_root(uri: str, s3_root: tuple[str, tuple[str, ...]] | None) -> tuple[str, ...] | None:
    """The store segments an artifact root URI (a run's, logged model's or model version's)
    names: ``mlflow-artifacts:/<path>``, or ``s3://`` inside the configured bucket and prefix.
    None for anything else: Sluice never reads locations a user supplied."""
    parts = sources.artifact_parts(uri)
    if parts is None and s3_root is not None and uri.startswith("s3://"):
        split = urllib.parse.urlsplit(sources.fully_decoded(uri))
        keys = tuple(p for p in split.path.split("/") if p)
        bucket, prefix = s3_root
        if split.netloc == bucket and keys[: len(prefix)] == prefix:
            parts = keys[len(prefix) :]
    if parts is None:
        return None
    # Roots come from the database, but an experiment's location was once a user's input:
    # the same checks as a request path.
    return paths.from_decoded("/".join(parts), allow_root=True)
