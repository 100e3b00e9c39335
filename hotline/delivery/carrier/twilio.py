"""Twilio's REST API through the helper library: the only module that imports `twilio.rest`."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from hotline.delivery.carrier.base import Accepted, CarrierError, Rejected, Throttled, Uncertain

_pacing = threading.local()  # the dispatcher's pacer for the send in flight on this thread
_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]*twilio\.com")
# How far Twilio's clock and ours may disagree when matching a message we may have sent.
_CLOCK_SLACK = timedelta(minutes=2)
_RECORDING_SID = re.compile(r"/Recordings/(RE[0-9A-Za-z]+)")
NO_CALLER_ID = 21213  # Twilio's own code for a call with no 'From': what a Messaging Service without numbers leaves us
_CALLER_ID_TTL = timedelta(minutes=10)  # how long the Messaging Service's number (or its lack) is trusted


class EnvironmentOnceSession(requests.Session):
    """A requests Session that reads the environment's proxies and CA bundle once per host, not on every request.

    With `trust_env` (as ever: HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE are honoured) requests walks the whole
    process environment twice a request to find them: a third of a send's CPU in `hotline serve`, where one
    process sends 100 a second. The environment of a running server does not change, so what it says for a host
    is kept; the settings returned are requests' own, computed the first time."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple, dict] = {}
        self._environment_lock = threading.Lock()

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
        with self._environment_lock:
            found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, dict(proxies or {}), stream, verify, cert)
            with self._environment_lock:
                self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends every Twilio domain's requests to one base URL (a local stand-in in tests), with a timeout."""

    def __init__(self, base_url: str, *, timeout: float, pool_size: int):
        super().__init__(timeout=timeout)
        self.session = EnvironmentOnceSession()
        self.base_url = base_url.rstrip("/")
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def request(self, method, url, *args, **kwargs):
        pace = getattr(_pacing, "wait", None)
        if pace is not None and method.upper() == "POST":
            pace()  # as late as possible: the API must see the pace, not our thread pool's jitter
        if self.base_url != "https://api.twilio.com":
            url = _TWILIO_HOST.sub(self.base_url, url)
        return super().request(method, url, *args, **kwargs)


def _translate(exc: Exception) -> CarrierError:
    if isinstance(exc, TwilioRestException):
        if exc.status == 429:
            return Throttled(exc.msg, code=exc.code, http_status=429)
        if exc.status >= 500:
            return Uncertain(exc.msg, code=exc.code, http_status=exc.status)
        return Rejected(exc.msg, code=exc.code, http_status=exc.status)
    return Uncertain(f"{type(exc).__name__}: {exc}")


@contextmanager
def _paced(pace):
    _pacing.wait = pace
    try:
        yield
    finally:
        _pacing.wait = None


class TwilioCarrier:
    def __init__(self, config, *, pool_size: int = 64):
        self.config = config
        http = BaseUrlHttpClient(config.api_url, timeout=config.rest_timeout_seconds, pool_size=pool_size)
        self.client = Client(config.account_sid, config.auth_token, http_client=http)
        self._caller: tuple[datetime, str | None] | None = None  # (when looked up, the service's number or None)
        self._caller_lock = threading.Lock()

    def warm(self) -> None:
        """Load the REST client's message and call modules now, not on the first alert (about 0.3 s of imports)."""
        self.client.messages, self.client.calls  # noqa: B018

    def _sender(self) -> dict:
        if self.config.messaging_service_sid:
            return {"messaging_service_sid": self.config.messaging_service_sid}
        return {"from_": self.config.from_number}

    def caller_id(self) -> str:
        """HOTLINE_FROM_NUMBER, or else one of the Messaging Service's own numbers (a Messaging Service sends
        texts but cannot place a call: Twilio needs a 'From' number). Raises Rejected (21213) when there is
        none: a service with only an alphanumeric sender cannot ring a landline."""
        if self.config.from_number:
            return self.config.from_number
        with self._caller_lock:
            now = datetime.now(timezone.utc)
            if self._caller is None or now - self._caller[0] > _CALLER_ID_TTL:
                self._caller = (now, self._service_number())
            number = self._caller[1]
        if number is None:
            raise Rejected(
                f"no number to place alert calls from: Messaging Service {self.config.messaging_service_sid} has no phone"
                " number; set HOTLINE_FROM_NUMBER to a Twilio number that can make calls",
                code=NO_CALLER_ID,
            )
        return number

    def _service_number(self) -> str | None:
        try:
            numbers = self.client.messaging.v1.services(self.config.messaging_service_sid).phone_numbers.list(limit=20)
        except (TwilioRestException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        voice = [n.phone_number for n in numbers if any(str(c).lower() == "voice" for c in (n.capabilities or []))]
        return (voice or [n.phone_number for n in numbers] or [None])[0]

    def _call_from(self) -> str | None:
        try:
            return self.caller_id()
        except CarrierError:
            return None

    def send_sms(self, *, to: str, body: str, status_callback: str | None, pace=None) -> Accepted:
        extra = {"status_callback": status_callback} if status_callback else {}
        try:
            with _paced(pace):
                message = self.client.messages.create(
                    to=to, body=body, validity_period=self.config.sms_validity_seconds, **self._sender(), **extra
                )
        except (TwilioRestException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        return Accepted(sid=message.sid, status=message.status)

    def find_sms(self, *, to: str, body: str, since: datetime, exclude=frozenset()) -> Accepted | None:
        """A message to `to` with this body created since `since`: proof an uncertain send got through."""
        filters = {"to": to}
        if self.config.from_number and not self.config.messaging_service_sid:
            filters["from_"] = self.config.from_number
        try:
            recent = self.client.messages.list(limit=50, page_size=50, **filters)
        except (TwilioRestException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        for message in recent:
            created = message.date_created
            if message.body == body and message.sid not in exclude and (created is None or created >= since - _CLOCK_SLACK):
                return Accepted(sid=message.sid, status=message.status)
        return None

    def place_call(self, *, to: str, twiml: str, status_callback: str | None, url: str | None = None, pace=None) -> Accepted:
        extra = {}
        if status_callback:
            extra = {
                "status_callback": status_callback,
                "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            }
        # A URL of ours lets the answer depend on AnsweredBy and offer keys; inline TwiML cannot.
        extra.update({"url": url, "method": "POST"} if url else {"twiml": twiml})
        caller = self.caller_id()  # before the pace: a call we cannot place takes no turn from the others
        try:
            with _paced(pace):
                call = self.client.calls.create(
                    to=to,
                    from_=caller,
                    machine_detection="DetectMessageEnd",
                    **extra,
                )
        except (TwilioRestException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        return Accepted(sid=call.sid, status=call.status)

    def find_call(self, *, to: str, since: datetime, exclude=frozenset()) -> Accepted | None:
        """The earliest call to `to` since `since` that is not one of `exclude` (calls recorded for other
        deliveries): a call has no body to compare, so the calls we know are someone else's are left out."""
        try:
            recent = self.client.calls.list(to=to, from_=self._call_from(), limit=20)
        except (TwilioRestException, requests.RequestException) as exc:
            raise _translate(exc) from exc
        for call in reversed(recent):  # Twilio lists newest first
            created = call.date_created
            if call.sid not in exclude and (created is None or created >= since - _CLOCK_SLACK):
                return Accepted(sid=call.sid, status=call.status)
        return None

    def delete_recording(self, url: str) -> bool:
        """Twilio keeps a recording until it is deleted: DELETE /Recordings/RE….json. A URL that names no
        recording of Twilio's has nothing to delete there."""
        match = _RECORDING_SID.search(url or "")
        if not match:
            return True
        try:
            self.client.recordings(match.group(1)).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                return True  # deleted already (by us, or in the console)
            raise _translate(exc) from exc
        except requests.RequestException as exc:
            raise _translate(exc) from exc
        return True

    def fetch_status(self, *, channel: str, sid: str) -> tuple[str, int | None] | None:
        """One GET of the message or call: its status and error code as Twilio has them now."""
        try:
            found = self.client.calls(sid).fetch() if channel == "call" else self.client.messages(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise _translate(exc) from exc
        except requests.RequestException as exc:
            raise _translate(exc) from exc
        code = getattr(found, "error_code", None)
        return found.status, int(code) if code else None
