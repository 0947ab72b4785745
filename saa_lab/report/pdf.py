"""The run report as a multi-page PDF, drawn entirely with matplotlib (PdfPages).

No browser and no HTML engine: every page is a matplotlib figure (A4 landscape),
tables included (text laid out in columns, long cells wrapped, pages added as the
rows need). Fonts are embedded as TrueType (``pdf.fonttype`` 42) with a ToUnicode
map, so the text can be searched and extracted. The document information holds
the report's marker (:attr:`RunReport.marker`) and no creation date, so the same
report renders to the same bytes.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import text as t
from .charts import (
    draw_curve,
    draw_levey_jennings,
    new_figure,
    plate_figure,
    rendering,
    violation_labels,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from .data import RunReport

__all__ = ["PAGE_SIZE", "Column", "render_pdf"]

PAGE_SIZE = (11.69, 8.27)  # A4 landscape, inches
LINES_PER_PAGE = 52  # table text lines on one page
FONT_SIZE = 6.5
LINE_HEIGHT = 0.84 / LINES_PER_PAGE  # in figure fractions (the table's share of the page)
LINE_SPACING = 1.2  # matplotlib's line spacing (multiples of the font size)
MAX_CELL_LINES = 24  # a longer cell is cut (the HTML report has it in full)
CHARS_PER_FRACTION = 255  # characters of FONT_SIZE text across the full page width


@dataclass(frozen=True)
class Column:
    title: str
    width: float  # fraction of the page width


def _wrap(value: str, width: float) -> list[str]:
    chars = max(int(width * CHARS_PER_FRACTION) - 1, 4)
    lines: list[str] = []
    for part in (value or "").splitlines() or [""]:
        lines += textwrap.wrap(part, chars, break_long_words=True, break_on_hyphens=False) or [""]
    return lines if len(lines) <= MAX_CELL_LINES else [*lines[: MAX_CELL_LINES - 1], "…"]


def _page(title: str, subtitle: str = "") -> tuple[Figure, float]:
    fig = new_figure(*PAGE_SIZE)
    fig.text(0.03, 0.965, title, fontsize=11, weight="bold", va="top")
    if subtitle:
        fig.text(0.03, 0.935, subtitle, fontsize=7, va="top", color="#444444")
    return fig, 0.9


def table_pages(
    title: str, subtitle: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> list[Figure]:
    """A table over as many pages as its rows need (the header on each).

    Each column of a page is one text block (cells padded to their row's height), which
    keeps the number of text objects, and so the rendering time, small.
    """
    pages: list[Figure] = []
    blocks: list[list[list[str]]] = [[] for _ in columns]

    def flush(continued: bool) -> None:
        fig, y = _page(f"{title} (continued)" if continued else title, subtitle)
        x = 0.03
        for c, lines in zip(columns, blocks, strict=True):
            fig.text(x, y, c.title, fontsize=FONT_SIZE, weight="bold", va="top")
            body = "\n".join(line for cell in lines for line in cell)
            if body.strip():
                fig.text(
                    x,
                    y - LINE_HEIGHT * 1.3,
                    body,
                    fontsize=FONT_SIZE,
                    va="top",
                    linespacing=LINE_SPACING,
                )
            x += c.width
        fig.add_artist(_rule(fig, y - LINE_HEIGHT * 1.05))
        if not rows:
            fig.text(0.03, y - LINE_HEIGHT * 1.3, "none", fontsize=FONT_SIZE, va="top")
        pages.append(fig)
        for lines in blocks:
            lines.clear()

    used = 0
    for row in rows:
        cells = [_wrap(v, c.width) for v, c in zip(row, columns, strict=True)]
        height = max(len(c) for c in cells)
        if used and used + height > LINES_PER_PAGE:
            flush(continued=bool(pages))
            used = 0
        for block, cell in zip(blocks, cells, strict=True):
            block.append(cell + [""] * (height - len(cell)))
        used += height
    flush(continued=bool(pages))
    return pages


def _rule(fig: Figure, y: float) -> Line2D:
    from matplotlib.lines import Line2D

    return Line2D([0.03, 0.97], [y, y], transform=fig.transFigure, color="#999999", linewidth=0.5)


def _summary_page(r: RunReport) -> list[Figure]:
    rows = [
        ["export", r.source_name],
        ["export SHA-256", r.source_sha256],
        ["archived as", r.archive_path or "-"],
        ["plate", t.plate_text(r)],
        ["assay", f"{r.assay_name} (version {r.assay_version})"],
        ["layout", f"{r.layout_name} (version {r.layout_version})"],
        ["worklist", r.worklist_name or "-"],
        ["format", r.source_format or "-"],
        ["processed", r.local(r.processed_at)],
        ["run QC", "accepted" if r.status == "accepted" else "REJECTED"],
        ["review decision", t.decision_text(r)],
        ["review note", r.review_note or "-"],
        ["report made", r.local(r.generated_at)],
    ]
    rows += [["QC reason", x] for x in r.reasons]
    rows += [["QC warning", x] for x in r.warnings]
    rows += [["excluded standard", x] for x in r.exclusions]
    return table_pages(
        f"Run report: run {r.run_id}", r.marker, [Column("", 0.16), Column("", 0.78)], rows
    )


def _standards_pages(r: RunReport) -> list[Figure]:
    c = r.curve
    params = ", ".join(f"{k} {v:.6g}" for k, v in c.parameters) or "-"
    r2 = "-" if c.r_squared is None else f"{c.r_squared:.5f}"
    subtitle = (
        f"model {c.model or 'no curve'}, r² {r2}, LLOQ {t.limit(c.lloq_u_per_l)}, "
        f"ULOQ {t.limit(c.uloq_u_per_l)}; {params}"
    )
    rows = [
        [
            s.well,
            f"{s.nominal_u_per_l:g}",
            t.g(s.signal),
            t.g(s.back_calculated_u_per_l),
            t.pct(s.recovery_percent),
            "-" if s.tolerance_percent is None else f"±{s.tolerance_percent:g}",
            t.standard_state(s)[0],
        ]
        for s in r.standards
    ]
    cols = [
        Column("well", 0.06),
        Column("nominal U/L", 0.1),
        Column("signal", 0.1),
        Column("back-calculated U/L", 0.14),
        Column("back-calc. %", 0.1),
        Column("limit %", 0.08),
        Column("state", 0.36),
    ]
    return table_pages("Standards", t.clip(subtitle, 230), cols, rows)


def _controls_pages(r: RunReport) -> list[Figure]:
    rows = [
        [
            c.name,
            c.lot,
            ", ".join(c.wells),
            ", ".join(t.g(v) for v in c.well_values_u_per_l) or "-",
            t.g(c.measured_u_per_l),
            f"{c.low_u_per_l:g}–{c.high_u_per_l:g}",
            "-" if c.z_score is None else f"{c.z_score:+.2f}",
            "pass" if c.passed else "FAIL",
        ]
        for c in r.controls
    ]
    rows += [["Westgard", "", "", f.text, "", "", "", f.severity] for f in r.westgard_findings]
    rows += [["note", "", "", n, "", "", "", ""] for n in r.westgard_notes]
    cols = [
        Column("control", 0.1),
        Column("lot", 0.1),
        Column("wells", 0.1),
        Column("well values U/L", 0.3),
        Column("mean U/L", 0.08),
        Column("range U/L", 0.1),
        Column("z (SD)", 0.06),
        Column("state", 0.08),
    ]
    return table_pages("Controls", "", cols, rows)


def _lj_pages(r: RunReport) -> list[Figure]:
    pages = []
    for start in range(0, len(r.controls), 2):
        fig = new_figure(*PAGE_SIZE)
        for slot, level in enumerate(r.controls[start : start + 2]):
            bottom = 0.56 if slot == 0 else 0.1
            draw_levey_jennings(fig.add_axes((0.07, bottom, 0.84, 0.33)), r, level)
            marks = "; ".join(f"run {run}: {rules}" for run, rules in violation_labels(r, level))
            fig.text(
                0.07,
                bottom - 0.075,
                t.clip(f"Westgard violations marked: {marks or 'none'}", 200),
                fontsize=7,
            )
        pages.append(fig)
    return pages


def _results_pages(r: RunReport) -> list[Figure]:
    rows = []
    for v in r.results:
        extra = r.result_extras.get(v.id)
        rows.append(
            [
                f"result:{v.id}",
                v.accession,
                ", ".join(v.wells),
                f"1:{v.dilution:g}",
                t.activity(v.activity_u_per_l, v.comparator),
                t.g(extra.cv_percent if extra else None),
                v.flag,
                "\n".join(x for x in (v.comment, v.recommendation) if x),
                v.result_status,
                t.state_text(v),
                str(v.version),
            ]
        )
    cols = [
        Column("result", 0.07),
        Column("accession", 0.13),
        Column("wells", 0.06),
        Column("dilution", 0.05),
        Column("activity U/L", 0.07),
        Column("CV %", 0.04),
        Column("flag", 0.15),
        Column("comment", 0.25),
        Column("OBX-11", 0.04),
        Column("review", 0.07),
        Column("v", 0.02),
    ]
    return table_pages("Results", "flags and comments as reported", cols, rows)


def _decision_pages(r: RunReport) -> list[Figure]:
    rows = [
        [
            f"result:{v.id}",
            v.accession,
            t.state_text(v),
            v.decided_by or "-",
            v.meaning or "-",
            r.local(v.decided_at),
            "; ".join(v.hold_reasons) or "-",
            v.note or "",
        ]
        for v in r.results
    ]
    cols = [
        Column("result", 0.08),
        Column("accession", 0.1),
        Column("state", 0.08),
        Column("by", 0.1),
        Column("meaning", 0.07),
        Column("at", 0.14),
        Column("held for", 0.22),
        Column("note", 0.15),
    ]
    return table_pages("Review decision", t.decision_text(r), cols, rows)


def _audit_pages(r: RunReport) -> list[Figure]:
    rows = [
        [
            str(a.seq),
            r.local(a.at),
            a.actor,
            a.action,
            f"{a.entity} {a.entity_id or ''}",
            a.reason or "",
            t.clip(json.dumps(a.detail, default=str, ensure_ascii=False, sort_keys=True), 180),
        ]
        for a in r.audit
    ]
    cols = [
        Column("seq", 0.04),
        Column("at", 0.12),
        Column("who", 0.08),
        Column("action", 0.1),
        Column("record", 0.12),
        Column("reason", 0.16),
        Column("detail", 0.32),
    ]
    return table_pages(
        "Audit trail", "entries of the run, its results, messages and export", cols, rows
    )


def report_pages(r: RunReport) -> list[Figure]:
    """Every page of the report, in order (call under :func:`~.charts.rendering`)."""
    curve = new_figure(*PAGE_SIZE)
    draw_curve(curve.add_axes((0.08, 0.1, 0.86, 0.8)), r)
    return [
        *_summary_page(r),
        plate_figure(r),
        curve,
        *_standards_pages(r),
        *_controls_pages(r),
        *_lj_pages(r),
        *_results_pages(r),
        *_decision_pages(r),
        *_audit_pages(r),
    ]


def render_pdf(report: RunReport) -> bytes:
    """The report as PDF bytes."""
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    metadata = {
        "Title": f"saa-lab run report: run {report.run_id}, {report.source_name}",
        "Subject": report.marker,
        "Keywords": report.marker,
        "Creator": "saa-lab",
        "Producer": "saa-lab (matplotlib)",
        "CreationDate": None,
    }
    with rendering():
        pages = report_pages(report)
        with PdfPages(buffer, metadata=metadata) as pdf:
            for fig in pages:
                pdf.savefig(fig)
    return buffer.getvalue()
