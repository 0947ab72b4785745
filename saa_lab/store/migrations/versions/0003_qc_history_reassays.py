"""QC history and re-assays: control results per run (Westgard), re-assay requests,
superseded results, the PEG bias factor, run warnings and the CLIA look-back.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("warnings", sa.JSON(), nullable=True))
    op.add_column("runs", sa.Column("lookback", sa.JSON(), nullable=True))
    # Plain ADD COLUMN (no table rebuild), so the append-only triggers on results stay.
    op.add_column("results", sa.Column("supersedes_result_id", sa.Integer(), nullable=True))
    op.add_column("results", sa.Column("bias_factor", sa.Float(), nullable=True))
    op.add_column("results", sa.Column("reassay_dilution", sa.Float(), nullable=True))
    op.create_index(op.f("ix_results_supersedes_result_id"), "results", ["supersedes_result_id"])
    op.create_table(
        "control_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("assay_name", sa.String(length=64), nullable=False),
        sa.Column("control", sa.String(length=64), nullable=False),
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("measured_u_per_l", sa.Float(), nullable=True),
        sa.Column("low_u_per_l", sa.Float(), nullable=False),
        sa.Column("high_u_per_l", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("z_score", sa.Float(), nullable=True),
        sa.Column("run_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_control_results_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_results")),
    )
    op.create_index(
        "ix_control_results_history",
        "control_results",
        ["assay_name", "control", "lot", "id"],
    )
    op.create_index(op.f("ix_control_results_run_id"), "control_results", ["run_id"])
    op.create_table(
        "reassay_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("assay_name", sa.String(length=64), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("suggested_dilution", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_result_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_reassay_requests_result_id_results")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reassay_requests")),
    )
    op.create_index(op.f("ix_reassay_requests_accession"), "reassay_requests", ["accession"])
    op.create_index(op.f("ix_reassay_requests_status"), "reassay_requests", ["status"])


def downgrade() -> None:
    op.drop_table("reassay_requests")
    op.drop_table("control_results")
    op.drop_index(op.f("ix_results_supersedes_result_id"), table_name="results")
    for column in ("reassay_dilution", "bias_factor", "supersedes_result_id"):
        op.drop_column("results", column)
    op.drop_column("runs", "lookback")
    op.drop_column("runs", "warnings")
