"""Resident memory of the processes under test, read from /proc (Linux): current RSS, the peak since a reset."""

from __future__ import annotations

import threading
from pathlib import Path


def _status(pid: int, key: str) -> float:
    """A `VmRSS` / `VmHWM` line of /proc/PID/status, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def rss_mb(pid: int) -> float:
    return _status(pid, "VmRSS")


def peak_mb(pid: int) -> float:
    return _status(pid, "VmHWM")


def workers_of(pid: int) -> list[int]:
    """The children of a gunicorn master (its workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def reset_peaks(pids: list[int]) -> bool:
    """Writing 5 to clear_refs sets the peak (VmHWM) back to the current RSS (Linux ≥ 4.0). Where that is not
    allowed the peak stays the process's lifetime peak, and a growth read against it can only be larger."""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_growth(before: dict[int, float]) -> float:
    """The largest rise of any process's peak RSS over its RSS in `before` (MB); a process gone since is skipped."""
    rises = []
    for pid, rss in before.items():
        try:
            rises.append(peak_mb(pid) - rss)
        except OSError:
            continue
    return max(rises, default=float("nan"))


class Sampler:
    """RSS of one process every `interval` seconds, for a curve and a check on VmHWM."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval = pid, interval
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.values.append(rss_mb(self.pid))
            except (OSError, KeyError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
