"""Plate templates (``config/layouts/<name>.toml``, wellmap TOML), validated on load.

Each well of a template has a ``role``: ``blank``, ``standard`` (with
``nominal_u_per_l``), ``control`` (with ``control``, ``low_u_per_l`` and
``high_u_per_l``) or ``sample`` (accession and dilution come from the worklist).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .assay import find_named_file
from .errors import ConfigError
from .wells import normalize_well, well_sort_key

__all__ = ["ROLES", "LayoutWell", "PlateLayout", "load_layout"]

ROLES = ("blank", "standard", "control", "sample")


@dataclass(frozen=True)
class LayoutWell:
    well: str
    role: str
    nominal_u_per_l: float | None = None
    control: str | None = None
    low_u_per_l: float | None = None
    high_u_per_l: float | None = None


@dataclass(frozen=True)
class PlateLayout:
    name: str
    path: Path
    version: str
    wells: Mapping[str, LayoutWell]

    def role_of(self, well: str) -> str | None:
        entry = self.wells.get(well)
        return entry.role if entry else None

    def wells_with_role(self, role: str) -> list[LayoutWell]:
        return sorted(
            (w for w in self.wells.values() if w.role == role), key=lambda w: well_sort_key(w.well)
        )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _check_well(path: Path, entry: LayoutWell) -> None:
    problem = None
    if entry.role not in ROLES:
        problem = f"role {entry.role!r} is not one of {', '.join(ROLES)}"
    elif entry.role == "standard" and not (entry.nominal_u_per_l or 0) > 0:
        problem = "a standard needs nominal_u_per_l > 0"
    elif entry.role == "control":
        low, high = entry.low_u_per_l, entry.high_u_per_l
        if not entry.control:
            problem = "a control needs a name in 'control'"
        elif low is None or high is None or not 0 <= low < high:
            problem = "a control needs low_u_per_l and high_u_per_l with low < high"
    if problem:
        raise ConfigError(problem, path=str(path), well=entry.well)


_cache: dict[tuple[str, int, int], PlateLayout] = {}
_cache_lock = threading.Lock()


def load_layout(name: str, dirs: Sequence[Path]) -> PlateLayout:
    """Load a template by name (or path); cached by file identity and mtime."""
    path = find_named_file(name, dirs, "plate layout")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    layout = _load(path)
    with _cache_lock:
        _cache[key] = layout
    return layout


def _load(path: Path) -> PlateLayout:
    import wellmap  # heavy (pandas); only when a layout is first needed

    raw = path.read_bytes()
    try:
        frame = wellmap.load(str(path))
    except (wellmap.LayoutError, ValueError, OSError) as exc:  # TOML errors are ValueErrors
        raise ConfigError(f"cannot read the plate layout: {exc}", path=str(path)) from exc
    if "role" not in frame.columns:
        raise ConfigError("no well has a 'role'", path=str(path))
    wells: dict[str, LayoutWell] = {}
    for record in frame.to_dict("records"):
        well = normalize_well(str(record["well"]))
        if well is None:
            raise ConfigError(f"bad well name {record['well']!r}", path=str(path))
        role = _text(record.get("role"))
        if role is None:
            continue
        entry = LayoutWell(
            well=well,
            role=role,
            nominal_u_per_l=_number(record.get("nominal_u_per_l")),
            control=_text(record.get("control")),
            low_u_per_l=_number(record.get("low_u_per_l")),
            high_u_per_l=_number(record.get("high_u_per_l")),
        )
        _check_well(path, entry)
        wells[well] = entry
    layout = PlateLayout(
        name=path.stem,
        path=path,
        version=hashlib.sha256(raw).hexdigest()[:12],
        wells=MappingProxyType(wells),
    )
    if not layout.wells_with_role("standard"):
        raise ConfigError("the layout has no standard wells", path=str(path))
    return layout
