"""Fuzzing the Twilio routes: never a 5xx, always TwiML or a 4xx, the database consistent afterwards."""

from __future__ import annotations

import collections
import itertools
import logging
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from hotline.models import Delivery, Member, Report, ReportState
from tests.conftest import NUMBERS, SignedClient, add_members, add_street, build_app

KEYWORDS = ["STOP", "stop.", "Stop!", "START", "HELP", "JOIN", "JOIN clayhall", "URGENT", "URGENT x", "LEAVE",
            "CALL ME", "TEXT ME", "Quit hanging round", "stopall ", "  yes  ", "INFO?", "join 101", "JOIN IG5 0AA"]
phones = st.one_of(
    st.sampled_from(NUMBERS[:6]),
    st.sampled_from(["07911 100101", "+44 (0)7911 100102", "447911100103", "+1 415 555 2671", "VODAFONE", "", "+", "12345", "client:anna"]),
    st.text(max_size=30),
)
bodies = st.one_of(
    st.sampled_from(KEYWORDS),
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0x590, max_codepoint=0x6FF), max_size=200),  # Hebrew/Arabic (RTL)
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=50),  # control characters
    st.sampled_from(["🚨" * 500, "x" * 10_000, "é" * 1600]),
)
extra_fields = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=50), max_size=5)
sids = itertools.count(1)


class Failures(logging.Handler):
    """Exceptions the webhooks logged: a polite answer hides them from the resident, not from these tests."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record):
        self.seen.append(self.format(record))


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, request):
    app = build_app(tmp_path_factory.mktemp("fuzz"), twilio=True)
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101, postcodes=["IG5 0AA"])
        add_members(session, street, NUMBERS[:6])
    app.failures = Failures()
    app.requests, failed_before = collections.Counter(), request.session.testsfailed
    logging.getLogger("hotline").addHandler(app.failures)
    yield app
    logging.getLogger("hotline").removeHandler(app.failures)
    if request.session.testsfailed == failed_before:  # for docs/reliability.md: the numbers of a passing run only
        from tests.delivery.test_faults import record

        with Session(rt.engine) as session:
            deliveries = session.exec(select(func.count()).select_from(Delivery)).one()
        record("SMS and status webhooks fuzzed", requests=sum(app.requests.values()), **app.requests,
               deliveries_written=deliveries, server_errors=0, logged_failures=0)
    rt.engine.dispose()


def assert_twiml_or_4xx(response):
    assert response.status_code < 500, response.data[:300]
    if response.status_code == 200:
        assert ElementTree.fromstring(response.data).tag == "Response"


def assert_consistent(rt):
    with Session(rt.engine) as session:
        for delivery in session.exec(select(Delivery)):
            report = session.get(Report, delivery.report_id)
            assert report is not None and report.state == ReportState.SENT
            assert delivery.phone != report.phone
        phones_seen = session.exec(select(Member.phone)).all()
        assert len(phones_seen) == len(set(phones_seen))
        pairs = session.exec(select(Delivery.report_id, Delivery.phone)).all()
        assert len(pairs) == len(set(pairs))  # each number once per report


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sender=phones, body=bodies, extra=extra_fields, sid_missing=st.booleans())
def test_sms_webhook_survives_anything(fuzz_app, sender, body, extra, sid_missing):
    form = {**extra, "From": sender, "Body": body}
    if not sid_missing:
        form["MessageSid"] = f"SM{next(sids):032d}"
    fuzz_app.failures.seen.clear()
    fuzz_app.requests["sms"] += 1
    assert_twiml_or_4xx(SignedClient(fuzz_app).post("/twilio/sms", form))
    assert_consistent(fuzz_app.extensions["hotline"])
    assert not fuzz_app.failures.seen, fuzz_app.failures.seen.pop()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sid=st.one_of(st.text(max_size=40), st.just("")),
    status=st.one_of(st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "busy", "completed", "no-answer"]), st.text(max_size=20)),
    code=st.one_of(st.just(""), st.sampled_from(["21610", "30003", "30006", "abc", "-1", "99999999999999999999"])),
    extra=extra_fields,
)
def test_status_webhook_survives_anything(fuzz_app, sid, status, code, extra):
    form = {**extra, "MessageSid": sid, "MessageStatus": status, "ErrorCode": code}
    fuzz_app.failures.seen.clear()
    fuzz_app.requests["status"] += 1
    response = SignedClient(fuzz_app).post("/twilio/status", form)
    assert response.status_code in (204, 400)
    assert_consistent(fuzz_app.extensions["hotline"])
    assert not fuzz_app.failures.seen, fuzz_app.failures.seen.pop()


@pytest.mark.parametrize(
    "body, reply",
    [
        ("JOIN ¹⁰¹", "know that street"),  # "¹⁰¹".isdigit() is true and int() of it fails: was logged raw as a bug
        ("JOIN 99999999999999999999", "know that street"),
        ("SEND R99999999999999999999", "No report R99999999999999999999"),  # was a database error (503) on PostgreSQL
        ("JOIN ١٠١", "Clayhall Avenue"),  # Arabic-Indic digits are decimal: int() reads them, so they still find code 101
    ],
)
def test_odd_numbers_in_keywords_get_a_proper_answer(fuzz_app, body, reply):
    from hotline.models import Coordinator

    rt = fuzz_app.extensions["hotline"]
    with Session(rt.engine) as session:
        if session.exec(select(Coordinator).where(Coordinator.phone == NUMBERS[7])).first() is None:
            session.add(Coordinator(email="coordinator@example.org", password_hash="x", is_admin=True, phone=NUMBERS[7]))
            session.commit()
    fuzz_app.failures.seen.clear()
    response = SignedClient(fuzz_app).sms(NUMBERS[7], body, sid=f"SModd{next(sids):030d}")
    assert response.status_code == 200
    assert reply in ElementTree.fromstring(response.data).find("Message").text
    assert not fuzz_app.failures.seen, fuzz_app.failures.seen.pop()
