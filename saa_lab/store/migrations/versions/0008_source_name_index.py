"""Index source files by name: a file dropped again under a known name with new content
is found at once (a new version, held for review) however many files are stored.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_source_files_name", "source_files", ["name"])


def downgrade() -> None:
    op.drop_index("ix_source_files_name", table_name="source_files")
