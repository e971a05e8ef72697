"""Where a webhook may send (the I/O half of the URL rules): DNS with a deadline, and the
refusal of private, loopback and link-local addresses (SSRF).

Checked twice, as MLflow does: when a webhook is created or its URL changed (MLflow's messages),
and at every delivery, where the checked addresses are the ones connected to: the deliverer's
HTTP client resolves through :class:`CheckedResolver`, so a name that resolved to a public
address at the check cannot point elsewhere at connect time (DNS rebinding). IP literals never
reach a resolver; :func:`check_literal` covers them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from api.webhooks.rules import Target, is_public, non_public_error, unresolvable_error
from schemas.mlflow_errors import invalid_parameter


class TargetRefused(Exception):
    """A delivery's target resolved to an address Sluice does not send to. Not retried: the
    delivery fails closed, with the reason in its log line."""


async def resolve(hostname: str, port: int, timeout_s: float) -> list[tuple[Any, ...]]:
    """getaddrinfo off the event loop, bounded by ``timeout_s`` (MLflow: 5 s)."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(
            loop.getaddrinfo(hostname, port, type=socket.SOCK_STREAM), timeout_s
        )
    except TimeoutError:
        raise invalid_parameter(
            f"Timed out resolving Webhook URL hostname {hostname!r} after {timeout_s:g} seconds"
        ) from None
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise unresolvable_error(hostname, exc) from exc


async def check_public(target: Target, timeout_s: float) -> None:
    """MLflow's create/update check: every address the host resolves to must be public."""
    for info in await resolve(target.hostname, target.port, timeout_s):
        address = str(info[4][0])
        if not is_public(address):
            raise non_public_error(target.hostname, address)


def check_literal(target: Target) -> None:
    """At delivery: a host written as an IP address must be public (no resolver sees it)."""
    try:
        ipaddress.ip_address(target.hostname.split("%", 1)[0])
    except ValueError:
        return  # a name: the resolver checks it
    if not is_public(target.hostname):
        raise TargetRefused(f"{target.hostname} is not a public IP address")


class CheckedResolver(AbstractResolver):
    """aiohttp resolver that answers only public addresses and refuses the whole name when
    any address is not public (a name mixing both is a rebinding attempt or a mistake)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            infos = await resolve(host, port, self._timeout_s)
        except Exception as exc:  # MlflowError with the lookup's reason
            raise TargetRefused(str(exc)) from exc
        results: list[ResolveResult] = []
        for fam, _type, proto, _name, sockaddr in infos:
            address = str(sockaddr[0])
            if not is_public(address):
                raise TargetRefused(f"{host} resolves to {address}, not a public IP address")
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None
