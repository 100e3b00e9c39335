"""a member's deliveries by time: ix_delivery_member_created replaces ix_delivery_member_id

Which incident a member's text follows reads their latest alert in the past hour; with the index on
member_id alone that read every delivery the member ever had, on every text.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 23:58:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, Sequence[str], None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_member_created', ['member_id', 'created_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_delivery_member_id'))


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_member_id'), ['member_id'], unique=False)
        batch_op.drop_index('ix_delivery_member_created')
