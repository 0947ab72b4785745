"""HL7 orders: patient demographics, provider, dose, route, infusion reaction, intake status.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("patient_family_name", sa.String(length=128)),
    ("patient_given_name", sa.String(length=128)),
    ("birth_date", sa.Date()),
    ("sex", sa.String(length=8)),
    ("ordering_provider", sa.String(length=256)),
    ("dose_iu_per_m2", sa.Float()),
    ("route", sa.String(length=16)),
    ("reaction", sa.Boolean()),
    ("reaction_time", sa.DateTime(timezone=True)),
    ("reaction_grade", sa.Integer()),
    ("message_control_id", sa.String(length=64)),
    ("intake_status", sa.String(length=8)),
    ("problems", sa.JSON()),
)


def upgrade() -> None:
    for name, column_type in COLUMNS:
        op.add_column("orders", sa.Column(name, column_type, nullable=True))
    op.create_index(op.f("ix_orders_placer_order_number"), "orders", ["placer_order_number"])


def downgrade() -> None:
    op.drop_index(op.f("ix_orders_placer_order_number"), table_name="orders")
    for name, _ in reversed(COLUMNS):
        op.drop_column("orders", name)
