"""``sluice config``: every setting with its default, current value (secrets masked) and
meaning, as text for a terminal or JSON for tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluice.config import Settings
from sluice.settings_doc import Setting, config_hash, describe


def show(settings: Settings, environ: Mapping[str, str], *, as_json: bool) -> str:
    rows = describe(settings, environ)
    if as_json:
        doc = {"config_hash": config_hash(settings), "settings": [_as_dict(r) for r in rows]}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    return "\n".join(_as_text(r) for r in rows) + f"\n\nconfig hash: {config_hash(settings)}"


def _as_dict(row: Setting) -> dict[str, Any]:
    return {
        "name": row.name,
        "default": row.default,
        "current": row.current,
        "set": row.is_set,
        "choices": list(row.choices),
        "meaning": row.meaning,
    }


def _as_text(row: Setting) -> str:
    origin = f"(default {row.default!r})" if row.is_set else "(default)"
    head = f"{row.name} = {row.current!r}  {origin}"
    meaning = row.meaning
    if row.choices:
        meaning = f"{meaning.rstrip('.')}. One of: {', '.join(row.choices)}."
    return f"{head}\n    {meaning}" if meaning else head
