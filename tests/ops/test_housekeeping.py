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


# --- recordings at Twilio, and who reported ------------------------------------------------------------

RECORDING_SID = "RE" + "a" * 32
RECORDING = f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{RECORDING_SID}"


def recorded_report(twilio, session, caller: str):
    """A member reports by phone; speech fails twice, so they are recorded and the report is held."""
    call = twilio.call(caller).start().press("1").say("").say("")
    call.record(url=RECORDING)
    from hotline.models import Report

    session.expire_all()
    report = session.exec(select(Report).where(Report.recording_url == RECORDING)).one()
    assert report.state == "held" and report.member_id is not None
    return report


def test_a_dropped_reports_recording_is_deleted_at_twilio_within_the_hour(rt, session, twilio, twilio_api, street):
    from hotline.reports import intake

    report = recorded_report(twilio, session, NUMBERS[0])
    assert jobs.delete_recordings(rt) == {"deleted": 0, "failed": 0}  # held: a coordinator will listen to it
    intake.drop(session=session, report=report)
    session.commit()
    assert jobs.delete_recordings(rt) == {"deleted": 1, "failed": 0}
    session.expire_all()
    assert twilio_api.deleted_recordings == [RECORDING_SID] and session.get(type(report), report.id).recording_url is None
    assert "delete_recordings" in {job.id for job in jobs.schedule(rt.config)}


def test_retention_unlinks_the_reporter_and_a_failed_delete_is_tried_again(rt, session, twilio, twilio_api, street):
    report = recorded_report(twilio, session, NUMBERS[1])
    later = utcnow() + timedelta(days=rt.config.retention_days + 1)
    assert jobs.retention(rt, now=later)["reports"] == 1
    session.expire_all()
    kept = session.get(type(report), report.id)
    assert (kept.member_id, kept.phone, kept.text) == (None, None, None)
    twilio_api.fail_next(500)
    assert jobs.delete_recordings(rt, now=later) == {"deleted": 0, "failed": 1}
    session.expire_all()
    assert session.get(type(report), report.id).recording_url == RECORDING  # still at Twilio: keep the link
    assert jobs.delete_recordings(rt, now=later) == {"deleted": 1, "failed": 0}
    assert twilio_api.deleted_recordings == [RECORDING_SID]


def test_an_erased_numbers_recordings_are_deleted_at_twilio(rt, session, twilio, twilio_api, street):
    report = recorded_report(twilio, session, NUMBERS[2])
    members.opt_out(session, NUMBERS[2], now=utcnow() - timedelta(days=31))
    session.commit()
    assert jobs.erase_opted_out(rt, now=utcnow()) == {"erased": 1}
    assert jobs.delete_recordings(rt) == {"deleted": 1, "failed": 0}
    session.expire_all()
    gone = session.get(type(report), report.id)
    assert (gone.member_id, gone.phone, gone.recording_url) == (None, None, None)


def test_recordings_are_deleted_through_the_twilio_stand_in(tmp_path):
    """The real REST client against the local stand-in: DELETE /Recordings/RE….json, and a 404 (deleted
    already, say in Twilio's console) counts as gone."""
    from sqlmodel import Session

    from hotline.models import Report
    from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, build_app
    from tests.standin.twilio import TwilioStandIn

    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, status_callbacks=False) as standin:
        standin.recordings.add(RECORDING_SID)
        app = build_app(tmp_path, twilio=True, environ={"TWILIO_API_URL": standin.url})
        rt = app.extensions["hotline"]
        with Session(rt.engine) as session:
            session.add(Report(phone=None, text=None, recording_url=RECORDING, state="dropped"))
            session.add(Report(phone=None, text=None, recording_url=RECORDING.replace("a" * 32, "b" * 32), state="dropped"))
            session.commit()
        assert jobs.delete_recordings(rt) == {"deleted": 2, "failed": 0}
        assert standin.deleted_recordings == [RECORDING_SID] and not standin.recordings
        rt.engine.dispose()
