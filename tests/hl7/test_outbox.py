"""File outbox: atomic, idempotent, refuses unsafe names and unusable directories."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from saa_lab.errors import DeliveryError
from saa_lab.hl7 import message_file_bytes, write_message_file
from saa_lab.hl7 import outbox as outbox_module

# The reviewed golden message (tests/hl7/golden/oru_basic.hl7, one segment per line).
GOLDEN = Path(__file__).parent / "golden" / "oru_basic.hl7"
ER7 = GOLDEN.read_text(encoding="utf-8").rstrip("\n").replace("\n", "\r")
CONTROL_ID = "SAA000000123"


def names(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


def test_writes_one_file_named_after_the_control_id(tmp_path: Path) -> None:
    path = write_message_file(tmp_path, CONTROL_ID, ER7)
    assert path == tmp_path / f"{CONTROL_ID}.hl7"
    assert names(tmp_path) == [f"{CONTROL_ID}.hl7"]  # no temporary file left behind


def test_file_holds_cr_separated_segments_ending_with_cr(tmp_path: Path) -> None:
    data = write_message_file(tmp_path, CONTROL_ID, ER7).read_bytes()
    assert data == (ER7 + "\r").encode("ascii")
    assert b"\n" not in data
    assert data.count(b"\r") == len(GOLDEN.read_text().splitlines())
    assert data.startswith(b"MSH|^~\\&|")


def test_written_file_parses_as_the_same_message(tmp_path: Path) -> None:
    # read_bytes: Path.read_text() would translate the CR separators into "\n".
    text = write_message_file(tmp_path, CONTROL_ID, ER7).read_bytes().decode("utf-8")
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    assert message.msh.msh_10.to_er7() == CONTROL_ID


def test_non_ascii_text_is_written_as_utf8(tmp_path: Path) -> None:
    er7 = ER7.replace("Doe^Jane", "Müller^Zoë")
    data = write_message_file(tmp_path, CONTROL_ID, er7).read_bytes()
    assert "Müller^Zoë".encode() in data


def test_an_er7_already_ending_with_cr_gets_no_second_one() -> None:
    assert message_file_bytes(ER7 + "\r") == message_file_bytes(ER7)


@pytest.mark.parametrize("bad", ["", "PID|1", "MSH|^~\\&|A\nPID|1"])
def test_text_that_is_not_cr_separated_er7_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="ER7"):
        message_file_bytes(bad)


def test_rewriting_the_same_message_is_a_no_op(tmp_path: Path) -> None:
    first = write_message_file(tmp_path, CONTROL_ID, ER7)
    before = first.stat()
    second = write_message_file(tmp_path, CONTROL_ID, ER7)
    assert second == first
    assert second.stat().st_ino == before.st_ino  # not replaced, so no new pick-up event
    assert names(tmp_path) == [f"{CONTROL_ID}.hl7"]


def test_a_different_message_under_an_existing_control_id_is_refused(tmp_path: Path) -> None:
    path = write_message_file(tmp_path, CONTROL_ID, ER7)
    with pytest.raises(DeliveryError, match="different message with the same control id") as info:
        write_message_file(tmp_path, CONTROL_ID, ER7.replace("|87.3|", "|88|"))
    assert info.value.path == str(tmp_path)
    assert path.read_bytes() == (ER7 + "\r").encode()


def test_concurrent_writers_of_the_same_message_both_succeed(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            write_message_file(tmp_path, CONTROL_ID, ER7)
        except DeliveryError as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert names(tmp_path) == [f"{CONTROL_ID}.hl7"]


@pytest.mark.parametrize(
    "control_id",
    ["", "../escape", "a/b", "a\\b", ".hidden", "..", "with space", "x" * 101, "nul\x00"],
)
def test_unsafe_control_ids_are_refused(tmp_path: Path, control_id: str) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    with pytest.raises(DeliveryError, match="cannot name an outbox file") as info:
        write_message_file(outbox, control_id, ER7)
    assert info.value.path == str(outbox)
    assert names(outbox) == []
    assert names(tmp_path) == ["outbox"]


def test_a_missing_directory_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "outbox"
    with pytest.raises(DeliveryError, match="does not exist") as info:
        write_message_file(missing, CONTROL_ID, ER7)
    assert str(missing) in str(info.value)
    assert not missing.exists()


def test_a_file_in_place_of_the_directory_is_named_in_the_error(tmp_path: Path) -> None:
    # Tests run as root, so a chmod'ed directory would still be writable.
    not_a_directory = tmp_path / "outbox"
    not_a_directory.write_text("")
    with pytest.raises(DeliveryError, match="is not a directory") as info:
        write_message_file(not_a_directory, CONTROL_ID, ER7)
    assert str(not_a_directory) in str(info.value)


def test_a_failed_write_leaves_neither_file_nor_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, target: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outbox_module.os, "replace", refuse)
    with pytest.raises(DeliveryError, match="Permission denied") as info:
        write_message_file(tmp_path, CONTROL_ID, ER7)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value.__cause__, PermissionError)
    assert names(tmp_path) == []


def test_stale_temporary_files_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    import os
    import time

    from saa_lab.hl7.outbox import remove_stale_temporaries

    stale = tmp_path / ".MSG1.0a1b2c.tmp"
    fresh = tmp_path / ".MSG2.3d4e5f.tmp"  # perhaps being written right now
    message = tmp_path / "MSG3.hl7"
    for path in (stale, fresh, message):
        path.write_bytes(b"MSH|")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    os.utime(message, (an_hour_ago, an_hour_ago))
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, message.name]
