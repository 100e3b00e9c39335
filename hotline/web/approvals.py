"""Approvals: pending members (approve / reject) and held reports, recordings included (send / drop)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlmodel import select

from hotline import runtime
from hotline.models import Report, ReportState
from hotline.reports import intake, logbook
from hotline.residents import members
from hotline.web.access import db, login_required, safe_next, visible_membership
from hotline.web.blueprint import bp
from hotline.web.forms import HeldForm
from hotline.web.log import STATE_LABELS


def held_reports(scope) -> list[logbook.Entry]:
    query = select(Report).where(Report.state == ReportState.HELD, logbook.visible(scope)).order_by(Report.created_at)
    entries = logbook.entries(db(), list(db().exec(query)), scope)
    for entry in entries:  # the template offers send and drop only where this coordinator decides
        entry.deciders = [s.name for s in intake.deciding_streets(db(), entry.report)]
        entry.may_decide = intake.may_decide(db(), entry.report, scope)
    return entries


@bp.get("/approvals")
@login_required
def approvals():
    return render_template(
        "web/approvals.html", pending=members.pending(db(), g.scope), held=held_reports(g.scope), form=HeldForm(), labels=STATE_LABELS
    )


def _back(default: str) -> str:
    # Forms say where they came from (the approvals page, a report's page); only a path of our own.
    target = request.form.get("back")
    return safe_next(target) if target else default


@bp.post("/approvals/members/<int:membership_id>/<any(approve, reject):decision>")
@login_required
def decide_member(membership_id: int, decision: str):
    membership = visible_membership(membership_id)
    if decision == "approve":
        if membership.status != "pending":
            flash("That request was already decided.", "info")
        else:
            queued = members.approve(session=db(), config=runtime.current().config, membership=membership)
            db().commit()
            if queued:
                runtime.current().outbox_changed()
            flash("Approved. They have been sent a welcome text." if queued else "Approved (they opted out of messages, so nothing was sent).", "ok")
    elif members.reject(session=db(), membership=membership):
        db().commit()
        flash("Rejected.", "ok")
    else:
        flash("That request was already decided.", "info")
    return redirect(_back(url_for("web.approvals")))


def _held(report_id: int) -> Report | None:
    """The held report this coordinator may decide; None (and a message) when it is another street's call."""
    report = db().get(Report, report_id)
    if report is None or not logbook.report_visible(db(), report, g.scope):
        abort(404)
    if report.state == ReportState.HELD and not intake.may_decide(db(), report, g.scope):
        names = ", ".join(street.name for street in intake.deciding_streets(db(), report))
        flash(f"{report.ref} is held for {names}: its coordinators (or an admin) decide it.", "error")
        return None
    return report


@bp.post("/reports/<int:report_id>/send")
@login_required
def send_held(report_id: int):
    report = _held(report_id)
    form = HeldForm()
    text = " ".join((form.text.data or "").split()) if form.validate_on_submit() else ""
    if report is None:
        pass
    elif report.state != ReportState.HELD:
        flash(f"{report.ref} is not waiting for a decision.", "info")
    elif not (text or report.text):
        flash(f"{report.ref} has no text yet: type what the recording says, then send it.", "error")
    else:
        count = intake.release(session=db(), config=runtime.current().config, report=report, text=text or None)
        db().commit()
        runtime.current().outbox_changed()
        flash(f"{report.ref} is going to {count} neighbour{'s' if count != 1 else ''}.", "ok")
    return redirect(_back(url_for("web.approvals")))


@bp.post("/reports/<int:report_id>/drop")
@login_required
def drop_held(report_id: int):
    report = _held(report_id)
    if report is None:
        pass
    elif intake.drop(session=db(), report=report):
        db().commit()
        flash(f"{report.ref} dropped. Nobody was sent it.", "ok")
    else:
        flash(f"{report.ref} is not waiting for a decision.", "info")
    return redirect(_back(url_for("web.approvals")))
