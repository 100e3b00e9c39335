"""Shared fixtures: the app on a fresh database, a signed-webhook client, a fake Twilio REST API."""

from __future__ import annotations

import atexit
import builtins
import itertools
import json
import os
import re
import shutil
import tempfile
import threading
import time
import types
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse
from xml.etree import ElementTree

import pytest
import responses
from flask import Flask
from jinja2 import BytecodeCache
from sqlalchemy.engine import make_url
from sqlmodel import Session
from twilio.request_validator import RequestValidator
from werkzeug.routing import Rule

from hotline import create_app
from hotline.models import AlertChannel, Street
from hotline.residents import members

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://hotline.example.org"
FROM_NUMBER = "+447400123456"


def _worker_database(url: str | None) -> str | None:
    """Under pytest-xdist (`-n 2`, as scripts/test runs the suite) each worker process gets a PostgreSQL
    database of its own beside the one named (hotline_test_gw0, hotline_test_gw1 …), made empty when
    the worker starts and dropped when it ends. A single process uses the database named."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not url.startswith("postgresql") or not worker:
        return url
    given = make_url(url)
    own = given.set(database=f"{given.database}_{worker}")
    _postgres_admin(url, f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)', f'CREATE DATABASE "{own.database}"')
    _worker_databases.append((url, own.database))
    rendered = own.render_as_string(hide_password=False)
    os.environ["HOTLINE_TEST_DATABASE_URL"] = rendered  # for anything that reads it, such as the benchmarks
    return rendered


def _postgres_admin(url: str, *statements: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.hookimpl(tryfirst=True)  # before xdist tells the controller this worker is done (it may then end the worker)
def pytest_sessionfinish(session) -> None:
    while _postgres_engines:
        _postgres_engines.popitem()[1].dispose()
    while _worker_databases:
        url, name = _worker_databases.pop()
        _postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_worker_databases: list[tuple[str, str]] = []
TEST_DATABASE_URL = _worker_database(os.environ.get("HOTLINE_TEST_DATABASE_URL"))
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
        _migrated_schema.pop(url, None)


def _migrated(url: str) -> None:
    """The suite's database as a first start leaves it: every migration applied, nothing else in it.

    Running the migrations for every test costs more than most tests (tens of CREATE TABLEs, each
    synced to disk). So migrate once: SQLite copies a file migrated once per test process into a new
    test's folder (an existing file is left alone, as create_app would leave it); PostgreSQL empties
    the tables and restarts the sequences of a schema whose fingerprint (columns, indexes,
    constraints, relations, migration record) still equals the one migrated from nothing, and
    otherwise (a test migrated, created or dropped something) drops the schema and migrates again.
    """
    if url.startswith("sqlite"):
        path = Path(make_url(url).database)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_sqlite_template(), path)
    elif url.startswith("postgresql"):
        _postgres_migrated(url)


def _sqlite_template() -> Path:
    """An SQLite file migrated to head once in this process (removed when the process exits)."""
    global _sqlite_template_file
    if _sqlite_template_file is None:
        from hotline.db import make_engine
        from hotline.migrations import upgrade

        folder = Path(tempfile.mkdtemp(prefix="hotline-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "hotline.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with engine.connect() as connection:  # everything in the one file, nothing left in a -wal beside it
            connection.exec_driver_sql("PRAGMA journal_mode=DELETE")
        engine.dispose()
        assert not Path(f"{path}-wal").exists()
        _sqlite_template_file = path
    return _sqlite_template_file


_sqlite_template_file: Path | None = None
# PostgreSQL URL -> (schema fingerprint, the statements that empty its tables and put each sequence back where it
# stood) as recorded right after migrating that database from nothing.
_migrated_schema: dict[str, tuple[str, str]] = {}
_SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(item, '|' ORDER BY item)) FROM (
    SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable, column_default) AS item
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT format('relation %s %s', relname, relkind) FROM pg_class WHERE relnamespace = 'public'::regnamespace
    UNION ALL SELECT format('type %s', typname) FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT format('function %s', proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT format('trigger %s %s', tgrelid::regclass, tgname) FROM pg_trigger
      WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
    UNION ALL SELECT format('revision %s', version_num) FROM alembic_version
) AS schema
"""


def _postgres_migrated(url: str) -> None:
    from sqlalchemy import MetaData, text

    from hotline.migrations import upgrade

    engine = _postgres_engine(url)
    known = _migrated_schema.get(url)
    if known is not None:
        fingerprint, emptying = known
        try:
            with engine.begin() as connection:  # one transaction, two round trips: the check, then every DELETE and setval
                if connection.execute(text(_SCHEMA_FINGERPRINT)).scalar() == fingerprint:
                    connection.exec_driver_sql(emptying)
                    return
        except Exception:  # anything unexpected: start from nothing instead
            pass
    _migrated_schema.pop(url, None)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(engine)
    with engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(connection)
        tables = [table.name for table in reversed(metadata.sorted_tables) if table.name != "alembic_version"]
        if any(connection.execute(text(f'SELECT EXISTS (SELECT FROM "{table}")')).scalar() for table in tables):
            return  # a migration put rows in: emptying would not give its state back, so always migrate anew
        statements = [f'DELETE FROM "{table}"' for table in tables]  # children first, so no foreign key stops a DELETE
        for name, last_value, start in connection.execute(
                text("SELECT sequencename, last_value, start_value FROM pg_sequences WHERE schemaname = 'public'")):
            regclass = '"{}"'.format(name.replace('"', '""')).replace("'", "''")
            value, called = (start, "false") if last_value is None else (last_value, "true")
            statements.append(f"SELECT setval('{regclass}', {int(value)}, {called})")
        _migrated_schema[url] = (connection.execute(text(_SCHEMA_FINGERPRINT)).scalar(), "; ".join(statements))


def _postgres_engine(url: str):
    """One engine (one pooled connection, idle between tests) per PostgreSQL URL for emptying the database:
    a new connection for each test costs more than emptying it."""
    engine = _postgres_engines.get(url)
    if engine is None:
        from hotline.db import make_engine

        engine = _postgres_engines[url] = make_engine(url)
    return engine


_postgres_engines: dict = {}


def build_app(tmp_path, *, twilio: bool, **overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
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
    _migrated(url)
    app = create_app({"testing": True, **overrides}, instance_path=tmp_path / "instance", environ=environ)
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    return app


class _CompiledTemplates(BytecodeCache):
    """Each template compiled once per test process rather than once per app (the tests build hundreds
    of apps); Jinja checks each template's source against the compiled code's checksum before using it."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


class _RuleBuiltOnce(Rule):
    """Werkzeug's Rule, its URL builders compiled once per test process rather than once per app.

    Binding a rule to an app's URL map compiles two small Python functions for url_for (an AST, then
    `compile`): about two thirds of create_app's time, paid again by every test's app for the same
    sixty-odd rules. The compiled code depends only on the rule's parsed parts and its defaults' names
    (converters are looked up through the rule when the URL is built), so each rule's code is compiled
    as Werkzeug compiles it the first time and made into a new function for each later app. A default
    baked into the code through its converter is compiled every time, as Werkzeug does.
    tests/test_suite_setup.py checks every route's builders against Werkzeug's own."""

    _compiled: dict[tuple, types.CodeType] = {}

    def _compile_builder(self, append_unknown: bool = True):
        defaults = self.defaults or {}
        if any(dynamic and data in defaults for dynamic, data in self._trace):
            return super()._compile_builder(append_unknown)
        key = (self.rule, tuple(self._trace), tuple(str(name) for name in defaults), append_unknown)
        code = self._compiled.get(key)
        if code is None:
            builder = super()._compile_builder(append_unknown)
            self._compiled[key] = builder.__code__
            return builder
        return types.FunctionType(code, {"__builtins__": builtins}, code.co_name, ("",) * len(defaults) or None)


if hasattr(Rule, "_compile_builder") and hasattr(Rule, "_get_func_code"):  # Werkzeug 2.2 and later: else compile as it does
    Flask.url_rule_class = _RuleBuiltOnce


NEVER_QUIET = {"HOTLINE_QUIET_HOURS": "00:00-00:00"}  # for tests that must not depend on the hour they run at


@pytest.fixture
def app(tmp_path, request):
    """Twilio mode (credentials set, signatures required), REST faked by the `twilio_api` fixture; a module
    marked `pytestmark = pytest.mark.never_quiet` gets no quiet hours."""
    never_quiet = request.node.get_closest_marker("never_quiet") is not None
    app = build_app(tmp_path, twilio=True, environ=NEVER_QUIET if never_quiet else {})
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

    def call(self, caller: str, **kw) -> "PhoneCall":
        """A phone call to the hotline (or an answered alert call), each step signed as Twilio signs it."""
        return PhoneCall(self, caller, **kw)


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
        self.latency = 0.0  # seconds each POST takes to answer, like a slow API
        self.stamps: list[float] = []  # time.monotonic() as each POST arrived
        self._lock = threading.Lock()
        self._sid = itertools.count(1)
        mock.add_callback(responses.POST, f"{API}/Messages.json", callback=self._create_message)
        mock.add_callback(responses.GET, re.compile(re.escape(f"{API}/Messages.json") + r".*"), callback=self._list_messages)
        mock.add_callback(responses.POST, f"{API}/Calls.json", callback=self._create_call)
        mock.add_callback(responses.GET, re.compile(re.escape(f"{API}/Calls.json") + r".*"), callback=self._list_calls)
        mock.add_callback(responses.GET, re.compile(re.escape(f"{API}/") + r"(Messages|Calls)/(SM|CA)\w+\.json"), callback=self._fetch_one)
        mock.add_callback(responses.DELETE, re.compile(re.escape(f"{API}/Recordings/") + r"RE\w+\.json"), callback=self._delete_recording)
        self.deleted_recordings: list[str] = []
        self.service_numbers: dict[str, list[str]] = {}  # Messaging Service SID -> its phone numbers
        mock.add_callback(responses.GET, re.compile(r"https://messaging\.twilio\.com/v1/Services/MG\w+/PhoneNumbers.*"),
                          callback=self._service_numbers)

    def fail_next(self, *answers):
        self.failures.extend(answers)

    def to(self, number: str) -> list[dict]:
        return [m for m in self.sent if m["To"] == number]

    def _scripted(self, form):
        with self._lock:
            self.requests.append(form)
            self.stamps.append(time.monotonic())
        if self.latency:
            time.sleep(self.latency)
        if not self.failures:
            return None
        answer = self.failures.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple) and len(answer) == 3:  # (status, code, message); {to} becomes the number
            status, code, message = answer
            message = message.format(to=form.get("To", ""))
        else:
            status, code = answer if isinstance(answer, tuple) else (answer, 20500 if answer >= 500 else 20429)
            message = f"fake error {code}"
        return status, {}, json.dumps({"code": code, "message": message, "status": status})

    def _create_message(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        scripted = self._scripted(form)
        if scripted:
            return scripted
        with self._lock:
            sid = f"SM{next(self._sid):032x}"
        message = {**form, "sid": sid, "status": "queued", "date_created": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")}
        self.sent.append(message)
        return 201, {}, json.dumps({"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"], "from": form.get("From"), "date_created": message["date_created"]})

    def _create_call(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        scripted = self._scripted(form)
        if scripted:
            return scripted
        with self._lock:
            sid = f"CA{next(self._sid):032x}"
        created = datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
        self.calls.append({**form, "sid": sid, "status": "queued", "date_created": created})
        return 201, {}, json.dumps({"sid": sid, "status": "queued", "to": form["To"], "date_created": created})

    def _service_numbers(self, request):
        service = re.search(r"/Services/(MG\w+)/", request.url).group(1)
        with self._lock:
            self.requests.append({"ServiceNumbers": service})
        rows = [{"sid": f"PN{n:032x}", "service_sid": service, "phone_number": number, "capabilities": ["SMS", "Voice"]}
                for n, number in enumerate(self.service_numbers.get(service, []))]
        meta = {"page": 0, "page_size": 20, "first_page_url": request.url, "previous_page_url": None, "url": request.url,
                "next_page_url": None, "key": "phone_numbers"}
        return 200, {}, json.dumps({"phone_numbers": rows, "meta": meta})

    def _fetch_one(self, request):
        sid = re.search(r"/((SM|CA)\w+)\.json", request.url).group(1)
        with self._lock:
            self.requests.append({"Fetch": sid})
        found = next((m for m in [*self.sent, *self.calls] if m["sid"] == sid), None)
        if found is None:
            return 404, {}, json.dumps({"code": 20404, "message": "not found", "status": 404})
        return 200, {}, json.dumps({"sid": sid, "status": found["status"], "to": found["To"], "error_code": found.get("error_code"),
                                    "date_created": found["date_created"]})

    def _delete_recording(self, request):
        scripted = self._scripted({"Recording": request.url})
        if scripted:
            return scripted
        self.deleted_recordings.append(re.search(r"(RE\w+)\.json", request.url).group(1))
        return 204, {}, ""

    def _list_calls(self, request):
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        found = [c for c in reversed(self.calls) if c["To"] == query.get("To", c["To"]) and c.get("From") == query.get("From", c.get("From"))]
        payload = [{"sid": c["sid"], "status": c["status"], "to": c["To"], "from": c.get("From"), "date_created": c["date_created"]} for c in found]
        return 200, {}, json.dumps({"calls": payload, "page": 0, "page_size": 50, "next_page_uri": None, "first_page_uri": None, "uri": "", "previous_page_uri": None})

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


def speaks(session, street: Street, phone: str, code: str, *, alerts=AlertChannel.SMS) -> None:
    """An active member of `street` whose language is `code`."""
    add_members(session, street, [phone], alerts=alerts)
    found = members.find(session, phone)
    found.language = code
    session.add(found)
    session.commit()


# Landlines (valid UK fixed-line numbers in Ofcom's drama range): no texts, alerts only by call.
LANDLINES = [f"+44207946{n:04d}" for n in range(100, 1000)]
TWIML_ENDINGS = {"Gather", "Redirect", "Hangup"}


def check_voice_twiml(response, language: str | None = "en") -> ElementTree.Element:
    """What every voice answer must be: 200, TwiML ending in Gather, Redirect or Hangup, every <Say> in the
    caller's language's voice (bar the language menu, where each choice has its own), Gathers that say what
    they listen for and listen in the caller's language. `language` None: whichever one language the answer
    speaks (the fuzzers' callers may have chosen one on an earlier call), but one, and its voice with its
    recogniser."""
    from hotline.translations import LANGUAGES

    assert response.status_code == 200, (response.status_code, response.data[:500])
    assert response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response" and len(root), response.data
    assert root[-1].tag in TWIML_ENDINGS, response.data
    if language is None:
        language = _language_spoken(root)
    theirs = (LANGUAGES[language].voice, LANGUAGES[language].say_language)
    every = {(lang.voice, lang.say_language) for lang in LANGUAGES.values()}
    voices = [(say.get("voice"), say.get("language")) for say in root.iter("Say")]
    for say in root.iter("Say"):
        assert (say.get("voice"), say.get("language")) in every, ElementTree.tostring(say)
        assert (say.text or "").strip()
    if any(pair != theirs for pair in voices):  # only the language menu speaks in other voices: all of them
        assert set(voices) == every, (language, voices)
    for gather in root.iter("Gather"):
        assert gather.get("input") in ("dtmf", "speech", "dtmf speech") and gather.get("language") == LANGUAGES[language].speech
        assert gather.get("action")
    for record in root.iter("Record"):
        assert record.get("action") and int(record.get("maxLength")) <= 90
    return root


def _language_spoken(root: ElementTree.Element) -> str:
    """The language an answer is in: its Gather's recogniser, else its first <Say>'s voice (English if neither)."""
    from hotline.translations import LANGUAGES

    gather = next(root.iter("Gather"), None)
    if gather is not None:
        heard = [code for code, lang in LANGUAGES.items() if lang.speech == gather.get("language")]
        assert heard, ElementTree.tostring(gather)
        return heard[0]
    say = next(root.iter("Say"), None)
    if say is None:
        return "en"
    spoken = [code for code, lang in LANGUAGES.items() if (lang.voice, lang.say_language) == (say.get("voice"), say.get("language"))]
    assert spoken, ElementTree.tostring(say)
    return spoken[0]


class PhoneCall:
    """One call driven the way Twilio drives it: read each TwiML answer, post Digits or SpeechResult
    to the Gather's action resolved against the current URL, follow Redirects, stop at Hangup."""

    _sids = itertools.count(1)

    def __init__(self, client: SignedClient, caller: str, *, to: str = FROM_NUMBER, sid: str | None = None, direction: str = "inbound",
                 language: str | None = "en"):
        self.client, self.caller, self.to, self.direction = client, caller, to, direction
        self.language = language  # the caller's: every answer is checked for its voice and recogniser (None: any one)
        self.sid = sid or f"CA{next(self._sids):032d}"
        self.url: str | None = None
        self.root: ElementTree.Element | None = None
        self.said: list[str] = []  # what the last answer (and the redirects it led to) said
        self.transcript: list[str] = []  # everything said during the call
        self.ended = False
        self.requests = 0

    @property
    def text(self) -> str:
        return " ".join(self.said)

    def start(self, path: str = "/twilio/voice", **extra) -> "PhoneCall":
        self.said = []
        return self._request(PUBLIC_URL + path, extra)

    def post(self, url: str, **extra):
        """Post one step by hand (e.g. the same step twice); returns the raw response."""
        return self.client.post(url[len(PUBLIC_URL):], self._form(extra))

    def _form(self, extra: dict) -> dict:
        form = {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": self.caller, "To": self.to,
                "Direction": self.direction, "CallStatus": "in-progress"}
        return {**form, **{k: v for k, v in extra.items() if v is not None}}

    def _request(self, url: str, extra: dict) -> "PhoneCall":
        assert not self.ended, "the call has ended"
        assert url.startswith(PUBLIC_URL + "/twilio/"), url
        self.requests += 1
        root = check_voice_twiml(self.post(url, **extra), self.language)
        self.url, self.root = url, root
        self._play(list(root), url)
        return self

    def _play(self, verbs, url) -> None:
        """Say what is said until something listens; follow a Redirect; stop at Hangup."""
        for verb in verbs:
            if verb.tag in ("Gather", "Record"):
                self._say(verb.iter("Say"))
                return
            if verb.tag == "Say":
                self._say([verb])
            elif verb.tag == "Redirect":
                return self._request(urljoin(url, verb.text.strip()), {})
            elif verb.tag == "Hangup":
                self.ended = True
                return

    def _say(self, says) -> None:
        for say in says:
            self.said.append(say.text.strip())
            self.transcript.append(say.text.strip())

    def listening(self, tag: str = "Gather") -> ElementTree.Element | None:
        return None if self.ended or self.root is None else self.root.find(tag)

    def _answer(self, tag: str, wants: str | None, extra: dict) -> "PhoneCall":
        node = self.listening(tag)
        assert node is not None, f"nothing is listening ({tag}): {self.text}"
        if wants:
            assert wants in node.get("input", "dtmf").split(), f"{tag} listens for {node.get('input')}, not {wants}"
        self.said = []
        return self._request(urljoin(self.url, node.get("action")), extra)

    def press(self, keys: str) -> "PhoneCall":
        gather = self.listening()
        finish = gather.get("finishOnKey", "#") if gather is not None else "#"
        digits = keys[:-1] if len(keys) > 1 and keys.endswith(finish) else keys  # Twilio drops the finishing key
        return self._answer("Gather", "dtmf", {"Digits": digits})

    def say(self, words: str, confidence: str = "0.92") -> "PhoneCall":
        return self._answer("Gather", "speech", {"SpeechResult": words, "Confidence": confidence})

    def record(self, seconds: int = 14, url: str = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1") -> "PhoneCall":
        return self._answer("Record", None, {"RecordingUrl": url, "RecordingDuration": str(seconds), "RecordingSid": "RE" + "1" * 32})

    def send(self, **form) -> "PhoneCall":
        """Post any form to whatever listens now (Gather or Record): keys where words were expected …"""
        node = self.listening("Gather")
        return self._answer("Gather" if node is not None else "Record", None, form)

    def silence(self) -> "PhoneCall":
        """No key and no words: Twilio carries on with the verbs after the Gather (or Record)."""
        node = self.listening("Gather")
        node = node if node is not None else self.listening("Record")
        assert node is not None, "nothing is listening"
        verbs = list(self.root)
        self.said = []
        self._play(verbs[verbs.index(node) + 1:], self.url)
        return self


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
