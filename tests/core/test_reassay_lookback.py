"""Store-backed: re-assays that supersede, rejected runs that release nothing, the CLIA
look-back and Westgard history across processed runs (SQLite and PostgreSQL).

Plates are on the designed AHA curve without noise (OD = 0.045 + 0.0011 × U/L in
the well), so every activity below is the arithmetic of that line; a control
read as 425 U/L with the lab's HIGH mean 400 and SD 10 is +2.5 SD.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_config
from helpers import synth_read
from sqlalchemy import select

from saa_lab.cli import cli
from saa_lab.config import AppConfig, load_config, packaged_config_dir
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store, StoredRun
from saa_lab.store.models import CalibrationRow
from saa_lab.synth import NOMINAL_BLANK, NOMINAL_SLOPE, PlannedSample, grid_csv, plate_values
from saa_lab.synth import worklist_csv as synth_worklist_csv

ASSAY = "aha-indooxine"
WESTGARD = """
[westgard.controls.LOW]
mean_u_per_l = 40
sd_u_per_l = 2
[westgard.controls.HIGH]
mean_u_per_l = 400
sd_u_per_l = 10
"""


def od(activity_in_well: float) -> str:
    return f"{NOMINAL_BLANK + NOMINAL_SLOPE * activity_in_well:.6f}"


HIGH_AT = {z: {"E3": od(400 + 10 * z), "F3": od(400 + 10 * z)} for z in (0.0, 2.5, -2.5)}
HIGH_FAILS = {"E3": od(200), "F3": od(200)}  # outside 340–460 U/L


def lab(tmp_path: Path, database_url: str, westgard: str = WESTGARD,
        edit: Callable[[str], str] = lambda text: text) -> AppConfig:  # fmt: skip
    """A workspace whose aha-indooxine file sets the control lots' mean and SD."""
    path = write_config(tmp_path / "ws", database_url=database_url)
    (tmp_path / "ws" / "outbox").mkdir()
    assays = tmp_path / "ws" / "config" / "assays"
    assays.mkdir(parents=True)
    text = (packaged_config_dir() / "assays" / f"{ASSAY}.toml").read_text(encoding="utf-8")
    (assays / f"{ASSAY}.toml").write_text(edit(text) + westgard, encoding="utf-8")
    return load_config(path)


def process(store: Store, config: AppConfig, number: int, samples: Sequence[PlannedSample],
            overrides: Mapping[str, str] | None = None) -> StoredRun:  # fmt: skip
    read, worklist, _ = synth_read(
        samples, seed=number, overrides=overrides, noise=0.0, name=f"RUN-{number}.csv"
    )
    source = SourceFile(f"run {number}".encode(), f"RUN-{number}.csv")
    outcome = process_export(store, config, source, reads=[read], worklist_for=lambda _r: worklist)
    (run,) = outcome.runs
    return run


@pytest.fixture
def store_and_config(tmp_path: Path, database_url: str) -> Iterator[tuple[Store, AppConfig]]:
    config = lab(tmp_path, database_url)
    store = Store(config.database_url)
    yield store, config
    store.close()


def test_above_uloq_waits_for_its_re_assay_which_supersedes_it(
    store_and_config: tuple[Store, AppConfig],
) -> None:
    store, config = store_and_config
    first = process(store, config, 1, [PlannedSample("OK", 200), PlannedSample("HI", 1800)])
    assert first.status == "accepted" and first.warnings == ()
    ok, hi = first.results
    # 1800 U/L: 1:2 gives 900 (> 0.8 × 1000), 1:5 gives 360: the suggestion is 1:5.
    assert (hi.accession, hi.result_status, hi.comparator) == ("HI", "RA", ">")
    assert hi.activity_u_per_l == 1000 and hi.reassay_dilution == 5
    assert hi.control_ids == ()  # not reported: no outgoing message
    assert ok.result_status == "F" and len(ok.control_ids) == 1
    assert ok.activity_u_per_l == pytest.approx(200, rel=1e-9)
    assert [m.control_id for m in store.pending_messages("file")] == list(ok.control_ids)
    (request,) = store.open_reassays()
    assert (request["accession"], request["assay"], request["result_id"]) == ("HI", ASSAY, hi.id)
    assert request["suggested_dilution"] == 5

    second = process(store, config, 2, [PlannedSample("HI", 1800, dilution=5)])
    assert second.status == "accepted"
    (again,) = second.results
    assert again.supersedes_result_id == hi.id
    assert (again.result_status, again.dilution, again.comparator) == ("F", 5, "=")
    assert again.activity_u_per_l == pytest.approx(360 * 5, rel=1e-9)
    assert len(again.control_ids) == 1
    assert store.open_reassays() == []  # the request is done


def test_a_re_assay_still_above_opens_the_next_request(
    store_and_config: tuple[Store, AppConfig],
) -> None:
    store, config = store_and_config
    first = process(store, config, 1, [PlannedSample("HI", 30000)])
    (hi,) = first.results
    assert hi.reassay_dilution == 20  # nothing smaller brings 30000 U/L under 800 in the well
    second = process(store, config, 2, [PlannedSample("HI", 30000, dilution=20)])
    (top,) = second.results
    # At the validated maximum: "> 20000" (ULOQ × 20), reported, and it supersedes.
    assert (top.comparator, top.activity_u_per_l, top.result_status) == (">", 20000, "F")
    assert top.supersedes_result_id == hi.id and top.flag == "above-reportable-range"
    assert store.open_reassays() == []


def test_a_rejected_run_releases_nothing(store_and_config: tuple[Store, AppConfig]) -> None:
    store, config = store_and_config
    first = process(store, config, 1, [PlannedSample("HI", 1800)])
    (hi,) = first.results
    pending = len(store.pending_messages("file"))
    rejected = process(
        store, config, 2,
        [PlannedSample("HI", 1800, dilution=5), PlannedSample("B", 300),
         PlannedSample("C", 2500)],
        overrides=HIGH_FAILS,
    )  # fmt: skip
    assert rejected.status == "rejected"
    assert any(r.startswith("control HIGH outside 340–460 U/L") for r in rejected.reasons)
    assert {r.result_status for r in rejected.results} == {"W"}  # withheld, every one
    assert all(r.control_ids == () for r in rejected.results)
    assert all(r.supersedes_result_id is None for r in rejected.results)
    assert len(store.pending_messages("file")) == pending
    # The open request stays open and the sample above the ULOQ gets none.
    assert [(r["accession"], r["result_id"]) for r in store.open_reassays()] == [("HI", hi.id)]

    # A run rejected for its standards (not its controls) has no look-back either way.
    bad_standards = {f"{r}{c}": od(x) for r, x in (("B", 30), ("D", 120), ("F", 600))
                     for c in (1, 2)}  # fmt: skip
    curve_failed = process(store, config, 3, [PlannedSample("D", 300)], overrides=bad_standards)
    assert curve_failed.status == "rejected" and curve_failed.lookback == ()
    assert curve_failed.results[0].result_status == "W"

    third = process(store, config, 4, [PlannedSample("HI", 1800, dilution=5)])
    (done,) = third.results
    assert done.supersedes_result_id == hi.id and done.result_status == "F"
    assert store.open_reassays() == []


def export_files(folder: Path, name: str, samples: Sequence[PlannedSample],
                 overrides: Mapping[str, str]) -> tuple[Path, Path]:  # fmt: skip
    values, rows = plate_values(samples, seed=9, noise=0.0)
    values.update(overrides)
    export = folder / f"{name}.csv"
    export.write_text(grid_csv(values, wavelength=710), encoding="utf-8")
    worklist = folder / f"{name}.worklist.csv"
    worklist.write_text(synth_worklist_csv(rows), encoding="utf-8")
    return export, worklist


def test_a_control_failure_records_the_look_back(
    tmp_path: Path, database_url: str, runner: CliRunner
) -> None:
    config = lab(tmp_path, database_url)
    store = Store(config.database_url)
    try:
        clean = process(store, config, 1, [PlannedSample("A1", 200), PlannedSample("A2", 50)])
        assert clean.status == "accepted" and clean.warnings == ()
        # Accepted with a Westgard 1-2s warning (HIGH at +2.5 SD): not a clean run.
        warned = process(
            store, config, 2,
            [PlannedSample("B1", 300), PlannedSample("B2", 1), PlannedSample("B3", 1800)],
            overrides=HIGH_AT[2.5],
        )  # fmt: skip
        assert warned.status == "accepted"
        assert warned.warnings == ("Westgard 1-2s (warning): HIGH at +2.50 SD",)
        b1, b2, b3 = warned.results
        assert (b1.result_status, b2.result_status, b3.result_status) == ("F", "F", "RA")
        assert b2.comparator == "<" and b2.activity_u_per_l == 5
    finally:
        store.close()

    # The failing run goes through `saa-lab process --json`, as an operator would.
    export, worklist = export_files(tmp_path, "RUN-3", [PlannedSample("C1", 250)], HIGH_FAILS)
    config_file = str(tmp_path / "ws" / "saa-lab.toml")
    result = runner.invoke(cli, ["--config", config_file, "process", str(export),
                                 "--worklist", str(worklist), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (plate,) = json.loads(result.output)["plates"]
    assert plate["status"] == "rejected"
    assert "2 of 4 control wells within limits; need 67%" in plate["reasons"]
    # Released since the last clean run (run 1): B1 and B2 of run 2; not B3 (never sent).
    expected = [
        {"result_id": b1.id, "accession": "B1", "run_id": warned.id, "result_status": "F",
         "since_run": clean.id},
        {"result_id": b2.id, "accession": "B2", "run_id": warned.id, "result_status": "F",
         "since_run": clean.id},
    ]  # fmt: skip
    assert plate["lookback"] == expected
    assert [r["result_status"] for r in plate["results"]] == ["W"]
    assert plate["results"][0]["message_control_ids"] == []

    status = runner.invoke(cli, ["--config", config_file, "status"])
    assert status.exit_code == 0, status.output
    assert (
        f"look-back: run {plate['run_id']} ({ASSAY}) failed QC; results released since the "
        "last clean run to evaluate: B1, B2"
    ) in status.output
    assert "re-assay: B3 (aha-indooxine) at 1:5" in status.output
    as_json = json.loads(runner.invoke(cli, ["--config", config_file, "status", "--json"]).output)
    (lookback,) = as_json["lookback"]
    assert (lookback["run_id"], lookback["assay"], lookback["results"]) == (
        plate["run_id"], ASSAY, expected,
    )  # fmt: skip


@pytest.mark.parametrize(("edit", "note"), [
    (lambda text: text, "control LOW: mean/SD not yet established (0 of 20 runs)"),
    (lambda text: text.replace("[westgard]\nenabled = true", "[westgard]\nenabled = false"),
     "Westgard rules are disabled for this assay"),
])  # fmt: skip
def test_westgard_notes_do_not_make_a_run_unclean(
    tmp_path: Path, database_url: str, edit: Callable[[str], str], note: str
) -> None:
    # Without a set mean/SD (or with the rules off) every run carries a note; a note says
    # nothing against the run, so the look-back starts at the last accepted run.
    config = lab(tmp_path, database_url, westgard="", edit=edit)
    store = Store(config.database_url)
    try:
        first = process(store, config, 1, [PlannedSample("A1", 200)])
        assert first.status == "accepted" and first.warnings[0].startswith(note)
        second = process(store, config, 2, [PlannedSample("B1", 200)])
        assert second.status == "accepted"
        failed = process(store, config, 3, [PlannedSample("C1", 200)], overrides=HIGH_FAILS)
        assert failed.status == "rejected"
        assert failed.lookback == ()  # nothing released since run 2
        summary = store.status_summary()
        assert [(e["run_id"], e["results"]) for e in summary["lookback"]] == [(failed.id, [])]
    finally:
        store.close()


def test_process_json_carries_the_curve_summary(
    tmp_path: Path, database_url: str, runner: CliRunner
) -> None:
    lab(tmp_path, database_url)
    export, worklist = export_files(tmp_path, "RUN-C", [PlannedSample("S1", 250)], {})
    config_file = str(tmp_path / "ws" / "saa-lab.toml")
    result = runner.invoke(cli, ["--config", config_file, "process", str(export),
                                 "--worklist", str(worklist), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (plate,) = json.loads(result.output)["plates"]
    curve = plate["curve"]
    assert (curve["model"], curve["weighting"]) == ("two-segment-linear", "none")
    # The designed line: intercept 0, slope 0.0011 OD per U/L on both segments, R² = 1.
    params = curve["parameters"]
    for segment in (1, 2):
        assert params[f"segment{segment}_intercept"] == pytest.approx(0, abs=1e-9)
        assert params[f"segment{segment}_slope"] == pytest.approx(NOMINAL_SLOPE, rel=1e-6)
    assert curve["r_squared"] == pytest.approx(1, abs=1e-9)
    assert (curve["lloq_u_per_l"], curve["uloq_u_per_l"]) == (5, 1000)
    assert len(curve["standards"]) == 16 and curve["exclusions"] == []
    for well in curve["standards"]:
        assert well["recovery_percent"] == pytest.approx(100, abs=0.01)
        assert well["passed"] and not well["excluded"]
    assert [c["name"] for c in curve["controls"]] == ["LOW", "HIGH"]
    assert curve["westgard"]["stats"]["HIGH"] == {"mean": 400, "sd": 10, "source": "config"}
    assert plate["results"][0]["activity_u_per_l"] == pytest.approx(250, rel=1e-6)
    # The residuals are stored with the run too.
    store = Store(load_config(Path(config_file)).database_url)
    try:
        with store.session() as s:
            detail = s.scalar(select(CalibrationRow.detail).where(
                CalibrationRow.run_id == plate["run_id"]))  # fmt: skip
        assert detail is not None and len(detail["residuals"]) == 16
        assert max(abs(r) for r in detail["residuals"]) < 1e-6
    finally:
        store.close()


def test_westgard_history_from_the_store_rejects_on_2_2s(
    store_and_config: tuple[Store, AppConfig],
) -> None:
    store, config = store_and_config
    plan = [PlannedSample("S", 200)]
    runs = [process(store, config, 1, plan, HIGH_AT[0.0]),
            process(store, config, 2, plan, HIGH_AT[2.5])]  # fmt: skip
    assert [r.status for r in runs] == ["accepted", "accepted"]
    assert runs[1].warnings == ("Westgard 1-2s (warning): HIGH at +2.50 SD",)
    assert store.control_history(ASSAY, {"HIGH": "default"})["HIGH"] == pytest.approx([400, 425])

    third = process(store, config, 3, plan, HIGH_AT[2.5])
    assert third.status == "rejected"
    assert third.reasons == ("Westgard 2-2s (rejection): HIGH at +2.50 and +2.50 SD in two runs",)
    assert third.results[0].result_status == "W"
    assert [r["accession"] for r in third.lookback] == ["S"]  # released by run 2
    assert third.curve["westgard"]["z_scores"]["HIGH"] == pytest.approx(2.5)

    # The rejected run is not history: the next run sees 400, 425 and is in control.
    fourth = process(store, config, 4, plan, HIGH_AT[0.0])
    assert fourth.status == "accepted" and fourth.warnings == ()
    assert store.control_history(ASSAY, {"HIGH": "default"})["HIGH"] == pytest.approx(
        [400, 425, 400]
    )
    # -2.5 then +2.5 is not 2-2s (opposite sides): a warning only.
    fifth = process(store, config, 5, plan, HIGH_AT[-2.5])
    sixth = process(store, config, 6, plan, HIGH_AT[2.5])
    assert (fifth.status, sixth.status) == ("accepted", "accepted")


def test_westgard_mean_and_sd_established_from_stored_runs(
    tmp_path: Path, database_url: str
) -> None:
    config = lab(tmp_path, database_url, westgard="")
    text = (tmp_path / "ws" / "config" / "assays" / f"{ASSAY}.toml").read_text()
    (tmp_path / "ws" / "config" / "assays" / f"{ASSAY}.toml").write_text(
        text.replace("establish_from_runs = 20", "establish_from_runs = 3")
    )
    store = Store(config.database_url)
    try:
        plan = [PlannedSample("S", 200)]
        # HIGH at 390, 400, 410 U/L: mean 400, SD 10 (by hand: √((100 + 0 + 100) / 2)).
        for number, value in enumerate((390, 400, 410), start=1):
            run = process(store, config, number, plan, {"E3": od(value), "F3": od(value)})
            assert run.status == "accepted"
            assert f"({number - 1} of 3 runs)" in run.warnings[1]
        fourth = process(store, config, 4, plan, HIGH_AT[2.5])
        stats = fourth.curve["westgard"]["stats"]["HIGH"]
        assert stats["mean"] == pytest.approx(400) and stats["sd"] == pytest.approx(10)
        assert stats["source"] == "established from 3 runs"
        assert fourth.status == "accepted"
        assert "Westgard 1-2s (warning): HIGH at +2.50 SD" in fourth.warnings
        fifth = process(store, config, 5, plan, HIGH_AT[2.5])
        assert fifth.status == "rejected"
        assert "Westgard 2-2s (rejection): HIGH at +2.50 and +2.50 SD in two runs" in (
            fifth.reasons
        )
    finally:
        store.close()
