"""What ``sluice config`` shows: every setting with its default, current value and meaning.

The meaning is the comment written beside (or just above) the field in ``sluice/config.py``,
read from that source, so the documentation has one home. Secrets are masked here, before
anything is printed or hashed: a password in a DSN never leaves the process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import tokenize
import typing
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import orjson

from sluice import config

# Settings that differ between instances of one deployment by design (where each listens):
# left out of the configuration hash that `sluice doctor` compares across instances.
PER_INSTANCE = frozenset(
    {"SLUICE_HOST", "SLUICE_INGEST_HOST", "SLUICE_API_HOST", "SLUICE_WRITER_HOST"}
    | {"SLUICE_PORT", "SLUICE_INGEST_PORT", "SLUICE_API_PORT", "SLUICE_WRITER_METRICS_PORT"}
    | {"SLUICE_LOG_LEVEL", "SLUICE_WRITER_PROCESSES"}
)
_URL_PASSWORD = re.compile(r"(?P<head>^[a-z][a-z0-9+.-]*://[^:/@]*:)(?P<secret>[^@]*)(?=@)")


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # environment variable
    default: Any
    current: Any  # masked when secret
    is_set: bool  # given in the environment (even if equal to the default)
    choices: tuple[str, ...]  # the only values accepted, when the type is a Literal
    meaning: str


def mask(value: Any, secret: bool = False) -> Any:
    """Hide the password of a URL-shaped value (``postgresql://user:pw@host`` -> ``user:***``);
    a ``secret`` value that is not a URL is hidden whole (an empty one stays visible, so an
    operator can tell "unset" from "set")."""
    if not isinstance(value, str):
        return value
    if secret and value and "://" not in value:
        return "***"
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***", value)


def describe(settings: config.Settings, environ: typing.Mapping[str, str]) -> list[Setting]:
    """Every setting, in declaration order."""
    return list(_walk(settings, config.Settings(), config.PREFIX, environ))


def config_hash(settings: config.Settings) -> str:
    """A short hash of the effective, deployment-wide configuration (secrets masked, per-instance
    addresses left out): equal on every instance of a consistent deployment."""
    shared = {s.name: s.current for s in describe(settings, {}) if s.name not in PER_INSTANCE}
    return hashlib.sha256(orjson.dumps(shared, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def effective(settings: config.Settings) -> dict[str, Any]:
    """Name -> current value (masked) of every setting: the `/health/config` view."""
    return {s.name: s.current for s in describe(settings, {})}


def _walk(
    current: Any, default: Any, prefix: str, environ: typing.Mapping[str, str]
) -> typing.Iterator[Setting]:
    cls = type(current)
    hints = typing.get_type_hints(cls)
    comments = field_comments().get(cls.__name__, {})
    for f in dataclasses.fields(cls):
        name = prefix + f.name.upper()
        value, base = getattr(current, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _walk(value, base, name + "_", environ)
            continue
        choices = (
            typing.get_args(hints[f.name])
            if typing.get_origin(hints[f.name]) is typing.Literal
            else ()
        )
        secret = not f.repr  # the configuration marks secrets with field(repr=False)
        yield Setting(
            name,
            mask(base, secret),
            mask(value, secret),
            name in environ or name + config.FILE_SUFFIX in environ,
            choices,
            comments.get(f.name, ""),
        )


@cache
def field_comments() -> dict[str, dict[str, str]]:
    """Class name -> field name -> its comment, from the source of ``sluice/config.py``: the
    comment at the end of the field's line, else the comment lines right above it."""
    source = resources.files("sluice").joinpath("config.py").read_text()
    found: dict[str, dict[str, str]] = {}
    cls, pending = "", list[str]()
    lines = source.splitlines()
    trailing = {
        tok.start[0]: tok.string.lstrip("# ").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if line.startswith("class "):
            cls, pending = line.split()[1].split("(")[0].rstrip(":"), []
        elif stripped.startswith("#"):
            pending.append(stripped.lstrip("# ").strip())
        elif cls and (match := re.match(r"^    ([a-z_][a-z0-9_]*): ", line)):
            own = trailing.get(number)
            found.setdefault(cls, {})[match.group(1)] = own or " ".join(pending)
            pending = []
        else:
            pending = []
    return found
