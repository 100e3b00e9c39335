"""A stand-in for Twilio's REST API on a loopback port, for tests that run real `hotline` processes.

Point the app at it with TWILIO_API_URL=standin.url. It implements what the hotline calls —
POST/GET /2010-04-01/Accounts/<sid>/Messages.json and POST …/Calls.json — checks the account's basic
auth, records every request, can answer slowly or with scripted errors, and can send signed status
callbacks ("sent", then "delivered") the way Twilio does.
"""

from __future__ import annotations

import base64
import itertools
import json
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import requests
from twilio.request_validator import RequestValidator

ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<resource>Messages|Calls)\.json$")


@dataclass
class Recorded:
    method: str
    resource: str  # Messages | Calls
    form: dict
    query: dict
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # two workers open up to 64 connections each; the default backlog is 5


class TwilioStandIn:
    def __init__(self, account_sid: str, auth_token: str, *, latency: float = 0.0, status_callbacks: bool = False):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.latency = latency
        self.status_callbacks = status_callbacks
        self.requests: list[Recorded] = []
        self.messages: list[dict] = []  # every message accepted, in order
        self.calls: list[dict] = []
        self.failures: list[int] = []  # HTTP statuses to answer the next POSTs with
        self.callback_errors: list[str] = []
        self.lock = threading.Lock()
        self._sids = itertools.count(1)
        self._callbacks: queue.Queue = queue.Queue()
        self.server = _Server(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "TwilioStandIn":
        threading.Thread(target=self.server.serve_forever, name="twilio-standin", daemon=True).start()
        threading.Thread(target=self._send_callbacks, name="twilio-standin-callbacks", daemon=True).start()
        return self

    def stop(self) -> None:
        self._callbacks.put(None)
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def to(self, number: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if m["To"] == number]

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self.failures.extend(statuses)

    # --- the API ---------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == f"Basic {expected}"

    def _create(self, resource: str, form: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(Recorded("POST", resource, form, {}))
            if self.failures:
                status = self.failures.pop(0)
                return status, {"code": 20429 if status == 429 else 20500, "message": "stand-in failure", "status": status}
            prefix = "SM" if resource == "Messages" else "CA"
            sid = f"{prefix}{next(self._sids):032x}"
            record = {**form, "sid": sid, "status": "queued", "date_created": format_datetime(datetime.now(timezone.utc))}
            (self.messages if resource == "Messages" else self.calls).append(record)
        if self.status_callbacks and form.get("StatusCallback"):
            self._callbacks.put((form["StatusCallback"], resource, sid))
        return 201, self._resource(record)

    def _resource(self, record: dict) -> dict:
        return {
            "sid": record["sid"], "account_sid": self.account_sid, "status": record["status"],
            "to": record.get("To"), "from": record.get("From"), "body": record.get("Body"),
            "date_created": record["date_created"], "direction": "outbound-api",
        }

    def _list(self, query: dict) -> dict:
        with self.lock:
            self.requests.append(Recorded("GET", "Messages", {}, query))
            found = [
                m for m in reversed(self.messages)
                if m["To"] == query.get("To", m["To"]) and m.get("From") == query.get("From", m.get("From"))
            ]
        page = [self._resource(m) for m in found[: int(query.get("PageSize", 50))]]
        return {"messages": page, "page": 0, "page_size": len(page), "next_page_uri": None, "uri": "", "first_page_uri": "", "previous_page_uri": None}

    def _send_callbacks(self) -> None:
        validator = RequestValidator(self.auth_token)
        while (item := self._callbacks.get()) is not None:
            url, resource, sid = item
            key = "MessageSid" if resource == "Messages" else "CallSid"
            statuses = ("sent", "delivered") if resource == "Messages" else ("ringing", "completed")
            for status in statuses:
                form = {key: sid, "AccountSid": self.account_sid, ("MessageStatus" if resource == "Messages" else "CallStatus"): status}
                try:
                    answer = requests.post(url, data=form, headers={"X-Twilio-Signature": validator.compute_signature(url, form)}, timeout=10)
                    if answer.status_code >= 300:
                        self.callback_errors.append(f"{url} {status}: HTTP {answer.status_code}")
                except requests.RequestException as exc:
                    self.callback_errors.append(f"{url} {status}: {exc}")

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self):
                parsed = urlparse(self.path)
                match = ROUTE.match(parsed.path)
                if not match or match["account"] != standin.account_sid:
                    self._answer(404, {"code": 20404, "message": "not found", "status": 404})
                    return None, None
                if not standin._authorized(self.headers.get("Authorization")):
                    self._answer(401, {"code": 20003, "message": "authenticate", "status": 401})
                    return None, None
                if standin.latency:
                    time.sleep(standin.latency)
                return match["resource"], {k: v[0] for k, v in parse_qs(parsed.query).items()}

            def do_POST(self):
                resource, _ = self._route()
                if resource:
                    length = int(self.headers.get("Content-Length") or 0)
                    form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                    self._answer(*standin._create(resource, form))

            def do_GET(self):
                resource, query = self._route()
                if resource == "Messages":
                    self._answer(200, standin._list(query))
                elif resource:
                    self._answer(200, {"calls": [], "page": 0, "page_size": 0, "next_page_uri": None, "uri": ""})

        return Handler
