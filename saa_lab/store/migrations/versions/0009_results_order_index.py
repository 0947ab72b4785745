"""Index results by order: a patient's history (orders by patient, then their results)
is found through indexes instead of a scan of every stored result.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_results_order_id", "results", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_results_order_id", table_name="results")
