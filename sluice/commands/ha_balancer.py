"""The HAProxy configuration `sluice up-ha` runs: one frontend on the MLflow port, the ingest
and api pools behind it, split by the exact paths of schemas/routes.py.

This is the seam between the HA topology and the balancer configuration: `up-ha` and the HA
tests call :func:`render` with the backend addresses and nothing else. The shipped, generated
configuration (deploy/haproxy/) is a separate piece of work; once it lands, :func:`render`
delegates to its generator so both stay one source of truth.

Safety of retries (docs/reliability.md): HAProxy retries a request on another server only
when the connection could not be made (the request never reached a server); an answer that
was lost after a server received a write is the client's to retry (the MLflow client does, and
every ingest write and api write the client retries is idempotent or answers MLflow's error).
Reads (GET) are also retried on an empty answer or a 502/503/504, as the server died under them.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.routes import routes_of

# Health: a server is taken out after 3 failed probes (1 s apart, 0.5 s once one failed) and
# back after 2 good ones. A probe may take 3 s: a busy server answers late, and marking it down
# would only move its load onto the others. Its open connections are not cut when it is marked
# down (a slow server finishes its requests; a dead one has no connections left to cut), and a
# request that finds a server dead (connection refused) goes to another at once (redispatch),
# so the probes decide where new requests go, not whether a request fails.
_SERVER_OPTIONS = "check inter 1s fastinter 500ms fall 3 rise 2"


def ingest_paths() -> list[str]:
    """Every URL ingest serves (both the /api and /ajax-api twins), exact."""
    return sorted(url for route in routes_of("ingest") for url in route.urls())


def render(host: str, port: int, ingest: Sequence[str], api: Sequence[str]) -> str:
    """The configuration for HAProxy >= 2.6 (Debian 12); ``ingest``/``api``: host:port."""
    return "\n".join(
        [
            _globals(),
            _frontend(host, port),
            _backend("ingest", ingest, reads_retried=False),
            _backend("api", api, reads_retried=True),
            "",
        ]
    )


def _globals() -> str:
    return """global
    maxconn 4096
    # A reload (SIGUSR2 to the master) lets old workers finish their requests for this long.
    hard-stop-after 30s

defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    # Artifact uploads and downloads stream for minutes; the api's read fence waits <= 10 s.
    timeout client 300s
    timeout server 300s
    timeout http-request 30s
    timeout queue 10s
    timeout check 3s
    retries 3
    option redispatch 1
"""


def _frontend(host: str, port: int) -> str:
    paths = " ".join(ingest_paths())
    return f"""frontend mlflow
    bind {host}:{port}
    acl ingest_route path {paths}
    use_backend ingest if ingest_route
    default_backend api
"""


def _backend(name: str, servers: Sequence[str], *, reads_retried: bool) -> str:
    lines = [
        f"backend {name}",
        "    balance roundrobin",
        "    option httpchk GET /health/ready",
        "    http-check expect status 200",
    ]
    if reads_retried:
        lines += [
            "    retry-on conn-failure empty-response response-timeout 502 503 504",
            "    http-request disable-l7-retry unless METH_GET || METH_HEAD",
        ]
    else:
        lines.append("    retry-on conn-failure")
    lines += [
        f"    server {name}-{i + 1} {address} {_SERVER_OPTIONS}"
        for i, address in enumerate(servers)
    ]
    return "\n".join(lines) + "\n"
