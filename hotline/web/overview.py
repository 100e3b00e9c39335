"""Overview: reports per street per week for the last 12 weeks as a server-drawn SVG chart, and what
needs a coordinator at a glance (pending approvals, held reports, failed deliveries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import g, render_template
from sqlalchemy import func
from sqlmodel import select

from hotline import runtime
from hotline.db import utcnow
from hotline.models import Report, ReportState
from hotline.reports import logbook
from hotline.residents import members
from hotline.web.access import db, login_required
from hotline.web.blueprint import bp

WEEKS = 12
CELL, GAP, LABEL_WIDTH, BAR_HEIGHT, TOP = 44, 4, 190, 90, 22


@dataclass
class Chart:
    """Geometry for the template: a bar per week (all streets) over a grid of street × week cells."""

    weeks: list[date]
    rows: list[tuple[str, int, list[tuple[int, int]]]]  # (street, street id, [(count, shade 0-4)])
    totals: list[tuple[int, int]]  # (count, bar height)
    width: int
    height: int
    cell: int = CELL
    gap: int = GAP
    label_width: int = LABEL_WIDTH
    bar_height: int = BAR_HEIGHT
    top: int = TOP  # room above the tallest bar for its number

    @property
    def grid_top(self) -> int:
        return self.top + self.bar_height + 26


def _shade(count: int, top: int) -> int:
    if count == 0 or top == 0:
        return 0
    return min(4, 1 + (3 * count) // top)


def chart(today: date) -> Chart:
    zone = runtime.current().config.timezone
    weeks, table = logbook.weekly(db(), g.scope, zone, weeks=WEEKS, today=today)
    top = max((c for _, counts in table for c in counts), default=0)
    totals = [sum(counts[i] for _, counts in table) for i in range(WEEKS)]
    most = max(totals, default=0) or 1
    rows = [(street.name, street.id, [(c, _shade(c, top)) for c in counts]) for street, counts in table]
    width = LABEL_WIDTH + WEEKS * (CELL + GAP)
    height = TOP + BAR_HEIGHT + 26 + len(rows) * (CELL // 2 + GAP) + 10
    return Chart(weeks, rows, [(t, round(BAR_HEIGHT * t / most)) for t in totals], width, height)


@bp.get("/overview")
@login_required
def overview():
    now = utcnow()
    today = now.astimezone(runtime.current().config.timezone).date()
    held = db().exec(select(func.count(Report.id)).where(Report.state == ReportState.HELD, logbook.visible(g.scope))).one()
    glance = {
        "pending": len(members.pending(db(), g.scope)),
        "held": held,
        "failed": logbook.failed_deliveries(db(), g.scope, now - timedelta(days=7)),
        "this_week": logbook.count(db(), logbook.LogFilter(since=today - timedelta(days=today.weekday())), g.scope, runtime.current().config.timezone),
    }
    return render_template("web/overview.html", chart=chart(today), glance=glance)
