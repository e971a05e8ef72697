"""MLflow's REST surface as data (mlflow_surface.json, written by dump.py from MLflow's own
protobuf descriptors) joined with Sluice's route table, for the case generators."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.not_supported_routes import NOT_SUPPORTED_ROUTES
from schemas.route_record import Route
from schemas.routes import ROUTES, TRACE_ROUTES

SURFACE_FILE = Path(__file__).with_name("mlflow_surface.json")


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a request or response message, at a path such as `metrics[].step`."""

    path: str
    type: str  # protobuf type name: int64, int32, double, bool, string, enum, message
    repeated: bool
    message: str | None  # the nested message's full name for type "message"
    default: Any  # what protobuf leaves in the field when it is not (or cannot be) parsed


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route Sluice serves, with the MLflow rpc behind it (None for routes MLflow registers
    by hand, such as server-info and get-history-bulk)."""

    route: Route
    rpc: str | None
    request: str | None
    response: str | None

    @property
    def api_url(self) -> str:
        return self.route.urls()[0]


@functools.cache
def surface() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SURFACE_FILE.read_text())
    return loaded


def _mlflow_path(path: str) -> str:
    # MLflow's artifact routes spell the tail Flask's way; the route table aiohttp's.
    return path.replace("<path:artifact_path>", "{artifact_path:.+}")


@functools.cache
def endpoints() -> tuple[Endpoint, ...]:
    """Every route Sluice serves, in table order, joined with MLflow's rpc for it. The GenAI
    routes Sluice answers NOT_IMPLEMENTED have their own cases (cases/not_supported.py). The
    web UI's routes (issue 12) and the trace routes (issue 13) have hand-written cases only: the
    generators have no fixtures or readers for them yet."""
    by_key = {
        (e["method"], e["version"], _mlflow_path(e["path"])): e for e in surface()["endpoints"]
    }
    out = []
    for route in ROUTES:
        if (
            route in NOT_SUPPORTED_ROUTES
            or route in TRACE_ROUTES
            or route.handler.startswith("api.ui.")
            or route.bare
        ):
            continue
        found = by_key.get((route.method, route.version, route.path))
        out.append(
            Endpoint(
                route,
                found["rpc"] if found else None,
                found["request"] if found else None,
                found["response"] if found else None,
            )
        )
    return tuple(out)


def fields(message: str, *, depth: int = 2, prefix: str = "") -> Iterator[Field]:
    """The fields of `message` and, `depth` levels down, of its nested messages (paths use
    `name[]` for repeated messages). google.protobuf.* wrappers are not entered."""
    for raw in surface()["messages"][message]:
        path = prefix + raw["name"]
        nested = raw.get("message")
        yield Field(path, raw["type"], bool(raw.get("repeated")), nested, raw.get("default"))
        if nested and depth > 0 and not nested.startswith("google.protobuf."):
            inner = path + ("[]" if raw.get("repeated") else "") + "."
            yield from fields(nested, depth=depth - 1, prefix=inner)


def messages_containing(target: str, message: str, *, depth: int = 4) -> list[str]:
    """Paths under `message` at which a `target` message appears (e.g. where a response
    carries a ModelVersion)."""
    return [f.path for f in fields(message, depth=depth) if f.message == target]


def mlflow_endpoints() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = surface()["endpoints"]
    return out


def hand_registered() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = surface()["hand_registered"]
    return out
