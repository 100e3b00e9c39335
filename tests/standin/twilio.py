"""A Twilio REST stand-in on 127.0.0.1 for process-level tests and benchmarks.

Implements Messages.json and Calls.json (create and list) as Twilio does: basic auth, required
parameters, realistic JSON and error bodies, and signed status callbacks back to the app; also deleting a
Recording, and a Messaging Service's phone numbers (messaging.twilio.com, reached through the same base URL). Faults are
injected from a cycled pattern, so a test knows exactly how many requests should fail:

    "ok"             201
    "429" / "500"    refused, nothing recorded
    "timeout"        hangs before anything is recorded (the client times out)
    "accept-timeout" records the message, then hangs: the case where a resend would text twice
    "drop"           closes the connection without an answer, nothing recorded
    "accept-drop"    records the message, then closes the connection
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from twilio.request_validator import RequestValidator

PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)\.json$")
RECORDING = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Recordings/(?P<sid>RE\w+)\.json$")
SERVICE_NUMBERS = re.compile(r"^/v1/Services/(?P<service>MG\w+)/PhoneNumbers$")


@dataclass
class Faults:
    latency: float = 0.0  # seconds before each POST is answered
    pattern: list[str] = field(default_factory=lambda: ["ok"])
    hang_seconds: float = 30.0
    opted_out: set[str] = field(default_factory=set)  # answered 400 / 21610
    landlines: set[str] = field(default_factory=set)  # answered 400 / 21614
    invalid: set[str] = field(default_factory=set)  # answered 400 / 21211
    callback_first: bool = False  # status callbacks go out before the 201 (they beat the app's own commit)
    message_steps: list[str] = field(default_factory=lambda: ["sent", "delivered"])


@dataclass
class Request:
    method: str
    kind: str
    to: str | None
    outcome: str
    at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of sends must not overflow the listen backlog


def _now_rfc2822() -> str:
    return format_datetime(datetime.now(timezone.utc))


class TwilioStandIn:
    def __init__(self, account_sid: str, auth_token: str, *, status_callbacks: bool = True, callback_delay: float = 0.05,
                 latency: float = 0.0, callback_workers: int = 8):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.faults = Faults(latency=latency)
        self.callbacks, self.callback_delay = status_callbacks, callback_delay
        self.messages: list[dict] = []  # accepted messages, oldest first
        self.calls: list[dict] = []
        self.requests: list[Request] = []
        self.callback_results: list[int] = []  # HTTP status of each status callback we made
        self.recordings: set[str] = set()  # RecordingSids that exist; DELETE removes one (404 when unknown)
        self.deleted_recordings: list[str] = []
        self.service_numbers: dict[str, list[str]] = {}  # Messaging Service SID -> its phone numbers
        self._lock = threading.Lock()
        self._pattern = itertools.cycle(self.faults.pattern)
        self._sids = itertools.count(1)
        self._callback_pool = ThreadPoolExecutor(callback_workers)  # enough to keep up with the sends, as Twilio does
        self._server: ThreadingHTTPServer | None = None

    # --- control ------------------------------------------------------------------------

    def set_faults(self, **changes) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self.faults, key, value)
            self._pattern = itertools.cycle(self.faults.pattern)

    def start(self) -> "TwilioStandIn":
        self._server = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self._callback_pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "TwilioStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def callback_errors(self) -> list[int]:
        with self._lock:
            return [code for code in self.callback_results if not 200 <= code < 300]

    def posts(self) -> list["Request"]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted_to(self, number: str) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m["to"] == number]

    def outcomes(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for request in self.requests:
                counts[request.outcome] = counts.get(request.outcome, 0) + 1
            return counts

    # --- the API ------------------------------------------------------------------------

    def _authorised(self, header: str | None) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == expected

    def _record(self, kind: str, form: dict) -> dict:
        prefix = "SM" if kind == "Messages" else "CA"
        with self._lock:
            sid = f"{prefix}{next(self._sids):032x}"
            created = _now_rfc2822()
            if kind == "Messages":
                item = {
                    "sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01", "body": form.get("Body", ""),
                    "date_created": created, "date_updated": created, "date_sent": None, "direction": "outbound-api",
                    "error_code": None, "error_message": None, "from": form.get("From"),
                    "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0", "num_segments": "1",
                    "price": None, "price_unit": "USD", "status": "queued", "to": form["To"],
                    "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json", "subresource_uris": {},
                    "_callback": form.get("StatusCallback"), "_validity": form.get("ValidityPeriod"),
                }
                self.messages.append(item)
            else:
                item = {
                    "sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01", "date_created": created,
                    "date_updated": created, "direction": "outbound-api", "from": form.get("From"), "to": form["To"],
                    "status": "queued", "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
                    "_callback": form.get("StatusCallback"), "_twiml": form.get("Twiml"), "_amd": form.get("MachineDetection"),
                }
                self.calls.append(item)
        if self.callbacks and item["_callback"]:
            if self.faults.callback_first:
                self._send_callbacks(kind, item)
            else:
                self._callback_pool.submit(self._send_callbacks, kind, item)
        return item

    def _send_callbacks(self, kind: str, item: dict) -> None:
        steps = list(self.faults.message_steps) if kind == "Messages" else ["initiated", "ringing", "in-progress", "completed"]
        validator = RequestValidator(self.auth_token)
        for status in steps:
            time.sleep(self.callback_delay)
            key = "MessageSid" if kind == "Messages" else "CallSid"
            form = {key: item["sid"], "AccountSid": self.account_sid, "To": item["to"], "From": item["from"] or ""}
            form["MessageStatus" if kind == "Messages" else "CallStatus"] = status
            if kind == "Calls" and status == "completed":
                form["AnsweredBy"] = "human"
            request = urllib.request.Request(
                item["_callback"], data=urlencode(form).encode(),
                headers={"X-Twilio-Signature": validator.compute_signature(item["_callback"], form)},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status_code = response.status
            except urllib.error.HTTPError as exc:
                status_code = exc.code
            except OSError:
                status_code = 0
            with self._lock:
                self.callback_results.append(status_code)

    def _validate(self, kind: str, form: dict) -> tuple[int, int, str] | None:
        to = form.get("To")
        if not to:
            return 400, 21604, "A 'To' phone number is required."
        if kind == "Messages":
            if not form.get("Body") and not form.get("MediaUrl"):
                return 400, 21602, "Message body is required."
            if not form.get("From") and not form.get("MessagingServiceSid"):
                return 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required."
            if to in self.faults.opted_out:
                return 400, 21610, "Attempt to send to unsubscribed recipient"
            if to in self.faults.landlines:
                return 400, 21614, f"'To' number {to} is not a valid mobile number"
        else:
            if not form.get("From"):
                return 400, 21213, "No 'From' number is specified"
            if not form.get("Twiml") and not form.get("Url"):
                return 400, 21205, "Url or Twiml parameter is required."
        if to in self.faults.invalid:
            return 400, 21211, f"The 'To' number {to} is not a valid phone number."
        return None

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: int, message: str) -> None:
                self._json(status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})

            def _route(self):
                match = PATH.match(urlparse(self.path).path)
                if not match or match["account"] != standin.account_sid:
                    self._error(404, 20404, "The requested resource was not found")
                    return None
                if not standin._authorised(self.headers.get("Authorization")):
                    self._error(401, 20003, "Authenticate")
                    return None
                return match["kind"]

            def _authorised_or_401(self) -> bool:
                if standin._authorised(self.headers.get("Authorization")):
                    return True
                self._error(401, 20003, "Authenticate")
                return False

            def do_DELETE(self):
                match = RECORDING.match(urlparse(self.path).path)
                if not match or match["account"] != standin.account_sid:
                    return self._error(404, 20404, "The requested resource was not found")
                if not self._authorised_or_401():
                    return
                with standin._lock:
                    known = match["sid"] in standin.recordings
                    standin.recordings.discard(match["sid"])
                    if known:
                        standin.deleted_recordings.append(match["sid"])
                if not known:
                    return self._error(404, 20404, f"The requested resource /Recordings/{match['sid']}.json was not found")
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _service_numbers(self, service: str) -> None:
                numbers = standin.service_numbers.get(service)
                if numbers is None:
                    return self._error(404, 20404, "The requested resource was not found")
                rows = [{"sid": f"PN{n:032x}", "service_sid": service, "phone_number": number, "country_code": "GB",
                         "capabilities": ["SMS", "Voice"]} for n, number in enumerate(numbers)]
                self._json(200, {"phone_numbers": rows, "meta": {"page": 0, "page_size": 50, "first_page_url": self.path,
                                 "previous_page_url": None, "url": self.path, "next_page_url": None, "key": "phone_numbers"}})

            def do_GET(self):
                service = SERVICE_NUMBERS.match(urlparse(self.path).path)
                if service:
                    if self._authorised_or_401():
                        self._service_numbers(service["service"])
                    return
                kind = self._route()
                if kind is None:
                    return
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                with standin._lock:
                    standin.requests.append(Request("GET", kind, query.get("To"), "lookup", time.monotonic()))
                    items = list(reversed(standin.messages if kind == "Messages" else standin.calls))
                items = [i for i in items if i["to"] == query.get("To", i["to"]) and (i["from"] or "") == query.get("From", i["from"] or "")]
                size = int(query.get("PageSize", 50))
                public = [{k: v for k, v in i.items() if not k.startswith("_")} for i in items[:size]]
                key = "messages" if kind == "Messages" else "calls"
                self._json(200, {key: public, "page": 0, "page_size": size, "first_page_uri": self.path, "next_page_uri": None,
                                 "previous_page_uri": None, "uri": self.path, "start": 0, "end": len(public)})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                kind = self._route()
                if kind is None:
                    return
                with standin._lock:
                    latency, hang = standin.faults.latency, standin.faults.hang_seconds
                    outcome = next(standin._pattern)
                    standin.requests.append(Request("POST", kind, form.get("To"), outcome, time.monotonic()))
                if latency:
                    time.sleep(latency)
                if outcome in ("429", "500"):
                    status = int(outcome)
                    self._error(status, 20429 if status == 429 else 20500, "Too Many Requests" if status == 429 else "Internal Server Error")
                    return
                if outcome == "timeout":
                    time.sleep(hang)
                    self.close_connection = True
                    return
                if outcome == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                problem = standin._validate(kind, form)
                if problem:
                    self._error(*problem)
                    return
                item = standin._record(kind, form)
                if outcome == "accept-timeout":
                    time.sleep(hang)
                    self.close_connection = True
                    return
                if outcome == "accept-drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self._json(201, {k: v for k, v in item.items() if not k.startswith("_")})

        return Handler
