"""The run report as one self-contained HTML page.

Inline CSS, the charts as inline SVG (text kept as text), no script, no external
resource: the file opens anywhere, offline, and prints. Every value from the data
(accessions, file names, comments, audit details) is HTML-escaped; matplotlib
escapes the text it writes into the SVG.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from . import text as t
from .charts import (
    ROLE_COLOURS,
    curve_figure,
    figure_svg,
    levey_jennings_figure,
    rendering,
    slug,
    violation_labels,
)

if TYPE_CHECKING:
    from .data import RunReport

__all__ = ["render_html"]

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 13px; margin: 1.5em; color: #222; }
h1 { font-size: 20px; margin-bottom: 0.2em; }
h2 { font-size: 16px; border-bottom: 1px solid #999; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.plate td { width: 6.5em; height: 3em; font-size: 11px; text-align: center; }
table.plate td .role { display: block; font-weight: bold; overflow-wrap: anywhere; }
table.plate td .value { display: block; }
.fail, .excluded { color: #b00; font-weight: bold; }
.ok { color: #070; }
.warn { color: #a60; }
.meta td:first-child { font-weight: bold; background: #f7f7f7; }
.chart svg { max-width: 100%; height: auto; }
code { font-size: 11px; overflow-wrap: anywhere; }
@media print { h2 { page-break-after: avoid; } .chart { page-break-inside: avoid; } }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    """A table of already-escaped cells (a cell may carry markup made here)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(rows_cells) + "</tr>"
        for rows_cells in (
            [c if c.startswith("<td") else f"<td>{c}</td>" for c in row] for row in rows
        )
    )
    klass = f' class="{_e(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(text: str) -> str:
    return f'<td class="num">{_e(text)}</td>'


def _mark(text: str, cls: str) -> str:
    return f'<td class="{_e(cls)}">{_e(text)}</td>'


def _list(items: Iterable[str], cls: str = "") -> str:
    klass = f' class="{_e(cls)}"' if cls else ""
    inner = "".join(f"<li{klass}>{_e(i)}</li>" for i in items)
    return f"<ul>{inner}</ul>" if inner else "<p>none</p>"


def _header(r: RunReport) -> str:
    plate = t.plate_text(r)
    rows = [
        ("export", r.source_name),
        ("export SHA-256", r.source_sha256),
        ("archived as", r.archive_path or "-"),
        ("plate", plate),
        ("assay", f"{r.assay_name} (version {r.assay_version})"),
        ("layout", f"{r.layout_name} (version {r.layout_version})"),
        ("worklist", r.worklist_name or "-"),
        ("format", r.source_format or "-"),
        ("wavelength", "-" if r.wavelength_nm is None else f"{r.wavelength_nm:g} nm"),
        ("processed", r.local(r.processed_at)),
        ("run QC", r.status),
        ("review", t.decision_text(r)),
        ("report made", r.local(r.generated_at)),
    ]
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta"><tbody>{body}</tbody></table>'


def _qc(r: RunReport) -> str:
    parts = ["<h2>Run QC</h2>"]
    verdict = "accepted" if r.status == "accepted" else "REJECTED"
    parts.append(
        f'<p>Run <span class="{"ok" if r.status == "accepted" else "fail"}">'
        f"{_e(verdict)}</span>.</p>"
    )
    if r.reasons:
        parts.append("<h3>Reasons</h3>" + _list(r.reasons, "fail"))
    if r.warnings:
        parts.append("<h3>Warnings</h3>" + _list(r.warnings, "warn"))
    if r.exclusions:
        parts.append("<h3>Excluded standards</h3>" + _list(r.exclusions, "excluded"))
    return "".join(parts)


def _plate(r: RunReport) -> str:
    by_well = {w.well: w for w in r.wells}
    head = "<tr><th></th>" + "".join(f"<th>{c}</th>" for c in range(1, r.plate_columns + 1))
    body = []
    for row in range(r.plate_rows):
        letter = chr(ord("A") + row)
        cells = [f"<th>{letter}</th>"]
        for col in range(1, r.plate_columns + 1):
            name = f"{letter}{col}"
            w = by_well.get(name)
            if w is None:
                cells.append(f'<td data-well="{name}" data-role="">&nbsp;</td>')
                continue
            colour = ROLE_COLOURS.get(w.role, "#ffffff")
            cells.append(
                f'<td data-well="{name}" data-role="{_e(w.role)}" style="background:{colour}" '
                f'title="{_e(t.well_title(w))}"><span class="role">{_e(t.well_role(w))}</span>'
                f'<span class="value">{_e(t.well_value(w))}</span></td>'
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    legend = " ".join(
        f'<span style="background:{c};padding:0 6px;border:1px solid #999">{_e(role)}</span>'
        for role, c in ROLE_COLOURS.items()
    )
    return (
        f"<h2>Plate map</h2><p>Each well: its role and its reading (or why it has none). "
        f'{legend}</p><table class="plate"><thead>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _curve(r: RunReport, svg: str) -> str:
    c = r.curve
    params = ", ".join(f"{k} {v:.6g}" for k, v in c.parameters) or "-"
    facts = [
        ("model", f"{c.model or 'no curve'} (weighting {c.weighting or '-'})"),
        ("parameters", params),
        ("r²", "-" if c.r_squared is None else f"{c.r_squared:.5f}"),
        ("LLOQ", t.limit(c.lloq_u_per_l)),
        ("ULOQ", t.limit(c.uloq_u_per_l)),
        ("blank mean", "-" if c.blank_mean is None else f"{c.blank_mean:.4g} {c.signal_unit}"),
    ]
    if c.segments_note:
        facts.append(("segments", c.segments_note))
    meta = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in facts)
    rows = []
    for s in r.standards:
        state, cls = t.standard_state(s)
        rows.append(
            [
                _e(s.well),
                _num(f"{s.nominal_u_per_l:g}"),
                _num(t.g(s.signal)),
                _num(t.g(s.back_calculated_u_per_l)),
                _num(t.pct(s.recovery_percent)),
                _num("-" if s.tolerance_percent is None else f"±{s.tolerance_percent:g}"),
                _mark(state, cls),
            ]
        )
    table = _table(
        [
            "well",
            "nominal U/L",
            "signal",
            "back-calculated U/L",
            "back-calc. %",
            "limit %",
            "state",
        ],
        rows,
        cls="standards",
    )
    return (
        f'<h2>Standard curve</h2><table class="meta curve"><tbody>{meta}</tbody></table>'
        f'<div class="chart" id="chart-curve">{svg}</div>{table}'
    )


def _controls(r: RunReport, charts: Sequence[str]) -> str:
    rows = []
    for c in r.controls:
        values = ", ".join(t.g(v) for v in c.well_values_u_per_l) or "-"
        rows.append(
            [
                _e(c.name),
                _e(c.lot),
                _e(", ".join(c.wells)),
                _num(values),
                _num(t.g(c.measured_u_per_l)),
                _num(f"{c.low_u_per_l:g}–{c.high_u_per_l:g}"),
                _num("-" if c.z_score is None else f"{c.z_score:+.2f}"),
                _mark("pass" if c.passed else "FAIL", "ok" if c.passed else "fail"),
            ]
        )
    table = _table(
        ["control", "lot", "wells", "well values U/L", "mean U/L", "range U/L", "z (SD)", "state"],
        rows,
        cls="controls",
    )
    parts = ["<h2>Controls</h2>", table, "<h3>Westgard</h3>"]
    parts.append(
        _list([f.text for f in r.westgard_findings], "fail")
        if r.westgard_findings
        else "<p>no findings</p>"
    )
    if r.westgard_notes:
        parts.append(_list(r.westgard_notes, "warn"))
    for level, svg in zip(r.controls, charts, strict=True):
        marked = violation_labels(r, level)
        marks = "; ".join(f"run {run}: {rules}" for run, rules in marked) or "none"
        parts.append(
            f"<h3>Levey-Jennings: {_e(level.name)} (lot {_e(level.lot)}), last "
            f"{len(level.history)} run(s)</h3>"
            f'<div class="chart lj" id="lj-{_e(slug(level.name))}">{svg}</div>'
            f'<p>Westgard violations marked: <span class="lj-violations">{_e(marks)}</span></p>'
        )
    return "".join(parts)


def _results(r: RunReport) -> str:
    rows = []
    for v in r.results:
        extra = r.result_extras.get(v.id)
        rows.append(
            [
                _e(f"result:{v.id}"),
                _e(v.accession),
                _e(", ".join(v.wells)),
                _num(f"1:{v.dilution:g}"),
                _num(t.activity(v.activity_u_per_l, v.comparator)),
                _num(t.g(extra.cv_percent if extra else None)),
                _e(extra.status if extra else "-"),
                _e(v.flag),
                _e(v.comment),
                _e(v.recommendation or ""),
                _e(v.result_status),
                _e(t.state_text(v)),
                _e(v.version),
            ]
        )
    return "<h2>Results</h2>" + _table(
        [
            "result",
            "accession",
            "wells",
            "dilution",
            "activity U/L",
            "CV %",
            "calibration",
            "flag",
            "comment",
            "recommendation",
            "OBX-11",
            "review",
            "version",
        ],
        rows,
        cls="results",
    )


def _decision(r: RunReport) -> str:
    parts = ["<h2>Review decision</h2>", f'<p class="decision">{_e(t.decision_text(r))}</p>']
    if r.review_note:
        parts.append(f"<p>Note: {_e(r.review_note)}</p>")
    rows = [
        [
            _e(f"result:{v.id}"),
            _e(v.accession),
            _e(t.state_text(v)),
            _e(v.decided_by or "-"),
            _e(v.meaning or "-"),
            _e(r.local(v.decided_at)),
            _e("; ".join(v.hold_reasons) or "-"),
            _e(v.note or ""),
        ]
        for v in r.results
    ]
    parts.append(
        _table(
            ["result", "accession", "state", "by", "meaning", "at", "held for", "note"],
            rows,
            cls="decisions",
        )
    )
    return "".join(parts)


def _audit(r: RunReport) -> str:
    rows = []
    for a in r.audit:
        detail = json.dumps(a.detail, default=str, ensure_ascii=False, sort_keys=True)
        rows.append(
            [
                _num(str(a.seq)),
                _e(r.local(a.at)),
                _e(a.actor),
                _e(a.action),
                _e(f"{a.entity} {a.entity_id or ''}"),
                _e(a.reason or ""),
                f"<td><code>{_e(t.clip(detail, 400))}</code></td>",
            ]
        )
    return "<h2>Audit trail</h2>" + _table(
        ["seq", "at", "who", "action", "record", "reason", "detail"], rows, cls="audit"
    )


def render_html(report: RunReport) -> str:
    """The report as one HTML document (str)."""
    with rendering():
        curve = figure_svg(curve_figure(report), f"saa-lab-curve-{report.run_id}")
        lj = [
            figure_svg(
                levey_jennings_figure(report, level),
                f"saa-lab-lj-{report.run_id}-{slug(level.name)}-{i}",
            )
            for i, level in enumerate(report.controls)
        ]
    title = f"Run {report.run_id}: {report.source_name}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="generator" content="saa-lab">',
            f'<meta name="saa-lab-report" content="{_e(report.marker)}">',
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>Run report: {_e(title)}</h1>",
            _header(report),
            _qc(report),
            _plate(report),
            _curve(report, curve),
            _controls(report, lj),
            _results(report),
            _decision(report),
            _audit(report),
            "</body></html>\n",
        ]
    )
