"""Map: a plate read + the assay's template + the run's worklist → typed wells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .assay import AssayDefinition
from .domain import NoValueReason, PlateRead
from .errors import InputFileError
from .kinetics import RateWindow, rates
from .layout import PlateLayout
from .wells import well_sort_key
from .worklist import Worklist

__all__ = ["MappedWell", "Plate", "map_plate", "select_read"]


@dataclass(frozen=True)
class MappedWell:
    well: str
    role: str
    value: float | None
    raw: str
    reason: str | None = None
    nominal_u_per_l: float | None = None
    control: str | None = None
    low_u_per_l: float | None = None
    high_u_per_l: float | None = None
    accession: str | None = None
    dilution: float = 1.0
    worklist_line: int = 0


@dataclass(frozen=True)
class Plate:
    read: PlateRead
    layout: PlateLayout
    wells: tuple[MappedWell, ...]

    def with_role(self, role: str) -> list[MappedWell]:
        return [w for w in self.wells if w.role == role]


def select_read(
    reads: Sequence[PlateRead], assay: AssayDefinition, *, path: str
) -> list[PlateRead]:
    """The raw (not derived) reads at the assay's wavelength, one per plate.

    A read without a wavelength (generic grids) is taken as the assay's. For a
    kinetic assay the chosen read must be kinetic and its wells become each
    well's rate over the assay's window; an endpoint assay refuses kinetic reads.
    """
    wanted = assay.wavelengths_nm
    wanted_text = " or ".join(f"{w:g}" for w in wanted)
    chosen: dict[int, PlateRead] = {}
    plates = sorted({_plate_key(r) for r in reads})
    for plate in plates:
        candidates = [r for r in reads if _plate_key(r) == plate and not r.derived]
        pick: list[PlateRead] = []
        for wavelength in wanted:  # the assay's main wavelength first
            pick = [r for r in candidates if r.wavelength_nm == wavelength]
            if pick:
                break
        if not pick:
            pick = [r for r in candidates if r.wavelength_nm is None]
        if len(pick) > 1:
            labels = ", ".join(repr(r.label) for r in pick)
            msg = f"plate {plate + 1} has several raw reads at {wanted_text} nm ({labels})"
            raise InputFileError(msg, path=path)
        if not pick:
            found = ", ".join(
                f"{r.label or '?'} ({r.wavelength_nm:g} nm)" if r.wavelength_nm else str(r.label)
                for r in candidates
            )
            msg = (
                f"plate {plate + 1} has no read at the assay's {wanted_text} nm; "
                f"reads found: {found or 'none'}"
            )
            raise InputFileError(msg, path=path)
        chosen[plate] = _as_assay_read(pick[0], assay, path)
    return [chosen[p] for p in plates]


def _as_assay_read(read: PlateRead, assay: AssayDefinition, path: str) -> PlateRead:
    if assay.read == "endpoint":
        if read.kind == "kinetic":
            msg = (
                f"this is a kinetic read ({read.label or 'unlabelled'}); the assay "
                f"{assay.name!r} reads endpoints"
            )
            raise InputFileError(msg, path=path)
        return read
    if read.kinetic is None:
        msg = f"the assay {assay.name!r} needs a kinetic read; this export is an endpoint read"
        raise InputFileError(msg, path=path)
    window = RateWindow(assay.rate_window_start_s, assay.rate_window_end_s, assay.rate_min_points)
    return replace(read, wells=rates(read.kinetic, window))


def _plate_key(read: PlateRead) -> int:
    return read.plate_index


def map_plate(read: PlateRead, layout: PlateLayout, worklist: Worklist | None) -> Plate:
    """Join the read with the template and worklist; errors name the well and line."""
    if worklist is not None:
        for row in worklist.rows:
            role = layout.role_of(row.well)
            if role != "sample":
                what = f"a {role} well" if role else "not used by the layout"
                msg = (
                    f"accession {row.accession} is placed in well {row.well}, which the layout "
                    f"{layout.name!r} makes {what}; only sample wells take accessions"
                )
                raise InputFileError(msg, path=worklist.source_path, line=row.line, well=row.well)
    wells: list[MappedWell] = []
    for name in sorted(layout.wells, key=well_sort_key):
        spec = layout.wells[name]
        reading = read.wells.get(name)
        value = reading.value if reading else None
        raw = reading.raw if reading else ""
        reason = reading.reason if reading else NoValueReason.NOT_READ
        accession, dilution, line = None, 1.0, 0
        if spec.role == "sample":
            entry = worklist.row_for(name) if worklist else None
            if entry is None:
                continue  # an unused sample position
            accession, dilution, line = entry.accession, entry.dilution, entry.line
        wells.append(
            MappedWell(
                well=name,
                role=spec.role,
                value=value,
                raw=raw,
                reason=reason,
                nominal_u_per_l=spec.nominal_u_per_l,
                control=spec.control,
                low_u_per_l=spec.low_u_per_l,
                high_u_per_l=spec.high_u_per_l,
                accession=accession,
                dilution=dilution,
                worklist_line=line,
            )
        )
    return Plate(read=read, layout=layout, wells=tuple(wells))
