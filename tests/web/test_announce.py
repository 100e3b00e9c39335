"""Announcements: recipients and segments shown before sending, sent now or at a set time by
release_due (the scheduler's job), listed while scheduled and cancellable, each member once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlmodel import select

from hotline import messages
from hotline.coordination import announcements
from hotline.db import utcnow
from hotline.delivery import segments
from hotline.models import Announcement, AnnouncementState, Delivery, Membership
from hotline.residents import members
from tests.conftest import NUMBERS
from tests.web.conftest import text_in

MEETING = "Residents' meeting Sunday 3pm at St Mary's hall. Bring your questions about the new lights."


def test_check_shows_recipients_and_segments_before_anything_is_sent(admin, session, scheme):
    response = admin.post("/announce", {"text": MEETING, "streets": [scheme["clayhall"].id], "when": "now"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<strong id="preview-recipients">4</strong> members will get it' in html
    assert f'<strong id="preview-segments">{segments.count(messages.announcement("Street Watch", MEETING))}</strong>' in html
    assert "Send it now" in html
    assert session.exec(select(Announcement)).all() == [] and session.exec(select(Delivery)).all() == []


def test_send_now_reaches_every_active_member_once_and_never_the_opted_out(admin, rt, session, scheme):
    members.add(session, NUMBERS[0], scheme["beehive"], alerts="sms", active=True)  # on both streets
    session.commit()
    text_in(rt, NUMBERS[11], "STOP")
    response = admin.post("/announce", {"text": MEETING, "everywhere": "y", "when": "now", "confirm": "yes"})
    assert response.status_code == 302
    deliveries = session.exec(select(Delivery)).all()
    phones = sorted(d.phone for d in deliveries)
    assert phones == sorted(NUMBERS[:4] + [NUMBERS[10], NUMBERS[12]])
    assert all(d.body == messages.announcement("Street Watch", MEETING) and d.report_id is None for d in deliveries)
    announcement = session.exec(select(Announcement)).one()
    assert announcement.state == AnnouncementState.SENT and announcement.recipients == 6
    assert {d.announcement_id for d in deliveries} == {announcement.id}
    assert "Announcement sent to 6 members" in admin.get("/announce").get_data(as_text=True)


def test_scheduled_announcement_waits_for_its_time_then_release_due_sends_it(admin, rt, session, scheme):
    at = (utcnow() + timedelta(days=2)).astimezone(rt.config.timezone).replace(second=0, microsecond=0)
    response = admin.post("/announce", {"text": MEETING, "streets": [scheme["beehive"].id], "when": "later", "at": at.strftime("%Y-%m-%dT%H:%M"), "confirm": "yes"})
    assert response.status_code == 302
    announcement = session.exec(select(Announcement)).one()
    assert announcement.state == AnnouncementState.SCHEDULED and announcement.send_at == at.astimezone(timezone.utc)
    html = admin.get("/announce").get_data(as_text=True)
    assert at.strftime("%a %d %b %Y %H:%M") in html and "Cancel" in html
    assert announcements.release_due(session=session, config=rt.config, now=utcnow()) == 0
    assert session.exec(select(Delivery)).all() == []
    assert announcements.release_due(session=session, config=rt.config, now=at + timedelta(seconds=30)) == 3
    session.commit()
    assert announcements.release_due(session=session, config=rt.config, now=at + timedelta(minutes=5)) == 0  # once only
    assert sorted(d.phone for d in session.exec(select(Delivery))) == NUMBERS[10:13]


def test_cancelled_announcement_is_never_sent(admin, rt, session, scheme):
    at = utcnow() + timedelta(hours=3)
    made = announcements.create(session=session, config=rt.config, text=MEETING, street_ids=[scheme["clayhall"].id], send_at=at, created_by=None)
    session.commit()
    assert admin.post(f"/announcements/{made.id}/cancel").status_code == 302
    assert announcements.release_due(session=session, config=rt.config, now=at + timedelta(minutes=1)) == 0
    session.expire_all()
    assert session.get(Announcement, made.id).state == AnnouncementState.CANCELLED
    assert session.exec(select(Delivery)).all() == []


def test_a_time_in_the_past_is_refused(admin, rt, session, scheme):
    past = (utcnow() - timedelta(hours=1)).astimezone(rt.config.timezone)
    response = admin.post("/announce", {"text": MEETING, "streets": [scheme["clayhall"].id], "when": "later", "at": past.strftime("%Y-%m-%dT%H:%M"), "confirm": "yes"})
    assert response.status_code == 400 and "That time has passed" in response.get_data(as_text=True)
    assert session.exec(select(Announcement)).all() == []


def test_too_long_or_empty_or_no_streets_is_refused(admin, session, scheme):
    too_long = admin.post("/announce", {"text": "x" * 600, "streets": [scheme["clayhall"].id], "when": "now", "confirm": "yes"})
    assert too_long.status_code == 400 and "too long" in too_long.get_data(as_text=True)
    nowhere = admin.post("/announce", {"text": MEETING, "when": "now", "confirm": "yes"})
    assert nowhere.status_code == 400 and "Choose at least one street" in nowhere.get_data(as_text=True)
    assert session.exec(select(Announcement)).all() == []


def test_street_coordinator_announces_only_to_their_streets(clay, session, scheme):
    forged = clay.post("/announce", {"text": MEETING, "streets": [scheme["beehive"].id], "when": "now", "confirm": "yes"})
    assert forged.status_code == 400
    clay.post("/announce", {"text": MEETING, "everywhere": "y", "when": "now", "confirm": "yes"})
    assert sorted(d.phone for d in session.exec(select(Delivery))) == NUMBERS[:4]


def test_street_coordinator_cannot_see_or_cancel_another_streets_announcement(clay, rt, session, scheme):
    theirs = announcements.create(session=session, config=rt.config, text="Beehive only news", street_ids=[scheme["beehive"].id], send_at=utcnow() + timedelta(hours=1), created_by=None)
    session.commit()
    assert "Beehive only news" not in clay.get("/announce").get_data(as_text=True)
    assert clay.post(f"/announcements/{theirs.id}/cancel").status_code == 404
    session.expire_all()
    assert session.get(Announcement, theirs.id).state == AnnouncementState.SCHEDULED


def test_live_preview_counts_recipients_and_segments(clay, scheme):
    counts = clay.get(f"/announce/preview?text=hello&streets={scheme['clayhall'].id}&streets={scheme['beehive'].id}").get_json()
    assert counts["recipients"] == 4  # Beehive is not theirs, so it does not count
    assert counts["segments"] == 1
    emoji = clay.get("/announce/preview", query_string={"text": "meeting 🙂 " + "x" * 60, "everywhere": "1"}).get_json()
    assert emoji["segments"] == 2  # an emoji makes it UCS-2: 70 characters a segment


def test_landline_members_get_a_call_that_waits_for_quiet_hours_to_end(rt, session, scheme):
    members.add(session, "+442085550123", scheme["clayhall"], alerts="call", active=True)
    session.commit()
    night = datetime(2025, 1, 15, 23, 30, tzinfo=timezone.utc)  # 23:30 in London in winter
    made = announcements.create(session=session, config=rt.config, text=MEETING, street_ids=[scheme["clayhall"].id], send_at=night, created_by=None, now=night)
    assert announcements.release(session=session, config=rt.config, announcement=made, now=night) == 5
    call = session.exec(select(Delivery).where(Delivery.channel == "call")).one()
    assert call.body == messages.announcement_call("Street Watch", MEETING)
    assert call.next_attempt_at == datetime(2025, 1, 16, 7, 0, tzinfo=timezone.utc)
    assert all(d.next_attempt_at == night for d in session.exec(select(Delivery).where(Delivery.channel == "sms")))


def test_announcement_and_welcome_messages_leave_through_the_dispatcher(admin, rt, session, scheme):
    from hotline.delivery import outbox
    from hotline.models import SimulatedMessage

    text_in(rt, NUMBERS[60], "JOIN Clayhall")
    pending = session.exec(select(Membership).where(Membership.status == "pending")).one()
    admin.post(f"/approvals/members/{pending.id}/approve")
    admin.post("/announce", {"text": MEETING, "streets": [scheme["beehive"].id], "when": "now", "confirm": "yes"})
    assert outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=100) == 4
    sent = {m.to: m.body for m in session.exec(select(SimulatedMessage))}
    assert sent[NUMBERS[60]] == messages.approved("Clayhall Avenue")
    assert all(sent[n] == messages.announcement("Street Watch", MEETING) for n in NUMBERS[10:13])
    assert all(d.state == "accepted" for d in session.exec(select(Delivery)))


def test_a_cancel_that_loses_the_race_to_the_release_changes_nothing_and_says_it_went(admin, rt, session, scheme):
    """The coordinator's page loaded the announcement while scheduled; the release job took it before the
    cancel was written. The cancel must not report success (nor flip a sent announcement to cancelled)."""
    from sqlmodel import Session

    at = utcnow() + timedelta(hours=1)
    made = announcements.create(session=session, config=rt.config, text=MEETING, street_ids=[scheme["clayhall"].id], send_at=at, created_by=None)
    session.commit()
    stale = session.get(Announcement, made.id)
    assert stale.state == AnnouncementState.SCHEDULED
    with Session(rt.engine) as job:
        assert announcements.release_due(session=job, config=rt.config, now=at + timedelta(seconds=1)) == 4
        job.commit()

    assert announcements.cancel(session=session, announcement=stale) is False
    session.commit()
    session.expire_all()
    assert session.get(Announcement, made.id).state == AnnouncementState.SENT
    assert len(session.exec(select(Delivery).where(Delivery.announcement_id == made.id)).all()) == 4
    page = admin.post(f"/announcements/{made.id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Too late to cancel" in page and "It will not be sent" not in page
