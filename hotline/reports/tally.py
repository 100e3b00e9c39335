"""What the meeting pack counts once instead of on every page: settled reports' deliveries, and each report's kind.

Deliveries: a year of a big scheme is ~17 million
delivery rows, too many to count on every page, while almost all of them will never change again. a year of a big scheme is ~17 million
delivery rows, too many to count on every page, while almost all of them will never change again.

A report is settled when it is older than SETTLED_AFTER, its deliveries are all written (no fan-out
pending) and every one of them is final (delivered, undelivered, failed, cancelled) and untouched for
SETTLED_AFTER. Nothing moves such a delivery any more: status callbacks are looked up for 3 days
(reconcile.LOOK_BACK), an OK acknowledges only an alert of the past day (incidents.ACK_WINDOW), retries
end within hours. Its counts per street then go into DeliveryTally, once (a row of zeros for a report that
alerted nobody, so that it is not counted live either); deleting the report deletes
them, deleting a street moves them off it as it moves the deliveries. The summary adds the tally of
settled reports to a live count of the others, so its figures stay exact.

Kinds: matching ~60 keywords against every text of a year is seconds of CPU. A report's text changes only
while it is held (a coordinator may type one when releasing it) and when retention blanks it (then it is
"other", which the summary checks first), so every other report's kind is worked out once, with the
keyword list's version: after an edit of kinds.KINDS the old answers are dropped and worked out again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, exists, func, insert, literal, not_, null, or_, select
from sqlmodel import Session

from hotline.models import FINAL_DELIVERY_STATES, ClassifiedReport, Delivery, DeliveryState, DeliveryTally, Report, ReportState
from hotline.reports import kinds

SETTLED_AFTER = timedelta(days=8)
FAILED = [DeliveryState.FAILED.value, DeliveryState.UNDELIVERED.value]


def tallied(report_id_column):
    """A condition: this report's deliveries are in DeliveryTally."""
    return exists().where(DeliveryTally.report_id == report_id_column)


def settled_reports(cutoff: datetime):
    """Reports whose deliveries can no longer change, and not tallied yet."""
    unsettled = exists().where(
        Delivery.report_id == Report.id,
        or_(
            Delivery.state.not_in([s.value for s in FINAL_DELIVERY_STATES]),
            Delivery.created_at >= cutoff, Delivery.updated_at >= cutoff, Delivery.sent_at >= cutoff,
            Delivery.acknowledged_at >= cutoff,
        ),
    )
    return select(Report.id).where(
        Report.created_at < cutoff, Report.fanout_pending == False, not_(tallied(Report.id)), not_(unsettled),  # noqa: E712
    )


def settle(*, session: Session, now: datetime) -> int:
    """Tally every settled report not tallied yet (one INSERT … SELECT); returns the rows written. The caller commits."""
    cutoff = now - SETTLED_AFTER
    counts = (
        select(
            Delivery.report_id, Report.created_at, Delivery.street_id, func.count(),
            func.coalesce(func.sum(case((Delivery.state == DeliveryState.DELIVERED.value, 1), else_=0)), literal(0)),
            func.coalesce(func.sum(case((Delivery.state.in_(FAILED), 1), else_=0)), literal(0)),
            func.coalesce(func.sum(case((Delivery.state == DeliveryState.CANCELLED.value, 1), else_=0)), literal(0)),
            func.count(Delivery.acknowledged_at),
        )
        .join(Report, Report.id == Delivery.report_id)
        .where(Delivery.report_id.in_(settled_reports(cutoff)))
        .group_by(Delivery.report_id, Report.created_at, Delivery.street_id)
    )
    columns = ["report_id", "created_at", "street_id", "deliveries", "delivered", "undelivered", "cancelled", "acknowledged"]
    written = _written(session, insert(DeliveryTally).from_select(columns, counts).returning(DeliveryTally.id))
    # A settled report that alerted nobody (not broadcast, dropped, no neighbour) gets a row of zeros, so the summary's
    # live count skips it too; a held one may still be sent.
    silent = select(Report.id, Report.created_at, null(), *[literal(0)] * 5).where(
        Report.id.in_(settled_reports(cutoff)), Report.state != ReportState.HELD.value, not_(exists().where(Delivery.report_id == Report.id)))
    return written + _written(session, insert(DeliveryTally).from_select(columns, silent).returning(DeliveryTally.id))


def period_sums(session: Session, start: datetime, end: datetime, street_condition) -> tuple[int, int, int, int, int]:
    """(deliveries, delivered, undelivered, cancelled, acknowledged) of the tallied reports of [start, end)."""
    row = session.exec(
        select(
            func.coalesce(func.sum(DeliveryTally.deliveries), 0), func.coalesce(func.sum(DeliveryTally.delivered), 0),
            func.coalesce(func.sum(DeliveryTally.undelivered), 0), func.coalesce(func.sum(DeliveryTally.cancelled), 0),
            func.coalesce(func.sum(DeliveryTally.acknowledged), 0),
        ).where(and_(DeliveryTally.created_at >= start, DeliveryTally.created_at < end, street_condition))
    ).one()
    return tuple(int(n) for n in row)


def classified(report_id_column):
    """A condition: this report's kind was worked out with today's keyword list."""
    return exists().where(ClassifiedReport.report_id == report_id_column, ClassifiedReport.keywords == kinds.VERSION)


def classify(*, session: Session) -> int:
    """Work out the kind of every report whose text can no longer change and that has none yet (with this keyword
    list); returns how many. The caller commits."""
    session.execute(delete(ClassifiedReport).where(ClassifiedReport.keywords != kinds.VERSION))
    # OFFSET 0: each text lowered and spaced once, not once a keyword (see summary._reports)
    words = (
        select(Report.id.label("id"), kinds.spaced_words(Report.text).label("words"))
        .where(Report.text.is_not(None), Report.state != ReportState.HELD.value, not_(classified(Report.id)))
        .offset(0).subquery()
    )
    rows = select(words.c.id, kinds.sql_kind(words.c.words), literal(kinds.VERSION))
    return _written(session, insert(ClassifiedReport).from_select(["report_id", "kind", "keywords"], rows).returning(ClassifiedReport.report_id))


def _written(session: Session, statement) -> int:
    """Rows an INSERT … SELECT wrote (counted from RETURNING: psycopg gives no rowcount for it here)."""
    return len(session.execute(statement).all())
