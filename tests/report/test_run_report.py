"""Run reports (HTML and PDF) rendered for processed runs, checked for their content.

A module-wide history of synthetic runs (see report_support) gives a run with an
excluded standard and control history with Westgard violations: run 2 has HIGH at
+2.5 SD (1-2s warning), run 3 again (2-2s: rejected), run 4 an excluded standard.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REVIEW_DEFAULTS, process_sample_lab
from report_support import (
    USERS,
    high_at,
    html_rows,
    lab,
    od,
    pdf_pages_text,
    process,
)

from saa_lab.cli import cli
from saa_lab.config import AppConfig
from saa_lab.errors import ReportError
from saa_lab.report import (
    REPORT_FILE_MODE,
    load_run_report,
    render,
    report_name,
    write_run_reports,
)
from saa_lab.store import Store, StoredRun
from saa_lab.store.review import audit_entries
from saa_lab.synth import PlannedSample

HOSTILE = "<script>alert(1)</script>"
HOSTILE_NAME = "RUN-4<img src=x onerror=alert(1)>.csv"  # a file name has no "/"


@dataclass(frozen=True)
class History:
    config: AppConfig
    store: Store
    runs: dict[int, StoredRun]  # by number (1-4)
    values: dict[int, dict[str, str]]  # by number: well -> exported text


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    config = lab(tmp_path_factory.mktemp("report") / "ws")
    store = Store(config.database_url, zone=config.lab.zone)
    plan = [PlannedSample("S-100", 200), PlannedSample("S-200", 50), PlannedSample(HOSTILE, 300)]
    runs, values = {}, {}
    for number, overrides in (
        (1, high_at(0.0)),
        (2, high_at(2.5)),
        (3, high_at(2.5)),
        # C1 (25 U/L) read as 35 U/L: outside ±15 %, excluded, the curve refitted.
        (4, {**high_at(0.0), "C1": od(35)}),
    ):
        name = f"RUN-{number}.csv" if number != 4 else HOSTILE_NAME
        runs[number], values[number] = process(store, config, number, plan, overrides, name=name)
    yield History(config, store, runs, values)
    store.close()


def html_of(h: History, number: int) -> str:
    return render(load_run_report(h.store, h.runs[number].id, config=h.config), "html").decode()


def cells(row: str) -> list[str]:
    """The text of a table row's cells (tags stripped, entities decoded)."""
    found = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    return [html_lib.unescape(re.sub(r"<[^>]+>", " ", c)).strip() for c in found]


def test_the_runs_are_what_the_report_tests_need(history: History) -> None:
    runs = history.runs
    assert [runs[n].status for n in (1, 2, 3, 4)] == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
    ]
    assert "Westgard 1-2s (warning): HIGH at +2.50 SD" in runs[2].warnings
    assert any("2-2s" in r for r in runs[3].reasons)
    assert [w["well"] for w in runs[4].curve["standards"] if w["excluded"]] == ["C1"]


def test_the_plate_map_shows_every_well_with_its_role_and_reading(history: History) -> None:
    page = html_of(history, 4)
    values = history.values[4]
    roles = {
        "A1": "standard 5",
        "C1": "standard 25",
        "A3": "blank",
        "C3": "control LOW",
        "E3": "control HIGH",
        "G3": "S-100",
        "A4": "S-200",
        "C4": HOSTILE,
    }
    for well, role in roles.items():
        found = re.search(rf'<td data-well="{well}" data-role="(\w+)"[^>]*>(.*?)</td>', page, re.S)
        assert found, well
        text = cells(f"<td>{found.group(2)}</td>")[0]
        assert role in text, (well, text)
        assert f"{float(values[well]):.4f}" in text, (well, text)
    assert len(re.findall(r'<td data-well="[A-H]\d+"', page)) == 96


def test_standards_show_back_calculation_and_the_excluded_well(history: History) -> None:
    run = history.runs[4]
    rows = {cells(r)[0]: cells(r) for r in html_rows(html_of(history, 4), "standards")[1:]}
    assert len(rows) == 16
    stored = {w["well"]: w for w in run.curve["standards"]}
    # C1: excluded, with the recovery it was judged on.
    assert rows["C1"][-1].startswith("EXCLUDED")
    assert rows["C1"][4] == f"{stored['C1']['recovery_percent']:.1f} %"
    # Refitted without C1, the noise-free standards lie on the line: 100 % each.
    for well, row in rows.items():
        if well != "C1":
            assert (row[4], row[-1]) == ("100.0 %", "ok"), well
    assert sum(1 for row in rows.values() if row[-1].startswith("EXCLUDED")) == 1


def test_the_curve_has_limits_exclusions_and_samples(history: History) -> None:
    page = html_of(history, 4)
    chart = re.search(r'<div class="chart" id="chart-curve">(.*?)</div>', page, re.S)
    assert chart is not None
    svg = chart.group(1)
    assert svg.startswith("<svg") and "LLOQ 5 U/L" in svg and "ULOQ 1000 U/L" in svg
    assert "standard EXCLUDED" in svg and "C1 " in svg
    assert "sample" in svg
    assert re.search(r"<td>LLOQ</td><td>5 U/L", page) and re.search(
        r"<td>ULOQ</td><td>1000 U/L", page
    )
    assert "standard C1 (25 U/L) excluded" in page
    report = load_run_report(history.store, history.runs[4].id, config=history.config)
    # Samples on the curve at their activity in the well (noise-free: the planned one).
    points = {p.accession: p for p in report.samples_on_curve}
    assert points["S-100"].activity_in_well == pytest.approx(200, rel=1e-3)
    assert points["S-100"].signal == pytest.approx(0.0011 * 200, rel=1e-3)


def test_the_controls_table_and_levey_jennings_mark_westgard_violations(history: History) -> None:
    page = html_of(history, 3)
    rows = {cells(r)[0]: cells(r) for r in html_rows(page, "controls")[1:]}
    assert set(rows) == {"LOW", "HIGH"}
    assert rows["HIGH"][4] == "425" and rows["HIGH"][6] == "+2.50"
    assert rows["LOW"][4] == "40" and rows["LOW"][6] == "+0.00"
    assert "Westgard 2-2s (rejection): HIGH at +2.50 and +2.50 SD in two runs" in page
    high = re.search(
        r'id="lj-HIGH">(.*?)</div><p>Westgard violations marked: '
        r'<span class="lj-violations">(.*?)</span>',
        page,
        re.S,
    )
    assert high is not None
    r2, r3 = history.runs[2].id, history.runs[3].id
    assert high.group(2) == f"run {r2}: 1-2s; run {r3}: 1-2s, 2-2s"
    assert "2-2s" in high.group(1) and "mean 400, SD 10 (config)" in high.group(1)
    low = re.search(r'id="lj-LOW">.*?<span class="lj-violations">(.*?)</span>', page, re.S)
    assert low is not None and low.group(1) == "none"
    # The chart shows this run and the ones before it, not later ones.
    assert "last 3 run(s)" in page


def test_levey_jennings_shows_the_last_30_runs(tmp_path: Path) -> None:
    config = lab(tmp_path / "ws")
    store = Store(config.database_url, zone=config.lab.zone)
    try:
        runs = [
            process(store, config, n, [PlannedSample("S", 200)], high_at(0.0))[0]
            for n in range(1, 33)
        ]
        report = load_run_report(store, runs[-1].id, config=config)
        (high,) = (c for c in report.controls if c.name == "HIGH")
        assert [p.run_id for p in high.history] == [r.id for r in runs[-30:]]
        earlier = load_run_report(store, runs[4].id, config=config)
        assert [p.run_id for p in earlier.controls[0].history] == [r.id for r in runs[:5]]
    finally:
        store.close()


def test_the_results_table_has_flags_and_comments(history: History) -> None:
    run = history.runs[1]
    rows = [cells(r) for r in html_rows(html_of(history, 1), "results")[1:]]
    assert [row[0] for row in rows] == [f"result:{r.id}" for r in run.results]
    for row, result in zip(rows, run.results, strict=True):
        assert row[1] == result.accession
        assert row[7] == result.flag and row[8] == result.comment
        assert result.comment  # a comment to see
    assert {r.flag for r in run.results} >= {"therapeutic"}


def test_hostile_accession_and_file_name_are_escaped(history: History) -> None:
    page = html_of(history, 4)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>Run 4: RUN-4&lt;img src=x onerror=alert(1)&gt;.csv</title>" in page
    report = load_run_report(history.store, history.runs[4].id, config=history.config)
    # The export's name in the report file's name is made safe as a file name.
    assert report_name(Path(report.source_name).stem, 4, "html") == (
        "RUN-4_img src=x onerror=alert(1)_.run4.report.html"
    )


def test_the_audit_entries_of_the_run_are_listed(history: History) -> None:
    run = history.runs[1]
    expected = audit_entries(history.store, "run", [run.id])
    expected += audit_entries(history.store, "result", [r.id for r in run.results])
    rows = [cells(r) for r in html_rows(html_of(history, 1), "audit")[1:]]
    seqs = [int(row[0]) for row in rows]
    assert set(seqs) >= {e.seq for e in expected} and seqs == sorted(seqs)
    by_seq = {int(row[0]): row for row in rows}
    for e in expected:
        assert by_seq[e.seq][3] == e.action and by_seq[e.seq][4] == f"{e.entity} {e.entity_id}"
    assert {row[3] for row in rows} >= {"run-created", "result-created", "export-processed"}


@pytest.fixture
def reviewed(tmp_path: Path, runner: CliRunner) -> tuple[Path, int]:
    """RUN-G5-001 held for review (the default rule), then released by a person."""
    processed = process_sample_lab(
        tmp_path / "lab",
        f"sqlite:///{tmp_path / 'lab.db'}",
        runner,
        USERS,
        autoverification=REVIEW_DEFAULTS,
    )
    config = str(processed.config_path)
    result = runner.invoke(
        cli,
        [
            "--config",
            config,
            "release",
            "1",
            "--by",
            "amoss",
            "--meaning",
            "approved",
            "--comment",
            "curve & QC checked",
        ],
    )
    assert result.exit_code == 0, result.output
    return processed.config_path, 1


def test_the_review_decision_and_its_audit_entries(
    reviewed: tuple[Path, int], runner: CliRunner
) -> None:
    config_path, run_id = reviewed
    out = config_path.parent / "reports"
    result = runner.invoke(
        cli,
        [
            "--config",
            str(config_path),
            "report",
            str(run_id),
            "--output",
            str(out.with_suffix(".html")),
        ],
    )
    assert result.exit_code == 0, result.output
    page = out.with_suffix(".html").read_text(encoding="utf-8")
    decision = re.search(r'<p class="decision">(.*?)</p>', page)
    assert decision is not None
    assert re.fullmatch(
        r"released by Ada Moss \(amoss\) \(approved\) at 20\d\d-\d\d-\d\d .*", decision.group(1)
    )
    assert "Note: curve &amp; QC checked" in page
    decisions = [cells(r) for r in html_rows(page, "decisions")[1:]]
    assert any(row[3] == "amoss" and row[4] == "approved" for row in decisions)
    actions = [cells(r)[3] for r in html_rows(page, "audit")[1:]]
    assert "run-released" in actions and "result-released" in actions


def test_the_pdf_has_every_section_on_its_pages(history: History) -> None:
    report = load_run_report(history.store, history.runs[3].id, config=history.config)
    content = render(report, "pdf")
    assert content.startswith(b"%PDF-")
    pages = pdf_pages_text(content)
    titles = [
        "Run report: run 3",
        "Plate map: run 3, RUN-3.csv",
        "Standard curve: two-segment-linear, r² 1.0000",
        "Standards",
        "Controls",
        "Levey-Jennings: control LOW, lot default - last 3 run(s); mean 40, SD 2 (config)",
        "Results",
        "Review decision",
        "Audit trail",
    ]
    assert len(pages) == len(titles)
    for page, title in zip(pages, titles, strict=True):
        assert title in page
    text = "\n".join(pages)
    assert report.marker in pages[0]
    assert "REJECTED" in pages[0] and "qc-rejected" in pages[0]
    assert "Westgard 2-2s (rejection): HIGH at +2.50 and +2.50 SD in two runs" in pages[0]
    assert "S-100" in pages[1] and "control HIGH" not in pages[1]  # the map: short labels
    assert "LLOQ 5 U/L" in pages[2] and "ULOQ 1000 U/L" in pages[2]
    assert "HIGH" in pages[4] and "425" in pages[4]
    assert f"run {history.runs[3].id}: 1-2s, 2-2s" in pages[5]
    assert all(r.accession in pages[6] for r in history.runs[3].results)
    assert HOSTILE in text  # data text is text in the PDF (not markup, not mathtext)
    assert "run-created" in pages[8]


def test_the_pdf_page_count_follows_the_rows(history: History) -> None:
    report = load_run_report(history.store, history.runs[4].id, config=history.config)
    pages = pdf_pages_text(render(report, "pdf"))
    # summary, plate, curve, standards, controls, one Levey-Jennings page for the two
    # controls, results, review decision, audit trail
    assert len(pages) == 9
    assert "EXCLUDED" in pages[3] and "140" not in pages[0]


def test_write_run_reports_writes_html_and_pdf_next_to_the_export(
    history: History, tmp_path: Path
) -> None:
    run = history.runs[1]
    written = write_run_reports(history.store, history.config, run.id, tmp_path / "archive")
    assert [p.name for p in written] == [
        f"RUN-1.run{run.id}.report.html",
        f"RUN-1.run{run.id}.report.pdf",
    ]
    for path in written:
        assert path.stat().st_mode & 0o777 == REPORT_FILE_MODE == 0o640
    assert written[0].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert written[1].read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == sorted(
        p.name for p in written
    )  # no temporary file left
    # With the archived file's stem (the archive may have renamed it).
    (html,) = write_run_reports(
        history.store,
        history.config,
        run.id,
        tmp_path / "archive",
        stem="RUN-1 (2)",
        formats=("html",),
    )
    assert html.name == f"RUN-1 (2).run{run.id}.report.html"


def test_a_report_replaces_its_own_earlier_version_but_no_other_file(
    history: History, tmp_path: Path
) -> None:
    run = history.runs[2]
    (first,) = write_run_reports(history.store, history.config, run.id, tmp_path, formats=("html",))
    first.write_text(first.read_text(encoding="utf-8") + "<!-- older -->", encoding="utf-8")
    (again,) = write_run_reports(history.store, history.config, run.id, tmp_path, formats=("html",))
    assert again == first and "<!-- older -->" not in again.read_text(encoding="utf-8")

    foreign = tmp_path / f"RUN-2.run{run.id}.report.pdf"
    foreign.write_bytes(b"someone else's file")
    with pytest.raises(ReportError, match="is not this run's report; it is not overwritten"):
        write_run_reports(history.store, history.config, run.id, tmp_path)
    assert foreign.read_bytes() == b"someone else's file"
    # Another run's report is another file too.
    other = write_run_reports(
        history.store, history.config, history.runs[1].id, tmp_path, formats=("html",)
    )[0]
    other.rename(first)
    with pytest.raises(ReportError, match=re.escape(str(first))):
        write_run_reports(history.store, history.config, run.id, tmp_path, formats=("html",))

    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    first.unlink()
    first.symlink_to(target)
    with pytest.raises(ReportError):
        write_run_reports(history.store, history.config, run.id, tmp_path, formats=("html",))
    assert target.read_text() == "keep me"


def test_an_unknown_run_is_a_report_error(history: History, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="there is no run 999") as caught:
        write_run_reports(history.store, history.config, 999, tmp_path)
    assert caught.value.exit_code == 10
    assert list(tmp_path.iterdir()) == []


# -- the command ---------------------------------------------------------------------


def config_arg(history: History) -> list[str]:
    return ["--config", str(history.config.base_dir / "saa-lab.toml")]


def test_cli_report_writes_the_html_here_and_prints_its_path(
    history: History, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = history.runs[1]
    result = runner.invoke(cli, [*config_arg(history), "report", str(run.id)])
    assert result.exit_code == 0, result.output
    path = tmp_path / f"RUN-1.run{run.id}.report.html"
    assert result.output == f"{path}\n"
    assert "S-100" in path.read_text(encoding="utf-8")


def test_cli_report_pdf_into_a_folder_with_json(
    history: History, runner: CliRunner, tmp_path: Path
) -> None:
    run = history.runs[2]
    result = runner.invoke(
        cli,
        [*config_arg(history), "report", str(run.id), "--pdf", "--output", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    path = tmp_path / f"RUN-2.run{run.id}.report.pdf"
    assert data["path"] == str(path) and data["format"] == "pdf"
    assert (data["status"], data["results"]) == ("accepted", 3)
    assert path.read_bytes().startswith(b"%PDF-")
    assert data["bytes"] == path.stat().st_size


def test_cli_report_of_an_unknown_run_is_one_line_and_exit_10(
    history: History, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(cli, [*config_arg(history), "report", "999", "-o", str(tmp_path)])
    assert result.exit_code == 10
    assert result.output == (
        "Error: there is no run 999 (see 'saa-lab status' or 'saa-lab review')\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_cli_report_refuses_to_overwrite_another_file(
    history: History, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "notes.html"
    target.write_text("mine")
    result = runner.invoke(
        cli, [*config_arg(history), "report", str(history.runs[1].id), "--output", str(target)]
    )
    assert result.exit_code == 10
    assert "is not this run's report; it is not overwritten" in result.output
    assert target.read_text() == "mine"


def test_the_report_files_are_kept_like_archived_exports() -> None:
    from saa_lab.watcher import FILE_MODE

    assert REPORT_FILE_MODE == FILE_MODE


def test_the_command_is_listed_and_help_does_not_import_matplotlib(runner: CliRunner) -> None:
    import subprocess
    import sys

    result = runner.invoke(cli, ["--help"])
    assert re.search(r"^  report +Write the report of RUN", result.output, re.M), result.output
    code = (
        "import sys; from saa_lab.cli import cli; "
        "print(','.join(m for m in ('matplotlib', 'saa_lab.report') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
