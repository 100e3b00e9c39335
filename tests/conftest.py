"""Shared fixtures: the app on a fresh database, a signed-webhook client, a fake Twilio REST API."""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from sqlmodel import Session, SQLModel
from twilio.request_validator import RequestValidator

from hotline import create_app, members
from hotline.models import AlertChannel, Street

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://hotline.example.org"
FROM_NUMBER = "+447400123456"
TEST_DATABASE_URL = os.environ.get("HOTLINE_TEST_DATABASE_URL")
API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"

# Valid UK mobiles (phonenumbers says valid, not just possible), for tests where validity matters.
NUMBERS = [f"+4479111{n:05d}" for n in range(100, 1000)]


def _database_url(tmp_path) -> str:
    return TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'hotline.db'}"


def _fresh(url: str) -> None:
    """An empty PostgreSQL database (tables, the migration record, the job store); create_app migrates it."""
    if url.startswith("postgresql"):
        from sqlalchemy import text

        from hotline.db import make_engine

        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()


def build_app(tmp_path, *, twilio: bool, **overrides):
    url = _database_url(tmp_path)
    environ = {"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "test-secret"}
    if twilio:
        environ.update(
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            HOTLINE_FROM_NUMBER=FROM_NUMBER,
            HOTLINE_PUBLIC_URL=PUBLIC_URL,
        )
    environ.update(overrides.pop("environ", {}))
    _fresh(url)
    return create_app({"testing": True, **overrides}, instance_path=tmp_path / "instance", environ=environ)


@pytest.fixture
def app(tmp_path):
    """Twilio mode (credentials set, signatures required), REST faked by the `twilio_api` fixture."""
    app = build_app(tmp_path, twilio=True)
    yield app
    app.extensions["hotline"].engine.dispose()


@pytest.fixture
def sim_app(tmp_path):
    """Simulator mode: no credentials."""
    app = build_app(tmp_path, twilio=False)
    yield app
    app.extensions["hotline"].engine.dispose()


@pytest.fixture
def rt(app):
    return app.extensions["hotline"]


@pytest.fixture
def session(rt):
    with Session(rt.engine, expire_on_commit=False) as session:
        yield session


class SignedClient:
    """Posts to the app the way Twilio does: form-encoded, signed against HOTLINE_PUBLIC_URL + path."""

    _sids = itertools.count(1)

    def __init__(self, app):
        self.client = app.test_client()
        self.validator = RequestValidator(AUTH_TOKEN)

    def post(self, path: str, data: dict, *, signature: str | None = None, sign_url: str | None = None):
        url = sign_url or PUBLIC_URL + path
        headers = {"X-Twilio-Signature": signature if signature is not None else self.validator.compute_signature(url, data)}
        return self.client.post(path, data=data, headers=headers)

    def sms(self, sender: str, body: str, sid: str | None = None):
        sid = sid or f"SM{next(self._sids):032d}"
        return self.post("/twilio/sms", {"From": sender, "To": FROM_NUMBER, "Body": body, "MessageSid": sid, "AccountSid": ACCOUNT_SID, "NumMedia": "0"})

    def status(self, sid: str, status: str, error_code: str | None = None):
        data = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
        if error_code:
            data["ErrorCode"] = error_code
        return self.post("/twilio/status", data)


@pytest.fixture
def twilio(app):
    return SignedClient(app)


class FakeTwilio:
    """Twilio's Messages.json and Calls.json at the HTTP boundary, with scripted failures."""

    def __init__(self, mock: responses.RequestsMock):
        self.mock = mock
        self.sent: list[dict] = []  # every accepted message, in order
        self.calls: list[dict] = []
        self.requests: list[dict] = []  # every POST, accepted or not
        self.failures: list = []  # queued answers for the next POSTs: an int status, (status, code) or an exception
        self._sid = itertools.count(1)
        mock.add_callback(responses.POST, f"{API}/Messages.json", callback=self._create_message)
        mock.add_callback(responses.GET, re.compile(re.escape(f"{API}/Messages.json") + r".*"), callback=self._list_messages)
        mock.add_callback(responses.POST, f"{API}/Calls.json", callback=self._create_call)

    def fail_next(self, *answers):
        self.failures.extend(answers)

    def to(self, number: str) -> list[dict]:
        return [m for m in self.sent if m["To"] == number]

    def _scripted(self, form):
        self.requests.append(form)
        if not self.failures:
            return None
        answer = self.failures.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, code = answer if isinstance(answer, tuple) else (answer, 20500 if answer >= 500 else 20429)
        return status, {}, json.dumps({"code": code, "message": f"fake error {code}", "status": status})

    def _create_message(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        scripted = self._scripted(form)
        if scripted:
            return scripted
        sid = f"SM{next(self._sid):032x}"
        message = {**form, "sid": sid, "status": "queued", "date_created": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")}
        self.sent.append(message)
        return 201, {}, json.dumps({"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"], "from": form.get("From"), "date_created": message["date_created"]})

    def _create_call(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        scripted = self._scripted(form)
        if scripted:
            return scripted
        sid = f"CA{next(self._sid):032x}"
        self.calls.append({**form, "sid": sid})
        return 201, {}, json.dumps({"sid": sid, "status": "queued", "to": form["To"]})

    def _list_messages(self, request):
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        found = [m for m in reversed(self.sent) if m["To"] == query.get("To", m["To"]) and m.get("From") == query.get("From", m.get("From"))]
        payload = [
            {"sid": m["sid"], "status": m["status"], "to": m["To"], "from": m.get("From"), "body": m["Body"], "date_created": m["date_created"]}
            for m in found
        ]
        return 200, {}, json.dumps({"messages": payload, "page": 0, "page_size": 50, "next_page_uri": None, "first_page_uri": None, "uri": "", "previous_page_uri": None})


@pytest.fixture
def twilio_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeTwilio(mock)


def add_street(session, name: str, code: int, **kw) -> Street:
    street = Street(name=name, code=code, **kw)
    session.add(street)
    session.commit()
    return street


def add_members(session, street: Street, numbers: list[str], *, alerts=AlertChannel.SMS):
    for number in numbers:
        members.add(session, number, street, alerts=alerts, active=True)
    session.commit()


@pytest.fixture
def empty_database_url(tmp_path) -> str:
    """The suite's database, emptied (PostgreSQL), or a new SQLite file: nothing in it yet."""
    url = _database_url(tmp_path)
    _fresh(url)
    return url


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture
def postgres_url() -> str:
    """An emptied PostgreSQL database for tests of PostgreSQL's own behaviour (mark them `postgres`).
    Without one they skip on a laptop, and FAIL in CI, where .ci/run always provides one."""
    if TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"):
        _fresh(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    message = "needs PostgreSQL: set HOTLINE_TEST_DATABASE_URL=postgresql+psycopg://user@127.0.0.1/db"
    if in_ci():
        pytest.fail(message + " (CI must run these; .ci/run starts one)")
    pytest.skip(message)
