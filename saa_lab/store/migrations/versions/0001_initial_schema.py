"""Initial schema: source files, runs, wells, calibrations, orders, results, outbox, audit.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 20:33:26.973906
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("formulation", sa.String(length=32), nullable=True),
        sa.Column("dose_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("collection_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("protocol", sa.String(length=64), nullable=True),
        sa.Column("clinic", sa.String(length=64), nullable=True),
        sa.Column("placer_order_number", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_accession"), ["accession"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "service_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_service_state")),
    )
    op.create_table(
        "source_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("original_path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worklist_name", sa.String(length=512), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_source_files_sha256")),
    )
    with op.batch_alter_table("source_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_source_files_status"), ["status"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("plate_index", sa.Integer(), nullable=False),
        sa.Column("plate_id", sa.String(length=128), nullable=True),
        sa.Column("format", sa.String(length=64), nullable=False),
        sa.Column("read_label", sa.String(length=128), nullable=True),
        sa.Column("wavelength_nm", sa.Float(), nullable=True),
        sa.Column("assay_name", sa.String(length=64), nullable=False),
        sa.Column("assay_version", sa.String(length=64), nullable=False),
        sa.Column("layout_name", sa.String(length=64), nullable=False),
        sa.Column("layout_version", sa.String(length=64), nullable=False),
        sa.Column("worklist_name", sa.String(length=512), nullable=True),
        sa.Column("worklist_sha256", sa.String(length=64), nullable=True),
        sa.Column("worklist_text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_file_id"],
            ["source_files.id"],
            name=op.f("fk_runs_source_file_id_source_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_plate_id"), ["plate_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_runs_source_file_id"), ["source_file_id"], unique=False
        )

    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=True),
        sa.Column("intercept", sa.Float(), nullable=True),
        sa.Column("slope", sa.Float(), nullable=True),
        sa.Column("r_squared", sa.Float(), nullable=True),
        sa.Column("blank_mean", sa.Float(), nullable=True),
        sa.Column("lloq_u_per_l", sa.Float(), nullable=False),
        sa.Column("uloq_u_per_l", sa.Float(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_calibrations_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibrations")),
        sa.UniqueConstraint("run_id", name=op.f("uq_calibrations_run_id")),
    )
    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_uid", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("wells", sa.String(length=256), nullable=False),
        sa.Column("dilution", sa.Float(), nullable=False),
        sa.Column("activity_u_per_l", sa.Float(), nullable=True),
        sa.Column("comparator", sa.String(length=2), nullable=False),
        sa.Column("mean_u_per_l", sa.Float(), nullable=True),
        sa.Column("cv_percent", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("flag", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("result_status", sa.String(length=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_results_order_id_orders")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_results_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results")),
        sa.UniqueConstraint("result_uid", "version", name=op.f("uq_results_result_uid")),
    )
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_results_accession"), ["accession"], unique=False)
        batch_op.create_index(batch_op.f("ix_results_run_id"), ["run_id"], unique=False)

    op.create_table(
        "wells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("well", sa.String(length=4), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("raw", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("accession", sa.String(length=64), nullable=True),
        sa.Column("dilution", sa.Float(), nullable=False),
        sa.Column("nominal_u_per_l", sa.Float(), nullable=True),
        sa.Column("control", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_wells_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wells")),
    )
    with op.batch_alter_table("wells", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wells_run_id"), ["run_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("control_id", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_to", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_outbox_result_id_results")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("control_id", name=op.f("uq_outbox_control_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_destination_status_id", ["destination", "status", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_result_id"), ["result_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_result_id"))
        batch_op.drop_index("ix_outbox_destination_status_id")

    op.drop_table("outbox")
    with op.batch_alter_table("wells", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wells_run_id"))

    op.drop_table("wells")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_results_run_id"))
        batch_op.drop_index(batch_op.f("ix_results_accession"))

    op.drop_table("results")
    op.drop_table("calibrations")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_source_file_id"))
        batch_op.drop_index(batch_op.f("ix_runs_plate_id"))

    op.drop_table("runs")
    with op.batch_alter_table("source_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_files_status"))

    op.drop_table("source_files")
    op.drop_table("service_state")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_patient_id"))
        batch_op.drop_index(batch_op.f("ix_orders_accession"))

    op.drop_table("orders")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
