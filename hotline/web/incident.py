"""An incident on its report's page: who is on it (so two coordinators do not both ring the police), its
all-clear, and its outcome (told to the reporter). The timeline itself is drawn by log.report."""

from __future__ import annotations

from flask import abort, flash, g, redirect, url_for

from hotline import runtime
from hotline.db import utcnow
from hotline.models import Channel, Incident, Outcome, Report
from hotline.reports import incidents, logbook
from hotline.web.access import db, login_required
from hotline.web.blueprint import bp
from hotline.web.forms import AllClearForm, OutcomeForm


def _incident_of(report_id: int) -> tuple[Report, Incident]:
    report = db().get(Report, report_id)
    if report is None or not logbook.report_visible(db(), report, g.scope) or report.incident_id is None:
        abort(404)
    return report, db().get(Incident, report.incident_id)


def _back(report: Report):
    return redirect(url_for("web.report", report_id=report.id))


@bp.post("/reports/<int:report_id>/take")
@login_required
def take_incident(report_id: int):
    report, incident = _incident_of(report_id)
    holder = incidents.take(session=db(), incident=incident, coordinator_id=g.coordinator.id, now=utcnow())
    db().commit()
    flash(f"You are on {incident.ref}." if holder == g.coordinator.id else f"Someone else is already on {incident.ref}.",
          "ok" if holder == g.coordinator.id else "info")
    return _back(report)


@bp.post("/reports/<int:report_id>/let-go")
@login_required
def let_go_of_incident(report_id: int):
    report, incident = _incident_of(report_id)
    if incidents.let_go(session=db(), incident=incident, coordinator_id=g.coordinator.id, is_admin=g.coordinator.is_admin):
        db().commit()
        flash(f"Nobody is on {incident.ref} now.", "ok")
    return _back(report)


@bp.post("/reports/<int:report_id>/all-clear")
@login_required
def all_clear(report_id: int):
    report, incident = _incident_of(report_id)
    form = AllClearForm()
    if not form.validate_on_submit():
        flash("The all-clear message is too long.", "error")
        return _back(report)
    try:
        count = incidents.clear(session=db(), config=runtime.current().config, incident=incident, words=form.words.data,
                                channel=Channel.WEB, coordinator_id=g.coordinator.id, now=utcnow())
    except incidents.NotOpen:
        flash(f"{incident.ref} is already closed.", "info")
        return _back(report)
    db().commit()
    runtime.current().outbox_changed()
    flash(f"All clear for {incident.ref} is going to {count} {'person' if count == 1 else 'people'}; {incident.ref} is closed.", "ok")
    return _back(report)


@bp.post("/reports/<int:report_id>/outcome")
@login_required
def record_outcome(report_id: int):
    report, incident = _incident_of(report_id)
    form = OutcomeForm()
    if not form.validate_on_submit():
        flash("Choose an outcome (and keep the note short).", "error")
        return _back(report)
    texted = incidents.record_outcome(session=db(), config=runtime.current().config, incident=incident,
                                      outcome=Outcome(form.outcome.data), note=form.note.data,
                                      coordinator_id=g.coordinator.id, now=utcnow())
    db().commit()
    if texted:
        runtime.current().outbox_changed()
    flash("Outcome recorded; the reporter is told by text." if texted else
          "Outcome recorded; the reporter hears it on their next call (or cannot be told: no number).", "ok")
    return _back(report)
