"""The meeting pack's counts once settled deliveries are tallied and reports' kinds worked out once (tally.py):
still the database's own counts, never counted twice, and nothing tallied that may still change; and its time
limit: a clear page when the database takes too long, forced with a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, text
from sqlmodel import select

from hotline.db import OverTimeLimit, time_limit, utcnow
from hotline.models import ClassifiedReport, Delivery, DeliveryState, DeliveryTally, Report, ReportState, Street
from hotline.ops import jobs
from hotline.reports import kinds, summary, tally
from hotline.residents.streets import Scope
from hotline.web import summary as summary_page
from tests.conftest import NUMBERS
from tests.web.conftest import text_in
from tests.web.test_summary import direct_counts, every_text_a_new_report, seeded  # noqa: F401 (an autouse fixture)

LATER = timedelta(days=30)  # every seeded report and delivery is then well past tally.SETTLED_AFTER


def figures_and_truth(rt, session, streets: set[int] | None = None):
    zone = rt.config.timezone
    period = summary.default_period(datetime.now(timezone.utc).astimezone(zone).date())
    since = datetime.combine(period.since, datetime.min.time(), tzinfo=zone)
    scope = Scope(None) if streets is None else Scope(frozenset(streets))
    figures = summary.build(session, period, scope, zone)
    return figures, direct_counts(session, streets, since)


def same(figures, expected) -> bool:
    alerts = figures.alerts
    return (figures.reports, figures.by_kind, alerts.delivered, alerts.undelivered, alerts.acknowledged) == (
        expected["reports"], expected["by_kind"], expected["delivered"], expected["undelivered"], expected["acknowledged"])


def test_counts_stay_the_database_s_once_deliveries_are_tallied_and_kinds_classified(rt, session, scheme):
    seeded(rt, session, scheme)
    before, expected = figures_and_truth(rt, session)
    assert same(before, expected) and expected["delivered"] > 0 and expected["acknowledged"] > 0
    rows = tally.settle(session=session, now=utcnow() + LATER)
    classified = tally.classify(session=session)
    session.commit()
    assert rows > 0 and classified == session.exec(select(func.count()).select_from(Report).where(Report.text.is_not(None))).one()
    assert session.exec(select(func.sum(DeliveryTally.deliveries))).one() == session.exec(
        select(func.count()).select_from(Delivery).where(Delivery.report_id.is_not(None))).one()
    after, expected = figures_and_truth(rt, session)
    assert same(after, expected) and after.alerts == before.alerts and after.by_kind == before.by_kind
    clay, expected = figures_and_truth(rt, session, {scheme["clayhall"].id})
    assert same(clay, expected)
    # a second run finds nothing new: nothing is counted twice
    assert tally.settle(session=session, now=utcnow() + LATER) == 0 and tally.classify(session=session) == 0


def test_what_may_still_change_is_not_tallied(rt, session, scheme):
    seeded(rt, session, scheme)
    deliveries = list(session.exec(select(Delivery).where(Delivery.report_id.is_not(None)).order_by(Delivery.id)))
    waiting, touched = deliveries[0], deliveries[-1]
    waiting.state = DeliveryState.SENT.value  # its final callback may still come
    session.commit()
    tally.settle(session=session, now=utcnow())
    session.commit()  # reports of the last 8 days are not settled yet, whatever their deliveries
    assert session.exec(select(func.count()).select_from(DeliveryTally).where(DeliveryTally.deliveries > 0)).one() == 0
    later = utcnow() + LATER
    touched.updated_at = later - timedelta(days=2)  # changed two days before "now": not yet
    session.commit()
    tally.settle(session=session, now=later)
    session.commit()
    counted = set(session.exec(select(DeliveryTally.report_id)))
    assert waiting.report_id not in counted and touched.report_id not in counted and counted
    figures, expected = figures_and_truth(rt, session)
    assert same(figures, expected)


def test_held_reports_are_not_classified_and_a_new_keyword_list_is_worked_out_again(rt, session, scheme, monkeypatch):
    seeded(rt, session, scheme)
    held = session.exec(select(Report).order_by(Report.id)).first()
    held.state = ReportState.HELD.value  # its text may still be replaced when a coordinator releases it
    session.commit()
    tally.classify(session=session)
    session.commit()
    assert session.get(ClassifiedReport, held.id) is None
    stale = session.exec(select(ClassifiedReport).order_by(ClassifiedReport.report_id)).first()
    stale.kind = "theft"  # what an older keyword list said of it
    session.commit()
    monkeypatch.setattr(kinds, "VERSION", "edited-list")  # the list was edited: old answers no longer count
    assert same(*figures_and_truth(rt, session))
    assert tally.classify(session=session) > 0
    session.commit()
    assert set(session.exec(select(ClassifiedReport.keywords))) == {"edited-list"}
    assert same(*figures_and_truth(rt, session))


def test_a_blanked_text_counts_as_other_whatever_was_classified(rt, session, scheme):
    seeded(rt, session, scheme)
    tally.classify(session=session)
    session.commit()
    vans = [r for r in session.exec(select(Report)) if kinds.kind_of(r.text) == "vehicle"]
    for report in vans:
        report.text = None  # as retention leaves it
    session.commit()
    figures, expected = figures_and_truth(rt, session)
    assert same(figures, expected) and figures.by_kind["vehicle"] == 0


def test_a_settled_report_that_alerted_nobody_is_a_row_of_zeros_and_a_held_one_waits(rt, session, scheme):
    seeded(rt, session, scheme)
    stranger = session.exec(select(Report).where(Report.member_id.is_(None))).one()  # alerted nobody
    held = session.exec(select(Report).order_by(Report.id)).first()
    session.exec(delete(Delivery).where(Delivery.report_id == held.id))
    held.state = ReportState.HELD.value
    session.commit()
    tally.settle(session=session, now=utcnow() + LATER)
    session.commit()
    zeros = session.exec(select(DeliveryTally).where(DeliveryTally.report_id == stranger.id)).one()
    assert (zeros.street_id, zeros.deliveries, zeros.delivered, zeros.acknowledged) == (None, 0, 0, 0)
    assert session.exec(select(DeliveryTally).where(DeliveryTally.report_id == held.id)).first() is None
    assert same(*figures_and_truth(rt, session))


def test_deleting_a_street_moves_its_tally_off_it_as_its_deliveries(rt, session, scheme):
    seeded(rt, session, scheme)
    tally.settle(session=session, now=utcnow() + LATER)
    session.commit()
    if session.get_bind().dialect.name == "sqlite":
        session.exec(text("PRAGMA foreign_keys=ON"))
    session.exec(delete(Street).where(Street.id == scheme["beehive"].id))
    session.commit()
    assert session.exec(select(func.count()).select_from(DeliveryTally).where(DeliveryTally.street_id == scheme["beehive"].id)).one() == 0
    assert same(*figures_and_truth(rt, session))


def test_the_hourly_job_tallies_and_classifies(rt, session, scheme):
    seeded(rt, session, scheme)
    done = jobs.tally_meeting_pack(rt, now=utcnow() + LATER)
    assert done["tallied"] > 0 and done["classified"] > 0
    assert "tally_meeting_pack" in {job.id for job in jobs.schedule(rt.config)}


# --- the time limit ------------------------------------------------------------------------------


class FakeClock:
    """Seconds that move only when told: each reading advances by `step`."""

    def __init__(self, step: float = 0.0):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_meeting_pack_over_its_time_limit_is_a_clear_page_not_an_error(admin, rt, session, scheme, monkeypatch):
    seeded(rt, session, scheme)
    monkeypatch.setattr(summary_page, "clock", FakeClock(step=summary_page.TIME_LIMIT / 3))  # out of time by the 3rd query
    for path in ("/summary", "/summary.pdf"):
        response = admin.get(path)
        assert response.status_code == 503
        html = response.get_data(as_text=True)
        assert "The meeting pack took too long" in html and "Try a shorter period or one street" in html
        assert "Traceback" not in html and "OverTimeLimit" not in html
    monkeypatch.setattr(summary_page, "clock", FakeClock(step=0))
    assert admin.get("/summary").status_code == 200  # the same connection pool serves the next one as usual


def test_the_time_limit_stops_a_statement_already_running(rt, session):
    long = text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) SELECT count(*) FROM n")
    if session.get_bind().dialect.name == "postgresql":
        clock = FakeClock(step=0)
        clock.now -= 9.999  # the limit is 10 s and 9.999 of them have gone: 1 ms left, as the server's statement_timeout
        with pytest.raises(OverTimeLimit), time_limit(session, 10.0, clock=lambda: clock.now):
            clock.now += 9.999
            session.exec(text("SELECT pg_sleep(5)"))
    else:
        readings = iter([0.0, 0.0])  # the deadline, the check before the statement; then the progress handler's readings

        def clock():
            return next(readings, 60.0)  # a minute has passed while the statement ran

        with pytest.raises(OverTimeLimit), time_limit(session, 10.0, clock=clock):
            session.exec(long)
    session.rollback()
    assert session.exec(text("SELECT 1")).one() == (1,)


def test_within_the_limit_statements_run_and_the_usual_bound_comes_back(rt, session):
    with time_limit(session, 7.5, clock=FakeClock(step=0)):
        if session.get_bind().dialect.name == "postgresql":
            assert session.exec(text("SHOW statement_timeout")).one()[0] == "7500ms"
        assert session.exec(text("SELECT 2")).one() == (2,)
    if session.get_bind().dialect.name == "postgresql":
        usual = session.exec(text("SHOW statement_timeout")).one()[0]
        assert usual != "7500ms"
    text_in(rt, NUMBERS[0], "after the limit, a report goes in as usual")
