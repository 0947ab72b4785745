"""Every interpretation stores its protocol, the protocol file's version and the recommendation.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("results", sa.Column("protocol", sa.String(length=64), nullable=True))
    op.add_column("results", sa.Column("protocol_version", sa.String(length=64), nullable=True))
    op.add_column("results", sa.Column("recommendation", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("recommendation", "protocol_version", "protocol"):
        op.drop_column("results", column)
