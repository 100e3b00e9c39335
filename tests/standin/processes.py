"""Real `hotline` processes (worker, web under gunicorn) for process-level tests: started with an
environment of their own, their output collected, always stopped with SIGTERM (then SIGKILL);
and `Hotline`, a web + worker pair on one database pointed at the Twilio stand-in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

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


class Hotline:
    """`hotline web` and `hotline worker` on one database, pointed at a Twilio stand-in."""

    def __init__(self, workdir: Path, *, database_url: str, standin, **settings: str):
        self.workdir, self.standin = Path(workdir), standin
        self.port = free_port()
        self.public_url = f"http://127.0.0.1:{self.port}"
        self.environ = {
            "HOTLINE_DATABASE_URL": database_url,
            "HOTLINE_SECRET_KEY": "process-test",
            "HOTLINE_PUBLIC_URL": self.public_url,
            "TWILIO_ACCOUNT_SID": standin.account_sid,
            "TWILIO_AUTH_TOKEN": standin.auth_token,
            "TWILIO_API_URL": standin.url,
            "HOTLINE_FROM_NUMBER": "+447400123456",
            **settings,
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.processes: list[HotlineProcess] = []
        self.validator = RequestValidator(standin.auth_token)

    def run(self, *args: str, stdin: str | None = None) -> str:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
        done = subprocess.run([HOTLINE, *args], cwd=self.workdir, env={**base, **self.environ}, input=stdin, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def _spawn(self, *args: str) -> HotlineProcess:
        process = HotlineProcess(list(args), env=self.environ, cwd=self.workdir, name=f"{args[0]}-{len(self.processes)}")
        self.processes.append(process)
        return process

    def start_web(self, workers: int = 2) -> HotlineProcess:
        process = self._spawn("web", "--port", str(self.port), "--workers", str(workers))
        ready = lambda: _answers(self.public_url + "/healthz") or process.process.poll() is not None  # noqa: E731
        assert wait_until(ready, timeout=30) and process.process.poll() is None, process.output
        return process

    def start_serve(self) -> HotlineProcess:
        """`hotline serve`: web, webhooks, dispatcher and jobs in one process, as the README starts it."""
        process = self._spawn("serve", "--port", str(self.port))
        ready = lambda: _answers(self.public_url + "/healthz") or process.process.poll() is not None  # noqa: E731
        assert wait_until(ready, timeout=30) and process.process.poll() is None, process.output
        return process

    def start_worker(self) -> HotlineProcess:
        return self._spawn("worker")

    def post(self, path: str, form: dict) -> tuple[int, bytes]:
        url = self.public_url + path
        request = urllib.request.Request(
            url, data=urlencode(form).encode(), headers={"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def sms(self, sender: str, body: str, sid: str) -> tuple[int, bytes]:
        return self.post("/twilio/sms", {"From": sender, "To": "+447400123456", "Body": body, "MessageSid": sid,
                                         "AccountSid": self.standin.account_sid})

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
        return True
    except (urllib.error.URLError, OSError):
        return False


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
