"""What the hotline forgets on its own: what calls left behind, callbacks that never found their message,
recordings at Twilio, and who made a report once retention or erasure has come."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from hotline.db import utcnow
from hotline.models import CallDraft, InboundEvent, UnmatchedStatus
from hotline.ops import jobs
from hotline.residents import members
from tests.conftest import NUMBERS, add_members, add_street


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, NUMBERS[:3])
    return clayhall


def leave_a_draft(twilio, caller: str, words: str):
    """A member starts a report by phone, says it, and hangs up at the read-back: the draft stays behind."""
    call = twilio.call(caller).start().press("1").say(words)
    assert f"I heard: {words}" in call.text
    return call


def call_steps(session, phone: str | None = None) -> int:
    query = select(func.count()).select_from(InboundEvent).where(InboundEvent.kind == "call")
    if phone:
        query = query.where(InboundEvent.phone == phone)
    return session.exec(query).one()


def test_what_a_caller_said_is_erased_a_day_later_by_a_scheduled_job(rt, session, twilio, street):
    leave_a_draft(twilio, NUMBERS[0], "two men climbing into the garden of number 6")
    session.expire_all()
    draft = session.exec(select(CallDraft)).one()
    assert draft.phone == NUMBERS[0] and call_steps(session, NUMBERS[0]) >= 1

    assert jobs.forget_finished_calls(rt, now=utcnow() + timedelta(hours=23))["drafts"] == 0  # the call may go on
    forgotten = jobs.forget_finished_calls(rt, now=utcnow() + timedelta(hours=25))
    assert forgotten["drafts"] == 1 and forgotten["call_steps"] >= 1
    session.expire_all()
    assert session.exec(select(CallDraft)).all() == [] and call_steps(session) == 0
    assert "forget_finished_calls" in {job.id for job in jobs.schedule(rt.config)}


def test_erasure_takes_a_callers_drafts_and_call_steps_with_the_number(rt, session, twilio, street):
    leave_a_draft(twilio, NUMBERS[1], "someone trying the doors of parked cars")
    leave_a_draft(twilio, NUMBERS[2], "a dog barking for hours at number 12")
    members.opt_out(session, NUMBERS[1], now=utcnow() - timedelta(days=31))
    session.commit()

    assert jobs.erase_opted_out(rt, now=utcnow()) == {"erased": 1}
    session.expire_all()
    assert session.exec(select(CallDraft.phone)).all() == [NUMBERS[2]]
    assert call_steps(session, NUMBERS[1]) == 0 and call_steps(session, NUMBERS[2]) >= 1


def test_call_steps_do_not_count_against_the_number_s_sms_reply_cap(tmp_path, twilio_api):
    """Voice steps now carry the caller's number (for erasure); they are not SMS replies."""
    from sqlmodel import Session

    from tests.conftest import SignedClient, build_app

    app = build_app(tmp_path, twilio=True, max_replies_per_hour=2)
    rt, twilio = app.extensions["hotline"], SignedClient(app)
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:2])
    twilio.call(NUMBERS[0]).start().press("9").press("9").press("9")  # three answered steps
    reply = twilio.sms(NUMBERS[0], "HELP").get_data(as_text=True)
    assert "<Message>" in reply
    rt.engine.dispose()


def test_status_callbacks_that_never_found_their_message_expire_after_a_day(rt, session, twilio, street):
    assert twilio.status("CA" + "1" * 32, "completed").status_code == 204  # an inbound call's, say
    session.add(UnmatchedStatus(sid="SM" + "2" * 32, status="delivered", received_at=utcnow() - timedelta(days=2)))
    session.commit()
    assert jobs.expire_unmatched_statuses(rt, now=utcnow()) == {"expired": 1}
    session.expire_all()
    assert session.exec(select(UnmatchedStatus.sid)).all() == ["CA" + "1" * 32]
    assert jobs.expire_unmatched_statuses(rt, now=utcnow() + timedelta(days=1, minutes=1)) == {"expired": 1}
    assert "expire_unmatched_statuses" in {job.id for job in jobs.schedule(rt.config)}
