"""Announce: a message to chosen streets (or all of one's streets), now or at a set time; the recipient
and segment counts are shown before it goes; scheduled ones are listed and can be cancelled."""

from __future__ import annotations

from datetime import timezone

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from sqlmodel import select

from hotline import runtime
from hotline.coordination import accounts, announcements
from hotline.db import utcnow
from hotline.hardening import row_id
from hotline.models import Announcement, Street
from hotline.web.access import db, login_required
from hotline.web.blueprint import bp
from hotline.web.forms import AnnounceForm, choices, chosen_values


def _form() -> AnnounceForm:
    form = AnnounceForm()
    form.streets.choices = choices((s.id, s.name) for s in accounts.visible_streets(db(), g.scope))
    return form


def _chosen(form: AnnounceForm) -> list[int]:
    if form.everywhere.data:
        return sorted(chosen_values(form.streets))
    return [i for i in form.streets.data or [] if g.scope.allows(i)]


def _send_at(form: AnnounceForm):
    if form.when.data != "later" or form.at.data is None:
        return None
    zone = runtime.current().config.timezone
    return form.at.data.replace(tzinfo=zone).astimezone(timezone.utc)


def _page(form: AnnounceForm, status: int = 200, preview=None):
    scheduled, done = announcements.listing(db(), g.scope)
    counts = announcements.delivery_counts(db(), [a.id for a in done])
    names = {s.id: s.name for s in db().exec(select(Street))} if (scheduled or done) else {}
    return render_template(
        "web/announce.html", form=form, scheduled=scheduled, done=done, counts=counts, names=names, preview=preview
    ), status


@bp.get("/announce")
@login_required
def announce():
    return _page(_form())


@bp.post("/announce")
@login_required
def announce_post():
    """First press: show what will go and to how many. Second press (confirm): keep it, or send it now."""
    form = _form()
    if not form.validate_on_submit():
        return _page(form, 400)
    config = runtime.current().config
    street_ids, send_at = _chosen(form), _send_at(form)
    if send_at is not None and send_at < utcnow() - announcements.PAST_GRACE:
        form.at.errors.append("That time has passed.")
        return _page(form, 400)
    preview = announcements.preview(session=db(), config=config, text=form.text.data, street_ids=street_ids)
    if request.form.get("confirm") != "yes":
        return _page(form, preview=preview)
    try:
        made = announcements.create(session=db(), config=config, text=form.text.data, street_ids=street_ids, send_at=send_at, created_by=g.coordinator.id)
    except announcements.AnnouncementError as exc:
        db().rollback()
        form.text.errors.append(str(exc).capitalize() + ".")
        return _page(form, 400, preview)
    if send_at is None:
        written = announcements.release(session=db(), config=config, announcement=made)
        db().commit()
        runtime.current().outbox_changed()
        flash(f"Announcement sent to {written} member{'s' if written != 1 else ''}.", "ok")
    else:
        db().commit()
        flash(f"Announcement scheduled for {send_at.astimezone(config.timezone):%a %d %b %Y %H:%M}.", "ok")
    return redirect(url_for("web.announce"))


@bp.get("/announce/preview")
@login_required
def announce_preview():
    """Live counts while typing (the page's script): recipients and SMS segments."""
    ids = [i for i in request.args.getlist("streets", type=row_id) if g.scope.allows(i)]
    if request.args.get("everywhere"):
        ids = [s.id for s in accounts.visible_streets(db(), g.scope)]
    shown = announcements.preview(session=db(), config=runtime.current().config, text=request.args.get("text", "")[:1000], street_ids=ids)
    languages = [{"code": x.code, "name": x.name, "recipients": x.recipients, "by_call": x.by_call, "segments": x.segments}
                 for x in shown.languages]
    return jsonify(recipients=shown.recipients, segments=shown.segments, by_call=shown.by_call, characters=len(shown.body),
                   languages=languages)


@bp.post("/announcements/<int:announcement_id>/cancel")
@login_required
def cancel_announcement(announcement_id: int):
    found = db().get(Announcement, announcement_id)
    if found is None or not announcements.visible(found, g.scope):
        abort(404)
    if announcements.cancel(session=db(), announcement=found):
        db().commit()
        flash("Cancelled. It will not be sent.", "ok")
    else:
        flash("Too late to cancel: it has gone already.", "info")
    return redirect(url_for("web.announce"))
