"""The database unreachable when a webhook arrives, process-level: real `hotline web` + `hotline worker`
on PostgreSQL reached through a proxy the test cuts and restores (tests/standin/dbproxy.py).

An SMS is answered 503, so Twilio fetches the number's fallback URL instead of losing it; /healthz is 503
so a load balancer stops sending traffic; a call hears a spoken apology (200: a 5xx would make Twilio say
"an application error has occurred" in an American voice, unless a fallback URL is set). Once the
database is back the next report works, and nothing is ever half-written: a report is there with all
its deliveries and its InboundEvent, or none of them is.
"""

from __future__ import annotations

import collections
import time
import urllib.request
from xml.etree import ElementTree

import pytest
from sqlmodel import Session, func, select

from hotline.db import make_engine, utcnow
from hotline.models import Delivery, InboundEvent, JobRun, Report, ReportState
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.delivery.test_faults import record, seed_street
from tests.standin.dbproxy import DatabaseProxy
from tests.standin.processes import Hotline, wait_until
from tests.standin.twilio import TwilioStandIn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
NEIGHBOURS = 10


@pytest.fixture
def proxy(postgres_url):
    proxy = DatabaseProxy(postgres_url)
    yield proxy
    proxy.stop()


@pytest.fixture
def hotline(tmp_path, proxy):
    """A street of 11, then web (2 workers) and worker running, every database connection through the proxy."""
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    hotline = Hotline(tmp_path, database_url=proxy.url_through, standin=standin, HOTLINE_SEND_RATE="20")
    hotline.numbers = seed_street(hotline, NEIGHBOURS)
    hotline.start_web(workers=2)
    hotline.start_worker()
    yield hotline
    hotline.stop()
    standin.stop()


def healthz(hotline: Hotline) -> int:
    try:
        with urllib.request.urlopen(hotline.public_url + "/healthz", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def call(hotline: Hotline, caller: str, sid: str) -> ElementTree.Element:
    status, body = hotline.post("/twilio/voice", {"CallSid": sid, "From": caller, "To": "+447400123456", "AccountSid": ACCOUNT_SID})
    assert status == 200, body
    root = ElementTree.fromstring(body)
    assert root[-1].tag == "Hangup" and all(say.get("language") == "en-GB" for say in root.iter("Say"))
    return root


def sms_sid(n: int) -> str:
    return f"SM{n:032x}"


def database(hotline: Hotline):
    return make_engine(hotline.environ["HOTLINE_DATABASE_URL"])


def check_whole(hotline: Hotline) -> collections.Counter:
    """Nothing half-written: every broadcast report has one delivery per neighbour, every SMS event its report."""
    engine = database(hotline)
    with Session(engine) as session:
        reports = session.exec(select(Report)).all()
        for report in reports:
            assert report.state == ReportState.SENT, (report.text, report.state, report.reason)
            phones = session.exec(select(Delivery.phone).where(Delivery.report_id == report.id)).all()
            assert len(phones) == len(set(phones)) == NEIGHBOURS and report.phone not in phones, report.text
        events = session.exec(select(func.count()).select_from(InboundEvent).where(InboundEvent.kind == "sms")).one()
        assert events == len(reports)  # every SMS in these tests is a report
        states = collections.Counter(session.exec(select(Delivery.state)).all())
    engine.dispose()
    return states


def wait_sent(hotline: Hotline, count: int) -> None:
    assert wait_until(lambda: len(hotline.standin.messages) >= count, timeout=60), (len(hotline.standin.messages), count)
    time.sleep(0.5)  # anything more would be a duplicate: give it the chance to show
    sent = collections.Counter((m["to"], m["body"]) for m in hotline.standin.messages)
    assert len(hotline.standin.messages) == count and max(sent.values()) == 1, sent.most_common(3)


def test_database_gone_when_texts_arrive_answers_503_and_the_next_report_works(hotline, proxy):
    numbers = hotline.numbers
    status, body = hotline.sms(numbers[0], "van parked across the drive", sms_sid(1))
    assert status == 200 and f"sent to {NEIGHBOURS} neighbours".encode() in body
    wait_sent(hotline, NEIGHBOURS)

    proxy.cut()
    cut_at = time.monotonic()
    answers, slowest = [], 0.0
    for n in range(1, 11):  # ten residents report while the database is away
        started = time.monotonic()
        answers.append(hotline.sms(numbers[n], f"while away {n}: someone in the alley", sms_sid(100 + n)))
        slowest = max(slowest, time.monotonic() - started)
    assert [status for status, _ in answers] == [503] * 10
    assert healthz(hotline) == 503
    said = " ".join(say.text for say in call(hotline, numbers[1], "CA" + "1" * 32).iter("Say"))
    assert "not working properly" in said and "999" in said
    status, _ = hotline.post("/twilio/status", {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID})
    assert status == 503

    time.sleep(max(0.0, 3.0 - (time.monotonic() - cut_at)))  # away for 3 s: the worker fails a few ticks and backs off
    proxy.restore()
    restored = time.monotonic()
    assert wait_until(lambda: healthz(hotline) == 200, timeout=30)
    status, body = hotline.sms(numbers[1], "after: the van has gone", sms_sid(2))
    assert status == 200 and f"sent to {NEIGHBOURS} neighbours".encode() in body
    recovered = time.monotonic() - restored
    # Had the number's fallback URL pointed back at a hotline, Twilio's retry of a refused text acts once now.
    status, body = hotline.sms(numbers[3], "while away 3: someone in the alley", sms_sid(103))
    assert status == 200 and b"sent to" in body
    assert hotline.sms(numbers[3], "while away 3: someone in the alley", sms_sid(103))[0] == 200  # and once only
    wait_sent(hotline, 3 * NEIGHBOURS)
    caught_up = time.monotonic() - restored - 0.5  # the worker's own retries, after its failed ticks while cut

    check_whole(hotline)
    engine = database(hotline)
    with Session(engine) as session:
        texts = set(session.exec(select(Report.text)).all())
        assert not any(t.startswith("while away") and t != "while away 3: someone in the alley" for t in texts)
    engine.dispose()
    record("database unreachable when SMS arrive (PostgreSQL cut)", requests=14, refused_503=10, slowest_503_s=round(slowest, 3),
           healthz_while_cut=503, voice_while_cut="200 apology", away_s=round(restored - cut_at, 1), recovered_s=round(recovered, 2), worker_caught_up_s=round(caught_up, 2), reconnects_refused=proxy.refused,
           accepted=len(hotline.standin.messages), duplicates=0, lost=0)


@pytest.mark.parametrize("when", ["before", "after"])
def test_database_lost_at_the_commit_leaves_a_report_whole_or_absent(hotline, proxy, when):
    """`before`: the COMMIT never reached the server, so nothing of the report exists. `after`: it was
    committed but the answer was lost, so the app said 503 about a report that went out: then Twilio's
    retry of the same MessageSid is answered as a duplicate and nobody is texted twice."""
    numbers = hotline.numbers
    text = f"ladder against number {7 if when == 'before' else 9}"
    proxy.cut_at(text.encode(), forward=when == "after")
    status, _ = hotline.sms(numbers[0], text, sms_sid(200))
    assert status == 503 and proxy.commits_cut == [when]
    proxy.restore()
    assert wait_until(lambda: healthz(hotline) == 200, timeout=30)

    engine = database(hotline)
    with Session(engine) as session:
        committed = session.exec(select(func.count()).select_from(Report).where(Report.text == text)).one()
        assert committed == (1 if when == "after" else 0)
        assert (session.get(InboundEvent, f"sms:{sms_sid(200)}") is not None) == (when == "after")
    engine.dispose()
    check_whole(hotline)

    status, body = hotline.sms(numbers[0], text, sms_sid(200))  # Twilio (or its fallback) tries again
    assert status == 200 and f"sent to {NEIGHBOURS} neighbours".encode() in body
    wait_sent(hotline, NEIGHBOURS)
    states = check_whole(hotline)
    record(f"database lost at the COMMIT ({when} it reached the server)", requests=2, refused_503=1, reports=1,
           deliveries=sum(states.values()), accepted=len(hotline.standin.messages), duplicates=0, lost=0)


# HOTLINE_DB_TIMEOUT 3 s. At worst a request waits for a pool slot (3 s), a pooled connection's ping (3.5 s), then a
# new connection (3 s): 9.5 s, seen once with two test processes on a loaded machine. 12 s keeps 3 s inside Twilio's 15.
WELL_INSIDE_TWILIOS_15_S = 12.0


def timed(request) -> tuple[float, object]:
    started = time.monotonic()
    answer = request()
    return time.monotonic() - started, answer


def test_database_stalled_when_texts_arrive_is_answered_well_inside_twilios_15_s(hotline, proxy):
    """The database accepts connections and then says nothing (a hung server or network): nothing is refused,
    so only our own limits end the wait. Texts 503, /healthz 503, a call its apology, each in under 12 s;
    the worker (dispatcher and scheduler) lives through it and carries on once the database answers."""
    numbers = hotline.numbers
    status, body = hotline.sms(numbers[0], "van parked across the drive", sms_sid(1))
    assert status == 200 and f"sent to {NEIGHBOURS} neighbours".encode() in body
    wait_sent(hotline, NEIGHBOURS)

    proxy.stall()
    stalled_at = time.monotonic()
    waits, answers = [], []
    for n in range(1, 5):  # one after another, so each answer's time is its own and not a queue's
        waited, answer = timed(lambda: hotline.sms(numbers[n], f"while stalled {n}: someone in the alley", sms_sid(300 + n)))
        waits.append(waited)
        answers.append(answer[0])
    waited, root = timed(lambda: call(hotline, numbers[1], "CA" + "2" * 32))
    waits.append(waited)
    said = " ".join(say.text for say in root.iter("Say"))
    assert "not working properly" in said and "999" in said
    waited, status = timed(lambda: hotline.post("/twilio/status", {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID})[0])
    waits.append(waited)
    answers.append(status)
    waited, status = timed(lambda: healthz(hotline))
    waits.append(waited)
    assert answers == [503] * 5 and status == 503
    assert max(waits) < WELL_INSIDE_TWILIOS_15_S, waits
    hanging = proxy.held_count
    assert hanging > 0  # the requests really were left hanging, not refused
    worker = hotline.processes[-1]
    assert worker.process.poll() is None, worker.output

    proxy.restore()
    restored = time.monotonic()
    assert wait_until(lambda: healthz(hotline) == 200, timeout=30)
    status, body = hotline.sms(numbers[2], "after: the van has gone", sms_sid(2))
    assert status == 200 and f"sent to {NEIGHBOURS} neighbours".encode() in body
    recovered = time.monotonic() - restored
    status, body = hotline.sms(numbers[3], "while stalled 3: someone in the alley", sms_sid(303))  # Twilio's fallback, once more
    assert status == 200 and b"sent to" in body
    wait_sent(hotline, 3 * NEIGHBOURS)
    caught_up = time.monotonic() - restored - 0.5

    check_whole(hotline)
    engine = database(hotline)
    with Session(engine) as session:
        texts = set(session.exec(select(Report.text)).all())
        assert not any(t.startswith("while stalled") and t != "while stalled 3: someone in the alley" for t in texts)
    engine.dispose()
    assert worker.process.poll() is None, worker.output
    back = utcnow()
    assert wait_until(lambda: jobs_ran_since(hotline, back), timeout=120), worker.output  # the scheduled jobs carry on too
    jobs_back = time.monotonic() - restored
    record("database stalled when SMS arrive (PostgreSQL hangs)", requests=7, refused_503=5, slowest_answer_s=round(max(waits), 2),
           first_answer_s=round(waits[0], 2), healthz_while_stalled=503, voice_while_stalled="200 apology",
           stalled_s=round(restored - stalled_at, 1), connections_left_hanging=hanging, recovered_s=round(recovered, 2),
           worker_caught_up_s=round(caught_up, 2), jobs_ran_again_s=round(jobs_back, 1), accepted=len(hotline.standin.messages),
           duplicates=0, lost=0)


def jobs_ran_since(hotline: Hotline, moment) -> bool:
    engine = database(hotline)
    with Session(engine) as session:
        ran = session.exec(select(func.count()).select_from(JobRun).where(JobRun.succeeded_at > moment)).one()
    engine.dispose()
    return ran > 0
