"""The meeting pack: a printable summary of a period for residents' meetings and the police ward team
(`/summary`), and the same page as a PDF (`/summary.pdf`, WeasyPrint, imported only when asked for)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from flask import Response, current_app, g, render_template, request

from hotline import runtime
from hotline.coordination import accounts
from hotline.db import OverTimeLimit, time_limit, utcnow
from hotline.hardening import row_id
from hotline.reports import summary
from hotline.web.access import db, login_required, visible_street
from hotline.web.blueprint import bp

OUTCOMES = {
    "police_informed": "police informed", "resolved": "resolved", "false_alarm": "false alarm",
    "no_further_action": "no further action", "none": "not recorded yet",
}
TIME_LIMIT = 10.0  # seconds the database may spend on one meeting pack, all its queries together (gunicorn's limit is 30)
clock = time.monotonic  # what the time limit is measured with (tests force it past the limit)
PDF_LIBRARIES = "WeasyPrint's system libraries (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core)"


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _period() -> summary.Period:
    """`street`, `from` and `to` as the log reads them; by default everything the coordinator sees, the last 4 weeks."""
    street_id = request.args.get("street", type=row_id)
    if street_id is not None:
        visible_street(street_id)  # another coordinator's street: 404, as on the log
    today = utcnow().astimezone(runtime.current().config.timezone).date()
    default = summary.default_period(today)
    since, until = _day(request.args.get("from")) or default.since, _day(request.args.get("to")) or default.until
    if until < since:
        since, until = until, since
    return summary.Period(since=since, until=until, street_id=street_id)


class TooSlow(Exception):
    """The meeting pack's queries ran past TIME_LIMIT and were stopped."""


def _context() -> dict:
    period = _period()
    zone = runtime.current().config.timezone
    try:
        with time_limit(db(), TIME_LIMIT, clock=clock):
            figures = summary.build(db(), period, g.scope, zone)
    except OverTimeLimit as exc:
        db().rollback()
        current_app.logger.warning("summary %s: stopped after %g s: %s", request.full_path, TIME_LIMIT, exc)
        raise TooSlow(period) from exc
    args = {"street": period.street_id, "from": period.since.isoformat(), "to": period.until.isoformat()}
    return {
        "s": figures, "zone": zone, "outcomes": OUTCOMES, "days": summary.DAYS,
        "args": {k: v for k, v in args.items() if v}, "streets": accounts.street_choices(db(), g.scope),
        "made": utcnow().astimezone(zone),
    }


def _too_slow(exc: TooSlow):
    """A clear page, not an error: what happened and what to ask for instead (503: try again later, or less)."""
    period = exc.args[0]
    args = {"street": period.street_id, "from": period.since.isoformat(), "to": period.until.isoformat()}
    shorter = {**args, "from": max(period.since, summary.default_period(period.until).since).isoformat()}
    return render_template("web/summary_too_slow.html", seconds=TIME_LIMIT, period=period,
                           shorter={k: v for k, v in shorter.items() if v}), 503


@bp.get("/summary")
@login_required
def summary_page():
    try:
        return render_template("web/summary.html", **_context())
    except TooSlow as exc:
        return _too_slow(exc)


@bp.get("/summary.pdf")
@login_required
def summary_pdf():
    try:
        context = _context()  # a wrong street is a 404 before the PDF library is even looked for
    except TooSlow as exc:
        return _too_slow(exc)
    try:
        import weasyprint  # lazily: without Pango and friends the hotline still starts, only the PDF is missing
    except (ImportError, OSError) as exc:
        current_app.logger.warning("summary.pdf: WeasyPrint unavailable: %s", exc)
        message = f"The PDF cannot be made on this server: it needs {PDF_LIBRARIES}. The page at /summary prints to PDF from the browser meanwhile."
        return Response(message, status=503, mimetype="text/plain")
    html = render_template("web/summary_print.html", **context)
    css = weasyprint.CSS(filename=str(Path(current_app.static_folder) / "summary.css"))
    pdf = weasyprint.HTML(string=html, url_fetcher=_no_fetching).write_pdf(stylesheets=[css])
    period = context["s"].period
    name = f"hotline-summary-{period.since:%Y%m%d}-{period.until:%Y%m%d}.pdf"
    return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


def _no_fetching(url: str, *args, **kwargs):
    """The page is self-contained (inline SVG, the stylesheet given directly): nothing is fetched."""
    raise ValueError(f"not fetched: {url}")
