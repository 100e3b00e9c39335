"""delivery tally: settled reports' deliveries counted once, for the meeting pack

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:59:00

"""
from datetime import datetime, timedelta, timezone
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import hotline.db


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
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


def upgrade() -> None:
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
    op.get_bind().execute(sa.text(BACKFILL).bindparams(
        sa.bindparam("cutoff", cutoff, type_=hotline.db.UTCDateTime()), sa.bindparam("no", False, type_=sa.Boolean())))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE deliverytally")


def downgrade() -> None:
    with op.batch_alter_table('deliverytally', schema=None) as batch_op:
        batch_op.drop_index('ix_deliverytally_street_created')
        batch_op.drop_index(batch_op.f('ix_deliverytally_report_id'))
        batch_op.drop_index(batch_op.f('ix_deliverytally_created_at'))
    op.drop_table('deliverytally')
