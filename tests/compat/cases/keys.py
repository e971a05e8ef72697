"""Key rules for metrics, params and tags, one case per key and endpoint: allowed characters,
path-stable names (no `..`, no leading `/`, no `//`), and the parameter label each endpoint puts
in its message (`name`, `key`, `metrics[0].name`, `params[0].key`, `tags[0].key`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.compat.cases._build import api, case, get_run, kv, metric, post, run_setup
from tests.compat.model import Case, Step

ENDPOINTS = api(
    "experiments/create",
    "runs/create",
    "runs/get",
    "runs/log-metric",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/log-batch",
)

# Rejected: a character outside [/\w.\- :], or a name that a path normaliser would change.
HOSTILE = {
    "hash": "a#b",
    "question-mark": "a?b",
    "star": "a*b",
    "newline": "a\nb",
    "backslash": "a\\b",
    "percent": "a%b",
    "parent-segment": "a/../b",
    "dot-slash": "./a",
    "trailing-slash": "a/",
    "double-slash": "a//b",
    "absolute": "/abs",
    "leading-dots": "..x",
    "single-dot": ".",
    "emoji": "a😀",
}
# Accepted: spaces, colons, slashes, dots, dashes and unicode word characters.
FRIENDLY = {
    "space": "a b",
    "colon": "a:b",
    "slash": "a/b",
    "dots": "a.b.c",
    "dash-underscore": "a-b_c",
    "unicode-word": "ünï_名",
    "digits-only": "123",
    "trailing-dot": "a.",
}


def _metric(key: str, expect: int) -> Step:
    body = {"run_id": "${run}", "key": key, "value": 1, "timestamp": 5}
    return post("runs/log-metric", body, expect=expect)


def _param(key: str, expect: int) -> Step:
    return post("runs/log-parameter", {"run_id": "${run}", "key": key, "value": "v"}, expect=expect)


def _tag(key: str, expect: int) -> Step:
    return post("runs/set-tag", {"run_id": "${run}", "key": key, "value": "v"}, expect=expect)


def _batch(field: str) -> Callable[[str, int], Step]:
    def build(key: str, expect: int) -> Step:
        item: dict[str, Any] = metric(key, 1) if field == "metrics" else kv(key, "v")
        return post("runs/log-batch", {"run_id": "${run}", field: [item]}, expect=expect)

    return build


WRITERS: dict[str, Callable[[str, int], Step]] = {
    "log-metric": _metric,
    "log-parameter": _param,
    "set-tag": _tag,
    "log-batch-metric": _batch("metrics"),
    "log-batch-param": _batch("params"),
    "log-batch-tag": _batch("tags"),
}
# Every hostile key on the two endpoints with different labels; a spread on the others.
HOSTILE_ON = {
    "log-metric": list(HOSTILE),
    "log-parameter": list(HOSTILE),
    "set-tag": ["hash", "parent-segment", "double-slash", "absolute"],
    "log-batch-metric": ["hash", "parent-segment", "trailing-slash"],
    "log-batch-param": ["newline", "dot-slash", "leading-dots"],
    "log-batch-tag": ["star", "single-dot", "absolute"],
}
FRIENDLY_ON = {
    "log-metric": list(FRIENDLY),
    "log-parameter": ["space", "colon", "slash", "unicode-word"],
    "set-tag": ["space", "dots", "trailing-dot"],
    "log-batch-metric": ["colon", "slash"],
}


def _key_case(writer: str, label: str, key: str, expect: int) -> Case:
    verdict = "rejects" if expect == 400 else "accepts"
    return case(
        f"keys/{writer}-{verdict}-{label}",
        run_setup(),
        WRITERS[writer](key, expect),
        get_run(),
    )


CASES: list[Case] = [
    *(
        _key_case(w, label, HOSTILE[label], 400)
        for w, labels in HOSTILE_ON.items()
        for label in labels
    ),
    *(
        _key_case(w, label, FRIENDLY[label], 200)
        for w, labels in FRIENDLY_ON.items()
        for label in labels
    ),
]
