"""The dashboard's pages and the two kinds of action it takes (review decisions and
requeueing dead messages). Reading pages only read; actions go through the same
functions as the CLI, with the logged-in user as the actor."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from ..errors import ReportError, ReviewError, SaaLabError

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from ..config import AppConfig, User
    from ..store import Store
    from ..store.order_queries import TimelineEntry

__all__ = ["FILTERS", "Lab", "bp"]

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)

RUNS_SHOWN = 50
MESSAGES_SHOWN = 100
QUARANTINE_SHOWN = 500
SIDECAR_CHARS = 2000  # a reason is one line; a hand-edited sidecar could be anything


@dataclass(frozen=True)
class Lab:
    """What every page works on."""

    config: AppConfig
    store: Store


def _lab() -> Lab:
    lab: Lab = current_app.extensions["saa_lab"]
    return lab


def _local(when: datetime | None) -> str:
    if when is None:
        return "-"
    return when.astimezone(_lab().config.lab.zone).strftime("%Y-%m-%d %H:%M %Z")


def _iso_local(text: str | None) -> str:
    return _local(datetime.fromisoformat(text)) if text else "-"


def _activity(value: float | None, comparator: str = "=") -> str:
    from ..numbers import format_number

    if value is None:
        return "no result"
    return f"{'' if comparator == '=' else comparator}{format_number(value)} U/L"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from ..cli import _age as age

    return age(seconds)


FILTERS = {"local": _local, "iso_local": _iso_local, "activity": _activity, "age": _age}


def _user() -> User:
    user: User = g.user
    return user


def _meanings(user: User) -> list[str]:
    """The release meanings this user's roles allow (reviewer: reviewed; approver: approved)."""
    from ..config import MEANINGS

    return [meaning for meaning, role in MEANINGS.items() if role in user.roles]


@bp.app_errorhandler(400)
@bp.app_errorhandler(401)
@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
@bp.app_errorhandler(413)
def _error(error: Any) -> ResponseReturnValue:
    code = getattr(error, "code", 500) or 500
    return render_template("error.html", code=code, message=error.description), code


@bp.app_errorhandler(SaaLabError)
def _saa_lab_error(error: SaaLabError) -> ResponseReturnValue:
    """The database unreachable, a broken configuration file…: one line, not a traceback."""
    log.error("dashboard: %s %s: %s", request.method, request.path, error)
    return render_template("error.html", code=503, message=str(error)), 503


@bp.route("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("views.runs"))


@bp.route("/runs")
def runs() -> ResponseReturnValue:
    from ..store.dashboard import recent_runs

    shown = recent_runs(_lab().store, limit=RUNS_SHOWN)
    return render_template("runs.html", runs=shown, limit=RUNS_SHOWN)


def _run_view(run_id: int) -> Any:
    from ..store.review import run_view

    try:
        return run_view(_lab().store, run_id)
    except ReviewError:
        abort(404, description=f"there is no run {run_id}")


def _report_parts(run_id: int) -> tuple[str, str]:
    """The run report's CSS and body (already escaped by the report renderer)."""
    from ..report import load_run_report
    from ..report.html import render_html

    lab = _lab()
    try:
        report = load_run_report(lab.store, run_id, config=lab.config)
    except ReportError:
        abort(404, description=f"there is no run {run_id}")
    document = render_html(report)
    head, _, rest = document.partition("<body>")
    style = head.partition("<style>")[2].partition("</style>")[0]
    # The report styles its own page's body; here it is one article of ours.
    style = style.replace("body {", "article.report {", 1)
    return style, rest.rpartition("</body>")[0]


@bp.route("/runs/<int:run_id>")
def run(run_id: int) -> ResponseReturnValue:
    view = _run_view(run_id)
    style, body = _report_parts(run_id)
    return render_template(
        "run.html",
        run=view,
        report_style=Markup(style),  # the report's own constant CSS
        report_body=Markup(body),  # escaped by saa_lab.report.html
        meanings=_meanings(_user()),
    )


@bp.route("/runs/<int:run_id>/report.<any(html, pdf):fmt>")
def run_report(run_id: int, fmt: str) -> ResponseReturnValue:
    """The run's report as a file (rendered now: it shows the current review state)."""
    from ..report import load_run_report, render, report_name

    lab = _lab()
    try:
        report = load_run_report(lab.store, run_id, config=lab.config)
    except ReportError:
        abort(404, description=f"there is no run {run_id}")
    name = report_name(Path(report.source_name).stem, run_id, fmt)
    kind = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
    response = Response(render(report, fmt), content_type=kind)
    disposition = "inline" if fmt == "pdf" else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


@bp.route("/review")
def review() -> ResponseReturnValue:
    from ..store.review import waiting_runs

    waiting = waiting_runs(_lab().store)
    total = sum(len(run.waiting) for run in waiting)
    return render_template("review.html", runs=waiting, waiting_total=total,
                           meanings=_meanings(_user()))  # fmt: skip


def _back(run_id: int) -> ResponseReturnValue:
    if request.form.get("back") == "run":
        return redirect(url_for("views.run", run_id=run_id))
    return redirect(url_for("views.review"))


def _expected_rev() -> int | None:
    text = request.form.get("rev", "")
    return int(text) if text.isdigit() else None


@bp.route("/runs/<int:run_id>/release", methods=["POST"])
def release(run_id: int) -> ResponseReturnValue:
    """Release every waiting result of the run, as ``saa-lab release RUN --by USER``."""
    from ..review import Target
    from ..review import release as do_release

    lab, user = _lab(), _user()
    meaning = request.form.get("meaning", "")
    comment = request.form.get("comment", "").strip() or None
    try:
        released = do_release(lab.config, lab.store, Target("run", run_id), by=user.name,
                              meaning=meaning, comment=comment,
                              expected_rev=_expected_rev())  # fmt: skip
    except SaaLabError as exc:
        flash(f"Run {run_id} not released: {exc}", "error")
    else:
        flash(f"Run {run_id}: {len(released)} result(s) released by {user.name} ({meaning}); "
              "their messages are in the outbox for the daemon to send.", "ok")  # fmt: skip
    return _back(run_id)


@bp.route("/runs/<int:run_id>/reject", methods=["POST"])
def reject(run_id: int) -> ResponseReturnValue:
    """Reject the run's waiting results, as ``saa-lab reject RUN --by USER --reason``."""
    from ..review import Target
    from ..review import reject as do_reject

    lab, user = _lab(), _user()
    reason = request.form.get("reason", "")
    try:
        rejected = do_reject(lab.config, lab.store, Target("run", run_id), by=user.name,
                             reason=reason, expected_rev=_expected_rev())  # fmt: skip
    except SaaLabError as exc:
        flash(f"Run {run_id} not rejected: {exc}", "error")
    else:
        flash(f"Run {run_id}: {len(rejected)} result(s) rejected by {user.name}; the samples "
              "are on the re-assay list.", "ok")  # fmt: skip
    return _back(run_id)


def _queues(lab: Lab) -> dict[str, dict[str, Any]]:
    """Per destination (configured ones first): messages by state, oldest unsent age."""
    from ..store.queue import queue_stats

    stats = queue_stats(lab.store)
    configured = list(lab.config.all_destinations())
    names = [*configured, *sorted(set(stats) - set(configured))]
    empty = {"pending": 0, "sent": 0, "dead": 0, "oldest_pending_seconds": None}
    return {name: {**empty, **stats.get(name, {})} for name in names}


@bp.route("/outbox")
def outbox() -> ResponseReturnValue:
    from ..store.queue import outbox_listing

    lab = _lab()
    queues = _queues(lab)
    destination = request.args.get("destination") or None
    state = request.args.get("state") or None
    if destination is not None and destination not in queues:
        abort(404, description="no such destination")
    if state not in (None, "pending", "sent", "dead"):
        abort(404, description="no such message state")
    dead = outbox_listing(lab.store, status="dead", destination=destination, limit=MESSAGES_SHOWN)
    messages = outbox_listing(lab.store, status=state, destination=destination,
                              limit=MESSAGES_SHOWN)  # fmt: skip
    return render_template("outbox.html", queues=queues, dead=dead, messages=messages,
                           destination=destination, state=state,
                           limit=MESSAGES_SHOWN)  # fmt: skip


@bp.route("/outbox/retry", methods=["POST"])
def outbox_retry() -> ResponseReturnValue:
    """Requeue one dead message, or every dead message of a destination, as ``saa-lab
    outbox retry`` does: same MSH-10, a fresh retry budget; the daemon sends it next."""
    from ..store.queue import outbox_listing, requeue

    lab, user = _lab(), _user()
    message_id = request.form.get("message_id", "")
    destination = request.form.get("destination", "")
    if message_id.isdigit():
        ids = [int(message_id)]
    elif destination:
        dead = outbox_listing(lab.store, status="dead", destination=destination, limit=1_000_000)
        ids = [m["id"] for m in dead]
    else:
        abort(400, description="say which message (or destination) to retry")
    count = requeue(lab.store, message_ids=ids, dead=True, actor=user.name) if ids else 0
    if count:
        flash(f"Requeued {count} dead message(s) (same MSH-10); the daemon sends them next.",
              "ok")  # fmt: skip
    else:
        flash("Nothing requeued: the message is no longer dead.", "error")
    return redirect(url_for("views.outbox", destination=destination or None))


@dataclass(frozen=True)
class QuarantinedFile:
    name: str
    size: int
    modified: datetime
    reason: str | None


def _quarantined(folder: Path) -> list[QuarantinedFile]:
    """The files in the quarantine folder, newest first, each with its ``.error.txt``."""
    from datetime import UTC

    from ..watcher import _sidecar_for  # the daemon's naming, kept in one place

    found: list[QuarantinedFile] = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    sidecars = {p.name for p in entries if p.name.endswith(".error.txt")}
    for path in entries:
        if path.name.startswith(".") or path.name in sidecars or not path.is_file():
            continue
        sidecar = _sidecar_for(path)
        reason = None
        if sidecar.name in sidecars:
            try:
                with sidecar.open(encoding="utf-8", errors="replace") as handle:
                    reason = handle.read(SIDECAR_CHARS).strip()
            except OSError as exc:
                reason = f"(the reason file cannot be read: {exc.strerror or exc})"
        info = path.stat()
        modified = datetime.fromtimestamp(info.st_mtime, UTC)
        found.append(QuarantinedFile(path.name, info.st_size, modified, reason))
    found.sort(key=lambda f: (f.modified, f.name), reverse=True)
    return found[:QUARANTINE_SHOWN]


@bp.route("/quarantine")
def quarantine() -> ResponseReturnValue:
    from ..store.dashboard import failed_files

    lab = _lab()
    return render_template(
        "quarantine.html",
        folder=lab.config.quarantine,
        files=_quarantined(lab.config.quarantine),
        failed=failed_files(lab.store),
        limit=QUARANTINE_SHOWN,
    )


def _days(when: datetime) -> float:
    """Matplotlib's date number (days since its default epoch, 1970-01-01 UTC)."""
    return when.timestamp() / 86400


def _timeline_svg(entries: list[TimelineEntry], config: AppConfig) -> str:
    """Activity (U/L, log scale) against sampling time, the threshold and the doses."""
    import matplotlib.dates as mdates

    from ..report.charts import figure_svg, new_figure, rendering

    zone = config.lab.zone
    threshold = config.interpretation.threshold_u_per_l
    with rendering():
        fig = new_figure(9, 3.6)
        ax = fig.add_subplot(1, 1, 1)
        markers = {"=": "o", "<": "v", ">": "^"}
        for comparator, marker in markers.items():
            points = [
                (_days(e.collection_time or e.reported_at), e.activity_u_per_l)
                for e in entries
                if e.activity_u_per_l is not None and e.comparator == comparator
            ]
            if not points:
                continue
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            low = [y is not None and y < threshold for y in ys]
            colours = ["#b00000" if is_low else "#1f5fa8" for is_low in low]
            label = {"=": "measured", "<": "below LLOQ", ">": "above ULOQ"}[comparator]
            ax.scatter(xs, ys, marker=marker, c=colours, s=42, zorder=3, label=label)
        measured = sorted(
            (_days(e.collection_time or e.reported_at), e.activity_u_per_l)
            for e in entries
            if e.activity_u_per_l is not None
        )
        if len(measured) > 1:
            ax.plot([m[0] for m in measured], [m[1] for m in measured], color="#888",
                    linewidth=0.8, zorder=2)  # fmt: skip
        ax.axhline(threshold, color="#b00000", linestyle="--", linewidth=1,
                   label=f"threshold {threshold:g} U/L")  # fmt: skip
        doses = sorted({(e.dose_time, e.formulation or "dose") for e in entries if e.dose_time})
        for i, (when, formulation) in enumerate(doses):
            ax.axvline(_days(when), color="#2a8a2a", linestyle=":", linewidth=1,
                       label="dose" if i == 0 else None)  # fmt: skip
            ax.annotate(formulation, (_days(when), 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", fontsize=7,
                        color="#2a8a2a")  # fmt: skip
        from matplotlib.ticker import FuncFormatter, NullFormatter

        values = [e.activity_u_per_l for e in entries if e.activity_u_per_l] + [threshold]
        ax.set_yscale("log")
        ax.set_ylim(min(values) / 2, max(values) * 2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("activity (U/L)")
        times = [_days(e.collection_time or e.reported_at) for e in entries]
        times += [_days(when) for when, _ in doses]
        ax.set_xlim(min(times) - 1, max(times) + 1)  # a day either side
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=zone))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d", tz=zone))  # type: ignore[no-untyped-call]
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize=7)
        fig.autofmt_xdate()
        fig.tight_layout()
        return figure_svg(fig, "saa-lab-patient")


@bp.route("/patients")
def patient() -> ResponseReturnValue:
    """One patient's results over time (``saa-lab patient ID``), with a chart."""
    from ..store.order_queries import patient_timeline

    lab = _lab()
    patient_id = request.args.get("id", "").strip()
    entries = patient_timeline(lab.store, patient_id) if patient_id else []
    chart = None
    if any(e.activity_u_per_l is not None for e in entries):
        chart = Markup(_timeline_svg(entries, lab.config))  # matplotlib escapes text
    rows = []
    for e in entries:
        since = "-"
        if e.dose_time and e.collection_time:
            hours = (e.collection_time - e.dose_time).total_seconds() / 3600
            since = f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.0f} h"
        rows.append((e, since))
    return render_template("patient.html", patient_id=patient_id, rows=rows, chart=chart)
