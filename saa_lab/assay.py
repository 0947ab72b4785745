"""Assay definitions (``config/assays/<name>.toml``), validated on load.

An assay names what it reads (wavelength, endpoint or kinetic rate), its curve
model, quantification limits and validated dilutions, its acceptance rules,
and its QC (Westgard) settings. Every run stores the assay's name and version
(a hash of the file's bytes), so a result can always be traced to the
parameters used. Errors name the file and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import format_validation_error
from .errors import ConfigError

__all__ = [
    "Acceptance",
    "AssayDefinition",
    "CurveSettings",
    "LoadedAssay",
    "PegBias",
    "WestgardControl",
    "WestgardSettings",
    "find_named_file",
    "load_assay",
]

# Bioanalytical acceptance regimes (FDA 2018 / ICH M10): tolerance for
# standards in general, at the LLOQ and at the ULOQ, in percent.
REGIMES = {
    "chromatographic": (15.0, 20.0, 15.0),
    "ligand-binding": (20.0, 25.0, 25.0),
}
WESTGARD_RULES = ("1-2s", "1-3s", "2-2s", "R-4s", "4-1s", "10-x")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CurveSettings(_Strict):
    model: Literal["linear", "two-segment-linear", "4pl", "5pl"] = "linear"
    weighting: Literal["none", "1/x", "1/x2"] = "none"
    # two-segment-linear: [[low, high], [low, high]] in U/L
    segments: tuple[tuple[float, float], ...] = ()

    @model_validator(mode="after")
    def _segments_fit_model(self) -> CurveSettings:
        if self.model == "two-segment-linear":
            if len(self.segments) != 2:
                msg = "two-segment-linear needs segments = [[low, high], [low, high]]"
                raise ValueError(msg)
            (l1, h1), (l2, h2) = self.segments
            if not l1 < h1 <= l2 < h2:
                msg = "segments must be ordered, e.g. [[5, 100], [100, 1000]]"
                raise ValueError(msg)
        return self


class Acceptance(_Strict):
    """Run acceptance; tolerances default to the regime's (chromatographic: 15/20/15 %)."""

    regime: Literal["chromatographic", "ligand-binding"] = "chromatographic"
    standard_tolerance_percent: float | None = Field(default=None, gt=0)
    standard_tolerance_lloq_percent: float | None = Field(default=None, gt=0)
    standard_tolerance_uloq_percent: float | None = Field(default=None, gt=0)
    min_standards_passing_percent: float = Field(default=75.0, ge=0, le=100)
    min_standard_levels: int = Field(default=6, ge=2)
    # A level passes when at least this share of its replicate wells pass.
    level_min_passing_fraction: float = Field(default=0.5, gt=0, le=1)
    # Refit without failing standard wells (recorded), as long as the run still
    # meets the rules above; the LLOQ/ULOQ move to the lowest/highest passing level.
    exclude_failing_standards: bool = True
    min_control_levels: int = Field(default=2, ge=1)
    controls_min_passing_fraction: float = Field(default=2 / 3, gt=0, le=1)
    control_level_min_passing_fraction: float = Field(default=0.5, gt=0, le=1)
    replicate_cv_max_percent: float = Field(default=15.0, gt=0)
    replicate_cv_max_percent_near_lloq: float = Field(default=20.0, gt=0)
    # "Near the LLOQ" means a mean below this multiple of the LLOQ.
    near_lloq_factor: float = Field(default=2.0, ge=1)

    def tolerances(self) -> tuple[float, float, float]:
        general, lloq, uloq = REGIMES[self.regime]
        return (
            self.standard_tolerance_percent or general,
            self.standard_tolerance_lloq_percent or lloq,
            self.standard_tolerance_uloq_percent or uloq,
        )


class PegBias(_Strict):
    """Kits calibrated with native E. coli asparaginase over-read PEG-asparaginase.

    When enabled, a PEG result is divided by ``factor_low`` up to
    ``threshold_u_per_l`` and by ``factor_high`` above it, and the comment says so.
    """

    enabled: bool = False
    factor_low: float = Field(default=1.23, gt=0)
    factor_high: float = Field(default=1.42, gt=0)
    threshold_u_per_l: float = Field(default=600.0, gt=0)
    formulations: tuple[str, ...] = ("peg-asparaginase", "calaspargase-pegol")


class WestgardControl(_Strict):
    """One control material: its lot, and its mean/SD when set by the lab."""

    lot: str = "default"
    mean_u_per_l: float | None = Field(default=None, gt=0)
    sd_u_per_l: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _both_or_neither(self) -> WestgardControl:
        if (self.mean_u_per_l is None) != (self.sd_u_per_l is None):
            msg = "give both mean_u_per_l and sd_u_per_l, or neither (established from runs)"
            raise ValueError(msg)
        return self


class WestgardSettings(_Strict):
    enabled: bool = True
    # Without a configured mean/SD, they are established from this many accepted runs.
    establish_from_runs: int = Field(default=20, ge=2)
    warning_rules: tuple[str, ...] = ("1-2s",)
    rejection_rules: tuple[str, ...] = ("1-3s", "2-2s", "R-4s", "4-1s", "10-x")
    controls: dict[str, WestgardControl] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_rules(self) -> WestgardSettings:
        for rule in (*self.warning_rules, *self.rejection_rules):
            if rule not in WESTGARD_RULES:
                hint = difflib.get_close_matches(rule, WESTGARD_RULES, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                msg = f"unknown Westgard rule {rule!r}{extra}; known: {', '.join(WESTGARD_RULES)}"
                raise ValueError(msg)
        return self

    def control(self, name: str) -> WestgardControl:
        return self.controls.get(name, WestgardControl())


class AssayDefinition(_Strict):
    name: str
    description: str = ""
    method: str = ""
    calibrator: str = ""
    # The plate template this assay uses unless the run names another.
    layout: str | None = None
    wavelength_nm: float = Field(gt=0)
    # Other read wavelengths the method allows (e.g. 690 nm for the AHA assay).
    alternative_wavelengths_nm: tuple[float, ...] = ()
    # endpoint: the plate's readings; kinetic: each well's rate (signal/min, least
    # squares over the window [rate_window_start_s, rate_window_end_s]).
    read: Literal["endpoint", "kinetic"] = "endpoint"
    rate_window_start_s: float = Field(default=0.0, ge=0)
    rate_window_end_s: float | None = Field(default=None, gt=0)
    rate_min_points: int = Field(default=3, ge=2)
    # The calibrated signal = reading x signal_scale (e.g. -1000: a falling NADH
    # absorbance as a positive ΔmOD/min), then minus the blanks' mean.
    signal_scale: float = 1.0
    signal_unit: str = "OD"
    curve: CurveSettings = CurveSettings()
    lloq_u_per_l: float = Field(gt=0)
    uloq_u_per_l: float = Field(gt=0)
    max_dilution: float = Field(default=20.0, ge=1)
    # Dilutions the lab prepares for re-assays, smallest first.
    dilution_steps: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
    # Upper end of what may be reported (default ULOQ x max_dilution).
    max_reportable_u_per_l: float | None = Field(default=None, gt=0)
    acceptance: Acceptance = Acceptance()
    peg_bias: PegBias = PegBias()
    westgard: WestgardSettings = WestgardSettings()

    @model_validator(mode="after")
    def _limits_ordered(self) -> AssayDefinition:
        if self.lloq_u_per_l >= self.uloq_u_per_l:
            msg = "lloq_u_per_l must be below uloq_u_per_l"
            raise ValueError(msg)
        if self.signal_scale == 0:
            msg = "signal_scale must not be 0"
            raise ValueError(msg)
        if any(step <= 1 for step in self.dilution_steps):
            msg = "dilution_steps must all be above 1"
            raise ValueError(msg)
        return self

    @property
    def wavelengths_nm(self) -> tuple[float, ...]:
        return (self.wavelength_nm, *self.alternative_wavelengths_nm)

    @property
    def reportable_max_u_per_l(self) -> float:
        top = self.uloq_u_per_l * self.max_dilution
        return min(top, self.max_reportable_u_per_l) if self.max_reportable_u_per_l else top


@dataclass(frozen=True)
class LoadedAssay:
    definition: AssayDefinition
    path: Path
    version: str

    @property
    def name(self) -> str:
        return self.definition.name


def find_named_file(name: str, dirs: Sequence[Path], kind: str) -> Path:
    """``<dir>/<name>.toml`` in the first folder that has it; a clear error otherwise."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.is_file():
        return candidate
    for folder in dirs:
        path = folder / f"{name}.toml"
        if path.is_file():
            return path
    known = sorted({p.stem for folder in dirs if folder.is_dir() for p in folder.glob("*.toml")})
    hint = difflib.get_close_matches(name, known, n=1)
    msg = f"no {kind} named {name!r}"
    if hint:
        msg += f" (did you mean {hint[0]!r}?)"
    msg += f"; known: {', '.join(known) or 'none'}; looked in {', '.join(map(str, dirs))}"
    raise ConfigError(msg)


def load_assay(name: str, dirs: Sequence[Path]) -> LoadedAssay:
    path = find_named_file(name, dirs, "assay")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
    try:
        definition = AssayDefinition.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, AssayDefinition), path=str(path)) from exc
    version = hashlib.sha256(raw).hexdigest()[:12]
    return LoadedAssay(definition=definition, path=path, version=version)
