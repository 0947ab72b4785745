"""Assay definitions (``config/assays/<name>.toml``), validated on load.

An assay names its read wavelength, curve model, quantification limits and
acceptance rules. Every run stores the assay's name and version (a hash of the
file's bytes), so a result can always be traced to the parameters used.
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

__all__ = ["Acceptance", "AssayDefinition", "LoadedAssay", "find_named_file", "load_assay"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Acceptance(_Strict):
    """Run acceptance rules; defaults follow FDA/ICH M10 chromatographic-type criteria."""

    standard_tolerance_percent: float = Field(default=15.0, gt=0)
    standard_tolerance_lloq_percent: float = Field(default=20.0, gt=0)
    min_standards_passing_percent: float = Field(default=75.0, ge=0, le=100)
    min_standard_levels: int = Field(default=6, ge=2)
    replicate_cv_max_percent: float = Field(default=15.0, gt=0)
    replicate_cv_max_percent_near_lloq: float = Field(default=20.0, gt=0)
    # "Near the LLOQ" means a mean below this multiple of the LLOQ.
    near_lloq_factor: float = Field(default=2.0, ge=1)


class AssayDefinition(_Strict):
    name: str
    description: str = ""
    method: str = ""
    wavelength_nm: float = Field(gt=0)
    # endpoint: the plate's readings; kinetic: each well's rate (signal/min, least
    # squares over the window [rate_window_start_s, rate_window_end_s]).
    read: Literal["endpoint", "kinetic"] = "endpoint"
    rate_window_start_s: float = Field(default=0.0, ge=0)
    rate_window_end_s: float | None = Field(default=None, gt=0)
    rate_min_points: int = Field(default=3, ge=2)
    curve_model: Literal["linear"] = "linear"
    lloq_u_per_l: float = Field(gt=0)
    uloq_u_per_l: float = Field(gt=0)
    max_dilution: float = Field(default=20.0, ge=1)
    acceptance: Acceptance = Acceptance()

    @model_validator(mode="after")
    def _limits_ordered(self) -> AssayDefinition:
        if self.lloq_u_per_l >= self.uloq_u_per_l:
            msg = "lloq_u_per_l must be below uloq_u_per_l"
            raise ValueError(msg)
        return self


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
