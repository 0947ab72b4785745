"""``saa-lab review | release | reject | correct | history | audit``: people and the record.

Registered on the ``saa-lab`` group by :mod:`saa_lab.cli`. Every command that
decides something needs ``--by NAME``, a user from the configuration's
``[[users]]``; the audit trail records the name and the meaning of the decision.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli import AppContext, _fmt_activity, _handle_errors, _report_delivery, cli, pass_app

if TYPE_CHECKING:
    from .store.review import AuditLine, ResultView, RunView

MEANING_CHOICE = click.Choice(["reviewed", "approved"])
BY_OPTION = click.option(
    "--by",
    "by",
    required=True,
    metavar="NAME",
    help="Who acts: a user from [[users]] in the config.",
)


def _deliver(app: AppContext, *, quiet: bool) -> dict[str, int]:
    """Deliver what the decision queued (as 'saa-lab process' does); a running daemon
    would also pick it up."""
    from .delivery import deliver_pending

    app.config.check_routes()
    delivered = deliver_pending(app.store, app.config)
    for name in [k for k, v in delivered.items() if not v]:
        del delivered[name]
    if not quiet:
        _report_delivery(app.config, delivered)
    return delivered


def _json(value: Any) -> str:
    return json.dumps(
        value, indent=2, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)
    )


def _local(app: AppContext, when: datetime | None) -> str:
    if when is None:
        return "-"
    return when.astimezone(app.config.lab.zone).strftime("%Y-%m-%d %H:%M %Z")


def _value(r: ResultView) -> str:
    if r.activity_u_per_l is None:
        return "no result"
    return f"{_fmt_activity(r.activity_u_per_l, r.comparator)} U/L"


def _state(r: ResultView) -> str:
    if r.state == "released" and r.auto_verified:
        return "auto-released"
    return r.state


def _qc_lines(run: RunView) -> list[str]:
    cal = run.calibration
    lines = []
    verdict = "accepted" if run.status == "accepted" else "REJECTED: " + "; ".join(run.reasons)
    curve = cal.get("model") or "no curve"
    r2 = cal.get("r_squared")
    fit = f"{curve}" + (f", r² {r2:.4f}" if isinstance(r2, float) else "")
    if cal:
        lloq, uloq = cal.get("lloq_u_per_l"), cal.get("uloq_u_per_l")
        lines.append(f"QC: {verdict}; curve {fit}; LLOQ {lloq:g} U/L, ULOQ {uloq:g} U/L")
    else:
        lines.append(f"QC: {verdict}")
    standards = cal.get("standard_wells") or []
    if standards:
        used = [w for w in standards if not w.get("excluded")]
        passing = sum(1 for w in used if w.get("passed"))
        excluded = [f"{w['well']} ({w.get('reason') or 'excluded'})"
                    for w in standards if w.get("excluded")]  # fmt: skip
        text = f"standards: {passing}/{len(used)} wells within tolerance"
        if excluded:
            text += "; excluded " + ", ".join(excluded)
        lines.append(text)
    controls = cal.get("controls") or []
    if controls:
        parts = []
        for c in controls:
            measured = c.get("measured_u_per_l")
            shown = "-" if measured is None else _fmt_activity(measured, "=")
            ok = "ok" if c.get("passed") else "FAIL"
            parts.append(f"{c['name']} {shown} ({c['low_u_per_l']:g}-{c['high_u_per_l']:g}) {ok}")
        lines.append("controls: " + "; ".join(parts))
    westgard = cal.get("westgard") or {}
    findings = westgard.get("findings") or []
    lines.append("Westgard: " + ("; ".join(findings) if findings else "no findings"))
    for warning in run.warnings:
        lines.append(f"warning: {warning}")
    return lines


def _history(app: AppContext, r: ResultView, limit: int = 3) -> str:
    if not r.patient_id:
        return "no patient history (no order)"
    from .store.order_queries import reported_history

    prior = reported_history(app.store, r.patient_id, before_result_id=r.id)
    if not prior:
        return "first result of this patient"
    shown = [
        f"{(e.collection_time or e.reported_at).astimezone(app.config.lab.zone):%Y-%m-%d} "
        f"{_fmt_activity(e.activity_u_per_l, e.comparator)} U/L {e.flag}"
        for e in prior[-limit:]
    ]
    return "earlier: " + "; ".join(shown)


def _run_header(app: AppContext, run: RunView) -> str:
    plate = f"plate {run.plate_index + 1}" + (f" ({run.plate_id})" if run.plate_id else "")
    return (f"run {run.id}  {run.source_name} {plate}, {run.assay_name} {run.assay_version}, "
            f"processed {_local(app, run.created_at)}: {run.review_status}")  # fmt: skip


def _result_line(r: ResultView) -> str:
    return f"result:{r.id:<6} {r.accession:<14} {_value(r):>14}  {_state(r):<13} {r.flag}"


def _print_audit(app: AppContext, entries: list[AuditLine]) -> None:
    for e in entries:
        why = f" - {e.reason}" if e.reason else ""
        click.echo(f"  #{e.seq:<6} {_local(app, e.at)}  {e.actor:<18} {e.action} "
                   f"{e.entity} {e.entity_id or ''}{why}")  # fmt: skip


def _view_json(app: AppContext, run: RunView) -> dict[str, Any]:
    data = asdict(run)
    data["results"] = [{**asdict(r), "history": _history(app, r)} for r in run.results]
    return data


@cli.command()
@click.argument("run_id", required=False, type=click.IntRange(min=1), metavar="[RUN]")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
@_handle_errors
def review(app: AppContext, run_id: int | None, as_json: bool) -> None:
    """List the runs and results waiting for a person, with their QC; or show RUN in full.

    Each run shows its curve, standards' back-calculation, controls and Westgard
    findings, why it was held, and each result with its flag and the patient's
    earlier results. Act with 'saa-lab release' or 'saa-lab reject'.
    """
    from .store import review as queries

    if run_id is not None:
        _review_one(app, queries.run_view(app.store, run_id), as_json)
        return
    runs = queries.waiting_runs(app.store)
    if as_json:
        click.echo(_json([_view_json(app, run) for run in runs]))
        return
    if not runs:
        click.echo("nothing waits for review")
        return
    total = sum(len(run.waiting) for run in runs)
    click.echo(f"{len(runs)} run(s) wait for review ({total} result(s))\n")
    for run in runs:
        click.echo(_run_header(app, run))
        for line in _qc_lines(run):
            click.echo(f"  {line}")
        held = sorted({h for r in run.waiting for h in r.hold_reasons})
        if held:
            click.echo("  held: " + "; ".join(held))
        for r in run.waiting:
            click.echo(f"  {_result_line(r)}")
            click.echo(f"  {'':<14}{_history(app, r)}")
        click.echo(f"  release: saa-lab release {run.id} --by NAME --meaning reviewed|approved")
        click.echo(f"  reject:  saa-lab reject {run.id} --by NAME --reason TEXT\n")


def _review_one(app: AppContext, run: RunView, as_json: bool) -> None:
    from .store.review import audit_entries

    entries = audit_entries(app.store, "run", [run.id])
    entries += audit_entries(app.store, "result", [r.id for r in run.results])
    entries.sort(key=lambda e: e.seq)
    if as_json:
        click.echo(_json({**_view_json(app, run), "audit": [asdict(e) for e in entries]}))
        return
    click.echo(_run_header(app, run))
    if run.reviewed_by:
        note = f": {run.review_note}" if run.review_note else ""
        meaning = f" ({run.review_meaning})" if run.review_meaning else ""
        click.echo(f"decision: {run.review_status} by {run.reviewed_by}{meaning} "
                   f"at {_local(app, run.reviewed_at)}{note}")  # fmt: skip
    for line in _qc_lines(run):
        click.echo(line)
    cal = run.calibration
    params = cal.get("parameters") or {}
    if params:
        click.echo("curve parameters: " + ", ".join(f"{k} {v:.6g}" for k, v in params.items()))
    standards = cal.get("standard_wells") or []
    if standards:
        click.echo(f"  {'well':<5} {'nominal':>8} {'signal':>9} {'back-calc':>10} {'recov %':>8}  ")
        for w in standards:
            back = w.get("back_calculated_u_per_l")
            rec = w.get("recovery_percent")
            sig = w.get("signal")
            mark = "excluded" if w.get("excluded") else ("ok" if w.get("passed") else "FAIL")
            click.echo(
                f"  {w['well']:<5} {w['nominal_u_per_l']:>8g} "
                f"{'-' if sig is None else f'{sig:.4f}':>9} "
                f"{'-' if back is None else f'{back:.1f}':>10} "
                f"{'-' if rec is None else f'{rec:.1f}':>8}  {mark}"
            )
    click.echo("results:")
    for r in run.results:
        click.echo(f"  {_result_line(r)}")
        if r.hold_reasons and r.state == "waiting":
            click.echo(f"  {'':<14}held: {'; '.join(r.hold_reasons)}")
        if r.decided_by and not r.auto_verified:
            click.echo(f"  {'':<14}{r.state} by {r.decided_by} ({r.meaning}) "
                       f"{_local(app, r.decided_at)}")  # fmt: skip
        elif r.auto_verified:
            click.echo(f"  {'':<14}auto-verified by rule set {r.ruleset}")
        if r.comment:
            click.echo(f"  {'':<14}{r.comment}")
        click.echo(f"  {'':<14}{_history(app, r)}")
    if entries:
        click.echo("audit:")
        _print_audit(app, entries)


def _parse_target(text: str, default: str = "run") -> Any:
    from .errors import ReviewError
    from .review import parse_target

    found = parse_target(text, default="result" if default == "result" else "run")
    if default == "result" and found.kind != "result":
        raise ReviewError(f"{text!r} is a run; this command takes a result (57 or result:57)")
    return found


@cli.command()
@click.argument("target", metavar="RUN|result:ID")
@BY_OPTION
@click.option("--meaning", type=MEANING_CHOICE, required=True,
              help="What the signature means: reviewed, or approved.")  # fmt: skip
@click.option("--comment", help="Why, or a note for the record.")
@click.option("--json", "as_json", is_flag=True, help="Print the released result ids as JSON.")
@pass_app
@_handle_errors
def release(app: AppContext, target: str, by: str, meaning: str, comment: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Release a waiting run (12 or run:12) or one result (result:57) to the clinic.

    Its results leave with OBX-11 F (X where no result could be obtained). If
    someone else decided first, nothing changes and the command exits 8.
    """
    from .review import release as do_release

    where = _parse_target(target)
    released = do_release(app.config, app.store, where, by=by, meaning=meaning, comment=comment)
    delivered = _deliver(app, quiet=True)
    if as_json:
        click.echo(_json({"target": str(where), "released": released, "by": by,
                          "meaning": meaning, "delivered": delivered}))  # fmt: skip
        return
    click.echo(f"{where}: {len(released)} result(s) released by {by} ({meaning})")
    _report_delivery(app.config, delivered)


@cli.command()
@click.argument("target", metavar="RUN|result:ID")
@BY_OPTION
@click.option("--reason", required=True, help="Why the run or result is rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the rejected result ids as JSON.")
@pass_app
@_handle_errors
def reject(app: AppContext, target: str, by: str, reason: str, as_json: bool) -> None:
    """Reject a waiting run (or result:ID): its results never leave; the samples go on the
    re-assay list. A preliminary result already sent is withdrawn (OBX-11 X)."""
    from .review import reject as do_reject

    where = _parse_target(target)
    rejected = do_reject(app.config, app.store, where, by=by, reason=reason)
    delivered = _deliver(app, quiet=True)
    if as_json:
        click.echo(_json({"target": str(where), "rejected": rejected, "by": by,
                          "reason": reason, "delivered": delivered}))  # fmt: skip
        return
    click.echo(f"{where}: {len(rejected)} result(s) rejected by {by}; samples on the re-assay list")
    if delivered:
        _report_delivery(app.config, delivered)


@cli.command()
@click.argument("result_id", metavar="RESULT")
@BY_OPTION
@click.option("--reason", required=True, help="Why it is corrected (kept in the audit trail).")
@click.option("--value", metavar="N", help="The corrected activity in U/L: 250, <25 or >4000.")
@click.option("--comment", help="A note for the clinic, sent with the corrected result.")
@click.option("--json", "as_json", is_flag=True, help="Print the new version as JSON.")
@pass_app
@_handle_errors
def correct(app: AppContext, result_id: str, by: str, reason: str, value: str | None,
            comment: str | None, as_json: bool) -> None:  # fmt: skip
    """Correct a released RESULT: a new version sent with OBX-11 C; the original stays.

    A new --value is interpreted again (flag and comment follow it). Correct the
    newest version; correcting one that was corrected since exits 8.
    """
    from .review import correct as do_correct
    from .store.review import result_view

    where = _parse_target(result_id, default="result")
    new_id = do_correct(app.config, app.store, where.id, by=by, reason=reason, value=value,
                        comment=comment)  # fmt: skip
    delivered = _deliver(app, quiet=True)
    view = result_view(app.store, new_id)
    if as_json:
        click.echo(_json({**asdict(view), "delivered": delivered}))
        return
    sent = view.messages[-1].report_status if view.messages else "C"
    click.echo(f"result:{new_id} is version {view.version} of {view.accession}: {_value(view)} "
               f"{view.flag}; sent with OBX-11 {sent} (replaces result:{where.id})")  # fmt: skip
    _report_delivery(app.config, delivered)


@cli.command()
@click.argument("result_id", metavar="RESULT")
@click.option("--json", "as_json", is_flag=True, help="Print every version as JSON.")
@pass_app
@_handle_errors
def history(app: AppContext, result_id: str, as_json: bool) -> None:
    """Show every version of RESULT: values, who made and released each, why, its messages
    and its audit entries."""
    from .store.review import audit_entries, versions

    where = _parse_target(result_id, default="result")
    found = versions(app.store, where.id)
    entries = audit_entries(app.store, "result", [v.id for v in found])
    controls = [m.control_id for v in found for m in v.messages]
    entries += audit_entries(app.store, "message", controls)
    entries.sort(key=lambda e: e.seq)
    if as_json:
        click.echo(_json({"versions": [asdict(v) for v in found],
                          "audit": [asdict(e) for e in entries]}))  # fmt: skip
        return
    first = found[0]
    click.echo(f"{first.accession}: {len(found)} version(s) (result uid {first.result_uid})")
    for v in found:
        made = f"by {v.created_by or 'daemon'} {_local(app, v.created_at)}"
        click.echo(f"  v{v.version} result:{v.id:<6} {_value(v):>14}  {v.flag:<30} "
                   f"OBX-11 {v.result_status:<2} {_state(v):<13} made {made}")  # fmt: skip
        if v.change_reason:
            click.echo(f"      reason: {v.change_reason}")
        if v.decided_by and not v.auto_verified:
            click.echo(f"      {v.meaning} by {v.decided_by} {_local(app, v.decided_at)}")
        for m in v.messages:
            click.echo(f"      message {m.control_id} OBX-11 {m.report_status or '?'} to "
                       f"{m.destination}: {m.status}")  # fmt: skip
    if entries:
        click.echo("audit:")
        _print_audit(app, entries)


@cli.group()
def audit() -> None:
    """Check or export the audit trail (hash-chained, append-only)."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_app
@_handle_errors
def audit_verify(app: AppContext, as_json: bool) -> None:
    """Check every entry's hash and link to the one before; report the first broken one.

    Exits 0 when the chain is intact, 9 when it is not.
    """
    from .errors import AuditChainError

    report = app.store.verify_audit()
    if as_json:
        click.echo(
            _json(
                {
                    "intact": report.intact,
                    "entries": report.entries,
                    "last_hash": report.last_hash,
                    "problem": str(report.problem) if report.problem else None,
                    "first_broken_seq": report.problem.seq if report.problem else None,
                }
            )
        )
        if not report.intact:
            sys.exit(AuditChainError.exit_code)
        return  # fmt: skip
    if report.problem is not None:
        msg = (f"audit trail broken at {report.problem}; the {report.entries} entries before "
               "it check out")  # fmt: skip
        raise AuditChainError(msg)
    click.echo(f"audit trail intact: {report.entries} entries, last hash {report.last_hash}")


def _bound(app: AppContext, text: str | None, *, end: bool) -> datetime | None:
    """A date (whole day, in the lab's zone) or an ISO date-time; None when not given."""
    if text is None:
        return None
    from .errors import SaaLabError

    zone = app.config.lab.zone
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        option = "--to" if end else "--from"
        raise SaaLabError(f"{option} {text!r}: give a date (2026-11-21) or a date-time "
                          "(2026-11-21T14:30)") from exc  # fmt: skip
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@audit.command("export")
@click.option("--from", "start", metavar="DATE", help="First day (or date-time) to include.")
@click.option("--to", "end", metavar="DATE", help="Last day to include (a date-time: up to it).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CSV here (default: standard output).")  # fmt: skip
@pass_app
@_handle_errors
def audit_export(app: AppContext, start: str | None, end: str | None, output: Path | None) -> None:
    """Write the audit entries as CSV for inspectors: sequence, UTC and local time, who,
    what, which record, why, the previous value, the details and the chain hashes."""
    low, high = _bound(app, start, end=False), _bound(app, end, end=True)
    if output is None:
        count = app.store.export_audit(sys.stdout, start=low, end=high)
    else:
        from .errors import SaaLabError

        temp = output.with_name(f".{output.name}.part")
        try:
            with temp.open("w", encoding="utf-8", newline="") as out:
                count = app.store.export_audit(out, start=low, end=high)
            temp.replace(output)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise SaaLabError(f"cannot write {output}: {exc.strerror or exc}") from exc
    click.echo(f"{count} audit entries exported", err=True)
