"""Helpers the parser tests share: sample folders, line numbers, detection and mutated files.

(Named ``parser_helpers`` because tests/core has its own ``helpers`` module and both test
folders are on ``sys.path``.)
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from saa_lab.domain import PlateRead, SourceFile
from saa_lab.errors import InputFileError
from saa_lab.parsers import PARSERS, Instrument, PlateParser, detect
from saa_lab.parsers.table import head_text

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_files"
REAL = REPO.parent / "shared" / "samples" / "real"

_LINE_BREAK = re.compile(r"\r\n|\n|\r")


def line_of(text: str, start: str, nth: int = 0) -> int:
    """The number (from 1) of the ``nth`` line of ``text`` that starts with ``start``."""
    lines = _LINE_BREAK.split(text)
    return [n for n, line in enumerate(lines, start=1) if line.startswith(start)][nth]


def claimants(head: str) -> list[Instrument]:
    """Every format whose parser's ``sniff`` claims this head."""
    return [instrument for instrument, cls in PARSERS.items() if cls.sniff(head)]


def check_claims(path: Path, instrument: Instrument) -> None:
    """Only ``instrument``'s parser claims the file, and ``detect`` picks it."""
    source = SourceFile.from_path(path)
    assert claimants(head_text(source)) == [instrument]
    assert detect(source) is instrument


def files_in(folder: Path) -> list[Path]:
    """The sample files below ``folder`` (not the expected JSON or notes); [] if absent."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.endswith((".json", ".md"))
    )


def format_files(folder: str) -> list[Path]:
    """:func:`files_in` ``sample_files/<folder>`` and in the real exports' ``<folder>``."""
    return files_in(SAMPLES / folder) + files_in(REAL / folder)


def other_files(ours: Sequence[Path]) -> list[Path]:
    """Every sample and real export (scripts aside) that is not one of ``ours``."""
    return [p for p in files_in(SAMPLES) + files_in(REAL) if p not in ours and p.suffix != ".py"]


def own_samples(folder: str) -> list[Path]:
    """``sample_files/<folder>`` (no expected JSON) and the real exports in ``<folder>``."""
    files = [p for p in (SAMPLES / folder).iterdir() if p.suffix != ".json"]
    if (REAL / folder).is_dir():
        files += sorted((REAL / folder).iterdir())
    return sorted(files)


def other_samples(folder: str) -> list[Path]:
    """The sample files (not JSON, scripts or notes) outside ``sample_files/<folder>``."""
    return [
        p
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.parent.name != folder and p.suffix not in (".json", ".py", ".md")
    ]


# --- mutated files ---------------------------------------------------------------------------


def mutations(
    data: bytes, rng: random.Random, swaps: Sequence[tuple[bytes, bytes, int]]
) -> list[bytes]:
    """Truncations, deleted lines, ``swaps`` (old, new, count; -1 for all) and inserted bytes."""
    lines = data.splitlines(keepends=True)
    out = [data[: rng.randrange(1, len(data))] for _ in range(6)]
    for _ in range(6):
        kept = list(lines)
        del kept[rng.randrange(len(kept))]
        out.append(b"".join(kept))
    out += [data.replace(old, new, count) for old, new, count in swaps]
    for _ in range(6):
        position = rng.randrange(len(data))
        out.append(data[:position] + bytes(rng.randrange(256) for _ in range(8)) + data[position:])
    return out


def check_mutated(
    parser: PlateParser, path: Path, swaps: Sequence[tuple[bytes, bytes, int]]
) -> None:
    """Each mutation of ``path`` parses to readings with values or reasons, or is refused
    with an InputFileError naming the file."""
    rng = random.Random(path.name)
    for data in mutations(path.read_bytes(), rng, swaps):
        try:
            reads = parser.parse(SourceFile(data, path.name))
        except InputFileError as err:
            assert err.path == path.name
            continue
        for read in reads:
            assert all(w.value is not None or w.reason for w in read.wells.values())


def fuzz_outcomes(
    parser: PlateParser,
    originals: Sequence[bytes],
    *,
    seed: int,
    swap: tuple[bytes, bytes],
    name: str,
    rounds: int = 300,
) -> dict[str, int]:
    """How many of ``rounds`` randomly damaged copies of the files parsed and how many were
    refused with an InputFileError that says why (any other exception fails)."""
    rng = random.Random(seed)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(rounds):
        data = bytearray(rng.choice(originals))
        action = rng.randrange(4)
        if action == 0:
            data = data[: rng.randrange(len(data))]
        elif action == 1:
            lines = bytes(data).split(b"\n")
            del lines[rng.randrange(len(lines))]
            data = bytearray(b"\n".join(lines))
        elif action == 2:
            data = bytearray(bytes(data).replace(*swap))
        else:
            for _ in range(10):
                data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            reads = parser.parse(SourceFile(bytes(data), name))
        except InputFileError as err:
            assert err.message
            outcomes["refused"] += 1
        else:
            assert all(isinstance(r, PlateRead) for r in reads)
            outcomes["parsed"] += 1
    return outcomes
