from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ZONE, default_layout, read_from_values

from saa_lab.config import find_config, load_config
from saa_lab.domain import SourceFile
from saa_lab.errors import ConfigError, InputFileError
from saa_lab.mapping import map_plate
from saa_lab.worklist import parse_worklist


def wl(text: str) -> SourceFile:
    return SourceFile(text.encode(), "RUN1.worklist.csv")


def test_worklist_rows_replicates_dilution_and_well_spellings() -> None:
    parsed = parse_worklist(wl("well,accession,dilution\nA04,X1,\nB4,X1,\nc4,X2,1:5\n"), zone=ZONE)
    assert [(r.well, r.accession, r.dilution, r.line) for r in parsed.rows] == [
        ("A4", "X1", 1.0, 2), ("B4", "X1", 1.0, 3), ("C4", "X2", 5.0, 4),
    ]  # fmt: skip
    assert parsed.orders == {}


def test_worklist_order_columns_become_order_context() -> None:
    text = (
        "well,accession,patient_id,formulation,dose_time,collection_time,protocol,clinic\n"
        "A4,X1,P1,Oncaspar,2026-11-13T09:00,2026-11-20T09:00+00:00,BFM,NORTH\n"
        "B4,X1,P1,Oncaspar,2026-11-13T09:00,2026-11-20T09:00+00:00,BFM,NORTH\n"
    )
    order = parse_worklist(wl(text), zone=ZONE).orders["X1"]
    assert order.formulation == "peg-asparaginase"
    assert order.dose_time is not None and order.dose_time.utcoffset() is not None
    assert str(order.dose_time.tzinfo) == "Europe/Berlin"  # naive times are the lab's zone
    assert order.collection_time is not None
    assert (order.collection_time - order.dose_time).days == 7
    assert (order.patient_id, order.protocol, order.clinic) == ("P1", "BFM", "NORTH")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("accession\nX1\n", "lacks the column(s) well", 1),
        ("well,accession,colour\nA4,X1,red\n", "unknown column(s) colour", 1),
        ("well,accession\nZ4,X1\n", "'Z4' is not a well of a 96-well plate", 2),
        ("well,accession\nA4,X1\nA04,X2\n", "well A4 is listed twice (also on line 2)", 3),
        ("well,accession\nA4,\n", "the accession is empty", 2),
        ("well,accession,dilution\nA4,X1,0.5\n", "dilution '0.5' is not a factor", 2),
        ("well,accession,formulation\nA4,X1,aspirin\n", "unknown formulation 'aspirin'", 2),
        ("well,accession,dose_time\nA4,X1,yesterday\n", "dose_time 'yesterday' is not an ISO", 2),
        (
            "well,accession,patient_id\nA4,X1,P1\nB4,X1,P2\n",
            "order details for accession X1 differ from line 2",
            3,
        ),
    ],
)
def test_worklist_errors_name_file_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(InputFileError, match=re.escape(message)) as info:
        parse_worklist(wl(text), zone=ZONE)
    assert info.value.line == line
    assert str(info.value).startswith(f"RUN1.worklist.csv:{line}: ")


def test_accession_in_a_standard_well_is_an_error_naming_the_well() -> None:
    worklist = parse_worklist(wl("well,accession\nA4,X1\nB1,X2\n"), zone=ZONE)
    with pytest.raises(InputFileError, match="well B1, which the layout 'aha-96' makes a standard"):
        map_plate(read_from_values({}), default_layout(), worklist)


def test_config_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "saa-lab.toml"
    path.write_text("[watch]\npoll_intervall_seconds = 3\n")
    with pytest.raises(ConfigError, match=re.escape("did you mean 'watch.poll_interval_seconds'")):
        load_config(path)


def test_config_bad_value_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "saa-lab.toml"
    path.write_text('[lab]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match=r"saa-lab.toml: lab.timezone: .*unknown time zone"):
        load_config(path)


def test_config_is_found_in_a_parent_folder_like_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAA_LAB_CONFIG", raising=False)
    (tmp_path / "saa-lab.toml").write_text("")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) == tmp_path / "saa-lab.toml"
    monkeypatch.setenv("SAA_LAB_CONFIG", "/elsewhere/x.toml")
    assert find_config(deep) == Path("/elsewhere/x.toml")


def test_relative_paths_and_sqlite_url_are_relative_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "saa-lab.toml"
    path.write_text('[paths]\ninbox = "drop"\n')
    config = load_config(path)
    assert config.inbox == tmp_path / "drop"
    assert config.database_url == f"sqlite:///{(tmp_path / 'saa-lab.db').resolve()}"
