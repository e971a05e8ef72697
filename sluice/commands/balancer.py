"""``sluice balancer``: the HAProxy configuration of a production deployment, generated from the
route table (schemas/routes.py), so the balancer and ``sluice front`` can never disagree.

The committed file ``deploy/haproxy/haproxy.cfg`` is ``render()`` with the default servers
(a test fails when it is stale; regenerate with ``sluice balancer > deploy/haproxy/haproxy.cfg``).
``sluice balancer ingest=HOST:PORT,... api=HOST:PORT,...`` writes a variant with fixed server
lists (e.g. several processes on one machine). ``sluice balancer ingress-paths`` writes the same
split for the Helm chart's Ingress (``deploy/helm/sluice/files/ingest-paths.txt``).

What the configuration does, and why:

- **Exact paths, and methods where a path is shared.** The ingest routes are matched as whole
  paths (query string aside); every other path, known or not, goes to the api, as
  ``schemas.routes.service_for`` decides. A prefix rule would send ``/runs/log-inputs`` to
  ingest, which does not serve it. Where the api serves an ingest path too (``POST
  /api/2.0/mlflow/traces`` starts a trace in ingest, ``GET`` searches traces in the api), the
  method decides; on a path only ingest serves any method goes to ingest, which answers a
  wrong one with MLflow's 405.
- **Health.** A server takes traffic only while ``GET /health/ready`` answers 200 (ready means
  its PostgreSQL and Kafka are usable): 3 failed probes take it out (2 s apart, 1 s once one
  failed), 2 good ones bring it back. A probe may take 3 s: a busy server answers late, and
  taking it out would only move its load onto the others (the HA load tests saw 502s with
  tighter probes). Marking a server down does not cut its open requests.
- **Retries only where safe.** A request whose connection to a server failed never reached it,
  so it is retried on another server whatever its method. Reads (GET, HEAD) are also retried
  when a server dropped the connection, timed out without answering, or answered 502/503/504
  (it is dying or its dependencies are). Writes that reached a server are never retried by
  the balancer: it cannot tell whether they were applied (the MLflow client retries the 5xx
  it gets where its own rules allow).
- **Draining on reload.** HAProxy runs as master-worker: a reload (SIGUSR2 to the master)
  starts new workers and lets the old ones finish their in-flight requests, for at most
  ``hard-stop-after``. A Sluice process that is stopping closes its listener first and finishes
  the requests it has; a request that meets the closed port never reached it, so it is retried
  on another server, and the failing health check soon takes the server out.

Server addresses come from the environment so that one file serves compose and other hosts
(``presetenv`` sets the defaults): ``BALANCER_INGEST`` and ``BALANCER_API`` are ``host:port``;
a host name is re-resolved through the system's DNS servers and every address it returns
becomes a server (up to ``SLOTS`` each), which is how ``docker compose --scale`` replicas join.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from schemas.route_record import Route, Service, url_regex
from schemas.routes import ROUTES, shares_url_with_api

SLOTS = 8  # servers per service a DNS name can fill (compose replicas)
DEFAULTS = {
    "BALANCER_BIND": ":5000",  # where MLflow clients connect
    "BALANCER_STATS_BIND": ":8404",  # Prometheus metrics (/metrics) and the balancer's /health
    "BALANCER_INGEST": "ingest:5001",
    "BALANCER_API": "api:5002",
}


def _ingest_routes() -> list[Route]:
    return [r for r in ROUTES if r.service == "ingest"]


def ingest_paths() -> list[str]:
    """Every literal URL (with /api and /ajax-api prefixes) that ingest serves."""
    return sorted({url for r in _ingest_routes() for url in r.urls() if "{" not in url})


def ingest_patterns() -> list[str]:
    """Anchored regexes for ingest routes with placeholders (``PATCH
    /api/2.0/mlflow/traces/{request_id}``): the same exactness as literal paths."""
    return sorted({url_regex(url) for r in _ingest_routes() for url in r.urls() if "{" in url})


def shared_api_paths() -> tuple[list[str], list[str]]:
    """The api's literal URLs and patterns that an ingest URL also matches (``GET
    /api/2.0/mlflow/traces`` beside ingest's ``POST``): on these paths the method decides."""
    ingest = [re.compile(p) for p in ingest_patterns()]
    literal_ingest = set(ingest_paths())
    literal, patterns = set(), set()
    for r in ROUTES:
        if r.service != "api":
            continue
        for url in r.urls():
            if "{" not in url and (url in literal_ingest or any(p.match(url) for p in ingest)):
                literal.add(url)
            elif "{" in url and any(re.match(url_regex(url), u) for u in literal_ingest):
                patterns.add(url_regex(url))
    return sorted(literal), sorted(patterns)


def _by_method() -> dict[str, tuple[list[str], list[str]]]:
    """Per method, the URLs (literal, patterns) of the ingest routes that share their path
    with the api."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for r in _ingest_routes():
        if not shares_url_with_api(r):
            continue
        literal, patterns = out.setdefault(r.method, ([], []))
        for url in r.urls():
            if "{" in url:
                patterns.append(url_regex(url))
            else:
                literal.append(url)
    return {m: (sorted(lit), sorted(pat)) for m, (lit, pat) in sorted(out.items())}


def render(servers: dict[Service, Sequence[str]] | None = None, bind: str | None = None) -> str:
    """The whole configuration. ``servers``: fixed addresses per service instead of the
    environment-driven DNS templates; ``bind``: a fixed ``host:port`` for the MLflow frontend
    instead of ``BALANCER_BIND`` (e.g. a topology started by a supervisor)."""
    sections = [
        _HEADER,
        _global(),
        _DEFAULTS_SECTION,
        _resolvers() if servers is None else "",
        _frontend(bind),
        _STATS,
        _backend("ingest", servers),
        _backend("api", servers),
    ]
    return "\n".join(s for s in sections if s)


_HEADER = """\
# Generated by `sluice balancer` from schemas/routes.py: do not edit by hand.
# Regenerate with `sluice balancer > deploy/haproxy/haproxy.cfg` (a test fails when stale).
# Why each part is there: sluice/commands/balancer.py. HAProxy >= 2.6.
"""


def _global() -> str:
    defaults = "\n".join(f"    presetenv {name} {value}" for name, value in DEFAULTS.items())
    return f"""\
global
    master-worker
    # A reload lets old workers finish their requests, for at most this long.
    hard-stop-after 60s
    # Needs about twice as many file descriptors; raise both together for bigger loads.
    maxconn 4096
    log stdout format raw local0 info
{defaults}
"""


_DEFAULTS_SECTION = """\
defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 3s
    timeout http-request 30s
    timeout http-keep-alive 30s
    timeout queue 10s
    timeout check 3s
    # Bodies and answers stream; these bound silence, not transfer time (artifacts are large).
    timeout client 300s
    timeout server 300s
    # Up to 3 retries, each on another server (redispatch). What is retried: see retry-on
    # and the frontend's disable-l7-retry.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504
    default-server inter 2s fastinter 1s fall 3 rise 2 slowstart 5s
"""


def _resolvers() -> str:
    return """\
resolvers system
    parse-resolv-conf
    hold valid 10s
    hold nx 10s
"""


def _frontend(bind: str | None) -> str:
    lines = [
        "frontend mlflow",
        f"    bind {bind}" if bind else '    bind "${BALANCER_BIND}"',
        "    # Only reads may be retried after reaching a server; a write is retried only when",
        "    # its connection failed (conn-failure is not an L7 retry, so it stays on).",
        "    http-request disable-l7-retry unless METH_GET",
        "    # Paths ingest serves; those the api serves too are told apart by the method.",
    ]
    lines += _acls("ingest_path", ingest_paths(), ingest_patterns())
    api_literal, api_patterns = shared_api_paths()
    lines += _acls("api_path", api_literal, api_patterns)
    by_method = _by_method()
    for method, (literal, patterns) in by_method.items():
        lines += _acls(f"ingest_{method.lower()}", literal, patterns)
    shared = api_literal or api_patterns
    lines.append("    use_backend ingest if ingest_path" + (" !api_path" if shared else ""))
    lines += [
        f"    use_backend ingest if {{ method {method} }} ingest_{method.lower()}"
        for method in by_method
    ]
    lines += ["    default_backend api", ""]
    return "\n".join(lines)


def _acls(name: str, literal: list[str], patterns: list[str]) -> list[str]:
    # Single quotes: HAProxy takes the regex's backslashes as they are.
    return [f"    acl {name} path {path}" for path in literal] + [
        f"    acl {name} path_reg '{pattern}'" for pattern in patterns
    ]


_STATS = """\
frontend stats
    bind "${BALANCER_STATS_BIND}"
    http-request use-service prometheus-exporter if { path /metrics }
    http-request return status 200 content-type text/plain string ok if { path /health }
    http-request deny deny_status 404
"""


def _backend(service: Service, servers: dict[Service, Sequence[str]] | None) -> str:
    lines = [
        f"backend {service}",
        "    balance leastconn",
        "    option httpchk",
        "    http-check send meth GET uri /health/ready",
        "    http-check expect status 200",
    ]
    if servers is None:
        env = f"BALANCER_{service.upper()}"
        lines.append(
            f'    server-template {service} 1-{SLOTS} "${{{env}}}" check'
            " resolvers system init-addr last,libc,none"
        )
    else:
        lines += [
            f"    server {service}{i} {address} check"
            for i, address in enumerate(servers[service], start=1)
        ]
    return "\n".join([*lines, ""])


def ingress_paths() -> str:
    """The Helm chart's list of exact ingest paths. An Ingress matches neither methods nor
    regexes: routes whose path the api serves too are left out (they reach the api, which
    answers them 405 or 404; the HAProxy balancer routes them), any other templated ingest
    route is refused rather than dropped."""
    exclusive = [r for r in _ingest_routes() if not shares_url_with_api(r)]
    templated = sorted({u for r in exclusive for u in r.urls() if "{" in u})
    if templated:
        raise ValueError(f"ingest routes with placeholders cannot be Ingress paths: {templated}")
    left_out = sorted(
        f"{r.method} {u}" for r in _ingest_routes() if shares_url_with_api(r) for u in r.urls()
    )
    header = [
        "# Generated by `sluice balancer ingress-paths` from schemas/routes.py: do not edit.",
        "# Exact paths the chart's Ingress sends to ingest; every other path goes to the api.",
        "# Not expressible as Ingress paths (the api serves these paths for other methods):",
        *(f"#   {route}" for route in left_out),
    ]
    paths = sorted({u for r in exclusive for u in r.urls()})
    return "\n".join([*header, *paths]) + "\n"


def main(args: Sequence[str]) -> str:
    """``sluice balancer [ingest=HOST:PORT,... api=HOST:PORT,... | ingress-paths]``."""
    if not args:
        return render()
    if list(args) == ["ingress-paths"]:
        return ingress_paths()
    options = dict(arg.partition("=")[::2] for arg in args)
    if len(options) != len(args) or set(options) != {"ingest", "api"}:
        raise ValueError(
            "usage: sluice balancer [ingest=HOST:PORT,... api=HOST:PORT,... | ingress-paths]"
        )
    return render({"ingest": options["ingest"].split(","), "api": options["api"].split(",")})
