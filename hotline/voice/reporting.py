"""Reporting and listening by phone: speech recognised in en-GB and read back (1 send, 2 say again,
3 cancel, 4 send as urgent), a recording after two failed recognitions, and the latest alerts.

A report made by phone goes through `intake.submit` exactly as an SMS one does."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session, select

from hotline import messages, phones
from hotline.models import CallDraft, Channel, Incident, Report, ReportKind, ReportState, ReportStreet, Street
from hotline.reports import incidents, intake
from hotline.voice.spoken import Prompt, Turn, speakable
from hotline.voice.steps import ACTIVE, MAX_TRIES, PENDING, Step, again, ask, home

SPEECH_FAILURES = 2  # failed recognitions (nothing heard, or "say it again") before we record instead
READ_BACK_CHARS = 1500
LATEST_ALERTS, LATEST_DAYS = 5, 7


def ask_report(step: Step, *, failures: int, before: list[str] = ()) -> Turn:
    if failures >= SPEECH_FAILURES:
        return Turn(list(before), Prompt("recording", [messages.voice_record_prompt()], "record"))
    said = messages.voice_report_again() if failures else messages.voice_report_prompt()
    return Turn(list(before), Prompt("report", [said], "speech", tries=failures))


def on_report(step: Step) -> Turn:
    if step.caller.kind not in (ACTIVE, PENDING):
        return home(step)
    text = speakable(step.heard.speech or "")
    if not re.search(r"\w", text):
        # Silence was counted by the no-input redirect; an empty or garbled result is counted here.
        return ask_report(step, failures=step.heard.tries + (0 if step.heard.silent else 1))
    keep_draft(step, text[: intake.MAX_TEXT])
    return ask_check(step, failures=step.heard.tries)


def ask_check(step: Step, *, failures: int, tries: int = 0, sorry: str | None = None) -> Turn:
    draft = step.session.get(CallDraft, step.heard.sid)
    if draft is None:  # nothing to read back (it was sent or cancelled): ask afresh
        return ask_report(step, failures=failures)
    if tries >= MAX_TRIES:
        step.session.delete(draft)
        return Turn([messages.voice_report_not_sent()])
    said = [messages.voice_read_back(draft.text[:READ_BACK_CHARS]), messages.voice_check_menu()]
    return ask(Prompt("check", said, tries=tries, params={"f": failures}), sorry=sorry)


def on_check(step: Step) -> Turn:
    if step.caller.kind not in (ACTIVE, PENDING):
        return home(step)
    key, failures = step.heard.digits, step.heard.number("f")
    if key in ("1", "4"):
        return _submit(step, urgent=key == "4", failures=failures)
    if key == "2":
        return ask_report(step, failures=failures + 1)
    if key == "3":
        take_draft(step)
        return home(step, before=[messages.voice_report_cancelled()])
    if key == "9":
        return ask_check(step, failures=failures, tries=step.heard.tries)
    return again(step, ask_check_for, failures)


def ask_check_for(step: Step, failures: int, *, tries: int, sorry: str | None) -> Turn:
    return ask_check(step, failures=failures, tries=tries, sorry=sorry)


def on_recording(step: Step) -> Turn:
    if step.caller.kind not in (ACTIVE, PENDING):
        return home(step)
    url = (step.heard.recording_url or "").strip()
    if not url or step.heard.recording_seconds < 1:
        return home(step, before=[messages.voice_nothing_recorded()])
    outcome = intake.submit(
        session=step.session, config=step.config, phone=step.caller.phone, text=None,
        member=step.caller.member, channel=Channel.CALL, recording_url=url[:2000], hold=True, now=step.now,
    )
    return _after_report(step, outcome)


def _submit(step: Step, *, urgent: bool, failures: int) -> Turn:
    """Send the draft, unless the caller has an open incident of their own in the window: then ask first
    whether this is more news about it (an update) or something new."""
    member = step.caller.member
    own = incidents.own_open(step.session, step.config, member, step.now) if member is not None and step.caller.kind == ACTIVE else None
    if own is not None and step.session.get(CallDraft, step.heard.sid) is not None:
        return ask_kind(step, own, urgent=urgent, failures=failures)
    return _send_draft(step, urgent=urgent, failures=failures, incident=None)


def _send_draft(step: Step, *, urgent: bool, failures: int, incident: Incident | None) -> Turn:
    text = take_draft(step)
    if text is None:
        return ask_report(step, failures=failures)
    outcome = intake.submit(
        session=step.session, config=step.config, phone=step.caller.phone, text=text,
        member=step.caller.member, channel=Channel.CALL, urgent=urgent, incident=incident, now=step.now,
    )
    return _after_report(step, outcome, incident)


def ask_kind(step: Step, incident: Incident, *, urgent: bool, failures: int, tries: int = 0, sorry: str | None = None) -> Turn:
    params = {"i": incident.id, "u": int(urgent), "f": failures}
    return ask(Prompt("kind", [messages.voice_update_or_new(incident.ref)], tries=tries, params=params), sorry=sorry)


def on_kind(step: Step) -> Turn:
    """1: an update of their open incident; 2: a new report; 9: hear it again."""
    if step.caller.kind != ACTIVE:
        return home(step)
    incident = step.session.get(Incident, step.heard.number("i"))
    urgent, failures, key = step.heard.number("u") == 1, step.heard.number("f"), step.heard.digits
    if incident is None or not incident.open:
        return _send_draft(step, urgent=urgent, failures=failures, incident=None)
    if key in ("1", "2"):
        return _send_draft(step, urgent=urgent, failures=failures, incident=incident if key == "1" else None)
    if key == "9":
        return ask_kind(step, incident, urgent=urgent, failures=failures, tries=step.heard.tries)
    return again(step, _ask_kind_again, incident, urgent, failures)


def _ask_kind_again(step: Step, incident: Incident, urgent: bool, failures: int, *, tries: int, sorry: str | None) -> Turn:
    return ask_kind(step, incident, urgent=urgent, failures=failures, tries=tries, sorry=sorry)


def _after_report(step: Step, outcome: intake.Outcome, incident: Incident | None = None) -> Turn:
    config, ref = step.config, outcome.report.ref
    update = incident is not None and outcome.report.kind == ReportKind.UPDATE
    said = {
        "sent": lambda: messages.voice_update_sent(incident.ref, outcome.recipients) if update else messages.voice_report_sent(ref, outcome.recipients),
        "held": lambda: (
            messages.voice_recording_held() if outcome.report.recording_url
            else messages.voice_update_held(incident.ref) if update else messages.voice_report_held(ref)
        ),
        "over_hour": lambda: messages.voice_over_limit(config.max_reports_per_hour, "an hour"),
        "over_day": lambda: messages.voice_over_limit(config.max_reports_per_day, "a day"),
        "duplicate": messages.voice_duplicate,
    }.get(outcome.kind, messages.voice_logged_for_coordinators)()
    step.refresh()
    turn = home(step, before=[said, messages.voice_anything_else()])
    turn.queued = outcome.recipients + outcome.notified
    return turn


def keep_draft(step: Step, text: str) -> None:
    draft = step.session.get(CallDraft, step.heard.sid) or CallDraft(call_sid=step.heard.sid, text=text)
    draft.text, draft.phone, draft.updated_at = text, step.caller.phone, step.now
    step.session.add(draft)


def take_draft(step: Step) -> str | None:
    draft = step.session.get(CallDraft, step.heard.sid)
    if draft is None:
        return None
    step.session.delete(draft)
    return draft.text


def latest_alerts(step: Step) -> list[str]:
    """The last five alerts of the past week for the caller's streets, newest first, times spoken locally;
    each with its updates, and whether it is all clear."""
    found = recent_reports(step.session, [s.id for s in step.caller.streets], since=step.now - timedelta(days=LATEST_DAYS))
    if not found:
        return [messages.voice_no_alerts()]
    zone, several = step.config.timezone, len(step.caller.streets) > 1
    today = step.now.astimezone(zone)
    lines = [messages.voice_alerts_intro(len(found))]
    for report, street_name in found:
        when = messages.spoken_when(report.created_at.astimezone(zone), today)
        lines.append(messages.voice_alert_item(when, street_name if several else None, _spoken_text(report)))
        for follow in _follow_ups(step.session, report):
            if follow.kind == ReportKind.ALL_CLEAR:
                lines.append(messages.voice_all_clear_item(follow.text))
            else:
                lines.append(messages.voice_update_item(messages.spoken_when(follow.created_at.astimezone(zone), today), _spoken_text(follow)))
    return lines


def _spoken_text(report: Report) -> str | None:
    text = phones.scrub(report.text, report.phone) if report.text and report.phone else report.text
    return "Urgent. " + text if text and report.urgent else text


def _follow_ups(session: Session, report: Report) -> list[Report]:
    """The updates that went out and the all-clear of the incident a report opened, oldest first."""
    if report.incident_id is None:
        return []
    return list(
        session.exec(
            select(Report)
            .where(Report.incident_id == report.incident_id, Report.id != report.id, Report.state == ReportState.SENT)
            .order_by(Report.created_at, Report.id)
        )
    )


def recent_reports(session: Session, street_ids: list[int], *, since, limit: int = LATEST_ALERTS) -> list[tuple[Report, str]]:
    rows = session.exec(
        select(Report, Street.name)
        .join(ReportStreet, ReportStreet.report_id == Report.id)
        .join(Street, Street.id == ReportStreet.street_id)
        .where(ReportStreet.street_id.in_(street_ids), Report.state == ReportState.SENT, Report.created_at >= since,
               Report.kind == ReportKind.REPORT)
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(limit * max(1, len(street_ids)))
    )
    seen, found = set(), []
    for report, name in rows:
        if report.id not in seen:
            seen.add(report.id)
            found.append((report, name))
    return found[:limit]
