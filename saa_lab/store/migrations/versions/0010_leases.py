"""Leases: several daemons on one database claim a file, or a destination's sending,
for a while; a claim whose holder died runs out and is taken over.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=1100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_index("ix_leases_holder", "leases", ["holder"])
    # Each daemon now has its own heartbeat row ("daemon:<host and inbox>"); the single
    # row of before would read as a second, stopped daemon.
    op.execute("DELETE FROM service_state WHERE key = 'daemon'")


def downgrade() -> None:
    op.drop_index("ix_leases_holder", table_name="leases")
    op.drop_table("leases")
