"""Delivery queue: first/next attempt times and the receiver's last ACK code per message.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("first_attempt_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("last_ack_code", sa.String(length=4)))


def downgrade() -> None:
    for column in ("last_ack_code", "next_attempt_at", "first_attempt_at"):
        op.drop_column("outbox", column)
