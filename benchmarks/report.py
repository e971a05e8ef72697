"""The environment a figure was measured in, and the Markdown table of a results document."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Doc = dict[str, Any]


def _cmd(*args: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    return (
        (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr) else ""
    )


def _dirty(repo: Path) -> list[str]:
    done = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--", "sluice", "ingest", "writer",
         "api", "schemas"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return [line[3:] for line in done.stdout.splitlines()]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _mem_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def _kafka_version(repo: Path) -> str:
    for jar in sorted((repo / ".state" / "kafka" / "libs").glob("kafka-clients-*.jar")):
        return jar.stem.removeprefix("kafka-clients-")
    return "unknown"


def environment(repo: Path, mlflow_python: Path | None) -> Doc:
    env: Doc = {
        "host": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _mem_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": _cmd("java", "-version"),
        "postgresql": _cmd("/usr/lib/postgresql/15/bin/postgres", "--version"),
        "kafka": _kafka_version(repo),
        "git_commit": _cmd("git", "-C", str(repo), "rev-parse", "--short", "HEAD"),
        # Others edit the services in this checkout: the run measures the working tree.
        "uncommitted_service_files": _dirty(repo),
    }
    if mlflow_python is not None:
        env["mlflow"] = _cmd(str(mlflow_python), "-c", "import mlflow; print(mlflow.__version__)")
    return env


_SPIN = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 2.0: pass"


def cpu_share() -> float:
    """Share of one core a busy Python process gets for 2 s: 1.0 on an idle machine, less when
    other work competes (the machine is shared)."""
    started = os.times()
    wall = time.perf_counter()
    subprocess.run([sys.executable, "-c", _SPIN], check=True)
    used = os.times()
    cpu = (used.children_user - started.children_user) + (
        used.children_system - started.children_system
    )
    return round(cpu / (time.perf_counter() - wall), 2)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- Markdown ----------------------------------------------------------------------------------


def _get(doc: Doc, *path: str) -> Any:
    node: Any = doc
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 1e3 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(sluice: Any, mlflow: Any, higher_is_better: bool) -> str:
    if not isinstance(sluice, int | float) or not isinstance(mlflow, int | float):
        return "—"
    if not sluice or not mlflow:
        return "—"
    ratio = sluice / mlflow if higher_is_better else mlflow / sluice
    return f"{ratio:,.1f}x" if ratio >= 0.95 else f"{ratio:.2f}x"  # not "0.0x" for 0.046


def _verdict(value: Any, target: float | None, higher_is_better: bool) -> str:
    if target is None or not isinstance(value, int | float):
        return ""
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "**missed**"


# (label, path under workloads/<system>, higher is better, target for Sluice)
Row = tuple[str, tuple[str, ...], bool, float | None, str]


def rows(doc: Doc) -> list[Row]:
    w = ("workloads",)
    out: list[Row] = []
    for key in sorted(_get(doc, "workloads", "log_batch", "sluice") or {}):
        if key in ("max_verified_points_per_s", "settle_s"):
            continue
        out.append(
            (
                f"log-batch {key}: verified points/s",
                (*w, "log_batch", "{s}", key, "verified_points_per_s"),
                True,
                None,
                "",
            )
        )
        out.append(
            (
                f"log-batch {key}: p99 ms",
                (*w, "log_batch", "{s}", key, "latency", "p99_ms"),
                False,
                None,
                "",
            )
        )
    out += [
        (
            "max sustained verified points/s",
            (*w, "log_batch", "{s}", "max_verified_points_per_s"),
            True,
            300_000,
            "≥ 300k",
        ),
        ("log-metric c=64: req/s", (*w, "log_metric", "{s}", "req_per_s"), True, 3000, "≥ 3,000"),
        (
            "log-metric c=64: p50 ms",
            (*w, "log_metric", "{s}", "latency", "p50_ms"),
            False,
            None,
            "",
        ),
        (
            "log-metric c=64: p99 ms",
            (*w, "log_metric", "{s}", "latency", "p99_ms"),
            False,
            25,
            "≤ 25",
        ),
        (
            "fan-out: verified points/s",
            (*w, "fanout", "{s}", "verified_points_per_s"),
            True,
            None,
            "",
        ),
        ("fan-out: p99 ms", (*w, "fanout", "{s}", "latency", "p99_ms"), False, None, ""),
        (
            "fan-out: s until 4 runs/create answer within 5 s again",
            (*w, "fanout", "{s}", "settle_s"),
            False,
            None,
            "",
        ),
        (
            "ingest p99 ms at half max rate",
            (*w, "visibility", "{s}", "latency", "p99_ms"),
            False,
            50,
            "≤ 50",
        ),
        ("visibility p50 ms", (*w, "visibility", "{s}", "visibility", "p50_ms"), False, None, ""),
        (
            "visibility p99 ms",
            (*w, "visibility", "{s}", "visibility", "p99_ms"),
            False,
            1000,
            "≤ 1,000",
        ),
    ]
    for key in sorted(_get(doc, "workloads", "reads", "sluice") or {}):
        if key == "settle_s":
            continue
        target: float | None = None
        if key == "get-history/100000":
            target = 100
        if key == "get-history-bulk-interval":
            target = 300
        out.append(
            (
                f"{key}: p50 ms",
                (*w, "reads", "{s}", key, "latency", "p50_ms"),
                False,
                target,
                f"≤ {target:.0f}" if target else "",
            )
        )
        if key.startswith(("runs/get", "search-runs")):
            out.append(
                (
                    f"{key}: reads/s",
                    (*w, "reads", "{s}", key, "rate_per_s"),
                    True,
                    None,
                    "≥ 10x MLflow" if key.startswith("search") else "",
                )
            )
    out += [
        ("registry get: req/s", (*w, "registry", "{s}", "get", "rate_per_s"), True, None, ""),
        ("registry search: req/s", (*w, "registry", "{s}", "search", "rate_per_s"), True, None, ""),
        (
            "storage bytes/point (metrics + latest)",
            (*w, "storage", "{s}", "bytes_per_point"),
            False,
            50,
            "≤ 50",
        ),
        *_trace_rows(doc),
        (
            "UI: run page, charts drawn (s, median)",
            (*w, "ui", "{s}", "run_charts", "median_s"),
            False,
            None,
            "≥ 5x faster than MLflow",
        ),
        (
            "UI: 10k-run table drawn (s, median)",
            (*w, "ui", "{s}", "runs_table", "median_s"),
            False,
            None,
            "≥ 5x faster than MLflow",
        ),
        (
            "UI: run page, charts drawn, return visit (s, median)",
            (*w, "ui", "{s}", "run_charts_warm", "median_s"),
            False,
            None,
            "≥ 5x faster than MLflow",
        ),
        (
            "UI: 10k-run table drawn, return visit (s, median)",
            (*w, "ui", "{s}", "runs_table_warm", "median_s"),
            False,
            None,
            "≥ 5x faster than MLflow",
        ),
    ]
    return out


# Sluice/MLflow ratio targets of the trace rows (issue 13), by label prefix.
_TRACE_RATIO_TARGETS = {"OTLP span ingest: verified spans/s": 50.0, "traces/search": 10.0}


def _trace_rows(doc: Doc) -> list[Row]:
    t = ("workloads", "traces", "{s}")
    stored = _get(doc, "workloads", "traces", "sluice", "search", "stored_traces") or 0
    out: list[Row] = [
        (
            "OTLP span ingest: verified spans/s",
            (*t, "span_ingest", "verified_spans_per_s"),
            True,
            None,
            "≥ 50x MLflow",
        ),
        ("OTLP span ingest: p99 ms", (*t, "span_ingest", "latency", "p99_ms"), False, None, ""),
        (
            "OTLP p99 ms at half max span rate",
            (*t, "visibility", "latency", "p99_ms"),
            False,
            None,
            "",
        ),
        (
            "trace visibility at half each system's max rate (ack -> in traces/search) p50 ms",
            (*t, "visibility", "visibility", "p50_ms"),
            False,
            None,
            "",
        ),
        (
            "trace visibility at half each system's max rate (ack -> in traces/search) p99 ms",
            (*t, "visibility", "visibility", "p99_ms"),
            False,
            None,
            "",
        ),
    ]
    # The same offered rate for both systems: the rows above load Sluice ~30x more.
    same = _get(doc, "profile", "trace_visibility_rate")
    if same is not None:
        at = f"at {same:,.0f} spans/s, both systems"
        out += [
            (
                f"OTLP p99 ms {at}",
                (*t, "visibility_same_rate", "latency", "p99_ms"),
                False,
                None,
                "",
            ),
            *(
                (
                    f"trace visibility {at} (ack -> in traces/search) {q} ms",
                    (*t, "visibility_same_rate", "visibility", f"{q}_ms"),
                    False,
                    None,
                    "",
                )
                for q in ("p50", "p99")
            ),
        ]
    for label in ("newest 100", "tag filter (1 %)"):
        name = f"traces/search {label} of {stored:,} traces"
        out.append(
            (f"{name}: reads/s", (*t, "search", label, "rate_per_s"), True, None, "≥ 10x MLflow")
        )
        out.append((f"{name}: p50 ms", (*t, "search", label, "latency", "p50_ms"), False, None, ""))
    return out


def _status(doc: Doc, path: tuple[str, ...], system: str) -> Any:
    """The value, or a 'not implemented'/'skipped' status of the enclosing workload."""
    concrete = tuple(system if p == "{s}" else p for p in path)
    value = _get(doc, *concrete)
    if value is not None:
        return value
    for cut in range(len(concrete) - 1, 1, -1):
        status = _get(doc, *concrete[:cut], "status")
        if status:
            return str(status).split(":")[0]
    return None


def markdown(doc: Doc) -> str:
    workloads = _get(doc, "workloads") or {}
    has_mlflow = any(isinstance(w, dict) and "mlflow" in w for w in workloads.values())
    lines = [f"# Sluice vs MLflow — {doc['started_at']} on {doc['environment']['host']}", ""]
    lines.append(_environment_md(doc))
    lines += [
        "",
        "## Figures",
        "",
        "| figure | Sluice | MLflow | Sluice/MLflow | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    for label, path, higher, target, target_text in rows(doc):
        s = _status(doc, path, "sluice")
        m = _status(doc, path, "mlflow") if has_mlflow else None
        ratio = _ratio(s, m, higher)
        if label.startswith("search-runs") and label.endswith("reads/s") and target is None:
            ok = _ratio_verdict(s, m, 10)
        elif target_text.endswith("x MLflow") and label.startswith(tuple(_TRACE_RATIO_TARGETS)):
            factor = next(f for k, f in _TRACE_RATIO_TARGETS.items() if label.startswith(k))
            ok = _ratio_verdict(s, m, factor)
        elif label.startswith("UI:"):
            ok = _ratio_verdict(m, s, 5)  # lower is better: MLflow's time / Sluice's
        else:
            ok = _verdict(s, target, higher)
        lines.append(f"| {label} | {_fmt(s)} | {_fmt(m)} | {ratio} | {target_text} | {ok} |")
    lines += ["", _ui_md(doc)] if _get(doc, "workloads", "ui") else []
    lines += ["", _verification_md(doc), "", _placement_md(doc)]
    lines += ["", _processes_md(doc), "", _growth_md(doc)]
    return "\n".join(lines) + "\n"


def _ratio_verdict(s: Any, m: Any, factor: float) -> str:
    if isinstance(s, int | float) and isinstance(m, int | float) and m:
        return "met" if s / m >= factor else "**missed**"
    return ""


def _environment_md(doc: Doc) -> str:
    env = doc["environment"]
    parts = [f"- **{k}**: {v}" for k, v in env.items()]
    parts.append(f"- **load average** before {doc['load_before']}, after {doc.get('load_after')}")
    parts.append(
        f"- **CPU share a busy process got** (1.0 = a free core) before "
        f"{doc.get('cpu_share_before')}, after {doc.get('cpu_share_after')}"
    )
    parts.append(f"- **runtime**: {doc.get('runtime_s')} s, profile `{doc['profile']['name']}`")
    parts.append(f"- **Sluice settings**: {doc['settings']['sluice']}")
    parts.append(f"- **MLflow settings**: {doc['settings'].get('mlflow')}")
    return "## Environment\n\n" + "\n".join(parts)


def _verification_md(doc: Doc) -> str:
    lines = [
        "## Verification (acknowledged points vs found in the store)",
        "",
        "| phase | system | acked | found | ok |",
        "|---|---|---:|---:|---|",
    ]
    for workload in ("log_batch", "log_metric", "fanout", "visibility"):
        for system, results in (_get(doc, "workloads", workload) or {}).items():
            items = results.items() if "acked_points" not in results else [("", results)]
            for key, r in items:
                if isinstance(r, dict) and "acked_points" in r:
                    lines.append(
                        f"| {workload} {key} | {system} | {r['acked_points']:,} | "
                        f"{r['found_points']:,} | {'yes' if r['verified'] else '**NO**'} |"
                    )
    for system, results in (_get(doc, "workloads", "traces") or {}).items():
        for key in ("span_ingest", "visibility", "visibility_same_rate"):
            r = results.get(key) or {}
            if "acked_spans" in r:
                lines.append(
                    f"| traces {key} (spans) | {system} | {r['acked_spans']:,} | "
                    f"{r['found_spans']:,} | {'yes' if r['verified'] else '**NO**'} |"
                )
        fill = _get(results, "search", "fill") or {}
        if fill:
            lines.append(
                f"| traces search fill | {system} | {fill.get('how')} |"
                f" {_get(results, 'search', 'stored_traces'):,} traces | {fill.get('fill_s')} s |"
            )
    return "\n".join(lines)


def _placement_md(doc: Doc) -> str:
    """Where each closed-loop phase's connections sat on the server's processes
    (benchmarks/placement.py): at the window's start after re-dialling, and midway."""
    lines = [
        "## Connection placement (connections per server process)",
        "",
        "| phase | system | at start | re-dials | s | balanced | midway |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for workload, systems in (_get(doc, "workloads") or {}).items():
        for system, results in systems.items() if isinstance(systems, dict) else ():
            for phase, r in _placed(results, (workload,)):
                placed = r["placement"]
                midway = (r.get("connections") or {}).get("per_process")
                lines.append(
                    f"| {phase} | {system} | {_spread(placed.get('per_process'))} | "
                    f"{placed.get('redials')} | {placed.get('seconds', '')} | "
                    f"{'yes' if placed.get('balanced') else '**no**'} | {_spread(midway)} |"
                )
    return "\n".join(lines)


def _placed(tree: Any, path: tuple[str, ...]) -> Iterator[tuple[str, Doc]]:
    """(phase name, result) of every result under ``tree`` that records a ``placement``."""
    if not isinstance(tree, dict):
        return
    if "placement" in tree:
        yield " ".join(path), tree
        return
    for key, value in tree.items():
        yield from _placed(value, (*path, str(key)))


def _spread(counts: list[int] | None) -> str:
    return " / ".join(map(str, counts)) if counts else "-"


def _processes_md(doc: Doc) -> str:
    lines = [
        "## Processes: peak RSS over the run",
        "",
        "| process group | peak RSS of one process (MB) | peak sum (MB) | processes | target |",
        "|---|---:|---:|---:|---|",
    ]
    targets = {"ingest": 150, "writer0": 250, "writer1": 250, "api": 200}
    for group, s in (doc.get("processes") or {}).items():
        t = targets.get(group)
        verdict = (
            "" if t is None else (f"≤ {t}: " + ("met" if s["peak_rss_mb"] <= t else "**missed**"))
        )
        cells = [group, s["peak_rss_mb"], s["peak_rss_sum_mb"], s["processes"], verdict]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "CPU (cores busy) per phase is in the JSON under each phase's `cpu_cores`."]
    return "\n".join(lines)


_UI_PARTS = ("total_s", "first_api_s", "api_in_flight_s", "busy_s", "api_requests", "api_kb")
_UI_PAGES = ("run_charts", "runs_table")
_UI_VISITS = (("", "first"), ("_warm", "return"))


def _ui_md(doc: Doc) -> str:
    """The UI figures beside their floors (replays of each system's answers), then the loads
    taken apart (medians): what the server could shorten (API requests in flight) beside what
    the browser spends on the same bundle and answers (busy)."""
    ui = _get(doc, "workloads", "ui") or {}
    lines = [
        "## UI: each system beside the floor (a replay of recorded answers: a server that costs"
        " nothing), median seconds",
        "",
        "| page | visit | MLflow | Sluice | floor (Sluice's answers) | floor (MLflow's answers) |"
        " MLflow/Sluice | MLflow/floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for page in _UI_PAGES:
        for suffix, visit in _UI_VISITS:
            m, s, f, fm = (
                _get(ui, system, page + suffix, "median_s")
                for system in ("mlflow", "sluice", "floor", "floor_mlflow")
            )
            if s is None:
                continue
            cells = [_fmt_s(v) for v in (m, s, f, fm)] + [_times(m, s), _times(m, f)]
            lines.append(f"| {page} | {visit} | {' | '.join(cells)} |")
    for system, result in ui.items():
        replayed = result.get("replay")
        if replayed:
            lines.append(
                f"\n- `{system}` replays {result.get('replays')}: answered"
                f" {replayed.get('answered')} requests, {replayed.get('misses')} not recorded"
                f" (forwarded to the system): {replayed.get('last')}"
            )
    lines += [
        "",
        "## UI page loads taken apart (median seconds of each part)",
        "",
        "| page | visit | system | total | first API request | API in flight | main thread busy |"
        " API requests | API KB | load average after |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for system, result in ui.items():
        for page in _UI_PAGES:
            for suffix, visit in _UI_VISITS:
                parts = _get(result, page + suffix, "breakdown_median") or {}
                if not parts:
                    continue
                figures = " | ".join(_fmt(parts.get(k)) for k in _UI_PARTS)
                load = _get(result, page + suffix, "load_average_after")
                lines.append(f"| {page} | {visit} | {system} | {figures} | {load} |")
    return "\n".join(lines)


def _fmt_s(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "—"


def _times(slower: Any, faster: Any) -> str:
    """``slower / faster`` as "2.31x" (a UI ratio: MLflow's seconds over the other's)."""
    if isinstance(slower, int | float) and isinstance(faster, int | float) and faster:
        return f"{slower / faster:.2f}x"
    return "—"


def _growth_md(doc: Doc) -> str:
    growth = _get(doc, "workloads", "growth") or {}
    lines = [
        "## Growth (Sluice only): ingest cost as `metrics` grows",
        "",
        "| rows before | verified points/s | p99 ms | CPU µs/point (Sluice + PG + Kafka) |",
        "|---:|---:|---:|---:|",
    ]
    for r in growth.values():
        lines.append(
            f"| {r['rows_before']:,} | {_fmt(r['verified_points_per_s'])} | "
            f"{_fmt(_get(r, 'latency', 'p99_ms'))} | {_fmt(r.get('cpu_us_per_point'))} |"
        )
    return "\n".join(lines)
