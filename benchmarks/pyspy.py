"""py-spy profiles of Sluice's ingest and writer while a max-rate log-batch load runs.

py-spy samples the live processes from outside (``--nonblocking``: it never pauses them), writes
collapsed stacks (``--format raw``), and we summarise them: where the samples end (self time),
which functions are on the stack (inclusive), and which library the self time falls in.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import phases
from benchmarks.services import Target

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
_LIBS = (
    "aiohttp",
    "aiokafka",
    "asyncpg",
    "orjson",
    "json",
    "asyncio",
    "multidict",
    "yarl",
    "ingest",
    "writer",
    "schemas",
    "sluice",
    "prometheus_client",
    "uuid",
    "logging",
    "selectors",
    "ssl",
    "socket",
)


def pyspy_binary() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy not installed: pip install -e '.[bench]'")
    return found


def _label(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    path = match["file"]
    short = "/".join(Path(path).parts[-2:]) if path else ""
    return f"{match['func']} ({short})", path


def _library(path: str) -> str:
    parts = Path(path).parts
    for lib in _LIBS:
        if lib in parts or Path(path).stem == lib:
            return lib
    return Path(path).stem or "other"


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_label(f) for f in stack.split(";")[1:]]  # first entry: process/thread
        if not frames:
            continue
        total += count
        leaf, leaf_path = frames[-1]
        self_time[leaf] += count
        libraries[_library(leaf_path)] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_pct": share(self_time) if total else [],
        "inclusive_pct": share(inclusive) if total else [],
        "self_by_library_pct": share(libraries) if total else [],
    }


async def record(pid: int, seconds: float, out: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        pyspy_binary(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "97",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        return {"error": f"py-spy exited {proc.returncode}: {err.decode()[-300:]}"}
    return await asyncio.to_thread(_summarise_file, out)


def _summarise_file(path: Path) -> dict[str, Any]:
    return summarise(path.read_text()) if path.exists() else {"error": f"no {path}"}


async def profile_sluice(
    ctx: phases.Context, target: Target, seconds: float, pids: dict[str, int], out_dir: Path
) -> dict[str, Any]:
    """A 10x100, c=32 log-batch load for ``seconds`` + a margin; ingest and the first writer
    are sampled in the middle of it."""
    runs = await phases.new_runs(ctx, target, ctx.profile.batch_runs)
    spec = {
        "kind": "batch",
        "url": target.write_url,
        "runs": runs,
        "shape": "10x100",
        "concurrency": 32,
        "duration_s": seconds + 4,
        "request_timeout_s": ctx.profile.request_timeout_s,
    }
    load = asyncio.create_task(phases.verified(ctx, target, spec, 100, 1000))
    await asyncio.sleep(2.0)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    names = [n for n in ("ingest", "writer0") if n in pids]
    summaries = await asyncio.gather(
        *(record(pids[n], seconds, out_dir / f"{n}.collapsed.txt") for n in names)
    )
    load_result = await load
    load_result.pop("latency", None)
    return {"load": load_result, **dict(zip(names, summaries, strict=True))}
