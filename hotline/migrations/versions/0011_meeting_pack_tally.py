"""meeting pack tally: settled reports' deliveries counted once, and reports' kinds worked out once

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 23:59:00

"""
from datetime import datetime, timedelta, timezone
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import hotline.db
from hotline.reports import kinds


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The first tally of an existing database, as hotline/reports/tally.py's settle() wrote it on the day of this
# migration (frozen here: the job keeps it up to date afterwards). Reports settle 8 days after their last change.
BACKFILL = """
INSERT INTO deliverytally (report_id, created_at, street_id, deliveries, delivered, undelivered, cancelled, acknowledged)
SELECT d.report_id, r.created_at, d.street_id, count(*),
       sum(CASE WHEN d.state = 'delivered' THEN 1 ELSE 0 END),
       sum(CASE WHEN d.state IN ('undelivered', 'failed') THEN 1 ELSE 0 END),
       sum(CASE WHEN d.state = 'cancelled' THEN 1 ELSE 0 END),
       count(d.acknowledged_at)
FROM delivery d JOIN report r ON r.id = d.report_id
WHERE r.created_at < :cutoff AND r.fanout_pending = :no AND NOT EXISTS (
    SELECT 1 FROM delivery x WHERE x.report_id = r.id AND (
        x.state NOT IN ('delivered', 'undelivered', 'failed', 'cancelled')
        OR x.created_at >= :cutoff OR x.updated_at >= :cutoff OR x.sent_at >= :cutoff OR x.acknowledged_at >= :cutoff))
GROUP BY d.report_id, r.created_at, d.street_id
"""
# ... and a row of zeros for each settled report that alerted nobody (a held one may still be sent)
SILENT = """
INSERT INTO deliverytally (report_id, created_at, street_id, deliveries, delivered, undelivered, cancelled, acknowledged)
SELECT r.id, r.created_at, NULL, 0, 0, 0, 0, 0 FROM report r
WHERE r.created_at < :cutoff AND r.fanout_pending = :no AND r.state <> 'held'
  AND NOT EXISTS (SELECT 1 FROM delivery x WHERE x.report_id = r.id)
"""


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_acknowledged', ['report_id', 'street_id'], unique=False,
                              postgresql_where=sa.text('acknowledged_at IS NOT NULL'))
        # partial on PostgreSQL only, this and the one above: with a partial index on delivery, SQLite 3.40 counted a
        # report's deliveries wrongly after two were updated together (tests/web/test_log.py); there they are plain
        batch_op.create_index('ix_delivery_failed_calls', ['updated_at'], unique=False,
                              postgresql_where=sa.text("channel = 'call' AND state = 'failed'"))
    op.create_table('deliverytally',
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('street_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', hotline.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Integer(), nullable=False),
    sa.Column('undelivered', sa.Integer(), nullable=False),
    sa.Column('cancelled', sa.Integer(), nullable=False),
    sa.Column('acknowledged', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['street_id'], ['street.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliverytally', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliverytally_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliverytally_report_id'), ['report_id'], unique=False)
        batch_op.create_index('ix_deliverytally_street_created', ['street_id', 'created_at'], unique=False)
    cutoff = datetime.now(timezone.utc) - timedelta(days=8)
    for backfill in (BACKFILL, SILENT):
        op.get_bind().execute(sa.text(backfill).bindparams(
            sa.bindparam("cutoff", cutoff, type_=hotline.db.UTCDateTime()), sa.bindparam("no", False, type_=sa.Boolean())))
    op.create_table('classifiedreport',
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('keywords', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['report.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('report_id')
    )
    # Every report's kind that can no longer change, with today's keyword list (recorded with it: the job works
    # out again what a later list would say). As tally.classify does it; held reports' texts may still change.
    report = sa.table("report", sa.column("id", sa.Integer), sa.column("text", sa.Text), sa.column("state", sa.String))
    words = (sa.select(report.c.id.label("id"), kinds.spaced_words(report.c.text).label("words"))
             .where(report.c.text.is_not(None), report.c.state != "held").offset(0).subquery())
    rows = sa.select(words.c.id, kinds.sql_kind(words.c.words), sa.literal(kinds.VERSION))
    classified = sa.table("classifiedreport", sa.column("report_id"), sa.column("kind"), sa.column("keywords"))
    op.get_bind().execute(sa.insert(classified).from_select(["report_id", "kind", "keywords"], rows))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE deliverytally")
        op.execute("ANALYZE classifiedreport")


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_failed_calls', postgresql_where=sa.text("channel = 'call' AND state = 'failed'"))
        batch_op.drop_index('ix_delivery_acknowledged', postgresql_where=sa.text('acknowledged_at IS NOT NULL'))
    op.drop_table('classifiedreport')
    with op.batch_alter_table('deliverytally', schema=None) as batch_op:
        batch_op.drop_index('ix_deliverytally_street_created')
        batch_op.drop_index(batch_op.f('ix_deliverytally_report_id'))
        batch_op.drop_index(batch_op.f('ix_deliverytally_created_at'))
    op.drop_table('deliverytally')
