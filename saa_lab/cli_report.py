"""``saa-lab report RUN``: a run's report as an HTML page (or a PDF) on demand.

Registered on the ``saa-lab`` group by :mod:`saa_lab.cli`. The daemon writes the same
reports next to each archived export (:func:`saa_lab.report.write_run_reports`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .cli import AppContext, _handle_errors, cli, pass_app


@cli.command()
@click.argument("run_id", type=click.IntRange(min=1), metavar="RUN")
@click.option("--pdf", "as_pdf", is_flag=True, help="Write the PDF instead of the HTML page.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="File to write, or a folder to write into (default: the current folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_app
@_handle_errors
def report(app: AppContext, run_id: int, as_pdf: bool, output: Path | None, as_json: bool) -> None:
    """Write the report of RUN: plate map, standard curve, controls with Levey-Jennings
    charts, results with flags and comments, the review decision and the audit trail.

    The file is <export>.run<RUN>.report.html (.pdf with --pdf) in the current folder,
    or --output. An earlier report of the same run is replaced; any other file of that
    name is left alone (the command fails, exit code 10).
    """
    from .report import load_run_report, render, report_name, write_report_file

    fmt = "pdf" if as_pdf else "html"
    started = time.perf_counter()
    found = load_run_report(app.store, run_id, config=app.config)
    name = report_name(Path(found.source_name).stem, run_id, fmt)
    if output is None:
        target = Path.cwd() / name
    elif output.is_dir():
        target = output / name
    else:
        target = output
    written = write_report_file(target, render(found, fmt), found.marker)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": run_id,
                    "format": fmt,
                    "path": str(written),
                    "bytes": written.stat().st_size,
                    "seconds": round(time.perf_counter() - started, 3),
                    "status": found.status,
                    "review_status": found.review_status,
                    "results": len(found.results),
                },
                indent=2,
            )
        )
        return
    click.echo(str(written))
