"""How the report writes its values: the same words in the HTML and the PDF."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..numbers import format_number

if TYPE_CHECKING:
    from ..store.report_queries import WellLine
    from ..store.review import ResultView
    from .data import RunReport, StandardPoint

__all__ = [
    "activity",
    "clip",
    "decision_text",
    "g",
    "limit",
    "pct",
    "plate_text",
    "standard_state",
    "state_text",
    "well_role",
    "well_title",
    "well_value",
]


def g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def limit(value: float | None) -> str:
    return "-" if value is None else f"{value:g} U/L (in the well)"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def activity(value: float | None, comparator: str) -> str:
    if value is None:
        return "no result"
    return ("" if comparator == "=" else comparator) + format_number(value)


def plate_text(r: RunReport) -> str:
    return f"plate {r.plate_index + 1}" + (f" ({r.plate_id})" if r.plate_id else "")


def decision_text(r: RunReport) -> str:
    """The run's review status and who decided it, when and with what meaning."""
    if r.reviewed_by:
        meaning = f" ({r.review_meaning})" if r.review_meaning else ""
        return f"{r.review_status} by {r.reviewed_by}{meaning} at {r.local(r.reviewed_at)}"
    if r.review_status == "auto-released":
        return "auto-released (auto-verification; no person decided)"
    if r.review_status == "waiting":
        return "waiting for review (no decision yet)"
    if r.review_status == "qc-rejected":
        return "qc-rejected (the run failed QC; nothing to release)"
    return r.review_status


def state_text(v: ResultView) -> str:
    if v.state == "released" and v.auto_verified:
        return "auto-released"
    return v.state


def standard_state(s: StandardPoint) -> tuple[str, str]:
    """(text, css class) of a standard well's verdict."""
    if s.excluded:
        return f"EXCLUDED ({s.reason or 'excluded'})", "excluded"
    if s.passed:
        return "ok", "ok"
    return f"FAIL ({s.reason})" if s.reason else "FAIL", "fail"


def well_role(w: WellLine) -> str:
    if w.role == "standard":
        return "standard" + (f" {w.nominal_u_per_l:g}" if w.nominal_u_per_l is not None else "")
    if w.role == "control":
        return f"control {w.control or ''}".strip()
    if w.role == "sample":
        dilution = f" 1:{w.dilution:g}" if w.dilution != 1 else ""
        return f"{w.accession or 'sample'}{dilution}"
    return w.role


def well_value(w: WellLine) -> str:
    if w.value is not None:
        return f"{w.value:.4f}"
    return f"{w.reason or 'no value'}" + (f" {w.raw!r}" if w.raw else "")


def well_title(w: WellLine) -> str:
    return f"{w.well}: {well_role(w)} - {well_value(w)}"
