"""The headers of an artifact download, as MLflow 3.17.2 sends them (pure).

MLflow serves every download as an attachment with ``X-Content-Type-Options: nosniff`` (so a
browser never renders an artifact on the server's origin) and picks the content type by its own
mapping first: the extensions it treats as text and its two extension-less files ``MLmodel`` and
``mlproject`` (MLflow's own constants, compared case-sensitively: ``mlmodel`` and ``MLproject``
are not text) are ``text/plain``; then Python's ``mimetypes`` by name, ignoring the encoding it
reports (``f.gz`` is application/octet-stream, ``a.tar.gz`` application/x-tar); then
application/octet-stream. The file name goes into
``Content-Disposition`` unquoted when it is an HTTP token, quoted with backslash escapes when
not, and a non-ASCII name adds an RFC 5987 ``filename*`` beside an ASCII fallback.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import unicodedata
import urllib.parse
from typing import Final

TEXT_EXTENSIONS: Final = frozenset(
    {
        "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon",
        "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst",
        "ipynb", "MLmodel", "mlproject",
    }
)  # fmt: skip
OCTET_STREAM: Final = "application/octet-stream"
# RFC 9110 token characters: such a value needs no quotes.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 5987 attr-char beyond alphanumerics: left unescaped in `filename*`.
_ATTR_SAFE: Final = "!#$&+-.^_`|~"


def content_type(name: str) -> str:
    """The Content-Type MLflow sends for a file called ``name`` (a base name)."""
    extension = posixpath.splitext(name)[1].replace(".", "") or name
    if extension in TEXT_EXTENSIONS:
        return "text/plain"
    guessed, _encoding = mimetypes.guess_type(name)
    return guessed or OCTET_STREAM


def content_disposition(name: str) -> str:
    """``attachment`` with the file name spelled as MLflow (werkzeug) spells it."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        quoted = urllib.parse.quote(name, safe=_ATTR_SAFE)
        ascii_name = _header_value(fallback or "download")
        return f"attachment; filename={ascii_name}; filename*=UTF-8''{quoted}"
    return f"attachment; filename={_header_value(name)}"


def _header_value(value: str) -> str:
    if _TOKEN.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def download_headers(name: str) -> dict[str, str]:
    return {
        "Content-Type": content_type(name),
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
    }
