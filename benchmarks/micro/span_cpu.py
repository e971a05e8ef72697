"""CPU per ingested span, per process, for one or more code variants of Sluice (e.g. main and a
branch), interleaved on one PostgreSQL and one Kafka:

    python -m benchmarks.micro.span_cpu --variant base=/tmp/base --variant new=. \\
        [--env new:SLUICE_KAFKA_LINGER_MS=5] --requests 1500 --rounds 2 [--pyspy 8]

Each round starts, per variant, its ingest and two writers (code from that directory, its own
database and topics), runs ``--requests`` OTLP exports of 100 spans (20 traces x 5 spans,
``benchmarks/otlp_bodies.py``, 8 connections, closed loop), waits until every acknowledged span
is stored, and reports the CPU seconds each process group used from the first request to the
last span stored, divided by the spans: µs of CPU a span, load-robust (it does not depend on the
share of the cores the processes won). The idle cores of each group (5 s with nothing sent, the
writers' empty polls) are reported beside it. ``--pyspy S`` records S seconds of ingest and
writer0 (py-spy, raw collapsed stacks under ``--out``) in the variant's last round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.phases import experiment_named, loadgen
from benchmarks.procstats import Sampler
from benchmarks.pyspy import pyspy_binary
from benchmarks.services import BenchStack, SluiceSettings, Target, _run_async_sql, _terminate

SPANS_PER_REQUEST = 100
IDLE_S = 5.0


@dataclass(frozen=True)
class Variant:
    name: str
    code: Path
    extra_env: tuple[tuple[str, str], ...] = ()

    def env(self, stack: BenchStack, **extra: str) -> dict[str, str]:
        env = stack._service_env(**extra)
        env.update(
            PYTHONPATH=str(self.code),
            SLUICE_PG_DSN=stack.dsn(f"spancpu_{self.name}"),
            SLUICE_KAFKA_TOPIC=f"spancpu-{self.name}.metrics",
            SLUICE_KAFKA_TRACES_TOPIC=f"spancpu-{self.name}.traces",
            SLUICE_KAFKA_WEBHOOKS_TOPIC=f"spancpu-{self.name}.webhooks",
            SLUICE_WRITER_GROUP_ID=f"spancpu-{self.name}",
        )
        env.update(self.extra_env)
        env.update(extra)
        return env


def _start(stack: BenchStack, variant: Variant, name: str, command: str, **extra: str) -> None:
    log = open(stack.state_dir / f"{variant.name}-{name}.log", "ab")  # noqa: SIM115
    stack.processes[name] = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", command],
        env=variant.env(stack, **extra),
        cwd=variant.code,
        stdout=log,
        stderr=log,
    )
    stack._wait_ready(name, f"{stack.url(name)}/health/ready")


def _stop(stack: BenchStack, *names: str) -> None:
    for name in names:
        process = stack.processes.pop(name, None)
        if process is not None:
            _terminate(process)


def prepare(stack: BenchStack, variant: Variant) -> str:
    """Database, migrations, topics and an experiment for ``variant``; its id."""
    _run_async_sql(stack.dsn("postgres"), [f"CREATE DATABASE spancpu_{variant.name}"])
    subprocess.run(
        [sys.executable, "-m", "sluice.cli", "migrate"],
        env=variant.env(stack),
        cwd=variant.code,
        check=True,
        timeout=180,
    )
    _start(stack, variant, "api", "api")
    try:
        target = Target("sluice", stack.url("ingest"), stack.url("api"), "")
        return asyncio.run(experiment_named(target, f"spancpu-{variant.name}"))
    finally:
        _stop(stack, "api")


async def _drained(dsn: str, topic: str, prefix: str, settle_s: float = 1.0) -> int:
    """Spans of the round (trace ids ``tr-<prefix>...``) once the writers' stored offsets of
    ``topic`` stopped moving for ``settle_s`` (a flush comes every 0.2 s while records wait):
    polling the offsets is cheap, a count of the spans is made once."""
    conn = await asyncpg.connect(dsn)
    try:
        sql = "SELECT coalesce(sum(next_offset), 0) FROM writer_offsets WHERE topic = $1"
        last, since = await conn.fetchval(sql, topic), time.monotonic()
        while time.monotonic() - since < settle_s:
            await asyncio.sleep(0.05)
            now = await conn.fetchval(sql, topic)
            if now != last:
                last, since = now, time.monotonic()
        count = "SELECT count(*) FROM trace_spans WHERE trace_id LIKE $1"
        return int(await conn.fetchval(count, f"tr-{prefix}%"))
    finally:
        await conn.close()


def thread_cpu(pid: int) -> dict[str, list[float]]:
    """CPU seconds [user, system] of each thread of ``pid`` by name (digits dropped, so a pool
    of threads adds up): where a JVM's time goes (GC, JIT, network, request handlers)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, list[float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")].rstrip("0123456789-#_ ")
        fields = raw[raw.rindex(")") + 2 :].split()
        seconds = found.setdefault(name, [0.0, 0.0])
        seconds[0] += int(fields[11]) / tick
        seconds[1] += int(fields[12]) / tick
    return found


def _thread_delta(
    before: dict[str, list[float]], after: dict[str, list[float]], spans: int
) -> dict[str, list[float]]:
    """µs a span [user, system] per thread name, the busiest first."""
    out = {}
    for name, (user, system) in after.items():
        u0, s0 = before.get(name, [0.0, 0.0])
        out[name] = [round((user - u0) / spans * 1e6, 1), round((system - s0) / spans * 1e6, 1)]
    return dict(sorted(out.items(), key=lambda kv: -sum(kv[1]))[:12])


def _pyspy(stack: BenchStack, name: str, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            pyspy_binary(),
            "record",
            "--nonblocking",
            "-r",
            "97",
            "-d",
            str(int(seconds)),
            "-f",
            "raw",
            "-p",
            str(stack.processes[name].pid),
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def one_round(
    stack: BenchStack,
    variant: Variant,
    experiment: str,
    requests: int,
    pyspy_s: float,
    out: Path,
    jfr: bool = False,
) -> dict[str, Any]:
    names = ["writer0", "writer1", "ingest"]
    for i in range(2):
        port = str(stack.ports[f"writer{i}"])
        _start(stack, variant, f"writer{i}", "writer", SLUICE_WRITER_METRICS_PORT=port)
    _start(stack, variant, "ingest", "ingest")
    try:
        roots = {n: stack.processes[n].pid for n in names}
        roots.update({k: v for k, v in stack.pids().items() if k in ("kafka", "postgres")})
        sampler = Sampler(roots)
        sampler.start()
        try:
            time.sleep(2.0)  # partitions assigned, connections warm
            before = sampler.cpu_seconds()
            time.sleep(IDLE_S)
            idle = sampler.cpu_seconds()
            env = variant.env(stack)
            prefix = os.urandom(8).hex()
            spec = {
                "kind": "spans",
                "url": stack.url("ingest"),
                "experiment_id": experiment,
                "prefix": prefix,
                "traces_per_request": 20,
                "spans_per_trace": 5,
                "concurrency": 8,
                "total_requests": requests,
                "request_timeout_s": 60.0,
            }
            profilers = []
            if pyspy_s:
                for name in ("ingest", "writer0"):
                    path = out / f"{variant.name}-{name}.raw.txt"
                    profilers.append(_pyspy(stack, name, pyspy_s, path))
            if pyspy_s and jfr:
                kafka_pid = stack.pids()["kafka"]
                jfr_out = out / f"{variant.name}-kafka.jfr"
                subprocess.run(
                    [
                        "jcmd",
                        str(kafka_pid),
                        "JFR.start",
                        f"duration={int(pyspy_s)}s",
                        f"filename={jfr_out}",
                        "settings=profile",
                    ],
                    check=False,
                    stdout=subprocess.DEVNULL,
                )
            kafka_threads = thread_cpu(roots["kafka"])
            started = time.perf_counter()
            result = asyncio.run(loadgen(spec))
            window = time.perf_counter() - started
            acked = len(result["acked_seqs"]) * SPANS_PER_REQUEST
            found = asyncio.run(
                _drained(env["SLUICE_PG_DSN"], env["SLUICE_KAFKA_TRACES_TOPIC"], prefix)
            )
            wall = time.perf_counter() - started - 1.0  # less the settling second
            after = sampler.cpu_seconds()
            kafka_threads = _thread_delta(kafka_threads, thread_cpu(roots["kafka"]), found)
            for p in profilers:
                p.wait(timeout=pyspy_s + 30)
        finally:
            sampler.stop()
    finally:
        _stop(stack, *names)
    idle_cores = {g: round((idle[g] - before.get(g, 0.0)) / IDLE_S, 3) for g in sorted(idle)}
    # The settling second after the last flush costs what idling costs: taken off.
    cpu_us = {
        g: round((after[g] - idle[g] - idle_cores[g] * 1.0) / max(found, 1) * 1e6, 1) for g in after
    }
    cpu_us["total"] = round(sum(cpu_us.values()), 1)
    return {
        "variant": variant.name,
        "acked_spans": acked,
        "found_spans": found,
        "statuses": result.get("statuses"),
        "export_window_s": round(window, 2),
        "spans_per_s_to_stored": round(found / wall, 1),
        "latency": result.get("latency"),
        "cpu_us_per_span": cpu_us,
        "idle_cores": idle_cores,
        "kafka_threads_us_per_span": kafka_threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.micro.span_cpu")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME:KEY=VALUE", help="a variant's setting"
    )
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pyspy", type=float, default=0.0)
    parser.add_argument("--jfr", action="store_true", help="also a JFR recording of Kafka")
    parser.add_argument("--out", type=Path, default=Path("/tmp/span_cpu"))
    args = parser.parse_args()
    variants = []
    for item in args.variant:
        name, _, code = item.partition("=")
        settings = tuple(
            tuple(e.partition(":")[2].split("=", 1)) for e in args.env if e.startswith(name + ":")
        )
        variants.append(Variant(name, Path(code).resolve(), settings))
    args.out.mkdir(parents=True, exist_ok=True)
    stack = BenchStack(sluice=SluiceSettings(), with_mlflow=False)
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    try:
        stack._script("kafka.sh", "fetch")
        for script in ("pg.sh", "kafka.sh"):
            stack._script(script, "start")
            stack.scripts_started.append(script)
        experiments = {v.name: prepare(stack, v) for v in variants}
        for r in range(args.rounds):
            for v in variants:
                last = r == args.rounds - 1
                pyspy_s = args.pyspy if last else 0
                res = one_round(
                    stack, v, experiments[v.name], args.requests, pyspy_s, args.out, args.jfr
                )
                res["round"] = r
                results.append(res)
                print(json.dumps(res), flush=True)
    finally:
        stack.stop()
        stack.remove_state()
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
