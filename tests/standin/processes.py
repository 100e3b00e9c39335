"""`hotline web` (gunicorn) and `hotline worker` as real subprocesses, pointed at a Twilio stand-in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

HOTLINE = str(Path(sys.executable).with_name("hotline"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hotline:
    def __init__(self, workdir: Path, *, database_url: str, standin, **settings: str):
        self.workdir, self.standin = Path(workdir), standin
        self.port = free_port()
        self.public_url = f"http://127.0.0.1:{self.port}"
        self.environ = {
            **os.environ,
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
        self.processes: list[subprocess.Popen] = []
        self.validator = RequestValidator(standin.auth_token)

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([HOTLINE, *args], cwd=self.workdir, env=self.environ, input=stdin, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def _spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{args[0]}-{len(self.processes)}.log", "w")
        process = subprocess.Popen([HOTLINE, *args], cwd=self.workdir, env=self.environ, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_web(self, workers: int = 2) -> subprocess.Popen:
        process = self._spawn("web", "--port", str(self.port), "--workers", str(workers))
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.public_url + "/healthz", timeout=1)
                return process
            except (urllib.error.URLError, OSError):
                assert process.poll() is None, "hotline web exited"
                time.sleep(0.2)
        raise TimeoutError("hotline web did not come up")

    def start_worker(self) -> subprocess.Popen:
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
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
