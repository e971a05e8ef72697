"""``python -m benchmarks [--profile default|long|smoke] [--no-mlflow]``: bring up the servers,
run every workload against Sluice and MLflow, write results/<date>-<host>.json and .md, stop
everything (also on failure, Ctrl-C or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import platform
import signal
import time
from pathlib import Path
from typing import Any

from benchmarks import phases, pyspy, report
from benchmarks.procstats import Sampler
from benchmarks.profiles import PROFILES, Profile
from benchmarks.services import REPO, BenchStack, SluiceSettings, Target

RESULTS = Path(__file__).resolve().parent / "results"
_DEFAULTS = SluiceSettings()


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} bench] {message}", flush=True)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` clauses stop every server the run
    started (the default action would kill this process and leave them running)."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--no-mlflow", action="store_true", help="Sluice only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep-state", action="store_true", help="keep .state/bench-*")
    parser.add_argument("--writers", type=int, default=_DEFAULTS.writers)
    parser.add_argument("--partitions", type=int, default=_DEFAULTS.partitions)
    parser.add_argument("--batch-rows", type=int, default=_DEFAULTS.batch_max_rows)
    parser.add_argument(
        "--serving",
        type=int,
        default=_DEFAULTS.serving_processes,
        help="ingest and api processes each; above 1 behind HAProxy, as up-ha runs them",
    )
    parser.add_argument(
        "--workloads", default="", help="comma-separated subset to run, e.g. 'ui' (default: all)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one profile field, e.g. --set search_traces=100000 (repeatable; the "
        "results file then gets a '-custom' suffix)",
    )
    args = parser.parse_args()
    try:
        profile = with_overrides(PROFILES[args.profile], args.set)
    except ValueError as exc:
        parser.error(str(exc))
    tuning = SluiceSettings(
        writers=args.writers,
        partitions=args.partitions,
        batch_max_rows=args.batch_rows,
        serving_processes=args.serving,
    )
    stack = BenchStack(sluice=tuning, with_mlflow=not args.no_mlflow)
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_before": report.load_average(),
        "cpu_share_before": report.cpu_share(),
        "profile": profile.as_dict(),
    }
    _log(f"profile {profile.name}; state {stack.state_dir}; load {doc['load_before']}")
    ok = False
    try:
        stack.start()
        _log(f"servers up: {stack.pids()}")
        doc["environment"] = report.environment(
            REPO, stack.mlflow_venv / "bin" / "python" if stack.with_mlflow else None
        )
        doc["settings"] = settings(stack)
        sampler = Sampler(stack.pids())
        sampler.start()
        try:
            only = frozenset(w for w in args.workloads.split(",") if w)
            doc["workloads"] = asyncio.run(run(stack, profile, sampler, args.out, only))
        finally:
            sampler.stop()
        doc["processes"] = sampler.summary()
        ok = True
    finally:
        stack.stop()
        if ok and not args.keep_state:
            stack.remove_state()
    doc["load_after"] = report.load_average()
    doc["cpu_share_after"] = report.cpu_share()
    doc["runtime_s"] = round(time.perf_counter() - started, 1)
    write(doc, args.out, profile.name)


def with_overrides(profile: Profile, assignments: list[str]) -> Profile:
    """``profile`` with ``FIELD=VALUE`` assignments applied (values parsed as the field's
    type: a number, or comma-separated numbers for a tuple); renamed ``<name>-custom``."""
    if not assignments:
        return profile
    changes: dict[str, Any] = {}
    current = profile.as_dict()
    for assignment in assignments:
        field, sep, raw = assignment.partition("=")
        if not sep or field not in current or field == "name":
            raise ValueError(f"--set {assignment}: expected FIELD=VALUE with a profile field")
        kind = type(current[field])
        try:
            if kind is tuple:
                changes[field] = tuple(int(v) for v in raw.split(","))
            else:
                changes[field] = kind(raw)
        except ValueError:
            raise ValueError(f"--set {assignment}: not a {kind.__name__}") from None
    return dataclasses.replace(profile, name=f"{profile.name}-custom", **changes)


def settings(stack: BenchStack) -> dict[str, Any]:
    n = stack.sluice.serving_processes
    services = (
        f"{n} ingest and {n} api processes behind HAProxy (`sluice balancer`'s configuration, "
        "as up-ha), writer(s); the load generator talks to HAProxy"
        if stack.fronted
        else "ingest, api and writer(s) as separate processes; the load generator "
        "talks to ingest and api directly (no front proxy)"
    )
    sluice = {
        "services": services,
        "serving_processes": n,
        "writers": stack.sluice.writers,
        **stack.sluice.env(),
    }
    mlflow = {
        "version": "3.17.2",
        "backend": "postgresql+psycopg2 on the same PostgreSQL instance (own database)",
        "workers": stack.mlflow_workers,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    return {
        "sluice": sluice,
        "mlflow": mlflow if stack.with_mlflow else None,
        "postgresql": "scripts/pg.sh defaults (shared_buffers 256MB, fsync on, "
        "synchronous_commit on, wal_level minimal)",
        "kafka": "scripts/kafka.sh, 1 broker, heap -Xmx512m",
    }


async def run(
    stack: BenchStack,
    profile: Profile,
    sampler: Sampler,
    out: Path,
    only: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")

    async def profiler(target: Target, seconds: float) -> dict[str, Any]:
        folder = out / "profiles" / f"{stamp}-{platform.node()}"
        return await pyspy.profile_sluice(ctx, target, seconds, stack.pids(), folder)

    ctx = phases.Context(profile=profile, sampler=sampler, log=_log, profiler=profiler)
    return await phases.run_all(stack.targets(), ctx, only)


def write(doc: dict[str, Any], out: Path, profile: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    date = doc["started_at"][:10]
    suffix = "" if profile == "default" else f"-{profile}"
    base = out / f"{date}-{platform.node()}{suffix}"
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    base.with_suffix(".md").write_text(report.markdown(doc))
    _log(f"wrote {base}.json and {base}.md ({doc['runtime_s']} s)")


if __name__ == "__main__":
    main()
