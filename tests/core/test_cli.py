from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import RELEASE_ON_PROCESSING

from saa_lab.cli import cli

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files"
GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"


@pytest.fixture
def lab(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Path:
    result = runner.invoke(cli, ["init", str(tmp_path / "lab")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "lab" / "saa-lab.toml").open("a", encoding="utf-8") as config:
        config.write(RELEASE_ON_PROCESSING)  # these tests are about processing, not review
    monkeypatch.chdir(tmp_path / "lab")
    return tmp_path / "lab"


def test_init_writes_config_folders_and_editable_definitions(lab: Path) -> None:
    assert (lab / "saa-lab.toml").is_file()
    for folder in ("inbox", "archive", "quarantine", "outbox"):
        assert (lab / folder).is_dir()
    assert (lab / "config" / "assays" / "aha-indooxine.toml").is_file()
    assert (lab / "config" / "layouts" / "aha-96.toml").is_file()


def test_init_never_overwrites(lab: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["init", str(lab)])
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_process_json_has_the_documented_shape(lab: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", str(GEN5), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (plate,) = data["plates"]
    assert plate["source"] == str(GEN5)
    assert plate["plate_id"] == "RUN-G5-001"
    assert plate["format"] == "biotek_gen5"
    assert plate["status"] == "accepted"
    assert plate["reasons"] == []
    first = plate["results"][0]
    assert set(first) >= {"accession", "wells", "activity_u_per_l", "comparator", "flag", "comment"}
    assert first["accession"] == "SAA-0001" and first["wells"] == ["G3", "H3"]
    by_acc = {r["accession"]: r for r in plate["results"]}
    assert by_acc["SAA-0003"]["comparator"] == "<" and by_acc["SAA-0003"]["activity_u_per_l"] == 5
    assert by_acc["SAA-0009"]["activity_u_per_l"] is None
    assert by_acc["SAA-0009"]["flag"] == "invalid"
    messages = sorted((lab / "outbox").glob("*.hl7"))
    assert len(messages) == 12  # SAA-0006 and SAA-0011 wait for their re-assay
    for accession in ("SAA-0006", "SAA-0011"):
        above = by_acc[accession]
        assert (above["flag"], above["comparator"], above["result_status"]) == (
            "above-uloq-rerun", ">", "RA",
        )  # fmt: skip
        assert above["message_control_ids"] == []
        assert "Not reported: the sample will be re-assayed at 1:" in above["comment"]
    assert plate["curve"]["model"] == "two-segment-linear"
    assert len(plate["curve"]["standards"]) == 16
    assert GEN5.exists()  # process never moves or deletes the export


def test_process_twice_shows_stored_results_without_new_messages(
    lab: Path, runner: CliRunner
) -> None:
    runner.invoke(cli, ["process", str(GEN5)])
    again = runner.invoke(cli, ["process", str(GEN5), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.output)["plates"][0]["duplicate"] is True
    assert len(list((lab / "outbox").glob("*.hl7"))) == 12


def test_process_without_worklist_names_what_it_looked_for(
    lab: Path, runner: CliRunner, tmp_path: Path
) -> None:
    export = tmp_path / "LONE.txt"
    shutil.copyfile(GEN5, export)
    result = runner.invoke(cli, ["process", str(export)])
    assert result.exit_code == 3
    assert (
        "LONE.txt: no worklist found beside the export (looked for "
        "RUN-G5-001.worklist.csv or LONE.worklist.csv)"
    ) in result.output


def test_process_unknown_format_is_one_clear_line(
    lab: Path, runner: CliRunner, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_text("hello, world\n")
    result = runner.invoke(cli, ["process", str(junk)])
    assert result.exit_code == 3
    assert result.output.strip().startswith("Error: ")
    assert "junk.csv: unrecognised export format" in result.output
    assert "Traceback" not in result.output


def test_process_with_explicit_worklist_layout_and_assay(
    lab: Path, runner: CliRunner, tmp_path: Path
) -> None:
    export = tmp_path / "other-name.csv"
    shutil.copyfile(SAMPLES / "generic_grid" / "RUN-GC-002.csv", export)
    worklist = str(SAMPLES / "generic_grid" / "RUN-GC-002.worklist.csv")
    result = runner.invoke(cli, [
        "process", str(export), "--worklist", worklist,
        "--layout", "aha-96", "--assay", "aha-indooxine", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["plates"][0]["format"] == "generic_grid"
    bad = runner.invoke(
        cli, ["process", str(export), "--worklist", worklist, "--assay", "aha-indoxine"]
    )
    assert bad.exit_code == 2
    assert "no assay named 'aha-indoxine' (did you mean 'aha-indooxine'?)" in bad.output


def test_config_option_and_env_var_point_elsewhere(
    lab: Path, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["--config", str(lab / "saa-lab.toml"), "status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["config"] == str(lab / "saa-lab.toml")
    monkeypatch.setenv("SAA_LAB_CONFIG", str(lab / "saa-lab.toml"))
    result = runner.invoke(cli, ["status", "--json"])
    assert json.loads(result.output)["inbox"] == str(lab / "inbox")


def test_bad_config_is_one_line_naming_the_key(lab: Path, runner: CliRunner) -> None:
    (lab / "saa-lab.toml").write_text("[hl7]\nversoin = '2.5.1'\n")
    result = runner.invoke(cli, ["status"])
    assert result.exit_code == 2
    assert "unknown setting 'hl7.versoin' (did you mean 'hl7.version'?)" in result.output


def test_status_reports_files_runs_and_outbox(lab: Path, runner: CliRunner) -> None:
    runner.invoke(cli, ["process", str(GEN5)])
    result = runner.invoke(cli, ["status"])
    assert result.exit_code == 0
    assert "files:    1 done" in result.output
    assert "runs:     1 accepted" in result.output
    assert "outbox:   12 sent" in result.output


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "watch", "process", "status", "demo"):
        assert command in result.output


def test_demo_runs_the_daemon_on_the_bundled_samples(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "--no-keep", "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert "processed 2 export(s)" in result.output
    assert "RUN-G5-001.txt plate 1: run 1 accepted" in result.output
    assert "SAA-0001" in result.output and "therapeutic" in result.output
    assert "<5" in result.output  # below-LLOQ results show their comparator
    # 22 results; SAA-0006, SAA-0011 and GC-0107 wait for a re-assay at a higher dilution
    assert "19 HL7 ORU^R01 message(s) in" in result.output


def test_help_does_not_import_the_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from saa_lab.cli import cli; "
        "heavy = [m for m in ('pydantic', 'numpy', 'pandas', 'sqlalchemy', 'watchdog', 'scipy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_name_constant_matches_config() -> None:
    from saa_lab import cli as cli_module
    from saa_lab.config import CONFIG_NAME

    assert cli_module.CONFIG_NAME == CONFIG_NAME


def test_format_choices_match_the_parsers() -> None:
    from saa_lab import cli as cli_module
    from saa_lab.parsers import Instrument

    assert list(cli_module.FORMATS) == [str(i) for i in Instrument]


def test_inspect_shows_grid_metadata_and_reasons(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["inspect", str(GEN5)])
    assert result.exit_code == 0, result.output
    assert "RUN-G5-001.txt: BioTek Gen5 text export (biotek_gen5)" in result.output
    assert "710 nm, endpoint, 8×12" in result.output
    assert "no value: C6 'OVRFLW' (overflow), F5 '?????' (not calculable)" in result.output
    assert "Reader Type: Synergy H1" in result.output


def test_inspect_json_has_the_documented_shape(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["inspect", str(GEN5), "--json"])
    assert result.exit_code == 0, result.output
    (plate,) = json.loads(result.output)["plates"]
    assert plate["format"] == "biotek_gen5"
    assert plate["plate_id"] == "RUN-G5-001"
    assert plate["wavelengths_nm"] == [710]
    assert plate["kinetic"] is False
    assert len(plate["wells"]) == 96
    assert plate["wells"]["C6"] is None and plate["missing"] == {"C6": "OVRFLW", "F5": "?????"}
    raw = GEN5.read_bytes().decode("cp1252")
    first_row = next(line for line in raw.splitlines() if line.startswith("A\t")).split("\t")
    assert plate["wells"]["A1"] == float(first_row[1])
    assert plate["metadata"]["Reader Type"] == "Synergy H1"


def test_inspect_with_a_forced_format_that_does_not_fit(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["inspect", str(GEN5), "--format", "generic_grid"])
    assert result.exit_code == 3
    assert "RUN-G5-001.txt" in result.output


def test_inspect_kinetic_json_holds_rates_and_series(runner: CliRunner, tmp_path: Path) -> None:
    from saa_lab.domain import KineticSeries, PlateRead, WellValue
    from saa_lab.inspect import read_to_json

    series = KineticSeries(
        times_s=(0.0, 60.0, 120.0, 180.0),
        readings={
            "A1": tuple(WellValue(v, str(v)) for v in (0.10, 0.12, 0.14, 0.16)),
            "A2": (WellValue(0.5, "0.5"), WellValue(None, "OVER", "overflow"),
                   WellValue(None, "OVER", "overflow"), WellValue(0.5, "0.5")),
        },
    )  # fmt: skip
    read = PlateRead("tecan", "k.xlsx", "0" * 64, {"A1": series.readings["A1"][-1],
                     "A2": series.readings["A2"][-1]}, kind="kinetic", kinetic=series)  # fmt: skip
    data = read_to_json(read)
    assert data["kinetic"] is True
    assert data["wells"]["A1"] == pytest.approx(0.02)  # ΔOD/min by least squares
    assert data["wells"]["A2"] is None and data["reasons"]["A2"] == "too few readings"
    assert data["series"]["readings"]["A2"] == [0.5, None, None, 0.5]
    assert data["series"]["times_s"] == [0.0, 60.0, 120.0, 180.0]


def test_patient_shows_the_timeline(lab: Path, runner: CliRunner) -> None:
    runner.invoke(cli, ["process", str(GEN5)])
    result = runner.invoke(cli, ["patient", "PAT-1002"])
    assert result.exit_code == 0, result.output
    assert "patient PAT-1002: 1 result(s)" in result.output
    line = next(x for x in result.output.splitlines() if "SAA-0002" in x)
    assert "peg-asparaginase" in line and "7.0 d" in line
    assert "possible-silent-inactivation" in line  # PEG day 7 below 100 U/L, AIEOP-BFM 2009
    data = json.loads(runner.invoke(cli, ["patient", "PAT-1002", "--json"]).output)
    (entry,) = data["results"]
    assert entry["accession"] == "SAA-0002" and entry["dose_time"].startswith("2026-11-13T10:00")
    assert (
        runner.invoke(cli, ["patient", "NOBODY"]).output.strip() == "no results for patient NOBODY"
    )


def test_a_multi_plate_export_needs_a_worklist_per_plate(
    lab: Path, runner: CliRunner, tmp_path: Path
) -> None:
    from saa_lab.synth import PlannedSample, gen5_text, plate_values, worklist_csv

    texts = []
    for number, barcode in ((1, "PLATE-A"), (2, "PLATE-B")):
        values, rows = plate_values([PlannedSample(f"{barcode}-S1", 200 * number)], seed=number)
        texts.append(gen5_text(values, plate_number=number, barcode=barcode))
        (tmp_path / f"{barcode}.worklist.csv").write_text(worklist_csv(rows))
    export = tmp_path / "TWO.txt"
    export.write_text("".join(texts))
    refused = runner.invoke(cli, ["process", str(export), "--worklist",
                                  str(tmp_path / "PLATE-A.worklist.csv")])  # fmt: skip
    assert refused.exit_code == 3 and "holds 2 plates" in refused.output
    result = runner.invoke(cli, ["process", str(export), "--json"])
    assert result.exit_code == 0, result.output
    plates = json.loads(result.output)["plates"]
    assert [[r["accession"] for r in p["results"]] for p in plates] == [
        ["PLATE-A-S1"],
        ["PLATE-B-S1"],
    ]
    a, b = (p["results"][0]["activity_u_per_l"] for p in plates)
    assert a == pytest.approx(200, rel=0.06) and b == pytest.approx(400, rel=0.06)
