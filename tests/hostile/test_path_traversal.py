"""Input-derived names never lead outside the configured folders.

Strings from the files themselves become parts of paths in a few places: the plate
id (barcode) of an export names its worklist (``<plate id>.worklist.csv`` beside it,
in the daemon's inbox or beside the file given to ``saa-lab process``), the dropped
file's name becomes its archive and quarantine names (and the quarantine sidecar's),
and message control ids and batch names become outbox file names. These tests give
each of them hostile values (``../../etc/x``, absolute paths, ``..\\..\\x``, NUL,
very long names, ``CON``), plant a valid worklist wherever a traversal would land,
and check that nothing outside the inbox, archive, quarantine and outbox is read,
moved or written: the tree around the workspace is the same before and after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import wait_for
from hostile_support import assert_one_line

from saa_lab.cli import cli
from saa_lab.config import AppConfig, load_config
from saa_lab.errors import DeliveryError
from saa_lab.hl7 import write_batch_file, write_message_file
from saa_lab.store import Store
from saa_lab.watcher import Daemon

# Not imported from tests/conftest.py: tests/hostile/conftest.py takes the module name
# "conftest" for the tests in this folder.
REPO = Path(__file__).resolve().parents[2]
GEN5 = REPO / "sample_files" / "biotek_gen5" / "RUN-G5-001.txt"
GEN5_WL = REPO / "sample_files" / "biotek_gen5" / "RUN-G5-001.worklist.csv"
BARCODE_LINE = b"Barcode\tRUN-G5-001"
TIMEOUT = 15.0
CONFIG = """[lab]
timezone = "Europe/Berlin"
[watch]
poll_interval_seconds = 0.2
stability_seconds = 0.3
settle_seconds = 0.02
worklist_wait_seconds = {wait}
[[autoverification]]
name = "tests-release-on-processing"
run_statuses = ["quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"]
hold_flags = []
"""

#: plate ids (the export's ``Barcode``) that would name a worklist outside the folder;
#: ``{root}`` is the test's temporary folder (an absolute path)
HOSTILE_PLATE_IDS = {
    "parent": "../outside/PLATE-1",
    "grandparent": "../../etc/x",
    "absolute": "{root}/abs/PLATE-2",
    "backslashes": "..\\..\\x",
    "nul": "PLATE\x00/../../nul",
    "long": "P" * 300,
    "device": "CON",
    "dots": "..",
}


# -- what changes around the workspace


def tree(root: Path, allowed: tuple[Path, ...]) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root`` outside ``allowed``: (mode, mtime, sha256) of files and
    links; folders by their mode only (their mtime changes when an allowed folder is
    created in them)."""
    found: dict[str, tuple[int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        if any(path == a or a in path.parents for a in allowed):
            continue
        info = path.lstat()
        if path.is_dir() and not path.is_symlink():
            found[str(path.relative_to(root))] = (info.st_mode, 0, "")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, digest)
    return found


_OPENED: list[str] = []
_AUDITING = [False]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITING[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_hook)  # cannot be removed; it records only inside opened_files()


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Paths opened (by any thread) inside the block."""
    _OPENED.clear()
    _AUDITING[0] = True
    try:
        yield _OPENED
    finally:
        _AUDITING[0] = False


def outside(paths: list[str], root: Path, allowed: tuple[Path, ...]) -> list[str]:
    """The opened paths under ``root`` that are not in an allowed folder."""
    bad = []
    for text in paths:
        path = Path(os.path.normpath(Path(text).absolute()))
        if root in path.parents and not any(a == path or a in path.parents for a in allowed):
            bad.append(text)
    return bad


# -- workspaces


def write_lab(root: Path, *, wait: float = 30) -> AppConfig:
    (root / "lab").mkdir(parents=True)
    path = root / "lab" / "saa-lab.toml"
    path.write_text(CONFIG.format(wait=wait), encoding="utf-8")
    return load_config(path)


def lab_folders(config: AppConfig) -> tuple[Path, ...]:
    db = Path(config.database_url.removeprefix("sqlite:///"))
    dbs = tuple(db.with_name(db.name + s) for s in ("", "-wal", "-shm", "-journal"))
    return (config.inbox, config.archive, config.quarantine, config.outbox, *dbs)


def export_with_plate_id(plate_id: str) -> bytes:
    data = GEN5.read_bytes()
    assert data.count(BARCODE_LINE) == 1
    return data.replace(BARCODE_LINE, b"Barcode\t" + plate_id.encode("utf-8"))


def plant_worklists(folder: Path, plate_id: str) -> list[Path]:
    """A valid worklist wherever ``<plate id>.worklist.csv`` beside ``folder`` would land
    if followed as a POSIX or a Windows path (outside ``folder`` only)."""
    name = f"{plate_id}.worklist.csv"
    targets = []
    if "\x00" not in name and len(os.fsencode(Path(name).name)) <= 255:
        targets.append(Path(os.path.normpath(folder / name)))
    windows = PureWindowsPath(str(folder).replace("/", "\\")) / name.replace("\x00", "")
    targets.append(Path(os.path.normpath(str(windows).replace("\\", "/"))))
    planted = []
    for target in targets:
        if folder in target.parents:
            continue  # inside the folder: not a traversal
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GEN5_WL, target)
        planted.append(target)
    return planted


# -- plate ids naming worklists


def test_the_daemon_never_looks_for_a_worklist_outside_the_inbox(tmp_path: Path) -> None:
    config = write_lab(tmp_path, wait=0.5)
    config.inbox.mkdir(parents=True)
    exports = {}
    for key, template in HOSTILE_PLATE_IDS.items():
        plate_id = template.format(root=tmp_path)
        plant_worklists(config.inbox, plate_id)
        exports[f"hostile-{key}.txt"] = export_with_plate_id(plate_id)
    allowed = lab_folders(config)
    before = tree(tmp_path, allowed)
    store = Store(config.database_url)
    try:
        with opened_files() as opened, Daemon(config, store) as daemon:
            for name, data in exports.items():
                temp = config.inbox / f".{name}.part"
                temp.write_bytes(data)
                temp.rename(config.inbox / name)
            done = wait_for(lambda: not any(config.inbox.iterdir()))
            daemon.stop()
        quarantined = sorted(p.name for p in config.quarantine.iterdir())
    finally:
        store.close()
    assert done, f"left in the inbox: {sorted(p.name for p in config.inbox.iterdir())}"
    assert outside(opened, tmp_path, allowed) == []
    assert tree(tmp_path, allowed) == before
    assert list(config.outbox.iterdir()) == []
    assert not config.archive.exists() or not any(config.archive.rglob("*.csv"))
    # Each export waited for its worklist in vain and was quarantined with the reason.
    assert quarantined == sorted([*exports, *(f"{n}.error.txt" for n in exports)])
    for name in exports:
        reason = (config.quarantine / f"{name}.error.txt").read_text(encoding="utf-8")
        assert_one_line(reason.rstrip("\n"), f"the reason for {name}")
        assert "no worklist arrived" in reason


@pytest.mark.parametrize("key", list(HOSTILE_PLATE_IDS))
def test_process_never_looks_for_a_worklist_outside_the_exports_folder(
    key: str, tmp_path: Path, runner: CliRunner
) -> None:
    """``runner`` is tests/conftest.py's (fixtures reach this folder; its names do not)."""
    config = write_lab(tmp_path)
    config_path = tmp_path / "lab" / "saa-lab.toml"
    drop = tmp_path / "lab" / "drop"
    drop.mkdir()
    plate_id = HOSTILE_PLATE_IDS[key].format(root=tmp_path)
    export = drop / "hostile.txt"
    export.write_bytes(export_with_plate_id(plate_id))
    planted = plant_worklists(drop, plate_id)
    allowed = (*lab_folders(config), drop, config_path)
    before = tree(tmp_path, allowed)
    with opened_files() as opened:
        result = runner.invoke(cli, ["--config", str(config_path), "process", str(export)])
    assert result.exit_code == 3, result.output  # an InputFileError: no worklist found
    assert "no worklist found beside the export" in result.output
    assert outside(opened, tmp_path, allowed) == []
    assert not any(str(p) in opened for p in planted)
    assert tree(tmp_path, allowed) == before
    assert not config.outbox.exists() or list(config.outbox.iterdir()) == []


# -- dropped file names become archive and quarantine names

#: names a share or a person can give a file (no "/" nor NUL: the OS refuses those)
HOSTILE_FILE_NAMES = [
    "CON",
    "CON.txt",
    "NUL.csv",
    "x\\..\\..\\y.txt",
    "a\nb.txt",
    "-rf",
    " .txt",
    "é" * 100 + ".txt",
    "x" * 200,
]


def _run_daemon_on(tmp_path: Path, files: dict[str, bytes]) -> tuple[AppConfig, Daemon, bool]:
    """Drop ``files``, wait until they left the inbox and were counted as quarantined."""
    config = write_lab(tmp_path, wait=0.5)
    config.inbox.mkdir(parents=True)
    store = Store(config.database_url)
    try:
        with Daemon(config, store) as daemon:
            for name, data in files.items():
                temp = config.inbox / ".incoming.part"
                temp.write_bytes(data)
                temp.rename(config.inbox / name)
            left = wait_for(lambda: not any(config.inbox.iterdir()))
            done = left and wait_for(lambda: daemon.counters.quarantined >= len(files), 1.0)
            daemon.stop()
    finally:
        store.close()
    return config, daemon, done


def test_hostile_file_names_are_quarantined_in_the_quarantine(tmp_path: Path) -> None:
    files = dict.fromkeys(HOSTILE_FILE_NAMES, b"not an export\n")
    (tmp_path / "neighbour").mkdir()
    (tmp_path / "neighbour" / "x.txt").write_text("keep me\n")
    before = tree(tmp_path, (tmp_path / "lab",))
    config, daemon, done = _run_daemon_on(tmp_path, files)
    assert done, daemon.counters
    assert list(config.inbox.iterdir()) == []
    quarantined = sorted(p.name for p in config.quarantine.iterdir())
    assert quarantined == sorted([*files, *(f"{n}.error.txt" for n in files)])
    assert tree(tmp_path, (tmp_path / "lab",)) == before


def test_a_file_with_a_name_of_255_bytes_is_quarantined_with_its_reason(
    tmp_path: Path,
) -> None:
    name = "x" * 255
    config, _daemon, done = _run_daemon_on(tmp_path, {name: b"not an export\n"})
    sidecars = [p for p in config.quarantine.iterdir() if p.name.endswith(".error.txt")]
    assert done, "the file was not counted as quarantined"
    assert (config.quarantine / name).exists()
    assert len(sidecars) == 1
    assert "unrecognised export format" in sidecars[0].read_text(encoding="utf-8")


def test_a_symlink_in_the_inbox_is_not_followed_outside(tmp_path: Path) -> None:
    config = write_lab(tmp_path, wait=0.5)
    config.inbox.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(GEN5, elsewhere / "other-lab-export.txt")
    shutil.copyfile(GEN5_WL, elsewhere / "RUN-G5-001.worklist.csv")
    an_hour_ago = time.time() - 3600
    for linked in elsewhere.iterdir():  # old files: ready as soon as the link is seen
        os.utime(linked, (an_hour_ago, an_hour_ago))
    before = tree(tmp_path, lab_folders(config))
    store = Store(config.database_url)
    try:
        with Daemon(config, store) as daemon:
            # A file it quarantines first: the daemon is warm and working.
            (config.inbox / "sentinel.txt").write_bytes(b"not an export\n")
            assert wait_for(lambda: daemon.counters.quarantined == 1)
            (config.inbox / "RUN-G5-001.worklist.csv").symlink_to(
                elsewhere / "RUN-G5-001.worklist.csv"
            )
            (config.inbox / "RUN-G5-001.txt").symlink_to(elsewhere / "other-lab-export.txt")
            # Followed, the export is processed and archived within a second or two; not
            # followed, the links stay in the inbox (or go to the quarantine).
            links = [config.inbox / "RUN-G5-001.txt", config.inbox / "RUN-G5-001.worklist.csv"]
            wait_for(lambda: not any(link.is_symlink() for link in links), 5.0)
            daemon.stop()
    finally:
        store.close()
    assert daemon.counters.processed == 0, "a linked file outside the inbox was processed"
    assert list(config.outbox.iterdir()) == [], "a linked file outside the inbox was sent"
    assert not config.archive.exists() or not any(config.archive.rglob("*"))
    assert tree(tmp_path, lab_folders(config)) == before


# -- control ids and batch names become outbox file names

HOSTILE_STEMS = [
    "../../etc/x",
    "../x",
    "/abs/path",
    "..\\..\\x",
    "a\x00b",
    "x" * 300,
    "CON",
    "con",
    "NUL",
    "COM1",
    "LPT9",
    "AUX",
    "PRN",
    ".hidden",
    "..",
    "",
    "a/b",
    "a\nb",
]
ER7 = "MSH|^~\\&|SAA-LAB|LAB|LIS|CLINIC|20261120101500||ORU^R01|X1|P|2.5.1\rPID|1||P1\r"
BATCH = "FHS|^~\\&\rBHS|^~\\&\r" + ER7 + "BTS|1\rFTS|1\r"


@pytest.mark.parametrize("stem", HOSTILE_STEMS, ids=lambda s: ascii(s)[1:-1][:20] or "empty")
def test_hostile_control_ids_and_batch_names_are_refused(stem: str, tmp_path: Path) -> None:
    outbox = tmp_path / "box" / "outbox"
    outbox.mkdir(parents=True)
    before = tree(tmp_path, ())
    for write, text, what in (
        (write_message_file, ER7, "control id"),
        (write_batch_file, BATCH, "batch name"),
    ):
        with pytest.raises(DeliveryError) as caught:
            write(outbox, stem, text)
        message = str(caught.value)
        assert_one_line(message)
        assert message.startswith(f"{outbox}: {what} "), message
    assert tree(tmp_path, ()) == before
    assert list(outbox.iterdir()) == []


@pytest.mark.parametrize("stem", ["X1", "2C4F0A9B1D", "run-12-ABCDEF01", "CONSOLE", "COM10", "a.b"])
def test_plain_control_ids_still_name_outbox_files(stem: str, tmp_path: Path) -> None:
    path = write_message_file(tmp_path, stem, ER7)
    assert path == tmp_path / f"{stem}.hl7"
    assert path.read_bytes() == ER7.encode()
