"""Run reports: one run's plate, curve, controls, results, review and audit trail, as a
self-contained HTML page and a PDF (matplotlib only: no browser).

``write_run_reports`` is what the daemon calls after archiving an export (the reports
go next to the archived file) and what ``saa-lab report`` calls on demand.

File names: ``<export stem>.run<ID>.report.html`` and ``.pdf``. A report file is
never written over another file: an existing file of that name is replaced only
when it is a report of the same run (it carries the run's marker, see
:attr:`RunReport.marker`), as when a run is reported again after its review;
anything else raises :class:`~saa_lab.errors.ReportError` and stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ReportError
from .data import RunReport, load_run_report

if TYPE_CHECKING:
    from ..config import AppConfig
    from ..store import Store

__all__ = [
    "FORMATS",
    "REPORT_FILE_MODE",
    "RunReport",
    "load_run_report",
    "render",
    "report_name",
    "write_report_file",
    "write_run_reports",
]

FORMATS = ("html", "pdf")
# rw-r-----, as the archived exports (saa_lab.watcher.FILE_MODE): reports hold accessions.
REPORT_FILE_MODE = 0o640
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
# Where a hard link is impossible (another file system, a share without links).
_NO_LINKS = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}


def report_name(stem: str, run_id: int, fmt: str) -> str:
    """``<stem>.run<ID>.report.<fmt>``, the stem made safe as a file name."""
    safe = _UNSAFE.sub("_", stem).strip(" .") or "export"
    return f"{safe[:120]}.run{run_id}.report.{fmt}"


def render(report: RunReport, fmt: str) -> bytes:
    """The report as the bytes of an HTML page (``html``) or a PDF (``pdf``)."""
    if fmt == "html":
        from .html import render_html

        return render_html(report).encode("utf-8")
    if fmt == "pdf":
        from .pdf import render_pdf

        return render_pdf(report)
    raise ValueError(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")


def _own(path: Path, marker: str) -> bool:
    """Whether ``path`` is a regular file holding this run's report marker."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        return marker.encode("ascii") in path.read_bytes()
    except OSError:
        return False


def _same(path: Path, content: bytes) -> bool:
    try:
        return not path.is_symlink() and path.is_file() and path.read_bytes() == content
    except OSError:
        return False


def write_report_file(target: Path, content: bytes, marker: str) -> Path:
    """Write ``content`` to ``target`` atomically (temp file, fsync, rename), mode 0640.

    An existing ``target`` is replaced only when it holds ``marker`` (an earlier report
    of the same run); raises :class:`ReportError` when it is another file or the folder
    refuses the write.
    """
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(
            f"cannot create the folder: {exc.strerror or exc}", path=str(folder)
        ) from exc
    if _same(target, content):
        return target
    if (target.exists() or target.is_symlink()) and not _own(target, marker):
        raise ReportError(
            "exists and is not this run's report; it is not overwritten "
            "(move it away, or write the report elsewhere with --output)",
            path=str(target),
        )
    temp: Path | None = None
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
        temp = Path(name)
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(OSError):  # a share that refuses modes keeps its own
            temp.chmod(REPORT_FILE_MODE)
        if target.exists():
            temp.replace(target)  # our own earlier report (checked above)
        else:
            try:
                # Exclusive: a file that appeared since we looked is not overwritten.
                target.hardlink_to(temp)
            except FileExistsError:
                if not _own(target, marker):
                    raise ReportError(
                        "appeared while the report was written; it is not overwritten",
                        path=str(target),
                    ) from None
                temp.replace(target)
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                temp.replace(target)
    except OSError as exc:
        raise ReportError(
            f"cannot write the report: {exc.strerror or exc}", path=str(target)
        ) from exc
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return target


def write_run_reports(
    store: Store,
    config: AppConfig,
    run_id: int,
    folder: Path,
    *,
    stem: str | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Render run ``run_id``'s report and write it into ``folder``, one file per format
    (default HTML and PDF): ``<stem>.run<ID>.report.<fmt>``, where ``stem`` defaults to
    the export's file name without its extension (pass the archived file's stem when
    the archive renamed it). Returns the paths written, in ``formats`` order.

    Raises :class:`ReportError` (exit code 10) when there is no such run, when a file
    of a report's name exists and is not this run's report (it is left alone), or when
    the folder cannot be written; :class:`~saa_lab.errors.StoreError` when the database
    cannot be read. A file already written stays when a later format fails. Bugs in
    rendering propagate as ordinary exceptions.
    """
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")
    report = load_run_report(store, run_id, config=config)
    base = stem if stem is not None else Path(report.source_name).stem
    return [
        write_report_file(
            folder / report_name(base, run_id, fmt), render(report, fmt), report.marker
        )
        for fmt in formats
    ]
