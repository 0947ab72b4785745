"""Review and release: result states, run review columns, report snapshots; the audit
log gains sequence numbers, local time, reason, previous value and a hash chain.

Results stored before this revision were sent as soon as they were processed: they
become ``released`` (auto-verified by rule set ``pre-0007``). Existing audit entries
are chained in id order, so ``saa-lab audit verify`` covers them too.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LEGACY_RULESET = "pre-0007"


def _drop_audit_guards(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def _create_audit_guards(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION saa_lab_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {action} refused'); END"
        )


def upgrade() -> None:
    from saa_lab.store.audit import GENESIS, entry_hash

    bind = op.get_bind()
    dialect = bind.dialect.name

    # -- runs: review state ---------------------------------------------------
    op.add_column("runs", sa.Column("review_status", sa.String(length=16), nullable=True))
    op.add_column("runs", sa.Column("review_rev", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("reviewed_by", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("review_meaning", sa.String(length=16), nullable=True))
    op.add_column("runs", sa.Column("review_note", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_runs_review_status"), "runs", ["review_status"])
    op.execute(
        "UPDATE runs SET review_status = CASE WHEN status = 'accepted' "
        "THEN 'auto-released' ELSE 'qc-rejected' END"
    )

    # -- results: report snapshot and who made the version (plain ADD COLUMN keeps
    # the append-only triggers) ------------------------------------------------
    op.add_column("results", sa.Column("report", sa.JSON(), nullable=True))
    op.add_column("results", sa.Column("created_by", sa.String(length=64), nullable=True))
    op.add_column("results", sa.Column("change_reason", sa.Text(), nullable=True))

    op.add_column("outbox", sa.Column("report_status", sa.String(length=2), nullable=True))
    op.execute(
        "UPDATE outbox SET report_status = (SELECT CASE WHEN results.result_status = 'X' "
        "THEN 'X' ELSE 'F' END FROM results WHERE results.id = outbox.result_id)"
    )
    op.create_table(
        "result_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("auto_verified", sa.Boolean(), nullable=False),
        sa.Column("ruleset", sa.String(length=128), nullable=True),
        sa.Column("hold_reasons", sa.JSON(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("meaning", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preliminary_sent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"], ["results.id"], name=op.f("fk_result_states_result_id_results")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_result_states_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_states")),
        sa.UniqueConstraint("result_id", name=op.f("uq_result_states_result_id")),
    )
    op.create_index(op.f("ix_result_states_run_id"), "result_states", ["run_id"])
    op.create_index(op.f("ix_result_states_state"), "result_states", ["state"])
    op.execute(
        "INSERT INTO result_states (result_id, run_id, state, auto_verified, ruleset, "
        "decided_by, decided_at, preliminary_sent) "
        "SELECT id, run_id, "
        "CASE WHEN result_status IN ('F', 'X', 'C', 'P') THEN 'released' "
        "WHEN result_status = 'RA' THEN 'reassay' ELSE 'withheld' END, "
        "CASE WHEN result_status IN ('F', 'X', 'C', 'P') THEN "
        + ("TRUE" if dialect == "postgresql" else "1")
        + " ELSE "
        + ("FALSE" if dialect == "postgresql" else "0")
        + " END, "
        f"CASE WHEN result_status IN ('F', 'X', 'C', 'P') THEN '{LEGACY_RULESET}' END, "
        "CASE WHEN result_status IN ('F', 'X', 'C', 'P') THEN 'auto-verification' END, "
        "created_at, " + ("FALSE" if dialect == "postgresql" else "0") + " FROM results"
    )

    # -- audit log: chain what is there ------------------------------------------
    _drop_audit_guards(dialect)
    op.add_column("audit_log", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("audit_log", sa.Column("at_local", sa.String(length=40), nullable=True))
    op.add_column("audit_log", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("audit_log", sa.Column("previous", sa.JSON(), nullable=True))
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("hash", sa.String(length=64), nullable=True))

    audit = sa.table(
        "audit_log",
        sa.column("id", sa.Integer()),
        sa.column("seq", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("at_local", sa.String()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("entity", sa.String()),
        sa.column("entity_id", sa.String()),
        sa.column("reason", sa.Text()),
        sa.column("previous", sa.JSON()),
        sa.column("detail", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    from saa_lab.store.models import UTCDateTime

    to_utc = UTCDateTime()
    prev, seq = GENESIS, 0
    rows = bind.execute(
        sa.select(audit.c.id, audit.c.at, audit.c.actor, audit.c.action, audit.c.entity,
                  audit.c.entity_id, audit.c.detail).order_by(audit.c.id)
    ).all()  # fmt: skip
    for row in rows:
        seq += 1
        at = to_utc.process_result_value(row.at, bind.dialect)
        assert at is not None
        at_local = at.isoformat()
        digest = entry_hash(seq=seq, prev_hash=prev, at=at, at_local=at_local, actor=row.actor,
                            action=row.action, entity=row.entity, entity_id=row.entity_id,
                            reason=None, previous=None, detail=row.detail)  # fmt: skip
        bind.execute(
            sa.update(audit)
            .where(audit.c.id == row.id)
            .values(seq=seq, at_local=at_local, prev_hash=prev, hash=digest)
        )
        prev = digest

    if dialect == "postgresql":
        for column in ("seq", "prev_hash", "hash"):
            op.alter_column("audit_log", column, nullable=False)
        op.create_unique_constraint(op.f("uq_audit_log_seq"), "audit_log", ["seq"])
    else:
        with op.batch_alter_table("audit_log", recreate="always") as batch:
            batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
            batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
            batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
            batch.create_unique_constraint(op.f("uq_audit_log_seq"), ["seq"])
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])
    _create_audit_guards(dialect)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    head = sa.table(
        "audit_head",
        sa.column("id", sa.Integer()),
        sa.column("seq", sa.Integer()),
        sa.column("last_hash", sa.String()),
    )
    bind.execute(sa.insert(head).values(id=1, seq=seq, last_hash=prev))


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.drop_table("audit_head")
    _drop_audit_guards(dialect)
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f("uq_audit_log_seq"), type_="unique")
        for column in ("hash", "prev_hash", "previous", "reason", "at_local", "seq"):
            batch.drop_column(column)
    _create_audit_guards(dialect)
    op.drop_index(op.f("ix_result_states_state"), table_name="result_states")
    op.drop_index(op.f("ix_result_states_run_id"), table_name="result_states")
    op.drop_table("result_states")
    op.drop_column("outbox", "report_status")
    for column in ("change_reason", "created_by", "report"):
        op.drop_column("results", column)
    op.drop_index(op.f("ix_runs_review_status"), table_name="runs")
    for column in ("reviewed_at", "review_note", "review_meaning", "reviewed_by", "review_rev"):
        op.drop_column("runs", column)
    op.drop_column("runs", "review_status")
