"""CPU used by the other processes of a benchmark (simulator, Postgres) and the machine."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]


def _own_and_children(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live children (Postgres
    backends come and go: the postmaster reaps them, so their time lands in children_*)."""
    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total = float(times.user + times.system + times.children_user
                      + times.children_system)
        for child in proc.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
        return total
    except psutil.Error:
        return 0.0


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields) - idle) / hz, sum(fields) / hz


@dataclass
class CpuMeter:
    """CPU seconds of named processes between start() and stop()."""

    pids: dict[str, int]

    def start(self) -> None:
        self._start = {name: _own_and_children(pid) for name, pid in self.pids.items()}
        self._machine = _machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        used = {name: _own_and_children(pid) - self._start[name]
                for name, pid in self.pids.items()}
        busy, total = _machine_busy_seconds()
        used["machine busy"] = busy - self._machine[0]
        used["machine total"] = total - self._machine[1]
        return used


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, MB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
