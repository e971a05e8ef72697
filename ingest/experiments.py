"""Does this experiment exist (and is it active)? Asked before a trace record is produced.

Trace writes name an experiment, not a run. Positive answers are kept ``ttl_s`` seconds (bounded
LRU), so a stream of span exports costs one lookup per experiment and TTL, and while PostgreSQL
is unreachable a recently seen experiment keeps accepting spans (Kafka buffers them). The price:
an experiment deleted less than ``ttl_s`` ago may still get spans, which its traces then hold.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from schemas.mlflow_errors import invalid_parameter, no_such_experiment
from sluice.pg import TRANSIENT_ERRORS

_LOOKUP = (
    "SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = $1::bigint"
)


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: int
    active: bool
    artifact_location: str


class Experiments:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[int, tuple[float, Experiment]] = OrderedDict()

    async def require(self, experiment_id: int, *, active: bool) -> Experiment:
        """The experiment, or MLflow's 404 (missing) / 400 (not active, when ``active``)."""
        found = await self._lookup(experiment_id)
        if found is None:
            raise no_such_experiment(str(experiment_id))
        if active and not found.active:
            raise invalid_parameter(
                f"The experiment {experiment_id} must be in the 'active' state. "
                "Current state is deleted."
            )
        return found

    async def _lookup(self, experiment_id: int) -> Experiment | None:
        now = self._clock()
        cached = self._seen.get(experiment_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            row = await self._pool.fetchrow(_LOOKUP, experiment_id)
        except TRANSIENT_ERRORS:
            if cached is not None:  # PostgreSQL is away: trust the last answer
                return cached[1]
            raise
        if row is None:
            self._seen.pop(experiment_id, None)
            return None
        active = row["lifecycle_stage"] == "active"
        found = Experiment(experiment_id, active, row["artifact_location"])
        self._seen[experiment_id] = (now, found)
        self._seen.move_to_end(experiment_id)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return found
