"""The log (the home page): every report newest first, filtered, paginated, refreshing itself, exported
as CSV; and a report's own page with each recipient's delivery and a live progress bar."""

from __future__ import annotations

import csv
import io
from datetime import date

from flask import Response, abort, g, jsonify, render_template, request, stream_with_context, url_for
from sqlmodel import Session, select

from hotline import messages, runtime
from hotline.coordination import accounts, escalation
from hotline.db import utcnow
from hotline.delivery import attempts
from hotline.delivery.retry import ERROR_WORDS
from hotline.hardening import row_id
from hotline.models import Coordinator, Incident, Report, ReportState
from hotline.reports import intake, logbook, plates
from hotline.web.access import db, login_required, visible_street
from hotline.web.blueprint import bp
from hotline.web.forms import AllClearForm, HeldForm, OutcomeForm

CHUNK = 64 * 1024  # the export goes out in pieces of about this size: one write per row would be 100,000 writes
STATE_LABELS = {
    ReportState.SENT: "sent",
    ReportState.HELD: "held",
    ReportState.DROPPED: "dropped",
    ReportState.NOT_BROADCAST: "not broadcast",
}


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _filter() -> logbook.LogFilter:
    street_id = request.args.get("street", type=row_id)
    if street_id is not None:
        visible_street(street_id)  # another coordinator's street: 404, for the page and the export alike
    return logbook.LogFilter(
        street_id=street_id,
        since=_day(request.args.get("from")),
        until=_day(request.args.get("to")),
        words=" ".join(request.args.get("q", "").split())[:200],
    )


def _filter_args(wanted: logbook.LogFilter) -> dict:
    args = {"street": wanted.street_id, "from": wanted.since, "to": wanted.until, "q": wanted.words or None}
    return {k: v for k, v in args.items() if v}


def _page_context() -> dict:
    zone = runtime.current().config.timezone
    wanted = _filter()
    number = max(1, request.args.get("page", 1, type=row_id))
    total = logbook.count(db(), wanted, g.scope, zone)
    pages = max(1, -(-total // logbook.PAGE_SIZE))
    entries = logbook.page(db(), wanted, g.scope, zone, min(number, pages))
    return {
        "entries": entries, "total": total, "page": min(number, pages), "pages": pages, "wanted": wanted,
        "args": _filter_args(wanted), "labels": STATE_LABELS,
    }


@bp.get("/")
@login_required
def log():
    context = _page_context()
    streets = accounts.street_choices(db(), g.scope)
    refresh = runtime.current().config.extra.get("log_refresh_seconds", 5)
    return render_template("web/log.html", streets=streets, refresh=refresh, **context)


@bp.get("/log/rows")
@login_required
def log_rows():
    """The table body alone, for the page's own refresh; the filters come along in the query string."""
    return render_template("web/_log_rows.html", **_page_context())


@bp.get("/log.csv")
@login_required
def export():
    """Exactly the filtered rows (every page), streamed so a long log never sits in memory."""
    wanted, scope = _filter(), g.scope
    rt = runtime.current()
    zone = rt.config.timezone

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush() -> str:
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        writer.writerow(logbook.CSV_HEADER)
        yield "\ufeff" + flush()  # the BOM tells spreadsheets it is UTF-8 (£, é, emoji)
        with Session(rt.engine) as session:
            for entry in logbook.every(session, wanted, scope, zone):
                writer.writerow(logbook.csv_row(entry, zone))
                if buffer.tell() >= CHUNK:
                    yield flush()
        yield flush()

    filename = f"hotline-log-{utcnow().astimezone(zone):%Y%m%d-%H%M}.csv"
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _visible_report(report_id: int) -> Report:
    report = db().get(Report, report_id)
    if report is None or not logbook.report_visible(db(), report, g.scope):
        abort(404)
    return report


@bp.get("/reports/<int:report_id>")
@login_required
def report(report_id: int):
    found = _visible_report(report_id)
    entry = logbook.entries(db(), [found], g.scope)[0]
    if found.state == ReportState.HELD:
        entry.deciders = [s.name for s in intake.deciding_streets(db(), found)]
        entry.may_decide = intake.may_decide(db(), found, g.scope)
    deliveries = logbook.deliveries(db(), found, g.scope)
    tries = attempts.history(db(), [d.id for d in deliveries])
    zone = runtime.current().config.timezone
    lines = {d.id: attempt_line(tries.get(d.id, []), zone) for d in deliveries}
    incident = db().get(Incident, found.incident_id) if found.incident_id else None
    opening = db().get(Report, incident.report_id) if incident else None
    pieces = plates.pieces(found.text)
    return render_template(
        "web/report.html", entry=entry, report=found, deliveries=deliveries, labels=STATE_LABELS,
        form=HeldForm(), back=url_for("web.log"), incident=incident, opening=opening,
        timeline=logbook.timeline(db(), incident) if incident else [], clear_form=AllClearForm(), outcome_form=OutcomeForm(),
        outcome_words=messages.OUTCOME_WORDS, coordinators=_emails(incident),
        check_on_me=_check_on_me(found), attempt_lines=lines,
        pieces=pieces, plates_named=list(dict.fromkeys(p for _, p in pieces if p)),
    )


def attempt_line(tries: list, zone) -> str:
    """Each try of a delivery on one line: "undelivered 19:04, handset off · sent again 19:09 · delivered 19:10"."""
    parts = []
    for n, attempt in enumerate(tries):
        status = {"retry": "not taken, will retry", "throttled": "Twilio busy, will retry", "calling": "ringing"}.get(attempt.status, attempt.status)
        when = attempt.updated_at.astimezone(zone).strftime("%H:%M")
        why = ERROR_WORDS.get(attempt.error_code) or (str(attempt.error_code) if attempt.error_code else "")
        parts.append(("sent again: " if n else "") + f"{status} {when}" + (f", {why}" if why else ""))
    return " · ".join(parts)


def _check_on_me(report: Report) -> list:
    """For an urgent alert: "check on me" members on the viewer's streets who have not confirmed it."""
    if not report.urgent or report.state != ReportState.SENT:
        return []
    return [(m, s) for m, s in escalation.unconfirmed_checks(db(), report) if s is None or g.scope.allows(s.id)]


def _emails(incident: Incident | None) -> dict[int, str]:
    if incident is None:
        return {}
    ids = [i for i in (incident.taken_by_id, incident.outcome_by_id) if i]
    return dict(db().exec(select(Coordinator.id, Coordinator.email).where(Coordinator.id.in_(ids))).all()) if ids else {}


@bp.get("/reports/<int:report_id>/progress")
@login_required
def progress(report_id: int):
    found = _visible_report(report_id)
    counts = logbook.delivery_counts(db(), [found.id], g.scope).get(found.id, logbook.Counts())
    return jsonify(
        total=counts.total, delivered=counts.delivered, failed=counts.failed, cancelled=counts.cancelled,
        pending=counts.pending, state=found.state,
    )
