"""Hostile plate templates (wellmap TOML): a sane layout, or ConfigError naming the file.

Templates are generated (well, block, row/column and meta tables with every kind of
TOML value where a role, a nominal activity or a control range belongs, reserved
parameter names, patterns that expand to millions of wells, self-includes) and the
packaged templates are damaged as text. ``load_layout`` must return a layout whose
wells are real well names with known roles, whose standards and controls carry
finite numbers written as numbers in the file (``true`` is not 1, ``false`` not 0),
or raise ConfigError whose one-line message names the file. Nothing else, no hang.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hostile_support import JUNK, assert_one_line, counted, hostile, pick
from hypothesis import given
from hypothesis import strategies as st

from saa_lab.config import packaged_config_dir
from saa_lab.errors import ConfigError
from saa_lab.layout import ROLES, PlateLayout, load_layout
from saa_lab.wells import normalize_well

LAYOUTS = sorted((packaged_config_dir() / "layouts").glob("*.toml"))
_names = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("layouts")


def toml_value(value: object) -> str:
    """``value`` as a TOML value (strings escaped as TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)  # int, date


def numbers_in(text: str) -> set[float]:
    """Every number the TOML text writes as a number (not a boolean, not a string)."""
    found: set[float] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            found.add(float(node))

    walk(tomllib.loads(text))
    return found


def load(folder: Path, text: str | bytes) -> PlateLayout | ConfigError:
    """Write ``text`` to a new file and load it (``"self"`` and ``"aha"`` in it name that
    file and a packaged template, for ``meta.include``)."""
    path = folder / f"layout-{next(_names)}.toml"
    data = text.encode("utf-8") if isinstance(text, str) else text
    data = data.replace(b'"self"', json.dumps(path.name).encode())
    path.write_bytes(data.replace(b'"aha"', json.dumps(str(LAYOUTS[0])).encode()))
    try:
        return load_layout(str(path), [])
    except ConfigError as error:
        assert error.path == str(path), f"the error does not name the file: {error}"
        assert_one_line(str(error))
        return error


def check_sane(layout: PlateLayout) -> None:
    text = layout.path.read_text(encoding="utf-8")
    numbers = numbers_in(text)
    for included in LAYOUTS:  # meta.include of a packaged template
        if str(included) in text:
            numbers |= numbers_in(included.read_text(encoding="utf-8"))
    assert layout.wells_with_role("standard"), "a layout without standards"
    for name, well in layout.wells.items():
        assert normalize_well(name) == name == well.well, f"bad well name {name!r}"
        assert well.role in ROLES, f"{name}: role {well.role!r}"
        if well.role == "standard":
            nominal = well.nominal_u_per_l
            assert nominal is not None and math.isfinite(nominal) and nominal > 0, name
            assert nominal in numbers, f"{name}: nominal {nominal} is no number in the file"
        if well.role == "control":
            low, high = well.low_u_per_l, well.high_u_per_l
            assert well.control and "\n" not in well.control, f"{name}: control {well.control!r}"
            assert low is not None and high is not None and 0 <= low < high, name
            assert math.isfinite(high), f"{name}: high {high}"
            assert low in numbers and high in numbers, f"{name}: range {low}-{high} invented"


# --- generated templates --------------------------------------------------------------

WELL_KEYS = ("A1", "H12", "B03", "A1-B2", "A1,A3,...,A11", "Z99", "P24", "A0", "a1",
             "A1-ZZ9999", "A1,A2,...,A99999", "AA1", "1A", "A1,", "InfinityE3",
             "A99999999")  # fmt: skip
BLOCK_SIZES = ("1x1", "2x8", "12x8", "2x1", "0x8", "8x0", "99x99", "9999x9999", "2x8junk", "x")
ROW_KEYS = ("A", "A-H", "A,C,...,G", "I", "ZZ", "A-ZZZZ", "")
COL_KEYS = ("1", "1-12", "1,3,...,11", "13", "0", "1-99999", "x")
PARAMS = ("role", "nominal_u_per_l", "control", "low_u_per_l", "high_u_per_l")
ODD_PARAMS = ("well", "row", "col", "plate", "path", "well0", "colour", "")
ROLE_VALUES: tuple[object, ...] = (*ROLES, *ROLES, "Standard", "", "blank ", 1, True, ["sample"])
NUMBER_VALUES: tuple[object, ...] = (5, 10, 250, 0.5, 32, 48, 0, -5, -0.0, 1e308, 1e-300,
                                     math.inf, -math.inf, math.nan, True, False, "5", "abc",
                                     [1, 2], {"a": 1}, 9_999_999_999)  # fmt: skip
_ANY_VALUE = st.one_of(
    st.sampled_from(NUMBER_VALUES),
    st.sampled_from(JUNK),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates().map(str),
)
_SECTIONS = st.integers(1, 6)
_PARAM_COUNT = st.integers(0, 5)
_BOOL = st.booleans()


def _value(draw: st.DrawFn, param: str) -> object:
    if draw(_BOOL) and draw(_BOOL):
        return draw(_ANY_VALUE)
    if param == "role":
        return pick(draw, ROLE_VALUES)
    if param == "control":
        return pick(draw, ("LOW", "HIGH", "", "L\nOW", 0, True))
    return pick(draw, NUMBER_VALUES)


def _table(draw: st.DrawFn) -> str:
    kind = pick(draw, ("well", "block", "row", "col", "irow", "icol", "meta", "plate", "expt"))
    if kind == "well":
        head = f"[well.{json.dumps(pick(draw, WELL_KEYS))}]"
    elif kind == "block":
        size, corner = pick(draw, BLOCK_SIZES), pick(draw, WELL_KEYS)
        head = f"[block.{json.dumps(size)}.{json.dumps(corner)}]"
    elif kind in ("row", "irow"):
        head = f"[{kind}.{json.dumps(pick(draw, ROW_KEYS))}]"
    elif kind in ("col", "icol"):
        head = f"[{kind}.{json.dumps(pick(draw, COL_KEYS))}]"
    elif kind == "meta":
        target = pick(draw, ("self", "missing.toml", "aha", "/dev/null", 5, ["a", "b"]))
        key = pick(draw, ("include", "concat", "alert", "path", "style"))
        return f"[meta]\n{key} = {toml_value(target)}\n"
    elif kind == "plate":
        head = f"[plate.{json.dumps(pick(draw, ('a', 'b', '')))}.well.A1]"
    else:
        head = "[expt]"
    lines = [head]
    names = set()
    for _ in range(draw(_PARAM_COUNT)):
        name = pick(draw, PARAMS) if draw(_BOOL) or draw(_BOOL) else pick(draw, ODD_PARAMS)
        if name in names:
            continue
        names.add(name)
        lines.append(f"{json.dumps(name)} = {toml_value(_value(draw, name))}")
    return "\n".join(lines) + "\n"


@st.composite
def generated_layouts(draw: st.DrawFn) -> str:
    # Half the templates start from a valid core so that the damage, not the lack of
    # standards, decides the outcome. A table is declared once (else it is no TOML).
    core = '[block."2x8".A1]\nrole = "standard"\nnominal_u_per_l = 50\n' if draw(_BOOL) else ""
    tables = {core.split("\n", 1)[0]: core}
    for _ in range(draw(_SECTIONS)):
        table = _table(draw)
        tables.setdefault(table.split("\n", 1)[0], table)
    return "".join(tables.values())


@hostile(1000)
@given(generated_layouts())
@counted
def test_generated_templates_are_sane_or_refused(folder: Path, text: str) -> None:
    result = load(folder, text)
    if isinstance(result, PlateLayout):
        check_sane(result)


# --- damaged packaged templates -------------------------------------------------------

_NUMBER = re.compile(r"(?<=\= )[0-9.]+")
_ROLE = re.compile(r'(?<=role = )"[a-z]+"')
_BLOCK = re.compile(r"\d+x\d+\.[A-H]\d+")
TEXT_DAMAGE = ("number", "role", "block", "delete_line", "duplicate_line", "insert", "truncate",
               "include_self", "bytes")  # fmt: skip
_DAMAGES = st.integers(1, 4)
_JUNK_VALUES = st.one_of(st.sampled_from(NUMBER_VALUES), st.sampled_from(JUNK)).map(toml_value)


@st.composite
def damaged_layouts(draw: st.DrawFn) -> bytes:
    text = pick(draw, LAYOUTS).read_text(encoding="utf-8")
    for _ in range(draw(_DAMAGES)):
        kind = pick(draw, TEXT_DAMAGE)
        if not text:
            break
        if kind in ("number", "role", "block"):
            pattern = {"number": _NUMBER, "role": _ROLE, "block": _BLOCK}[kind]
            found = list(pattern.finditer(text))
            if not found:
                continue
            match = pick(draw, found)
            if kind == "block":
                size, corner = pick(draw, BLOCK_SIZES), pick(draw, WELL_KEYS)
                new = f"{json.dumps(size)}.{json.dumps(corner)}"
            else:
                new = draw(_JUNK_VALUES)
            text = text[: match.start()] + new + text[match.end() :]
        elif kind in ("delete_line", "duplicate_line"):
            lines = text.splitlines(keepends=True)
            at = pick(draw, range(len(lines)))
            copies = [] if kind == "delete_line" else [lines[at], lines[at]]
            text = "".join([*lines[:at], *copies, *lines[at + 1 :]])
        elif kind == "insert":
            at = pick(draw, range(len(text) + 1))
            text = text[:at] + pick(draw, JUNK) + text[at:]
        elif kind == "truncate":
            text = text[: pick(draw, range(len(text) + 1))]
        elif kind == "include_self":
            text = '[meta]\ninclude = "self"\n' + text
        elif kind == "bytes":
            return text.encode("utf-8")[: pick(draw, range(len(text)))] + b"\xff\xfe\x00"
    return text.encode("utf-8")


@hostile(800)
@given(damaged_layouts())
@counted
def test_damaged_packaged_templates_are_sane_or_refused(folder: Path, data: bytes) -> None:
    result = load(folder, data)
    if isinstance(result, PlateLayout):
        check_sane(result)


@pytest.mark.parametrize("path", LAYOUTS, ids=lambda p: p.name)
def test_packaged_templates_are_sane(path: Path) -> None:
    check_sane(load_layout(str(path), []))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[well.A1]\nrole = "standard"\nnominal_u_per_l = true\n', "not a finite number"),
        ('[well.A1]\nrole = "standard"\nnominal_u_per_l = inf\n', "not a finite number"),
        (
            '[well.A1]\nrole = "standard"\nnominal_u_per_l = 5\n[well.B1]\nrole = "control"\n'
            'control = "LOW"\nlow_u_per_l = false\nhigh_u_per_l = 48\n',
            "low_u_per_l False",
        ),
        ('[block.9999x9999.A1]\nrole = "standard"\nnominal_u_per_l = 5\n', "more than 6144 wells"),
        ('[well."A1,A2,...,A9999999"]\nrole = "standard"\nnominal_u_per_l = 5\n', "beyond"),
        ('[block.48x32."A1,A2,...,A5"]\nrole = "sample"\n', "6144 wells"),
        (
            '[meta]\ninclude = "self"\n[well.A1]\nrole = "standard"\nnominal_u_per_l = 5\n',
            "includes itself",
        ),
        ("a = " + "[" * 2000 + "]" * 2000 + "\n", "nests too deeply"),
        ('[well.A1]\nrole = "standard"\nnominal_u_per_l = 5\nwell = "B2"\n', "well"),
        ('[plate.a.well.A1]\nrole = "standard"\nnominal_u_per_l = 5\n', "[plate]"),
        (
            '[block.2x8.A1]\nrole = "standard"\nnominal_u_per_l = 5\n[block.1x4.InfinityE3]\n'
            'role = "sample"\n',
            "beyond any plate",
        ),
        ('[meta.include]\npath = "aha"\nshift = "A1 to ZZZZZZ1"\n', "shift"),
    ],
)
def test_found_by_the_properties(folder: Path, text: str, message: str) -> None:
    """Inputs the properties found: each crashed, hung or invented a number before."""
    result = load(folder, text)
    assert isinstance(result, ConfigError), result
    assert message in str(result)
