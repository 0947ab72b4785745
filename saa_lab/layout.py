"""Plate templates (``config/layouts/<name>.toml``, wellmap TOML), validated on load.

Each well of a template has a ``role``: ``blank``, ``standard`` (with
``nominal_u_per_l``), ``control`` (with ``control``, ``low_u_per_l`` and
``high_u_per_l``) or ``sample`` (accession and dilution come from the worklist).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import numbers
import re
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


def _missing(value: Any) -> bool:
    """A well without this parameter (wellmap fills the gap with NaN or NaT)."""
    if value is None:
        return True
    if isinstance(value, str | bytes | list | tuple | dict | set):
        return False
    import pandas

    try:
        return bool(pandas.isna(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any, path: Path, well: str, key: str) -> float | None:
    """A number parameter: absent is None; anything but a finite number is an error.

    A TOML boolean, string, date or array is refused (``true`` is not 1.0, ``false``
    not 0.0), and so are ``inf`` and ``nan``.
    """
    if _missing(value):
        return None
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if real and type(value).__name__ != "bool_":
        number = float(value)
        if math.isfinite(number):
            return number
    msg = f"{key} {_shown(value)} is not a finite number"
    raise ConfigError(msg, path=str(path), well=well, key=key)


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    return str(value)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _shown(value: Any) -> str:
    """A value quoted in a message, on one line."""
    return repr(value) if isinstance(value, str) else _UNPRINTABLE.sub("?", repr(value))[:80]


def _check_well(path: Path, entry: LayoutWell) -> None:
    problem, key = None, None
    if entry.role not in ROLES:
        problem, key = f"role {entry.role!r} is not one of {', '.join(ROLES)}", "role"
    elif entry.role == "standard" and not (entry.nominal_u_per_l or 0) > 0:
        problem, key = "a standard needs nominal_u_per_l > 0", "nominal_u_per_l"
    elif entry.role == "control":
        low, high = entry.low_u_per_l, entry.high_u_per_l
        if not entry.control or _UNPRINTABLE.search(entry.control):
            problem, key = "a control needs a one-line name in 'control'", "control"
        elif low is None or high is None or not 0 <= low < high:
            problem = "a control needs low_u_per_l and high_u_per_l with low < high"
            key = "low_u_per_l"
    if problem:
        raise ConfigError(problem, path=str(path), well=entry.well, key=key)


#: wells one template's patterns may expand to (a few 1536-well plates' worth), and the
#: rows and columns they may reach (a 1536-well plate's): wellmap expands ``A1-ZZ99999``
#: or ``[block.9999x9999.A1]`` well by well, and every row between A and ``ZZZZZZ7``.
MAX_WELLS = 6144
MAX_ROWS, MAX_COLUMNS = 32, 48
_BLOCK_SIZE = re.compile(r"(\d+)x(\d+)")


def _expanded(patterns: Any, iterate: Any, path: Path, limits: tuple[int, ...]) -> int:
    """How many wells (rows, columns) the keys of one wellmap table expand to, capped;
    ConfigError for one beyond ``limits`` (rows, columns)."""
    total = 0
    for key in patterns if isinstance(patterns, dict) else ():
        try:  # count what is yielded before a malformed part (wellmap expands that too)
            for index in itertools.islice(iterate(str(key)), MAX_WELLS + 1):
                total += 1
                point = index if isinstance(index, tuple) else (index,)
                if any(not 0 <= i < limit for i, limit in zip(point, limits, strict=False)):
                    msg = f"{key!r} lies beyond any plate ({MAX_ROWS} rows, {MAX_COLUMNS} columns)"
                    raise ConfigError(msg, path=str(path), key=str(key))
        except ConfigError:
            raise
        except Exception:  # the malformed part: wellmap.load names it
            pass
        if total > MAX_WELLS:
            break
    return total


def _linked(config: dict[str, Any], key: str) -> list[str]:
    """The file names ``meta.include`` or ``meta.concat`` refers to."""
    meta = config.get("meta")
    value = meta.get(key) if isinstance(meta, dict) else None
    if isinstance(value, list):
        items = value
    elif key == "concat" and isinstance(value, dict):  # {plate name: file}
        items = list(value.values())
    else:
        items = [value]
    names = [i.get("path") if isinstance(i, dict) else i for i in items]
    return [n for n in names if isinstance(n, str)]


def _shifted(config: dict[str, Any]) -> bool:
    """True when ``meta.include`` moves an included layout (``shift``: anywhere at all)."""
    meta = config.get("meta")
    value = meta.get("include") if isinstance(meta, dict) else None
    items = value if isinstance(value, list) else [value]
    return any(isinstance(i, dict) and "shift" in i for i in items)


def _check_size(path: Path, including: tuple[Path, ...] = ()) -> int:
    """Refuse (ConfigError) a template, with what it includes, that expands to too many
    wells or includes itself; returns the number of wells."""
    import tomllib

    from wellmap import iter_col_indices, iter_row_indices, iter_well_indices

    top = including[0] if including else path
    if path.resolve() in including or len(including) > 16:
        msg = f"the layout includes itself (via {path.name}) or nests includes too deeply"
        raise ConfigError(msg, path=str(top), key="meta.include")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, RecursionError):
        return 0  # wellmap.load reports it
    plates = config.get("plate")
    total = 0
    grid, down, across = (MAX_ROWS, MAX_COLUMNS), (MAX_ROWS,), (MAX_COLUMNS,)
    for table in [config, *(plates.values() if isinstance(plates, dict) else ())]:
        if not isinstance(table, dict):
            continue
        rows = _expanded(table.get("row"), iter_row_indices, top, down)
        rows += _expanded(table.get("irow"), iter_row_indices, top, down)
        cols = _expanded(table.get("col"), iter_col_indices, top, across)
        cols += _expanded(table.get("icol"), iter_col_indices, top, across)
        wells = _expanded(table.get("well"), iter_well_indices, top, grid)
        total += wells + rows * max(cols, 1) + cols
        blocks = table.get("block")
        for size, corners in blocks.items() if isinstance(blocks, dict) else ():
            match = _BLOCK_SIZE.match(str(size))
            if match is not None:
                area = int(match.group(1)) * int(match.group(2))
                corner_count = _expanded(corners, iter_well_indices, top, grid)
                total += area * min(corner_count, MAX_WELLS + 1)
        if total > MAX_WELLS:
            break
    if _shifted(config):
        msg = "meta.include with a 'shift' is not read in a plate template"
        raise ConfigError(msg, path=str(top), key="meta.include")
    for name in (*_linked(config, "include"), *_linked(config, "concat")):
        if total > MAX_WELLS:
            break
        total += _check_size(path.parent / name, (*including, path.resolve()))
    if total > MAX_WELLS:
        msg = f"the layout's patterns expand to more than {MAX_WELLS} wells; no plate has that many"
        raise ConfigError(msg, path=str(top))
    return total


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
    from pandas.errors import InvalidIndexError

    # TOML errors are ValueErrors; wellmap lets the others escape on some malformed
    # tables (e.g. ``[meta] style = "x"``, a parameter named like its own columns).
    damage = (wellmap.LayoutError, ValueError, OSError, TypeError, KeyError, IndexError,
              AttributeError, InvalidIndexError)  # fmt: skip
    try:
        _check_size(path)
        frame = wellmap.load(str(path))
    except damage as exc:
        why = " ".join(str(exc).split())  # wellmap's messages may span lines
        raise ConfigError(f"cannot read the plate layout: {why}", path=str(path)) from exc
    except RecursionError as exc:  # a file that includes itself, or nesting without end
        msg = "cannot read the plate layout: it includes itself or nests too deeply"
        raise ConfigError(msg, path=str(path)) from exc
    if "role" not in frame.columns:
        raise ConfigError("no well has a 'role'", path=str(path))
    if "plate" in frame.columns:
        msg = "a template describes one plate: [plate] tables are not read"
        raise ConfigError(msg, path=str(path), key="plate")
    twice = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if twice:
        msg = f"parameter(s) {', '.join(twice)} clash with the names wellmap gives its columns"
        raise ConfigError(msg, path=str(path), key=twice[0])
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
            nominal_u_per_l=_number(record.get("nominal_u_per_l"), path, well, "nominal_u_per_l"),
            control=_text(record.get("control")),
            low_u_per_l=_number(record.get("low_u_per_l"), path, well, "low_u_per_l"),
            high_u_per_l=_number(record.get("high_u_per_l"), path, well, "high_u_per_l"),
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
