"""CPU and peak RSS of every server process, sampled by a background thread (psutil).

A *group* is a root process and its descendants (postgres' backends, uvicorn's workers).
Per phase we report CPU seconds per group (cores used = seconds / wall time); over the whole run
the peak RSS of each group's largest process and of the group's sum.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass
class GroupStats:
    peak_rss_process: int = 0  # bytes, the largest single process seen
    peak_rss_sum: int = 0  # bytes, the group's total at its highest sample
    processes_seen: int = 0


def _members(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


@dataclass
class Sampler:
    roots: dict[str, int]
    interval_s: float = 0.5
    stats: dict[str, GroupStats] = field(default_factory=dict)
    phase_peaks: dict[str, dict[str, int]] = field(default_factory=dict)
    _cpu_seen: dict[tuple[str, int], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _phase: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="procstats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) per group so far, children that exited included as last
        seen (the sampler keeps their last reading)."""
        self._sample()
        with self._lock:
            totals: dict[str, float] = {}
            for (group, _pid), seconds in self._cpu_seen.items():
                totals[group] = totals.get(group, 0.0) + seconds
            return totals

    def begin_phase(self, name: str) -> None:
        with self._lock:
            self._phase = name
            self.phase_peaks[name] = {}

    def end_phase(self) -> None:
        with self._lock:
            self._phase = None

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                group: {
                    "peak_rss_mb": round(s.peak_rss_process / 2**20, 1),
                    "peak_rss_sum_mb": round(s.peak_rss_sum / 2**20, 1),
                    "processes": s.processes_seen,
                }
                for group, s in self.stats.items()
            }

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def _sample(self) -> None:
        for group, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
            except psutil.Error:
                continue
            total = 0
            largest = 0
            members = _members(root)
            for proc in members:
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        cpu = proc.cpu_times()
                except psutil.Error:
                    continue
                total += rss
                largest = max(largest, rss)
                with self._lock:
                    self._cpu_seen[(group, proc.pid)] = cpu.user + cpu.system
            self._record(group, largest, total, len(members))

    def _record(self, group: str, largest: int, total: int, count: int) -> None:
        with self._lock:
            s = self.stats.setdefault(group, GroupStats())
            s.peak_rss_process = max(s.peak_rss_process, largest)
            s.peak_rss_sum = max(s.peak_rss_sum, total)
            s.processes_seen = max(s.processes_seen, count)
            if self._phase is not None:
                peaks = self.phase_peaks[self._phase]
                peaks[group] = max(peaks.get(group, 0), largest)


@dataclass(frozen=True, slots=True)
class PortSockets:
    """One server process's TCP sockets on a port."""

    pid: int
    parent: int
    listening: bool
    peers: tuple[int, ...]  # remote ports of its established connections


def port_sockets(root_pid: int, port: int) -> list[PortSockets]:
    """The sockets on ``port`` of each process of the group rooted at ``root_pid`` (processes
    with none left out). The one place the bench reads a server's connections."""
    found: list[PortSockets] = []
    for process in _members(psutil.Process(root_pid)):
        try:
            sockets = process.net_connections(kind="tcp")
            parent = process.ppid()
        except psutil.Error:
            continue
        mine = [c for c in sockets if c.laddr and c.laddr.port == port]
        if not mine:
            continue
        peers = tuple(c.raddr.port for c in mine if c.status == psutil.CONN_ESTABLISHED and c.raddr)
        listening = any(c.status == psutil.CONN_LISTEN for c in mine)
        found.append(PortSockets(process.pid, parent, listening, peers))
    return found


def connection_spread(root_pid: int, port: int) -> dict[str, Any]:
    """Established connections to ``port`` per process of the group rooted at ``root_pid``
    (most first, processes without any left out) and how many of its processes listen on the
    port. Each of MLflow's uvicorn workers keeps the connections it accepts, so a closed-loop
    phase's rate depends on how its connections landed (benchmarks/placement.py)."""
    group = port_sockets(root_pid, port)
    return {
        "per_process": sorted((len(s.peers) for s in group if s.peers), reverse=True),
        "processes_listening": sum(s.listening for s in group),
    }


def connection_owners(
    root_pid: int, port: int, local_ports: list[int]
) -> tuple[list[int | None], dict[int, int]]:
    """For each client connection (its local port), the pid of the server process holding its
    other end (None: not accepted yet); and the group's listening processes (pid -> parent)."""
    group = port_sockets(root_pid, port)
    owner = {peer: s.pid for s in group for peer in s.peers}
    listeners = {s.pid: s.parent for s in group if s.listening}
    return [owner.get(p) for p in local_ports], listeners


def cpu_delta(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict[str, Any]:
    """Cores used per group over a phase (1.0 = one core busy all the time)."""
    if wall_s <= 0:
        return {}
    return {
        group: round((after.get(group, 0.0) - before.get(group, 0.0)) / wall_s, 3)
        for group in sorted(after)
    }


def machine_busy_s() -> float:
    """CPU seconds every core of the machine spent on anything but idling (steal included:
    time the hypervisor gave to another guest was not this machine's to use)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - _guest(times)


def _guest(times: Any) -> float:
    # guest time is already counted in user time on Linux
    return getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)


def now() -> float:
    return time.perf_counter()
