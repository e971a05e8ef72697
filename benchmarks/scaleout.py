"""Scale-out (issue 15): the log-batch load through HAProxy while the Sluice processes grow --
writers 1 -> 2 -> 4 behind one ingest, then ingest 1 -> 2 with 4 writers.

``python -m benchmarks.scaleout [--profile default|smoke]`` (`make bench` runs it after the
comparison; `make bench-scaleout` alone). One PostgreSQL and one Kafka broker as in the main
benchmark (8 partitions), so the figures show what more Sluice processes buy on the same
storage. Each configuration gets a fresh topic and consumer group (no backlog from the one
before), its own Sluice processes and HAProxy (`sluice balancer`, as up-ha
runs it), and a closed-loop log-batch load (1000 points a call, shape 10x100). Figures:
verified points/s (points found in PostgreSQL over send + drain time, as the main benchmark)
and CPU per point (every process's CPU seconds over the phase / verified points), in total and
per group. Results: benchmarks/results/<date>-<host>-scaleout.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import mlflow_json, phases, report
from benchmarks.procstats import Sampler
from benchmarks.profiles import PROFILES, Profile
from benchmarks.services import (
    BenchStack,
    SluiceSettings,
    Target,
    _run_async_sql,
    _terminate,
    free_ports,
)

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ((1, 1), (1, 2), (1, 4), (2, 4))  # (ingest processes, writers)
SHAPE = "10x100"
CONCURRENCY = 32


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} scaleout] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Layout:
    ingest: int
    writers: int

    @property
    def name(self) -> str:
        return f"ingest={self.ingest} writers={self.writers}"


class ScaleStack(BenchStack):
    """The main benchmark's PostgreSQL and Kafka; Sluice processes and HAProxy per layout."""

    def __init__(self) -> None:
        super().__init__(sluice=SluiceSettings(writers=4), with_mlflow=False)
        extra = free_ports(3)
        self.ports.update(ingest2=extra[0], haproxy=extra[1], haproxy_stats=extra[2])
        self.layout_index = 0

    def start_servers(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._script("kafka.sh", "fetch")
        for name in ("pg.sh", "kafka.sh"):
            self._script(name, "start")
            self.scripts_started.append(name)
        _run_async_sql(self.dsn("postgres"), ["CREATE DATABASE sluice_bench"])

    def start_layout(self, layout: Layout) -> Target:
        """Fresh topic and group, then writers, api, ingest(s) and HAProxy."""
        self.layout_index += 1
        self.topic = f"sluice.scale-{self.ports['pg']}-{self.layout_index}.metrics"
        group = f"sluice-scale-{self.ports['pg']}-{self.layout_index}"
        migrate_env = self._service_env(SLUICE_WRITER_GROUP_ID=group)
        subprocess.run(
            [sys.executable, "-m", "sluice.cli", "migrate"],
            env=migrate_env,
            check=True,
            timeout=180,
        )
        for i in range(layout.writers):
            port = str(self.ports[f"writer{i}"])
            self._start_service(
                f"writer{i}",
                {"SLUICE_WRITER_METRICS_PORT": port, "SLUICE_WRITER_GROUP_ID": group},
                "writer",
            )
        self._start_service("api", {})
        ingests = ["ingest", "ingest2"][: layout.ingest]
        for name in ingests:
            overrides = {"SLUICE_INGEST_PORT": str(self.ports[name])}
            overrides["SLUICE_INSTANCES"] = str(layout.ingest)
            self._start_service(name, overrides, "ingest")
        self.start_haproxy(ingests, ["api"])
        url = self.url("haproxy")
        return Target("sluice", url, url, self.dsn("sluice_bench"))

    def stop_layout(self) -> None:
        for name in list(self.processes):
            _terminate(self.processes.pop(name))


async def measure(stack: ScaleStack, layout: Layout, profile: Profile) -> dict[str, Any]:
    target = stack.start_layout(layout)
    sampler = Sampler(stack.pids())
    sampler.start()
    try:
        ctx = phases.Context(profile=profile, sampler=sampler, log=_log)
        runs = await phases.new_runs(ctx, target, profile.batch_runs)
        spec = {
            "kind": "batch",
            "url": target.write_url,
            "runs": runs,
            "shape": SHAPE,
            "concurrency": CONCURRENCY,
            "duration_s": profile.batch_duration_s,
            "request_timeout_s": profile.request_timeout_s,
        }
        body = phases.verified(ctx, target, spec, mlflow_json.seq_divisor(SHAPE), 1000)
        result = await phases.measured(ctx, f"scale-out {layout.name}", body)
    finally:
        sampler.stop()
        stack.stop_layout()
    return summarise(layout, result)


def summarise(layout: Layout, result: dict[str, Any]) -> dict[str, Any]:
    """Points/s and CPU microseconds per verified point (all processes, and per group)."""
    found = result["found_points"] or 1
    cores: dict[str, float] = result.get("cpu_cores", {})
    wall = result["wall_s"]
    per_point = {g: round(c * wall / found * 1e6, 2) for g, c in cores.items()}
    return {
        "ingest": layout.ingest,
        "writers": layout.writers,
        "verified": result["verified"],
        "verified_points_per_s": result["verified_points_per_s"],
        "cpu_us_per_point": round(sum(per_point.values()), 2),
        "cpu_us_per_point_by_group": per_point,
        "cpu_cores": cores,
        "latency": result.get("latency", {}),
        "raw": result,
    }


def markdown(doc: dict[str, Any]) -> str:
    rows = [
        "| ingest | writers | verified points/s | cores used (all measured processes)"
        " | CPU per point, all processes | ingest | writers | postgres | kafka | haproxy"
        " | p50 / p99 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["layouts"]:
        g = r["cpu_us_per_point_by_group"]
        writers = sum(v for k, v in g.items() if k.startswith("writer"))
        ingest = sum(v for k, v in g.items() if k.startswith("ingest"))
        lat = r["latency"]
        rows.append(
            f"| {r['ingest']} | {r['writers']} | {r['verified_points_per_s']:,.0f}"
            f"{'' if r['verified'] else ' (NOT verified)'}"
            f" | {sum(r['cpu_cores'].values()):.2f} | {r['cpu_us_per_point']} us"
            f" | {ingest:.2f} | {writers:.2f} | {g.get('postgres', 0):.2f}"
            f" | {g.get('kafka', 0):.2f} | {g.get('haproxy', 0):.2f}"
            f" | {lat.get('p50_ms', '-')} / {lat.get('p99_ms', '-')} |"
        )
    env = doc.get("environment", {})
    return (
        f"# Scale-out, {doc['started_at']} ({doc['profile']['name']} profile)\n\n"
        f"log-batch {SHAPE}, 1000 points a call, closed loop c={CONCURRENCY}, through HAProxy;"
        " one PostgreSQL, one Kafka broker, 8 partitions. CPU per point in microseconds"
        " (process CPU time / verified points).\n\n"
        + "\n".join(rows)
        + f"\n\nLoad average before/after: {doc['load_before']} / {doc['load_after']};"
        f" CPU share a busy process got before/after: {doc.get('cpu_share_before', '-')}"
        f" / {doc.get('cpu_share_after', '-')} (1.0 = a core to itself);"
        f" environment: {json.dumps(env)}\n"
    )


def rewrite_markdown(json_path: Path) -> None:
    """Regenerate the .md beside a results .json (after a change to the table)."""
    json_path.with_suffix(".md").write_text(markdown(json.loads(json_path.read_text())))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep-state", action="store_true")
    args = parser.parse_args()
    profile = PROFILES[args.profile]
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_before": report.load_average(),
        "profile": profile.as_dict(),
        "layouts": [],
        "cpu_share_before": report.cpu_share(),
    }
    stack = ScaleStack()
    ok = False
    try:
        stack.start_servers()
        doc["environment"] = report.environment(Path(__file__).resolve().parent.parent, None)
        for ingest, writers in CONFIGS:
            layout = Layout(ingest, writers)
            _log(f"layout {layout.name}")
            doc["layouts"].append(asyncio.run(measure(stack, layout, profile)))
        ok = True
    finally:
        stack.stop()
        if ok and not args.keep_state:
            stack.remove_state()
    doc["load_after"] = report.load_average()
    doc["cpu_share_after"] = report.cpu_share()
    doc["runtime_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if profile.name == "default" else f"-{profile.name}"
    base = args.out / f"{doc['started_at'][:10]}-{platform.node()}-scaleout{suffix}"
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    base.with_suffix(".md").write_text(markdown(doc))
    _log(f"wrote {base}.json and {base}.md ({doc['runtime_s']} s)")


if __name__ == "__main__":
    main()
