"""Real `hotline` processes (worker, web under gunicorn) for process-level tests: started with an
environment of their own, their output collected, always stopped with SIGTERM (then SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HOTLINE = str(Path(sys.executable).parent / "hotline")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HotlineProcess:
    def __init__(self, args: list[str], *, env: dict, cwd: Path, name: str):
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
        self.process = subprocess.Popen(
            [HOTLINE, *args], env={**base, "PYTHONUNBUFFERED": "1", **env}, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        threading.Thread(target=self._read, name=f"{name}-output", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first output line containing `text`; fails with the whole output if it does not come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"{self.name} never printed {text!r}; its output:\n{self.output}")
                self._changed.wait(min(left, 0.2))

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM to the process group (gunicorn's workers too), SIGKILL if it lingers. Returns the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        time.sleep(0.1)  # let the reader thread take the last lines
        return self.process.returncode
