"""One POST to a webhook, and what it means for a retry (used by the deliverer and by the
test route).

Every POST has a deadline (``request_timeout_s``), never follows a redirect (a 3xx could point
past the address checks) and reads at most ``MAX_BODY`` bytes of the answer. Unless private
targets are allowed, the client resolves through ``CheckedResolver``: the addresses checked are
the addresses connected to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiohttp

from api.webhooks.rules import parse_url
from api.webhooks.targets import CheckedResolver, TargetRefused, check_literal
from schemas.mlflow_errors import MlflowError
from sluice.config import WebhooksConfig

MAX_BODY: Final = 64 * 1024  # of a receiver's answer kept for the test route
# Answers MLflow's delivery session retries (urllib3 Retry status_forcelist).
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one POST: an HTTP answer, or the error that prevented one."""

    status: int | None = None
    body: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    retryable_error: bool = False  # a connection error or timeout (not a refusal)

    @property
    def delivered(self) -> bool:
        return self.status is not None and self.status < 400

    @property
    def retryable(self) -> bool:
        if self.status is not None:
            return self.status in RETRY_STATUSES
        return self.retryable_error


def retry_after(value: str | None) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is not used by receivers we know of)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def backoff_s(
    attempt: int, base_s: float, cap_s: float, jitter: float, hint: float | None
) -> float:
    """Wait before attempt ``attempt + 1`` (``attempt`` >= 1): exponential from ``base_s``,
    capped, plus ``jitter`` (0..1, drawn by the caller) of a second, as MLflow's urllib3 Retry
    (backoff_factor 1, backoff_max 60, backoff_jitter 1); a receiver's Retry-After wins, capped."""
    wait = hint if hint is not None else base_s * 2 ** (attempt - 1) + jitter
    return min(wait, cap_s)


class Sender:
    """An HTTP client session for webhook POSTs, owned by the api app (closed at shutdown)."""

    def __init__(self, cfg: WebhooksConfig) -> None:
        self._cfg = cfg
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        resolver = None if self._cfg.allow_private else CheckedResolver(self._cfg.resolve_timeout_s)
        connector = aiohttp.TCPConnector(resolver=resolver, limit=64, use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._cfg.request_timeout_s),
            trust_env=False,  # a proxy would make the checked peer the proxy, not the target
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, body: str, headers: dict[str, str]) -> Attempt:
        assert self._session is not None, "Sender.start() first"
        try:
            target = parse_url(url, self._cfg.schemes)
            if not self._cfg.allow_private:
                check_literal(target)
            async with self._session.post(
                url.strip(), data=body.encode(), headers=headers, allow_redirects=False
            ) as response:
                raw = await response.content.read(MAX_BODY)
                return Attempt(
                    status=response.status,
                    body=raw.decode("utf-8", "replace"),
                    retry_after_s=retry_after(response.headers.get("Retry-After")),
                )
        except (TargetRefused, MlflowError, aiohttp.InvalidURL, ValueError) as exc:
            return Attempt(error=f"refused: {exc}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Attempt(error=repr(exc), retryable_error=True)
