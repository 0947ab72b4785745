"""Hostile configuration files: AppConfig, or ConfigError in one line naming file and key.

Documents are generated from AppConfig's own model fields, so every section and
setting gets near-valid and hostile values (wrong types, out-of-range and non-finite
numbers, unknown and misspelt keys, keys and values with control characters, NUL in
paths, unknown time zones, deep nesting) and the packaged saa-lab.toml is damaged as
text. ``load_config`` must return an AppConfig with finite numbers and usable paths, or
raise ConfigError whose one-line message names the file and the setting. Any other
exception is a bug.

The five bugs these properties found in config.py (control characters in a key's
name splitting the message, deep nesting, a time zone that is a folder, infinite
numbers, NUL in paths) are fixed; each keeps its own example test below.
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from hostile_support import JUNK, assert_one_line, counted, hostile, pick
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from saa_lab.config import AppConfig, load_config, packaged_config_dir
from saa_lab.errors import ConfigError

PACKAGED = (packaged_config_dir() / "saa-lab.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config") / "saa-lab.toml"


# --- TOML -----------------------------------------------------------------------------


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def toml_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False).replace("\x7f", "\\u007f")


def render(document: dict[str, object], tables: bool) -> str:
    """TOML text: inline tables, or ``[section]`` tables for the top-level dicts."""
    if not tables:
        return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in document.items())
    plain = {k: v for k, v in document.items() if not isinstance(v, dict)}
    text = "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in plain.items())
    for key, value in document.items():
        if isinstance(value, dict):
            body = "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in value.items())
            text += f"\n[{toml_key(key)}]\n{body}"
    return text


# --- documents from the model ---------------------------------------------------------

_BOOL = st.booleans()
_COUNT = st.integers(0, 3)
_MODE = st.integers(0, 7)
_FIELDS = st.integers(0, 2**64 - 1)
_ANY = st.one_of(
    st.sampled_from(JUNK),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
# Values that fit the field's type (and often its rules), by field name.
VALID: dict[str, tuple[object, ...]] = {
    "timezone": ("UTC", "Europe/Berlin", "America/New_York"),
    "format": ("auto", "biotek_gen5", "generic_grid"),
    "url": ("sqlite:///x.db", "sqlite:///:memory:", "postgresql://lab@db/saa"),
    "listen_allow": ("127.0.0.1", "10.0.0.0/8", "::1"),
    "listen_host": ("127.0.0.1", "0.0.0.0"),
    "name": ("amoss", "lab-1", "default", "file"),
    "full_name": ("Ada Moss",),
    "host": ("127.0.0.1", "clinic.example"),
    "default": ("file",),
}
TEXTS = ("", "x", "Europe", "America", "Mars/Olympus", "../etc/passwd", "/etc/localtime",
         "a" * 300, "gen5", "host name", "10.0.0.1/8", "é", "x" * 70, "a\x00b", "a\nb")  # fmt: skip
KEYS = ("NORTH", "clinic a", "", "é", "a.b", "x" * 70, "a\nb")
FLOATS = (0.5, 2.0, 60.0, 900.0, 1e308, 0.01, 3)
INTS = (1, 1024, 65535, 2**20)
NUMBERS = (
    0,
    -1,
    -0.0,
    2**63,
    -(2**63),
    65536,
    5.5,
    math.inf,
    math.inf,
    -math.inf,
    math.nan,
    1e-300,
)
PATHS = ("inbox", "out/dir", "/tmp/saa", "C:\\lab\\in")
BAD_PATHS = ("", "/", "a\x00b", "../../x", "x" * 5000, "~/in", " ")


def _plain(annotation: Any) -> Any:
    """``X | None`` as X (TOML has no null: the key is just left out)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def value_for(draw: st.DrawFn, annotation: Any, name: str, hostile: bool) -> object:
    """A value for the field ``name`` of this type: near-valid, or hostile."""
    annotation = _plain(annotation)
    mode = draw(_MODE)
    if hostile and mode == 0:
        return draw(_ANY)
    bad = hostile and mode < 4
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return section(draw, annotation, hostile)
    if origin is Literal:
        return pick(draw, (str(args[0]).upper(), f" {args[0]}", 1)) if bad else pick(draw, args)
    if origin is tuple:
        inner = args[0] if args else str
        if bad and not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return value_for(draw, inner, name, hostile)  # one value where a list belongs
        return [value_for(draw, inner, name, hostile) for _ in range(draw(_COUNT))]
    if origin is dict:
        keys = [pick(draw, KEYS[:4] if not bad else KEYS) for _ in range(draw(_COUNT))]
        return {k: value_for(draw, args[1], name, hostile) for k in keys}
    if annotation is bool:
        return pick(draw, ("true", 1, 0)) if bad else draw(_BOOL)
    if annotation in (int, float):
        return pick(draw, NUMBERS) if bad else pick(draw, INTS if annotation is int else FLOATS)
    if annotation is Path:
        return pick(draw, BAD_PATHS) if bad else pick(draw, PATHS)
    if bad:
        return pick(draw, TEXTS) if draw(_BOOL) else pick(draw, JUNK)
    return pick(draw, VALID.get(name, ("x", "CLINIC", "a b")))


def _typo(draw: st.DrawFn, name: str) -> str:
    at = pick(draw, range(len(name)))
    return pick(draw, (name[:at] + name[at + 1 :], name[:at] + name[at] + name[at:],
                       name.upper(), name.replace("_", "-"), f"x{name}", "", "ünïcode",
                       f"{name}\n", f"{name}\x00"))  # fmt: skip


def section(draw: st.DrawFn, model: type[BaseModel], hostile: bool) -> dict[str, object]:
    fields = [(n, f) for n, f in model.model_fields.items() if not f.exclude]
    chosen = draw(_FIELDS)
    out: dict[str, object] = {}
    for bit, (name, info) in enumerate(fields):
        if chosen >> (bit % 64) & 1:
            out[name] = value_for(draw, info.annotation, name, hostile)
    if hostile and draw(_MODE) == 0 and fields:
        out[_typo(draw, pick(draw, [n for n, _ in fields]))] = draw(_ANY)
    return out


SECTIONS = [
    (name, info.annotation)
    for name, info in AppConfig.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A config document: one hostile setting alone, or many near-valid (a quarter) or
    hostile ones."""
    mode = draw(_MODE)
    if mode == 0:
        name, model = pick(draw, SECTIONS)
        key, info = pick(draw, [(n, f) for n, f in model.model_fields.items() if not f.exclude])
        document: dict[str, object] = {name: {key: value_for(draw, info.annotation, key, True)}}
    else:
        document = section(draw, AppConfig, hostile=mode > 2)
    return render(document, tables=draw(_BOOL))


TEXT_DAMAGE = ("value", "delete_line", "duplicate_line", "insert", "truncate", "nesting",
               "bytes")  # fmt: skip
_DAMAGES = st.integers(1, 3)
_JUNK_VALUE = st.one_of(st.sampled_from(JUNK), st.sampled_from(NUMBERS)).map(toml_value)


@st.composite
def damaged_packaged(draw: st.DrawFn) -> bytes:
    lines = PACKAGED.splitlines(keepends=True)
    for _ in range(draw(_DAMAGES)):
        kind = pick(draw, TEXT_DAMAGE)
        at = pick(draw, range(len(lines)))
        if kind == "value" and " = " in lines[at]:
            key = lines[at].split(" = ", 1)[0]
            lines[at] = f"{key} = {draw(_JUNK_VALUE)}\n"
        elif kind == "delete_line":
            del lines[at]
        elif kind == "duplicate_line":
            lines.insert(at, lines[at])
        elif kind == "insert":
            lines.insert(at, pick(draw, JUNK) + "\n")
        elif kind == "truncate":
            lines = lines[:at]
        elif kind == "nesting":
            lines.insert(0, "deep = " + "[" * 3000 + "]" * 3000 + "\n")
        elif kind == "bytes":
            return "".join(lines).encode("utf-8")[: at * 7] + b"\xff\xfe"
        if not lines:
            break
    return "".join(lines).encode("utf-8")


# --- the property ---------------------------------------------------------------------

FLOAT_FIELDS = [
    (section_name, name)
    for section_name, section_info in AppConfig.model_fields.items()
    if isinstance(section_info.annotation, type) and issubclass(section_info.annotation, BaseModel)
    for name, info in section_info.annotation.model_fields.items()
    if _plain(info.annotation) is float
]


def check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        config = load_config(path)
    except ConfigError as error:
        assert error.path == str(path), f"the error does not name the file: {error}"
        text = str(error).removeprefix(f"{path}: ")
        assert_one_line(str(error))
        assert str(error).startswith(f"{path}: "), str(error)
        parsed = _parsed(data)
        if isinstance(parsed, dict) and parsed and "not valid TOML" not in text:
            named = [k for k in parsed if str(k) in text]
            assert named or "unknown setting" in text, f"no setting named: {text}"
        return
    assert isinstance(config, AppConfig)
    for section_name, name in FLOAT_FIELDS:
        value = getattr(getattr(config, section_name), name)
        assert math.isfinite(value), f"{section_name}.{name} = {value} accepted"
    for field_name in type(config.paths).model_fields:
        assert "\x00" not in str(getattr(config.paths, field_name)), field_name


def _parsed(data: bytes) -> object:
    import tomllib

    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
        return None


@hostile(1500)
@given(documents())
@counted
def test_generated_configs_load_or_are_refused_in_one_line(config_path: Path, text: str) -> None:
    check(config_path, text.encode("utf-8"))


@hostile(400)
@given(damaged_packaged())
@counted
def test_damaged_packaged_config_loads_or_is_refused(config_path: Path, data: bytes) -> None:
    check(config_path, data)


def test_the_packaged_config_loads(config_path: Path) -> None:
    config_path.write_text(PACKAGED, encoding="utf-8")
    assert isinstance(load_config(config_path), AppConfig)


# --- bugs in config.py the properties found (fixed; kept as examples) -----------------


def _refused(config_path: Path, text: str) -> ConfigError:
    config_path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config_path)
    assert_one_line(str(caught.value))
    return caught.value


def test_a_key_with_a_newline_is_named_on_one_line(config_path: Path) -> None:
    error = _refused(config_path, '[lab]\n"time\\nzone" = "UTC"\n')
    assert "lab.time" in str(error)


def test_deep_nesting_is_refused(config_path: Path) -> None:
    _refused(config_path, "a = " + "[" * 3000 + "]" * 3000 + "\n")


@pytest.mark.parametrize("zone", ["Europe", "a" * 300])
def test_a_time_zone_that_is_a_folder_or_too_long_is_refused(config_path: Path, zone: str) -> None:
    error = _refused(config_path, f'[lab]\ntimezone = "{zone}"\n')
    assert "lab.timezone" in str(error)


def test_an_infinite_interval_is_refused(config_path: Path) -> None:
    error = _refused(config_path, "[watch]\npoll_interval_seconds = inf\n")
    assert "watch.poll_interval_seconds" in str(error)


def test_a_path_with_nul_is_refused(config_path: Path) -> None:
    error = _refused(config_path, '[paths]\ninbox = "in\\u0000box"\n')
    assert "paths.inbox" in str(error)
