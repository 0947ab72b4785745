"""Limits on a workbook's container, checked before any library parses it.

Exports are untrusted bytes: they come from instrument PCs, shared folders and
e-mail. An xlsx is a zip of XML parts that openpyxl inflates and parses as it
needs them, so a small hostile file can ask for gigabytes of memory (a zip
bomb: one part, or many small parts, of highly compressible bytes), hold an
absurd number of parts, or name its parts like paths (``../../x``, ``/etc/x``).
:func:`check_xlsx` reads only the zip's central directory (part names and
declared sizes), never a part's content, and extracts nothing; a declared size
is a real bound, because Python's zipfile stops a part at its declared size
and a part that inflates to more fails its CRC check. A file over a limit is
refused with one :class:`~saa_lab.errors.InputFileError` line naming the file,
the limit and what to do, and is quarantined like any unusable file.

The limits leave a wide margin over real exports (see ``../shared/samples/real``:
the largest real workbook is 0.2 MiB, inflates to 1.3 MiB in 13 parts, and no
part is compressed more than 11:1; a worksheet of numbers rarely passes 20:1).

Not here, but part of the same defence (see :func:`saa_lab.parsers.table.read_workbook`):
the XML inside the parts is parsed by openpyxl through ``defusedxml`` (a
dependency), which refuses entity declarations (XXE reading local files,
"billion laughs" expansion); workbooks are opened with ``keep_links=False`` and
``data_only=True``, so links to other workbooks (``xl/externalLinks``) are
never read nor followed, and a formula cell gives the value cached in the file
or nothing. Legacy .xls files (OLE2/BIFF, read by xlrd) hold no zip and no XML;
only their size is limited.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Final

from saa_lab.errors import InputFileError

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_PARTS",
    "MAX_UNCOMPRESSED_BYTES",
    "MAX_WORKBOOK_BYTES",
    "RATIO_CHECKED_FROM_BYTES",
    "check_xls",
    "check_xlsx",
]

MIB: Final = 1024 * 1024
# The file as dropped (xlsx or legacy .xls).
MAX_WORKBOOK_BYTES: Final = 50 * MIB
# The sum of the declared sizes of all parts once inflated.
MAX_UNCOMPRESSED_BYTES: Final = 200 * MIB
# Parts in the zip (real exports: 9 to 41).
MAX_PARTS: Final = 10_000
# Inflated size / compressed size of one part, for parts above RATIO_CHECKED_FROM_BYTES
# (smaller parts cannot hurt whatever their ratio; many of them are caught by the total).
MAX_COMPRESSION_RATIO: Final = 100
RATIO_CHECKED_FROM_BYTES: Final = 1 * MIB

_CENTRAL_HEADER: Final = b"PK\x01\x02"
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_REMEDY: Final = (
    "if it is a real export, export it again from the instrument software "
    "(split the run into smaller files if it is that big) and drop it again"
)


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def _refuse(path: str, what: str) -> InputFileError:
    return InputFileError(f"refused before reading: {what}; {_REMEDY}", path=path)


def _shown(name: str) -> str:
    """A part name for a one-line message: quoted, control characters escaped, cut short."""
    shown = ascii(name)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _check_size(data: bytes, path: str, kind: str) -> None:
    if len(data) > MAX_WORKBOOK_BYTES:
        what = f"the {kind} is {_mib(len(data))}, over the {_mib(MAX_WORKBOOK_BYTES)} limit"
        raise _refuse(path, what)


def _unsafe_name(name: str) -> bool:
    """An absolute, drive-letter or ``..`` part name, or one with a NUL."""
    normal = name.replace("\\", "/")
    return (
        normal.startswith("/")
        or bool(_DRIVE.match(normal))
        or ".." in normal.split("/")
        or "\x00" in name
    )


def check_xls(data: bytes, path: str) -> None:
    """Refuse a legacy .xls over the size limit (xlrd reads the whole file into memory)."""
    _check_size(data, path, "legacy .xls workbook")


def check_xlsx(data: bytes, path: str) -> None:
    """Refuse an xlsx whose zip container is over a limit or names parts like paths.

    Reads the central directory only; raises :class:`InputFileError` naming
    ``path``. A zip too damaged to list is refused as damaged.
    """
    _check_size(data, path, "workbook")
    # Each part has one central-directory header; counting their signature bounds the
    # parts before zipfile builds an object per part (a cheap upper bound).
    if data.count(_CENTRAL_HEADER) > MAX_PARTS:
        raise _refuse(path, f"the workbook holds more than {MAX_PARTS:,} parts")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        msg = f"cannot open the workbook (damaged or not an xlsx): {' '.join(str(exc).split())}"
        raise InputFileError(msg, path=path) from exc
    if len(parts) > MAX_PARTS:
        what = f"the workbook holds {len(parts):,} parts, over the {MAX_PARTS:,} limit"
        raise _refuse(path, what)
    names: set[str] = set()
    total = 0
    for part in parts:
        if _unsafe_name(part.filename):
            what = f"the workbook holds a part named like a path ({_shown(part.filename)})"
            raise _refuse(path, what)
        if part.filename in names:
            what = f"the workbook holds the part {_shown(part.filename)} twice"
            raise _refuse(path, what)
        names.add(part.filename)
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            what = (
                f"the part {_shown(part.filename)} inflates {ratio:,.0f}:1 (to "
                f"{_mib(part.file_size)}), over the {MAX_COMPRESSION_RATIO}:1 limit (a zip bomb?)"
            )
            raise _refuse(path, what)
        total += part.file_size
    if total > MAX_UNCOMPRESSED_BYTES:
        what = (
            f"the workbook inflates to {_mib(total)}, over the "
            f"{_mib(MAX_UNCOMPRESSED_BYTES)} limit (a zip bomb?)"
        )
        raise _refuse(path, what)
