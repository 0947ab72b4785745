"""The report's figures, drawn with matplotlib on the Agg canvas.

No pyplot: each figure is a :class:`matplotlib.figure.Figure` attached to an Agg
canvas explicitly, so nothing depends on (or changes) the process's pyplot
backend and no GUI toolkit is ever imported. matplotlib is imported inside the
functions (``saa-lab --help`` stays fast). Text from the data (accessions, file
names, reasons) is never parsed as mathtext: ``$`` in a name stays a ``$``.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .data import ControlLevel, RunReport, parse_finding

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ROLE_COLOURS",
    "curve_figure",
    "draw_curve",
    "draw_levey_jennings",
    "figure_svg",
    "levey_jennings_figure",
    "new_figure",
    "plate_figure",
    "rendering",
    "slug",
    "violation_labels",
]

ROLE_COLOURS = {
    "blank": "#d9d9d9",
    "standard": "#9ecae1",
    "control": "#fdd0a2",
    "sample": "#c7e9c0",
}
OTHER_COLOUR = "#ffffff"
RC: dict[str, Any] = {
    "text.parse_math": False,  # data text is text, never mathtext
    "text.usetex": False,
    "svg.fonttype": "none",  # SVG text stays text (searchable, small)
    "pdf.fonttype": 42,  # TrueType in the PDF, with a ToUnicode map (text extractable)
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
}
# rcParams are process-wide: one render at a time (the daemon may render while a CLI
# command does not share the process, but threads in one process would).
_LOCK = threading.RLock()


@contextmanager
def rendering() -> Iterator[None]:
    """Hold the render lock and the report's matplotlib settings."""
    import matplotlib

    with _LOCK, matplotlib.rc_context(RC):  # type: ignore[arg-type]
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (the backend chosen explicitly, pyplot untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def figure_svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element to put inline in HTML (no XML prolog, no date,
    element ids stable for a given salt)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def _xy(points: Iterable[tuple[float | None, float | None]]) -> tuple[list[float], list[float]]:
    """The points that have both coordinates, as x and y lists."""
    pairs = [(x, y) for x, y in points if x is not None and y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt(value: float | None, digits: str = ".4g") -> str:
    return "-" if value is None else format(value, digits)


# -- plate map -------------------------------------------------------------------


def _well_label(report: RunReport, well: str) -> tuple[str, str]:
    found = next((w for w in report.wells if w.well == well), None)
    if found is None:
        return "", ""
    if found.role == "standard":
        what = f"S {found.nominal_u_per_l:g}" if found.nominal_u_per_l is not None else "S"
    elif found.role == "control":
        what = found.control or "C"
    elif found.role == "sample":
        what = found.accession or "sample"
    elif found.role == "blank":
        what = "blank"
    else:
        what = found.role
    value = f"{found.value:.4g}" if found.value is not None else (found.reason or found.raw)
    return _short(what, 10), _short(value or "-", 10)


def plate_figure(report: RunReport) -> Figure:
    """The plate as a grid of wells coloured by role, each with its role and reading."""
    from matplotlib.patches import Patch, Rectangle

    rows, cols = report.plate_rows, report.plate_columns
    fig = new_figure(11.69, 8.27)
    ax = fig.add_axes((0.04, 0.1, 0.94, 0.8))
    roles = {w.well: w.role for w in report.wells}
    small = 5.5 if cols > 12 else 7
    for r in range(rows):
        letter = chr(ord("A") + r)
        for c in range(1, cols + 1):
            well = f"{letter}{c}"
            colour = ROLE_COLOURS.get(roles.get(well, ""), OTHER_COLOUR)
            ax.add_patch(
                Rectangle((c - 1, r), 1, 1, facecolor=colour, edgecolor="#555555", linewidth=0.5)
            )
            what, value = _well_label(report, well)
            if what or value:
                ax.text(c - 0.5, r + 0.38, what, ha="center", va="center", fontsize=small)
                ax.text(
                    c - 0.5,
                    r + 0.7,
                    value,
                    ha="center",
                    va="center",
                    fontsize=small,
                    color="#222222",
                )
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_xticks([c - 0.5 for c in range(1, cols + 1)], [str(c) for c in range(1, cols + 1)])
    ax.set_yticks([r + 0.5 for r in range(rows)], [chr(ord("A") + r) for r in range(rows)])
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.set_title(f"Plate map: run {report.run_id}, {_short(report.source_name, 60)}", pad=18)
    handles = [Patch(facecolor=v, edgecolor="#555555", label=k) for k, v in ROLE_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    return fig


# -- standard curve --------------------------------------------------------------


def _curve_line(
    report: RunReport, low: float, high: float, log: bool
) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    steps = 200
    for i in range(steps + 1):
        t = i / steps
        x = low * (high / low) ** t if log else low + (high - low) * t
        y = report.curve.predict(x)
        if y is not None and math.isfinite(y):
            xs.append(x)
            ys.append(y)
    return xs, ys


def curve_figure(report: RunReport) -> Figure:
    """The standard curve on a figure of its own (see :func:`draw_curve`)."""
    fig = new_figure(9.0, 6.0)
    draw_curve(fig.add_subplot(1, 1, 1), report)
    return fig


def draw_curve(ax: Axes, report: RunReport) -> None:
    """Signal against activity: the fitted curve, the standards (back-calculated % beside
    each, excluded and failing ones marked), the samples on the curve, LLOQ and ULOQ."""
    curve = report.curve
    xs_all = [s.nominal_u_per_l for s in report.standards if s.nominal_u_per_l > 0]
    xs_all += [
        p.activity_in_well
        for p in report.samples_on_curve
        if p.activity_in_well is not None and p.activity_in_well > 0
    ]
    for limit in (curve.lloq_u_per_l, curve.uloq_u_per_l):
        if limit:
            xs_all.append(limit)
    log = bool(xs_all) and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 20
    if xs_all:
        low, high = min(xs_all) * (0.8 if log else 0.0), max(xs_all) * 1.1
        low = low if low > 0 or not log else min(xs_all)
        xs, ys = _curve_line(report, max(low, 1e-9) if log else low, high, log)
        if xs:
            ax.plot(xs, ys, color="#3182bd", linewidth=1.2, label=f"curve ({curve.model})")
    ok = [s for s in report.standards if s.signal is not None and not s.excluded and s.passed]
    bad = [s for s in report.standards if s.signal is not None and not s.excluded and not s.passed]
    out = [s for s in report.standards if s.signal is not None and s.excluded]
    if ok:
        ax.scatter(
            *_xy((s.nominal_u_per_l, s.signal) for s in ok),
            color="#08519c",
            s=22,
            zorder=3,
            label="standard (within tolerance)",
        )
    if bad:
        ax.scatter(
            *_xy((s.nominal_u_per_l, s.signal) for s in bad),
            color="#de2d26",
            marker="x",
            s=40,
            zorder=3,
            label="standard (outside tolerance)",
        )
    if out:
        ax.scatter(
            *_xy((s.nominal_u_per_l, s.signal) for s in out),
            facecolors="none",
            edgecolors="#de2d26",
            marker="s",
            s=60,
            linewidths=1.5,
            zorder=4,
            label="standard EXCLUDED",
        )
    for s in report.standards:
        if s.signal is None:
            continue
        pct = "-" if s.recovery_percent is None else f"{s.recovery_percent:.0f}%"
        tag = f"{s.well} {pct}" + (" excluded" if s.excluded else "")
        ax.annotate(
            tag,
            (s.nominal_u_per_l, s.signal),
            textcoords="offset points",
            xytext=(5, -9 if s.well[1:] == "2" else 4),
            fontsize=6,
            color="#de2d26" if s.excluded or not s.passed else "#333333",
        )
    samples = [
        p
        for p in report.samples_on_curve
        if p.signal is not None
        and p.activity_in_well is not None
        and (p.activity_in_well > 0 or not log)
    ]
    inside = [p for p in samples if p.comparator == "="]
    beyond = [p for p in samples if p.comparator != "="]
    if inside:
        ax.scatter(
            *_xy((p.activity_in_well, p.signal) for p in inside),
            color="#31a354",
            marker="D",
            s=16,
            zorder=3,
            label="sample",
        )
    if beyond:
        ax.scatter(
            *_xy((p.activity_in_well, p.signal) for p in beyond),
            color="#31a354",
            marker="^",
            s=22,
            zorder=3,
            label="sample beyond LLOQ/ULOQ (at the limit)",
        )
    for label, limit in (("LLOQ", curve.lloq_u_per_l), ("ULOQ", curve.uloq_u_per_l)):
        if limit:
            ax.axvline(limit, color="#756bb1", linestyle="--", linewidth=1)
            ax.text(
                limit,
                1.0,
                f" {label} {limit:g} U/L",
                transform=ax.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color="#756bb1",
            )
    if log:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        # Plain numbers: the default labels are mathtext, which the report turns off.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("activity in the well (U/L)")
    ax.set_ylabel(f"signal ({curve.signal_unit}, blank-corrected)")
    r2 = f", r² {curve.r_squared:.4f}" if curve.r_squared is not None else ""
    ax.set_title(f"Standard curve: {curve.model or 'no curve'}{r2}")
    if not report.standards:
        ax.text(0.5, 0.5, "no standards", transform=ax.transAxes, ha="center")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="center left", fontsize=7)


# -- Levey-Jennings --------------------------------------------------------------


def _lj_lines(ax: Axes, level: ControlLevel) -> None:
    mean, sd = level.mean_u_per_l, level.sd_u_per_l
    if mean is not None and sd:
        ax.axhline(mean, color="#333333", linewidth=1)
        for k, style in ((1, ":"), (2, "--"), (3, "-")):
            for sign in (1, -1):
                ax.axhline(
                    mean + sign * k * sd,
                    color="#999999" if k < 3 else "#de2d26",
                    linestyle=style,
                    linewidth=0.8,
                )
            ax.text(
                1.0,
                mean + k * sd,
                f" +{k}SD",
                transform=ax.get_yaxis_transform(),
                fontsize=6,
                va="center",
            )
            ax.text(
                1.0,
                mean - k * sd,
                f" -{k}SD",
                transform=ax.get_yaxis_transform(),
                fontsize=6,
                va="center",
            )
        ax.text(1.0, mean, " mean", transform=ax.get_yaxis_transform(), fontsize=6, va="center")
    else:
        ax.axhline(level.low_u_per_l, color="#de2d26", linestyle="--", linewidth=0.8)
        ax.axhline(level.high_u_per_l, color="#de2d26", linestyle="--", linewidth=0.8)
        ax.axhline((level.low_u_per_l + level.high_u_per_l) / 2, color="#333333", linewidth=0.8)


def levey_jennings_figure(report: RunReport, level: ControlLevel) -> Figure:
    """One control level's chart on a figure of its own (see :func:`draw_levey_jennings`)."""
    fig = new_figure(9.0, 3.6)
    draw_levey_jennings(fig.add_axes((0.08, 0.2, 0.8, 0.68)), report, level)
    return fig


def draw_levey_jennings(ax: Axes, report: RunReport, level: ControlLevel) -> None:
    """One control level over its last runs: mean and ±1/2/3 SD (or the target range
    until mean and SD are established), rejected runs hollow, Westgard violations red
    with the rule beside the point, this run ringed."""
    points = [p for p in level.history if p.measured_u_per_l is not None]
    values = [p.measured_u_per_l or 0.0 for p in points]
    names = [c.name for c in report.controls]
    _lj_lines(ax, level)
    xs = list(range(1, len(points) + 1))
    ax.plot(xs, values, color="#6baed6", linewidth=0.8)
    for x, y, p in zip(xs, values, points, strict=True):
        rules = [f for f in (parse_finding(t) for t in p.findings) if f.names(level.name, names)]
        colour = "#de2d26" if rules else "#08519c"
        face = colour if p.run_status == "accepted" else "none"
        ax.scatter([x], [y], s=24, facecolors=face, edgecolors=colour, zorder=3)
        if rules:
            label = ", ".join(sorted({f.rule for f in rules}))
            ax.annotate(
                label,
                (x, y),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=7,
                color="#de2d26",
            )
        if p.run_id == report.run_id:
            ax.scatter(
                [x],
                [y],
                s=110,
                facecolors="none",
                edgecolors="#000000",
                linewidths=1,
                zorder=4,
            )
    ax.set_xticks(xs, [str(p.run_id) for p in points], rotation=90, fontsize=6)
    ax.set_xlim(0.5, max(len(points), 1) + 0.5)
    ax.set_xlabel("run")
    ax.set_ylabel("U/L")
    stats = (
        f"mean {level.mean_u_per_l:.4g}, SD {level.sd_u_per_l:.3g} ({level.stats_source})"
        if level.mean_u_per_l is not None and level.sd_u_per_l
        else "mean/SD not established: target range shown"
    )
    ax.set_title(
        f"Levey-Jennings: control {_short(level.name, 30)}, lot {_short(level.lot, 30)} "
        f"- last {len(points)} run(s); {stats}"
    )
    ax.grid(True, axis="y", alpha=0.25)


def violation_labels(report: RunReport, level: ControlLevel) -> list[tuple[int, str]]:
    """(run id, rules) of the chart's points marked as Westgard violations."""
    names = [c.name for c in report.controls]
    found = []
    for p in level.history:
        rules = sorted(
            {f.rule for f in map(parse_finding, p.findings) if f.names(level.name, names)}
        )
        if rules and p.measured_u_per_l is not None:
            found.append((p.run_id, ", ".join(rules)))
    return found


def slug(text: str) -> str:
    """A safe id fragment for an SVG salt or an HTML anchor."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)[:40] or "x"
