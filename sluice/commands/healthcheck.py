"""``sluice healthcheck [ROLE]``: the container image's HEALTHCHECK.

One image runs every role, each on its own port, so the probe finds the role on the main
process's command line (``sluice ingest`` as PID 1) unless it is given, and asks that role's
``/health/ready`` on the port the container's own settings name. One-shot roles (migrate,
operator commands) count as healthy: a container health status means nothing for them.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from sluice.config import Settings

PROBE_TIMEOUT_S = 3.0


def ready_url(role: str, settings: Settings) -> str | None:
    """Where ``role`` answers readiness, None for roles that serve nothing."""
    ports = {
        "ingest": settings.ingest.port,
        "api": settings.api.port,
        "writer": settings.writer.metrics_port,
        "front": settings.port,
        "up": settings.port,
    }
    port = ports.get(role)
    return None if port is None else f"http://127.0.0.1:{port}/health/ready"


def role_of(cmdline: bytes) -> str:
    """The sluice subcommand in a NUL-separated command line (``/proc/1/cmdline``)."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    for i, arg in enumerate(args):
        if Path(arg).name == "sluice" or arg == "sluice.cli":
            return next((a for a in args[i + 1 :] if not a.startswith("-")), "")
    return ""


def healthy(role: str, settings: Settings) -> bool:
    url = ready_url(role, settings)
    if url is None:
        return True
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(role: str | None, settings: Settings) -> int:
    """Exit status for Docker: 0 healthy, 1 not."""
    if role is None:
        role = role_of(Path("/proc/1/cmdline").read_bytes())
    return 0 if healthy(role, settings) else 1
