"""Big streets: the webhook marks the broadcast, the dispatcher writes its deliveries, each number once."""

from __future__ import annotations

from sqlalchemy import insert
from sqlmodel import func, select

from hotline.delivery import outbox
from hotline.models import Delivery, Member, Membership, Report
from hotline.reports import fanout
from tests.conftest import add_street


def big_street(session, size: int):
    street = add_street(session, "Clayhall Avenue", 101)
    first = session.exec(select(func.coalesce(func.max(Member.id), 0))).one()
    session.execute(insert(Member), [{"phone": f"+4479112{n:05d}", "alerts": "sms"} for n in range(size)])
    session.execute(insert(Membership), [{"member_id": first + n + 1, "street_id": street.id, "status": "active"} for n in range(size)])
    session.commit()
    return street


def test_a_big_broadcast_is_marked_in_the_webhook_and_written_by_the_dispatcher(rt, session, twilio, twilio_api):
    big_street(session, fanout.INLINE_LIMIT + 100)
    response = twilio.sms("+447911200000", "man trying car door handles")
    assert b"sent to 599 neighbours" in response.data
    report = session.exec(select(Report)).one()
    assert report.fanout_pending and session.exec(select(func.count(Delivery.id))).one() == 0
    assert fanout.expand_pending(session=session, config=rt.config) == 1
    assert fanout.expand_pending(session=session, config=rt.config) == 0  # once only
    phones = session.exec(select(Delivery.phone)).all()
    assert len(phones) == 599 == len(set(phones)) and "+447911200000" not in phones


def test_the_dispatcher_sends_a_marked_broadcast(rt, session, twilio, twilio_api):
    big_street(session, fanout.INLINE_LIMIT + 1)
    twilio.sms("+447911200000", "fire in the bin store")
    sent = outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=1000)
    assert sent == fanout.INLINE_LIMIT == len({m["To"] for m in twilio_api.sent})
