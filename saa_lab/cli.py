"""The ``saa-lab`` command line.

Commands find ``saa-lab.toml`` in the current folder or a parent (as git finds
its repository); ``--config FILE`` or ``SAA_LAB_CONFIG`` point elsewhere.
Errors print one line naming the file, line, well or setting, and exit non-zero.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .errors import ConfigError, InputFileError, SaaLabError

if TYPE_CHECKING:
    from .config import AppConfig
    from .pipeline import ExportOutcome
    from .store import Store, StoredRun
    from .worklist import Worklist

# Kept here (not imported from .config) so `saa-lab --help` does not load pydantic.
CONFIG_NAME = "saa-lab.toml"
# Kept in step with parsers.base.Instrument (a test checks), for the same reason.
FORMATS = (
    "biotek_gen5",
    "softmax_pro",
    "tecan",
    "bmg",
    "thermo_skanit",
    "perkinelmer",
    "generic_grid",
    "generic_long",
)
FORMAT_OPTION = click.option(
    "--format",
    "export_format",
    type=click.Choice(FORMATS),
    help="Read the export as this format instead of detecting it (default: [watch] format).",
)

__all__ = ["main"]

DEAD_LETTERS_SHOWN = 5  # saa-lab status lists the most recent dead letters

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A SaaLabError shown as one line, with the error class's exit code."""

    def __init__(self, error: SaaLabError) -> None:
        super().__init__(str(error))
        # click declares exit_code on the class; each error class has its own code.
        self.exit_code = error.exit_code  # type: ignore[misc]


@dataclass
class AppContext:
    config_path: Path | None = None
    _config: AppConfig | None = None
    _store: Store | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def config(self) -> AppConfig:
        from .config import find_config, load_config

        if self._config is None:
            path = self.config_path or find_config()
            self._config = load_config(path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store

            self._store = Store(self.config.database_url, zone=self.config.lab.zone)
            self.cleanups.append(self._store.close)
        return self._store


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def _set_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    ctx.ensure_object(AppContext).config_path = value


def _handle_errors(func: F) -> F:
    """Turn SaaLabError into a one-line ClickException with the right exit code."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SaaLabError as exc:
            raise CliError(exc) from exc

    return wrapper  # type: ignore[return-value]


@click.group(
    context_settings={"auto_envvar_prefix": "SAA_LAB", "help_option_names": ["-h", "--help"]}
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SAA_LAB_CONFIG",
    callback=_set_config,
    expose_value=False,
    is_eager=True,
    help=f"Configuration file (default: {CONFIG_NAME} here or in a parent folder).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="SAA_LAB_LOG_FORMAT",
    show_envvar=True,
    help="Log lines on stderr as text, or as one JSON object per line (for journald, Loki…).",
)
@click.version_option(package_name="saa-lab")
@click.pass_context
def cli(ctx: click.Context, verbose: int, log_format: str) -> None:
    """saa-lab: serum asparaginase activity plates in, interpreted HL7 results out.

    Drop plate-reader exports and their worklists into the inbox; the daemon
    (`saa-lab watch`) fits the calibration, applies LLOQ/ULOQ and the 100 U/L
    threshold, stores everything and writes HL7 ORU^R01 messages to the outbox.
    """
    from .logs import configure_logging

    level = logging.WARNING - 10 * verbose
    configure_logging(max(level, logging.DEBUG), log_format)
    app = ctx.ensure_object(AppContext)
    ctx.call_on_close(lambda: [cleanup() for cleanup in app.cleanups])


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@_handle_errors
def init(directory: Path) -> None:
    """Create DIRECTORY/saa-lab.toml, its folders and editable assay/layout files."""
    import shutil

    from .config import load_config, packaged_config_dir

    target = directory / CONFIG_NAME
    if target.exists():
        msg = "already exists; saa-lab init never overwrites a configuration"
        raise ConfigError(msg, path=str(target))
    directory.mkdir(parents=True, exist_ok=True)
    packaged = packaged_config_dir()
    shutil.copyfile(packaged / CONFIG_NAME, target)
    config = load_config(target)
    for folder in (config.inbox, config.archive, config.quarantine, config.outbox):
        folder.mkdir(parents=True, exist_ok=True)
    for kind in ("assays", "layouts", "protocols"):
        own = config.search_dirs(kind)[0]
        own.mkdir(parents=True, exist_ok=True)
        for file in sorted((packaged / kind).glob("*.toml")):
            if not (own / file.name).exists():
                shutil.copyfile(file, own / file.name)
    click.echo(f"Created {target}")
    click.echo(f"  inbox:      {config.inbox}")
    click.echo(f"  outbox:     {config.outbox}")
    click.echo(f"  assays:     {config.search_dirs('assays')[0]}")
    click.echo(f"  layouts:    {config.search_dirs('layouts')[0]}")
    click.echo(f"  protocols:  {config.search_dirs('protocols')[0]}")
    click.echo(f"Next: cd {directory} && saa-lab watch")


@cli.command()
@pass_app
@_handle_errors
def watch(app: AppContext) -> None:
    """Watch the inbox and process exports as they arrive (until Ctrl-C or SIGTERM).

    With [hl7] listen_port set, also accept HL7 orders (ORM^O01, OML^O21) over MLLP.
    """
    from .watcher import Daemon

    logging.getLogger("saa_lab").setLevel(min(logging.getLogger().level, logging.INFO))
    daemon = Daemon(app.config, app.store)

    def stop(signum: int, _frame: object) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        daemon.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from contextlib import ExitStack

    from .intake import order_listener

    listener = order_listener(app.config, app.store)
    with ExitStack() as running:
        if listener is not None:
            running.enter_context(listener)
            click.echo(
                f"saa-lab listening for HL7 orders on {listener.host}:{listener.port}", err=True
            )
        running.enter_context(daemon)
        click.echo(f"saa-lab watching {app.config.inbox} (Ctrl-C to stop)", err=True)
        daemon.wait()


def _plate_json(outcome: ExportOutcome, run: StoredRun) -> dict[str, Any]:
    return {
        "source": outcome.source.original_path,
        "plate_id": run.plate_id,
        "format": run.format,
        "status": run.status,
        "reasons": list(run.reasons),
        "run_id": run.id,
        "assay": run.assay_name,
        "assay_version": run.assay_version,
        "duplicate": outcome.duplicate,
        # A file of the same name, other content, processed before: results wait for review.
        "new_version_of": (
            {"file_id": outcome.earlier_version.id, "sha256": outcome.earlier_version.sha256}
            if outcome.earlier_version
            else None
        ),
        "warnings": list(run.warnings),
        "curve": run.curve,
        "lookback": list(run.lookback),
        "review_status": run.review_status,
        "results": [
            {
                "accession": r.accession,
                "wells": list(r.wells),
                "activity_u_per_l": r.activity_u_per_l,
                "comparator": r.comparator,
                "flag": r.flag,
                "comment": r.comment,
                "dilution": r.dilution,
                "result_status": r.result_status,
                "message_control_ids": list(r.control_ids),
                "reassay_dilution": r.reassay_dilution,
                "supersedes_result_id": r.supersedes_result_id,
                "bias_factor": r.bias_factor,
                "protocol": r.protocol,
                "protocol_version": r.protocol_version,
                "rule_id": r.rule_id,
                "recommendation": r.recommendation,
                "result_id": r.id,
                "review": {
                    "state": r.state,
                    "auto_verified": r.auto_verified,
                    "ruleset": r.ruleset,
                    "hold_reasons": list(r.hold_reasons),
                },
            }
            for r in run.results
        ],
    }


def _find_worklist(export: Path, plate_id: str | None, *, single: bool) -> Path | None:
    """``<plate id>.worklist.csv`` beside the export, or for a one-plate export its stem's."""
    from .worklist import worklist_names

    names = worklist_names(plate_id, export.stem, single=single)
    return next((export.parent / n for n in names if (export.parent / n).is_file()), None)


@cli.command()
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--worklist",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Worklist CSV (default: <plate id>.worklist.csv or <export stem>.worklist.csv beside it).",
)
@click.option("--layout", help="Plate template name or .toml path (default: from config).")
@click.option("--assay", help="Assay name or .toml path (default: from config).")
@FORMAT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_app
@_handle_errors
def process(
    app: AppContext,
    export: Path,
    worklist: Path | None,
    layout: str | None,
    assay: str | None,
    export_format: str | None,
    as_json: bool,
) -> None:
    """Run the daemon's pipeline on one EXPORT: store the run and write its HL7 messages.

    The export file is read, never moved. An export already processed is not
    processed again; its stored results are shown.
    """
    from .delivery import deliver_pending
    from .domain import SourceFile
    from .parsers import Instrument, parse
    from .pipeline import configured_instrument, process_export
    from .worklist import parse_worklist

    config = app.config
    source = SourceFile.from_path(export, timezone=config.lab.zone)
    instrument = Instrument(export_format) if export_format else configured_instrument(config)
    reads = parse(source, instrument=instrument)
    plate_indexes = sorted({r.plate_index for r in reads})
    if worklist is not None and len(plate_indexes) > 1:
        msg = (
            f"this export holds {len(plate_indexes)} plates; one --worklist cannot serve them all. "
            "Put each plate's worklist beside it as <plate id>.worklist.csv"
        )
        raise InputFileError(msg, path=str(export))
    by_plate: dict[int, Worklist] = {}
    single = len(plate_indexes) == 1
    for plate in plate_indexes:
        plate_id = next((r.plate_id for r in reads if r.plate_index == plate), None)
        found = worklist or _find_worklist(export, plate_id, single=single)
        if found is None:
            tried = [f"{plate_id}.worklist.csv"] if plate_id else []
            tried += [f"{export.stem}.worklist.csv"] if single else []
            where = "" if single else f" for plate {plate + 1}"
            msg = (
                f"no worklist found beside the export{where} (looked for "
                f"{' or '.join(tried)}); give one with --worklist"
            )
            raise InputFileError(msg, path=str(export))
        by_plate[plate] = parse_worklist(SourceFile.from_path(found), zone=config.lab.zone)
    outcome = process_export(
        app.store,
        config,
        source,
        reads=reads,
        worklist_for=lambda read: by_plate.get(read.plate_index),
        assay_name=assay,
        layout_name=layout,
        actor="cli",
    )
    config.check_routes()
    delivered = deliver_pending(app.store, config)
    if as_json:
        plates = [_plate_json(outcome, run) for run in outcome.runs]
        click.echo(json.dumps({"plates": plates}, indent=2))
        return
    if outcome.duplicate:
        click.echo(f"{export.name} was already processed; showing the stored results.")
    if outcome.earlier_version is not None:
        click.echo(
            f"{export.name} is a new version of file {outcome.earlier_version.id} (same name, "
            "other content): its results wait for review (saa-lab review)."
        )
    for run in outcome.runs:
        _print_run(run)
    _report_delivery(config, delivered)


def _report_delivery(config: AppConfig, delivered: dict[str, int]) -> None:
    """One line per destination: how many messages this command delivered, and where."""
    for destination, count in sorted(delivered.items()):
        target = config.all_destinations()[destination]
        place = (
            str(config.resolve(target.path))
            if target.path is not None
            else f"{target.host}:{target.port}"
        )
        click.echo(f"{count} HL7 message(s) delivered to {destination} ({place})")
    left_to: dict[str, str] = getattr(delivered, "left_to", {})
    for destination, holder in sorted(left_to.items()):
        click.echo(f"HL7 messages to {destination} are queued; the running daemon "
                   f"({holder}) sends them")  # fmt: skip
    if not delivered and not left_to:
        click.echo("no HL7 message to deliver")


def _fmt_activity(value: float | None, comparator: str) -> str:
    from .numbers import format_number

    if value is None:
        return "-"
    prefix = "" if comparator == "=" else comparator
    return f"{prefix}{format_number(value)}"


def _fmt_iu_per_ml(value: float | None, comparator: str) -> str:
    return _fmt_activity(None if value is None else value / 1000, comparator)


def _print_run(run: StoredRun) -> None:
    title = f"{run.source_name} plate {run.plate_index + 1}"
    if run.plate_id:
        title += f" ({run.plate_id})"
    click.echo(f"{title}: run {run.id} {run.status.upper()}, {run.review_status}")
    for reason in run.reasons:
        click.echo(f"  - {reason}")
    for warning in run.warnings:
        click.echo(f"  ! {warning}")
    if run.lookback:
        click.echo(
            f"  look-back: {len(run.lookback)} result(s) released since the last clean run "
            "must be evaluated: " + ", ".join(str(r["accession"]) for r in run.lookback)
        )
    if not run.results:
        return
    click.echo(f"  {'result':<12} {'accession':<12} {'U/L':>8} {'IU/mL':>8}  {'review':<10} flag")
    for r in run.results:
        state = "auto" if r.auto_verified else r.state
        click.echo(
            f"  result:{r.id:<5} {r.accession:<12} "
            f"{_fmt_activity(r.activity_u_per_l, r.comparator):>8} "
            f"{_fmt_iu_per_ml(r.activity_u_per_l, r.comparator):>8}  {state:<10} {r.flag}"
        )
    held = sorted({reason for r in run.results for reason in r.hold_reasons})
    if any(r.state == "waiting" for r in run.results):
        click.echo(f"  waiting for review ({'; '.join(held)}): saa-lab review {run.id}")


@cli.command()
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@FORMAT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what was read as JSON.")
@pass_app
@_handle_errors
def inspect(app: AppContext, export: Path, export_format: str | None, as_json: bool) -> None:
    """Show what saa-lab reads from EXPORT: format, plates, wavelengths, metadata, wells.

    Every well without a value is listed with the reason the file gives. Nothing
    is stored. Kinetic reads show each well's rate (ΔOD/min over the whole read).
    """
    from .domain import SourceFile
    from .inspect import read_to_json, render_read, summary
    from .parsers import PARSERS, Instrument, detect, parse

    try:
        zone = app.config.lab.zone  # read times without an offset are in the lab's zone
    except ConfigError:
        zone = None  # inspecting a file must not need a valid configuration
    source = SourceFile.from_path(export, **({"timezone": zone} if zone else {}))
    instrument = Instrument(export_format) if export_format else detect(source)
    reads = parse(source, instrument=instrument)
    if as_json:
        click.echo(json.dumps({"plates": [read_to_json(r) for r in reads]}, indent=2))
        return
    name = PARSERS[instrument].DISPLAY_NAME
    click.echo(f"{export.name}: {name} ({instrument}), {summary(reads)}")
    for number, read in enumerate(reads, start=1):
        click.echo("")
        for line in render_read(read, number):
            click.echo(line)


@cli.command()
@click.argument("patient_id")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@pass_app
@_handle_errors
def patient(app: AppContext, patient_id: str, as_json: bool) -> None:
    """Show PATIENT_ID's timeline: dose, sample, activity and flag of every result."""
    from .store.order_queries import patient_timeline

    entries = patient_timeline(app.store, patient_id)
    zone = app.config.lab.zone
    if as_json:
        rows = [
            {
                "accession": e.accession,
                "result_id": e.result_id,
                "run_id": e.run_id,
                "formulation": e.formulation,
                "protocol": e.protocol,
                "dose_time": e.dose_time.astimezone(zone).isoformat() if e.dose_time else None,
                "collection_time": (
                    e.collection_time.astimezone(zone).isoformat() if e.collection_time else None
                ),
                "activity_u_per_l": e.activity_u_per_l,
                "comparator": e.comparator,
                "flag": e.flag,
                "result_status": e.result_status,
                "state": e.state,
            }
            for e in entries
        ]
        click.echo(json.dumps({"patient_id": patient_id, "results": rows}, indent=2))
        return
    if not entries:
        click.echo(f"no results for patient {patient_id}")
        return

    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"

    click.echo(f"patient {patient_id}: {len(entries)} result(s)")
    header = (f"  {'dose':<16} {'drug':<19} {'sample':<16} {'since dose':>10} "
              f"{'U/L':>8}  flag  (accession)")  # fmt: skip
    click.echo(header)
    for e in entries:
        since = "-"
        if e.dose_time and e.collection_time:
            hours = (e.collection_time - e.dose_time).total_seconds() / 3600
            since = f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.0f} h"
        click.echo(
            f"  {when(e.dose_time):<16} {(e.formulation or '-'):<19} "
            f"{when(e.collection_time):<16} {since:>10} "
            f"{_fmt_activity(e.activity_u_per_l, e.comparator):>8}  {e.flag}  ({e.accession})"
            + ("" if e.state == "released" else f" [{e.state}]")
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--check",
    is_flag=True,
    help="Print one health line and exit 0 (ok), 1 (warning) or 2 (critical), for monitoring.",
)
@pass_app
@_handle_errors
def status(app: AppContext, as_json: bool, check: bool) -> None:
    """Show files waiting or failed, runs, results and the HL7 outbox.

    Per destination: messages pending, sent and dead, and the age of the oldest unsent
    one. Dead-lettered messages (refused with AR/CR, or out of retries) are listed
    with the receiver's answer, most recent first.

    Health (also as "health" in --json): the database is reachable, the daemon's
    heartbeat is recent (it writes one every 10 s), the inbox was listed recently,
    the observer runs, files can be moved, no message is dead or unsent for an hour.
    """
    from datetime import UTC

    from .health import EXIT_CODES, assess, unreachable

    try:
        summary = app.store.status_summary()
    except SaaLabError as exc:
        if not (as_json or check):
            raise
        health = unreachable(str(exc))
        if as_json:
            click.echo(json.dumps({"health": health}, indent=2))
        else:
            click.echo(f"CRITICAL: {exc}")
        sys.exit(EXIT_CODES["critical"])
    summary["reassay"] = app.store.open_reassays()
    summary["config"] = app.config.source
    summary["inbox"] = str(app.config.inbox)
    summary["queues"] = _queues(app)
    from .store.queue import outbox_listing

    summary["dead_letters"] = outbox_listing(app.store, status="dead", limit=DEAD_LETTERS_SHOWN)
    summary["health"] = health = assess(
        summary, datetime.now(UTC), poll_seconds=app.config.watch.poll_interval_seconds
    )
    if check:
        problems = [c for c in health["checks"] if c["status"] != "ok"]
        text = "; ".join(f"{c['name']}: {c['detail']}" for c in problems) or "all checks pass"
        click.echo(f"{health['status'].upper()}: {text}")
        sys.exit(EXIT_CODES[health["status"]])
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"config:   {summary['config'] or '(embedded defaults)'}")
    for daemon in summary["daemons"]:
        state = f"stopped {daemon['stopped']}" if daemon.get("stopped") else "running"
        click.echo(
            f"daemon:   pid {daemon.get('pid')} on {daemon.get('host')} ({state}), inbox "
            f"{daemon.get('inbox')}, last heartbeat {daemon.get('heartbeat')}, last inbox "
            f"scan {daemon.get('last_scan')}"
        )
    if not summary["daemons"]:
        click.echo("daemon:   never ran against this database")
    click.echo(
        f"health:   {health['status']}"
        + "".join(f"; {c['name']}: {c['detail']}" for c in health["checks"] if c["status"] != "ok")
    )
    files = summary["files"]
    click.echo(
        "files:    " + (", ".join(f"{v} {k}" for k, v in sorted(files.items())) or "none yet")
    )
    runs = summary["runs"]
    click.echo("runs:     " + (", ".join(f"{v} {k}" for k, v in sorted(runs.items())) or "none"))
    click.echo(f"results:  {summary['results']}")
    review = summary["review"]
    if review["waiting_runs"]:
        click.echo(
            f"review:   {review['waiting_results']} result(s) in {review['waiting_runs']} run(s) "
            "wait for a person: saa-lab review"
        )
    outbox = summary["outbox"]
    line = ", ".join(f"{v} {k}" for k, v in sorted(outbox.items())) or "empty"
    if summary["oldest_pending_message"]:
        line += f" (oldest pending since {summary['oldest_pending_message']})"
    click.echo(f"outbox:   {line}")
    for name, queue in summary["queues"].items():
        line = f"{queue['pending']} pending, {queue['sent']} sent, {queue['dead']} dead"
        if queue["oldest_pending_seconds"] is not None:
            line += f"; oldest unsent {_age(queue['oldest_pending_seconds'])}"
        click.echo(f"queue:    {name}: {line}")
    for item in summary["dead_letters"]:
        click.echo(
            f"dead:     message {item['id']} to {item['destination']} ({item['accession']}, "
            f"MSH-10 {item['control_id']}) after {item['attempts']} attempt(s): "
            f"{_ack_text(item) or 'no answer recorded'}"
        )
    dead_total = sum(q["dead"] for q in summary["queues"].values())
    if dead_total:
        more = dead_total - len(summary["dead_letters"])
        click.echo(
            f"dead:     {dead_total} dead-lettered message(s)"
            + (f" ({more} more not shown)" if more > 0 else "")
            + "; see 'saa-lab outbox --state dead', requeue with 'saa-lab outbox retry --dead'"
        )
    for item in summary["waiting"]:
        click.echo(f"waiting:  {item['file']}: {item['reason']} (since {item['since']})")
    for item in summary["failed"]:
        click.echo(f"failed:   {item['file']}: {item['error']}")
    for item in summary["reassay"]:
        click.echo(
            f"re-assay: {item['accession']} ({item['assay']}) at 1:{item['suggested_dilution']:g}"
            f", since {item['since']}"
        )
    for item in summary["lookback"]:
        accessions = ", ".join(str(r["accession"]) for r in item["results"]) or "none"
        click.echo(
            f"look-back: run {item['run_id']} ({item['assay']}) failed QC; results released "
            f"since the last clean run to evaluate: {accessions}"
        )


def _queues(app: AppContext) -> dict[str, dict[str, Any]]:
    """Per destination (configured ones first, then any other with messages): messages by
    state and the age in seconds of the oldest unsent (pending) one, or None."""
    from .store.queue import queue_stats

    stats = queue_stats(app.store)
    names = [
        *app.config.all_destinations(),
        *sorted(set(stats) - set(app.config.all_destinations())),
    ]
    return {
        name: {
            "pending": int(stats.get(name, {}).get("pending", 0)),
            "sent": int(stats.get(name, {}).get("sent", 0)),
            "dead": int(stats.get(name, {}).get("dead", 0)),
            "oldest_pending_seconds": stats.get(name, {}).get("oldest_pending_seconds"),
        }
        for name in names
    }


def _age(seconds: float) -> str:
    """``45s``, ``12m 05s``, ``3h 07m``, ``2d 04h``."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def _ack_text(message: dict[str, Any]) -> str:
    """The receiver's last answer: ACK code and error text (``AR: unknown patient``)."""
    code, error = message.get("last_ack") or "", message.get("last_error") or ""
    if code and error and f"({code})" not in error:  # delivery errors often name the code
        return f"{code}: {error}"
    return error or code


def _local_time(iso: str | None, zone: Any) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _outbox_messages(
    store: Store, *, ids: Sequence[int] = (), control_ids: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Outbox messages by id or MSH-10: id, destination, status, control_id, result_id."""
    from sqlalchemy import or_, select

    from .store.models import OutboxMessage

    with store.session() as s:
        rows = s.scalars(
            select(OutboxMessage)
            .where(or_(OutboxMessage.id.in_(ids), OutboxMessage.control_id.in_(control_ids)))
            .order_by(OutboxMessage.id)
        ).all()
        return [
            {"id": r.id, "destination": r.destination, "status": r.status,
             "control_id": r.control_id, "result_id": r.result_id}
            for r in rows
        ]  # fmt: skip


@cli.group(invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(["pending", "sent", "dead"]),
    help="Only messages in this state (default: all).",
)
@click.option("--destination", metavar="NAME", help="Only messages for this destination.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True,
    help="Show at most this many messages (the most recent).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
@click.pass_context
@_handle_errors
def outbox(
    ctx: click.Context, state: str | None, destination: str | None, limit: int, as_json: bool
) -> None:
    """List outgoing HL7 messages, most recent first: state, attempts, the last ACK.

    A message is pending until its destination accepted it (sent) or refused it for
    good (dead: AR/CR, or the retry budget ran out). `saa-lab outbox retry` requeues.
    """
    if ctx.invoked_subcommand is not None:
        return
    import difflib

    from .store.queue import outbox_listing, queue_stats

    app = ctx.ensure_object(AppContext)
    if destination is not None:
        known = {*app.config.all_destinations(), *queue_stats(app.store)}
        if destination not in known:
            hint = difflib.get_close_matches(destination, sorted(known), n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            msg = f"no destination named {destination!r}{extra}; known: {', '.join(sorted(known))}"
            raise click.BadParameter(msg, param_hint="--destination")
    rows = outbox_listing(app.store, status=state, destination=destination, limit=limit)
    if as_json:
        click.echo(json.dumps({"messages": rows}, indent=2))
        return
    if not rows:
        click.echo("no messages" + (f" {state}" if state else "")
                   + (f" for {destination}" if destination else ""))  # fmt: skip
        return
    zone = app.config.lab.zone
    table = [
        (
            str(r["id"]), r["destination"], r["status"], r["accession"], str(r["result_id"]),
            r["control_id"], str(r["attempts"]), _clip(_ack_text(r), 48) or "-",
            (_local_time(r["next_attempt_at"], zone) if r["next_attempt_at"]
             else "now" if r["status"] == "pending" else "-"),
        )
        for r in rows
    ]  # fmt: skip
    header = ("id", "destination", "state", "accession", "result", "MSH-10", "attempts",
              "last ACK/error", "next attempt")  # fmt: skip
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header))]
    numeric = {0, 4, 6}
    for row in (header, *table):
        cells = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        click.echo("  ".join(cells).rstrip())


@outbox.command("retry")
@click.argument("message_ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--dead", is_flag=True, help="Requeue every dead message (with IDs: those dead).")
@pass_app
@_handle_errors
def outbox_retry(app: AppContext, message_ids: tuple[int, ...], dead: bool) -> None:
    """Requeue messages: the given IDs, or every dead message with --dead.

    A requeued message keeps its MSH-10 (the receiver recognises a repeat) and starts
    a fresh retry budget; the daemon sends it next, in queue order. A pending message
    is tried again at once. A sent message is not requeued: re-issue its result with
    `saa-lab resend RESULT`, which gives it a new MSH-10.
    """
    from .store.queue import outbox_listing, requeue

    if not message_ids and not dead:
        raise click.UsageError("give the message IDs to requeue (see 'saa-lab outbox'), or --dead")
    if message_ids:
        found = {m["id"]: m for m in _outbox_messages(app.store, ids=message_ids)}
        missing = [i for i in dict.fromkeys(message_ids) if i not in found]
        if missing:
            listed = ", ".join(map(str, missing))
            raise click.ClickException(f"no outbox message with id {listed}")
        sent = [m for m in found.values() if m["status"] == "sent"]
        if sent and not dead:
            listed = ", ".join(f"{m['id']} (result {m['result_id']})" for m in sent)
            msg = (
                f"already sent, not requeued: message {listed}; "
                "use 'saa-lab resend RESULT' to send a result again with a new MSH-10"
            )
            raise click.ClickException(msg)  # fmt: skip
        chosen = [i for i, m in found.items() if not dead or m["status"] == "dead"]
    else:
        chosen = [m["id"] for m in outbox_listing(app.store, status="dead", limit=1_000_000)]
    if not chosen:
        which = "none of the given messages is dead" if message_ids else "no dead messages"
        raise click.ClickException(f"nothing to requeue: {which}")
    count = requeue(app.store, message_ids=sorted(chosen), dead=dead)
    if count == 0:  # another process requeued them first
        raise click.ClickException("nothing to requeue: the messages are no longer dead")
    click.echo(f"requeued {count} message(s): {', '.join(map(str, sorted(chosen)))} "
               "(same MSH-10; the daemon sends them next)")  # fmt: skip


@cli.command()
@click.argument("result_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the new messages as JSON.")
@pass_app
@_handle_errors
def resend(app: AppContext, result_id: int, as_json: bool) -> None:
    """Send RESULT_ID again: the same message content under a new MSH-10.

    One new message per destination the result went to, queued for the daemon. The
    receiver sees a new message (not a repeat); use it when a clinic lost a result.
    RESULT_ID is the result column of `saa-lab outbox` (result_id in the JSON output).
    """
    from sqlalchemy import select

    from .store.models import ResultRow
    from .store.queue import resend_result

    with app.store.session() as s:
        found = s.execute(
            select(ResultRow.accession, ResultRow.result_status).where(ResultRow.id == result_id)
        ).first()
    if found is None:
        raise click.ClickException(f"no result with id {result_id}")
    accession, result_status = found
    new_ids = resend_result(app.store, result_id)
    if not new_ids:
        why = {"W": "withheld: its run was rejected",
               "RA": "waiting for its re-assay"}.get(result_status, "never queued")  # fmt: skip
        raise click.ClickException(f"result {result_id} ({accession}) has no message to resend "
                                   f"({why})")  # fmt: skip
    messages = _outbox_messages(app.store, control_ids=new_ids)
    if as_json:
        payload = {"result_id": result_id, "accession": accession, "messages": messages}
        click.echo(json.dumps(payload, indent=2))
        return
    for m in messages:
        click.echo(f"result {result_id} ({accession}) re-issued to {m['destination']}: "
                   f"message {m['id']}, MSH-10 {m['control_id']}")  # fmt: skip


@cli.command()
@click.option(
    "--keep/--no-keep", default=True, help="Keep the demo workspace afterwards (default: keep)."
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for results.")
@_handle_errors
def demo(keep: bool, timeout: float) -> None:
    """Run the real daemon on the bundled sample exports in a throwaway workspace."""
    from .demo import run_demo

    code = run_demo(keep=keep, timeout=timeout, echo=click.echo)
    sys.exit(code)


@cli.group()
def db() -> None:
    """The database schema: its revision, and upgrading it.

    The daemon and every command upgrade the database when they open it (several
    processes starting at once migrate one after the other); `saa-lab db upgrade` does
    it on its own, e.g. after installing a new saa-lab and before starting the daemons.
    """


def _schema(app: AppContext) -> tuple[Store, str | None, str | None, tuple[str, ...]]:
    """The store opened without migrating, its revision, the newest one, all known ones."""
    from alembic.script import ScriptDirectory

    from .store import Store
    from .store.repository import MIGRATIONS

    store = Store(app.config.database_url, migrate=False, zone=app.config.lab.zone)
    app.cleanups.append(store.close)
    scripts = ScriptDirectory(str(MIGRATIONS))
    known = tuple(s.revision for s in scripts.walk_revisions())
    return store, store.revision(), scripts.get_current_head(), known


def _revision_name(revision: str | None) -> str:
    return revision or "no revision (empty)"


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print the revisions as JSON.")
@pass_app
@_handle_errors
def db_current(app: AppContext, as_json: bool) -> None:
    """Show the database's schema revision, the newest this saa-lab knows, and whether an
    upgrade is needed. Only reads: changes nothing.

    Exits 0 whether or not an upgrade is needed (see upgrade_needed with --json).
    """
    _store, current, head, known = _schema(app)
    newer = current is not None and current not in known
    needed = current != head and not newer
    if as_json:
        payload = {"database": current, "head": head, "upgrade_needed": needed,
                   "newer_than_code": newer}  # fmt: skip
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"database: {_revision_name(current)}")
    click.echo(f"newest:   {head}")
    if newer:
        click.echo(f"the database is at a revision this saa-lab does not know ({current}): "
                   "it was upgraded by a newer saa-lab")  # fmt: skip
    elif needed:
        click.echo("upgrade needed: run 'saa-lab db upgrade' (the daemon also upgrades on start)")
    else:
        click.echo("up to date")


@db.command("upgrade")
@pass_app
@_handle_errors
def db_upgrade(app: AppContext) -> None:
    """Bring the database to the newest schema revision (Alembic migrations).

    Each migration commits whole or not at all; on PostgreSQL concurrent upgrades wait
    for one another. Exits 5 when the database cannot be reached or upgraded.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from .errors import StoreError

    store, current, head, known = _schema(app)
    if current == head:
        click.echo(f"database already at {head}")
        return
    if current is not None and current not in known:
        raise StoreError(f"database at {current}, a revision this saa-lab does not know "
                         f"(newest {head}): it was upgraded by a newer saa-lab")  # fmt: skip
    try:
        store.upgrade()
    except (DBAPIError, CommandError) as exc:
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise StoreError(f"cannot upgrade the database from {_revision_name(current)}: "
                         f"{detail}") from exc  # fmt: skip
    before = "empty database" if current is None else f"database at {current}"
    click.echo(f"{before}, upgraded to {store.revision()}")


def main() -> None:
    cli(prog_name="saa-lab")


if __name__ == "__main__":
    main()


# The review, release, correction, audit and report commands live in their own modules.
from . import cli_report, cli_review, cli_serve  # noqa: E402, F401
