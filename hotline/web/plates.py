"""Plates: the watch list (any coordinator adds; whoever added a plate, or an admin, removes it), plates seen
more than once in the past 90 days, and one plate's sightings — another street's report by street and date only.
A street coordinator looks up plates reported on their streets (and watched ones); an admin, any plate."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for

from hotline.db import utcnow
from hotline.models import WatchedPlate
from hotline.reports import platebook, plates, watchlist
from hotline.web.access import db, login_required
from hotline.web.blueprint import bp
from hotline.web.forms import WatchForm


@bp.app_template_filter("plate")
def spaced_plate(plate: str) -> str:
    return plates.spaced(plate)


def _page(form: WatchForm, status: int = 200):
    return render_template(
        "web/plates.html", form=form, watched=watchlist.listing(db()), may_remove=watchlist.may_remove,
        repeated=platebook.repeated(db(), g.scope, now=utcnow()), days=platebook.RECENT.days,
    ), status


@bp.get("/plates")
@login_required
def plates_page():
    return _page(WatchForm())


@bp.get("/plates/find")
@login_required
def find_plate():
    """The look-up box: whatever spacing was typed, to the plate's own page."""
    typed = request.args.get("plate", "")
    plate = plates.parse(typed)
    if plate is None:
        flash(f"{' '.join(typed.split())[:20]!r} is not a number plate the hotline recognises.", "error")
        return redirect(url_for("web.plates_page"))
    return redirect(url_for("web.plate", plate=plate))


@bp.get("/plates/<plate>")
@login_required
def plate(plate: str):
    normalised = plates.parse(plate[:20])
    if normalised is None:
        abort(404)
    if normalised != plate:
        return redirect(url_for("web.plate", plate=normalised))
    entry = watchlist.entry_for(db(), normalised)
    if entry is None and not platebook.concerns(db(), g.scope, normalised):
        abort(404)  # like another street's report in the log; watched plates are everyone's
    return render_template(
        "web/plate.html", plate=normalised, seen=platebook.sightings_of(db(), g.scope, normalised), entry=entry,
        may_remove=entry is not None and watchlist.may_remove(g.coordinator, entry), form=WatchForm(plate=plates.spaced(normalised)),
    )


@bp.post("/plates/watch")
@login_required
def watch_plate():
    form = WatchForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        entry = watchlist.add(session=db(), coordinator=g.coordinator, plate=form.plate.data, note=form.note.data or "")
    except watchlist.WatchError as exc:
        db().rollback()
        flash(f"Not added: {exc}.", "error")
        return _page(form, 400)
    db().commit()
    flash(f"{plates.spaced(entry.plate)} is on the watch list: a report naming it will be texted to its street's coordinators and the admins.", "ok")
    if request.form.get("back") == "plate":
        return redirect(url_for("web.plate", plate=entry.plate))
    return redirect(url_for("web.plates_page"))


@bp.post("/plates/watch/<int:entry_id>/remove")
@login_required
def unwatch_plate(entry_id: int):
    entry = db().get(WatchedPlate, entry_id)
    if entry is None:
        abort(404)
    if not watchlist.may_remove(g.coordinator, entry):
        flash(f"Only the coordinator who added {plates.spaced(entry.plate)}, or an admin, can take it off the watch list.", "error")
        return _page(WatchForm(), 403)
    watchlist.remove(session=db(), coordinator=g.coordinator, entry=entry)
    db().commit()
    flash(f"{plates.spaced(entry.plate)} is off the watch list.", "ok")
    return redirect(url_for("web.plates_page"))
