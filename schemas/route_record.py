"""One REST route as the route table lists it (``schemas/routes.py``).

A route names its handler as ``"<module>:<function>"`` (``"api.runs.handlers:create_run"``):
the service is the module's top package, and each app binds exactly that function of exactly
that module (``sluice.http.bind_handler``), so two handlers of one name in two modules are two
different routes, never one shadowing the other. Access rules are keyed by the same reference
(``schemas/access.py``).

Every route is served under both ``/api/<v>`` and ``/ajax-api/<v>`` (MLflow registers both),
except the few MLflow registers by hand under ``/ajax-api`` only (``ajax_only``) and the web UI's
own paths, served as written (``bare``: ``/``, ``/static-files/...``, ``/graphql``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Service = Literal["ingest", "api"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # below the version prefix, e.g. "/mlflow/runs/log-batch"
    handler: str  # "<module>:<function>", e.g. "api.runs.handlers:create_run"
    version: str = "2.0"
    ajax_only: bool = False  # e.g. metrics/get-history-bulk, which the legacy UI calls
    bare: bool = False  # the path is the whole URL, no version prefix: the web UI's pages, OTLP

    @property
    def service(self) -> Service:
        return (
            "ingest" if self.handler.startswith("ingest.") else "api"
        )  # tests/unit/test_routes.py

    def urls(self) -> tuple[str, ...]:
        if self.bare:
            return (self.path,)
        ajax = f"/ajax-api/{self.version}{self.path}"
        return (ajax,) if self.ajax_only else (f"/api/{self.version}{self.path}", ajax)


_PLACEHOLDER = re.compile(r"\{[^{}:]+(?::((?:[^{}]|\{[^{}]*\})+))?\}")


def url_regex(url: str) -> str:
    """An anchored regex for a route URL: ``{name}`` is one path segment, ``{name:re}`` is
    ``re`` (aiohttp's syntax); the rest matches literally."""
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(url):
        parts.append(re.escape(url[last : match.start()]))
        parts.append(f"(?:{match.group(1) or '[^/]+'})")
        last = match.end()
    parts.append(re.escape(url[last:]))
    return "^" + "".join(parts) + "$"


def handler_ref(handler: object) -> str:
    """The ``"<module>:<function>"`` reference of a bound handler function (how the auth
    middleware finds a request's access rule)."""
    module = getattr(handler, "__module__", "")
    name = getattr(handler, "__qualname__", "")
    return f"{module}:{name}"
