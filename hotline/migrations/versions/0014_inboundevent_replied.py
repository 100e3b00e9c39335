"""the reply caps count answered texts from partial indexes: ix_inboundevent_replied replaces ix_inboundevent_kind_created

The hour's replies (all, and a number's) were counted along every text of the hour, answered or not: once a flood
passed the cap, each further text read all the texts before it. The partial indexes hold the answered ones alone,
and each count stops at its cap.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 08:10:00.000000

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ANSWERED = 'reply IS NOT NULL'


def upgrade() -> None:
    with op.batch_alter_table('inboundevent', schema=None) as batch_op:
        batch_op.create_index('ix_inboundevent_replied', ['kind', 'created_at'], unique=False,
                              sqlite_where=sa.text(ANSWERED), postgresql_where=sa.text(ANSWERED))
        batch_op.create_index('ix_inboundevent_phone_replied', ['phone', 'kind', 'created_at'], unique=False,
                              sqlite_where=sa.text(ANSWERED), postgresql_where=sa.text(ANSWERED))
        batch_op.drop_index('ix_inboundevent_kind_created')


def downgrade() -> None:
    with op.batch_alter_table('inboundevent', schema=None) as batch_op:
        batch_op.create_index('ix_inboundevent_kind_created', ['kind', 'created_at'], unique=False)
        batch_op.drop_index('ix_inboundevent_phone_replied', sqlite_where=sa.text(ANSWERED), postgresql_where=sa.text(ANSWERED))
        batch_op.drop_index('ix_inboundevent_replied', sqlite_where=sa.text(ANSWERED), postgresql_where=sa.text(ANSWERED))
