"""Hostile workbooks: zip bombs, path-like part names, XXE, entity bombs, external links.

Every workbook goes through ``parsers/table.py`` (``read_workbook``), which first
checks the zip container (``parsers/xlsx_guard.py``) and then lets openpyxl parse
the XML through defusedxml. These tests build the hostile files in memory and drive
the real entry points (``read_workbook``, ``parse``, and the daemon for one case).

Nothing may be read from outside the workbook (no file opened, no socket used),
refusals are one-line InputFileErrors naming the file, and nothing hangs.
"""

from __future__ import annotations

import io
import socket
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl
import openpyxl.xml
import openpyxl.xml.functions
import pytest
from hostile_support import assert_one_line, time_limit

from saa_lab.config import load_config
from saa_lab.domain import SourceFile
from saa_lab.errors import ConfigError, InputFileError
from saa_lab.parsers import parse
from saa_lab.parsers import xlsx_guard as guard
from saa_lab.parsers.table import read_workbook

# Not imported from tests/conftest.py: tests/hostile/conftest.py takes the module name
# "conftest" for the tests in this folder.
REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_files"
SHARED_REAL = REPO.parent / "shared" / "samples" / "real"
MIB = 1024 * 1024
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
SHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

# -- what the code under test touches outside the workbook (a process-wide audit hook)


_AUDIT: list[tuple[str, tuple[Any, ...]]] = []
_AUDITING = [False]
_WATCHED = ("open", "socket.connect", "socket.getaddrinfo", "urllib.Request", "subprocess.Popen")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITING[0] and event in _WATCHED:
        _AUDIT.append((event, args))


sys.addaudithook(_hook)  # audit hooks cannot be removed; it records only inside audited()


@contextmanager
def audited() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """The files opened and network calls made inside the block (imports excluded)."""
    _AUDIT.clear()
    _AUDITING[0] = True
    try:
        yield _AUDIT
    finally:
        _AUDITING[0] = False


def outside_access(events: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    """Events that are neither Python importing its own modules nor in-memory I/O."""
    found = []
    for event, args in events:
        if event == "open":
            target = str(args[0])
            if target.endswith((".py", ".pyc", ".so")) or "site-packages" in target:
                continue
            if target.startswith(sys.base_prefix) or target.startswith(sys.prefix):
                continue
        found.append(f"{event} {args[:2]!r}")
    return found


# -- a minimal workbook, built part by part so every part can be made hostile


def _sheet(cells: str) -> str:
    return f'{XML_DECL}<worksheet xmlns="{NS}"><sheetData>{cells}</sheetData></worksheet>'


PLAIN_SHEET = _sheet(
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>0.5</v></c></row>'
    '<row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2"><v>0.25</v></c></row>'
)
PLAIN_STRINGS = (
    f'{XML_DECL}<sst xmlns="{NS}" count="2" uniqueCount="2">'
    "<si><t>Plate</t></si><si><t>Well</t></si></sst>"
)


def workbook_parts(
    sheet: str = PLAIN_SHEET, strings: str = PLAIN_STRINGS, links: tuple[str, ...] = ()
) -> dict[str, str]:
    """The parts of a one-sheet xlsx; ``links`` adds one external link per target URL."""
    overrides = [
        ("/xl/workbook.xml", f"{SHEET_CT}.sheet.main+xml"),
        ("/xl/worksheets/sheet1.xml", f"{SHEET_CT}.worksheet+xml"),
        ("/xl/sharedStrings.xml", f"{SHEET_CT}.sharedStrings+xml"),
    ]
    rels = [
        f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>',
        f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>',
    ]
    references = ""
    parts: dict[str, str] = {}
    for number, target in enumerate(links, start=1):
        overrides.append(
            (f"/xl/externalLinks/externalLink{number}.xml", f"{SHEET_CT}.externalLink+xml")
        )
        rels.append(
            f'<Relationship Id="rIdL{number}" Type="{REL_NS}/externalLink" '
            f'Target="externalLinks/externalLink{number}.xml"/>'
        )
        references += f'<externalReference r:id="rIdL{number}"/>'
        parts[f"xl/externalLinks/externalLink{number}.xml"] = (
            f'{XML_DECL}<externalLink xmlns="{NS}" xmlns:r="{REL_NS}"><externalBook r:id="rId1">'
            '<sheetNames><sheetName val="Sheet1"/></sheetNames>'
            '<sheetDataSet><sheetData sheetId="0">'
            '<row r="1"><cell r="A1"><v>987654</v></cell></row></sheetData></sheetDataSet>'
            "</externalBook></externalLink>"
        )
        parts[f"xl/externalLinks/_rels/externalLink{number}.xml.rels"] = (
            f'{XML_DECL}<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{REL_NS}/externalLinkPath" Target="{target}" TargetMode="External"/>'
            "</Relationships>"
        )
    types = "".join(f'<Override PartName="{n}" ContentType="{t}"/>' for n, t in overrides)
    parts["[Content_Types].xml"] = (
        f'{XML_DECL}<Types xmlns="{CT_NS}">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{types}</Types>'
    )
    parts["_rels/.rels"] = (
        f'{XML_DECL}<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
        f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    refs = f"<externalReferences>{references}</externalReferences>" if references else ""
    parts["xl/workbook.xml"] = (
        f'{XML_DECL}<workbook xmlns="{NS}" xmlns:r="{REL_NS}"><sheets>'
        f'<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>{refs}</workbook>'
    )
    parts["xl/_rels/workbook.xml.rels"] = (
        f'{XML_DECL}<Relationships xmlns="{PKG_REL_NS}">{"".join(rels)}</Relationships>'
    )
    parts["xl/worksheets/sheet1.xml"] = sheet
    parts["xl/sharedStrings.xml"] = strings
    return parts


def zipped(parts: dict[str, str | bytes], *, extra: list[tuple[str, bytes]] | None = None) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in parts.items():
                archive.writestr(name, text.encode() if isinstance(text, str) else text)
            for name, data in extra or []:
                archive.writestr(name, data)
    return buffer.getvalue()


def refusal(data: bytes, name: str = "inbox/hostile.xlsx") -> str:
    """The one-line error of reading ``data`` as a workbook (it must be refused)."""
    with pytest.raises(InputFileError) as caught:
        read_workbook(SourceFile(data, name))
    text = str(caught.value)
    assert_one_line(text)
    assert text.startswith(f"{name}: "), text
    return text


# -- defusedxml is what openpyxl parses with


def test_openpyxl_parses_workbook_xml_with_defusedxml() -> None:
    assert openpyxl.xml.DEFUSEDXML is True
    assert openpyxl.xml.functions.iterparse.__module__.startswith("defusedxml")
    if not openpyxl.xml.LXML:
        assert openpyxl.xml.functions.fromstring.__module__.startswith("defusedxml")


def test_workbooks_are_not_read_when_openpyxl_lacks_defusedxml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(openpyxl.xml, "DEFUSEDXML", False)
    with pytest.raises(ConfigError, match="defusedxml"):
        read_workbook(SourceFile(zipped(dict(workbook_parts())), "plain.xlsx"))


def test_the_minimal_workbook_reads() -> None:
    (sheet,) = read_workbook(SourceFile(zipped(dict(workbook_parts())), "plain.xlsx"))
    assert [row.cells for row in sheet.rows] == [("Plate", "0.5"), ("Well", "0.25")]


# -- the limits refuse no real export


def _real_workbooks() -> list[Path]:
    roots = [SAMPLES, SHARED_REAL]
    found = [
        p
        for root in roots
        if root.is_dir()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.read_bytes()[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
    ]
    assert found, "no workbook among the samples"
    return found


def test_the_limits_leave_a_wide_margin_over_real_exports() -> None:
    biggest_ratio = 0.0
    for path in _real_workbooks():
        data = path.read_bytes()
        assert len(data) * 10 < guard.MAX_WORKBOOK_BYTES, path
        if data.startswith(b"PK"):
            guard.check_xlsx(data, str(path))
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                parts = archive.infolist()
            assert len(parts) * 10 < guard.MAX_PARTS, path
            assert sum(p.file_size for p in parts) * 10 < guard.MAX_UNCOMPRESSED_BYTES, path
            ratios = [p.file_size / max(p.compress_size, 1) for p in parts]
            biggest_ratio = max(biggest_ratio, *ratios)
        else:
            guard.check_xls(data, str(path))
    assert biggest_ratio * 5 < guard.MAX_COMPRESSION_RATIO, biggest_ratio


# -- zip container limits


def test_a_zip_bomb_part_is_refused_before_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zipped(dict(workbook_parts()), extra=[("xl/media/image1.bin", bytes(8 * MIB))])
    assert len(bomb) < 64 * 1024  # 8 MiB of zeros deflate ~1000:1
    monkeypatch.setattr(openpyxl, "load_workbook", _must_not_be_called)
    text = refusal(bomb)
    assert "'xl/media/image1.bin' inflates" in text and "100:1 limit" in text


def test_many_small_parts_inflating_past_the_total_limit_are_refused() -> None:
    # Each part is just at the size below which ratios are not checked: only the total
    # catches them (201 MiB declared, ~200 KiB on disk).
    chunk = bytes(guard.RATIO_CHECKED_FROM_BYTES)
    extra = [(f"xl/media/pad{i}.bin", chunk) for i in range(201)]
    text = refusal(zipped(dict(workbook_parts()), extra=extra))
    assert "inflates to 201.0 MiB, over the 200.0 MiB limit" in text


def test_too_many_parts_are_refused() -> None:
    extra = [(f"p{i}", b"") for i in range(guard.MAX_PARTS + 1)]
    assert "more than 10,000 parts" in refusal(zipped(dict(workbook_parts()), extra=extra))


@pytest.mark.parametrize(
    "name",
    ["../../evil.xml", "xl/../../evil.xml", "/etc/evil.xml", "..\\..\\evil.xml", "C:/evil.xml"],
)
def test_parts_named_like_paths_are_refused(name: str) -> None:
    text = refusal(zipped(dict(workbook_parts()), extra=[(name, b"<x/>")]))
    assert "part named like a path" in text


def test_a_part_given_twice_is_refused() -> None:
    data = zipped(
        dict(workbook_parts()), extra=[("xl/worksheets/sheet1.xml", PLAIN_SHEET.encode())]
    )
    assert "twice" in refusal(data)


def _must_not_be_called(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the library was asked to read a workbook over the size limit")


@pytest.mark.parametrize(
    "magic", [b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"], ids=["xlsx", "xls"]
)
def test_a_workbook_over_the_size_limit_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch, magic: bytes
) -> None:
    import xlrd

    monkeypatch.setattr(xlrd, "open_workbook", _must_not_be_called)
    monkeypatch.setattr(openpyxl, "load_workbook", _must_not_be_called)
    data = magic + bytes(guard.MAX_WORKBOOK_BYTES)
    text = refusal(data, "inbox/huge.xls")
    assert "over the 50.0 MiB limit" in text


def test_a_damaged_zip_is_refused_as_damaged() -> None:
    assert "damaged or not an xlsx" in refusal(b"PK\x03\x04" + b"\x00garbage" * 100)


# -- XML: external entities and entity expansion


def _with_doctype(xml: str, root: str, declarations: str) -> str:
    body = xml.removeprefix(XML_DECL)
    return f"{XML_DECL}<!DOCTYPE {root} [{declarations}]>{body}"


def _hostile_parts(part: str, declarations: str, reference: str) -> dict[str, str]:
    parts = workbook_parts()
    root = {"xl/worksheets/sheet1.xml": "worksheet", "xl/sharedStrings.xml": "sst",
            "xl/workbook.xml": "workbook", "[Content_Types].xml": "Types"}[part]  # fmt: skip
    xml = parts[part]
    if part == "xl/worksheets/sheet1.xml":
        xml = xml.replace("<v>0.5</v>", f"<v>{reference}</v>")
    elif part == "xl/sharedStrings.xml":
        xml = xml.replace("<t>Plate</t>", f"<t>{reference}</t>")
    parts[part] = _with_doctype(xml, root, declarations)
    return parts


XML_PARTS = [
    "xl/worksheets/sheet1.xml",
    "xl/sharedStrings.xml",
    "xl/workbook.xml",
    "[Content_Types].xml",
]


@pytest.mark.parametrize("part", XML_PARTS)
def test_an_external_entity_is_refused_and_nothing_is_read(part: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-7f3a-not-for-workbooks\n")
    declarations = (
        f'<!ENTITY e SYSTEM "file:///etc/hostname"><!ENTITY s SYSTEM "{secret.as_uri()}">'
    )
    data = zipped(dict(_hostile_parts(part, declarations, "&e;&s;")))
    name = str(tmp_path / "inbox" / "xxe.xlsx")
    with audited() as events, time_limit(10), pytest.raises(InputFileError) as caught:
        parse(SourceFile(data, name))  # detection, as the daemon does
    text = str(caught.value)
    assert_one_line(text)
    assert text.startswith(f"{name}: refused: the workbook's XML declares an entity"), text
    assert "SECRET-7f3a" not in text
    assert outside_access(events) == []


@pytest.mark.parametrize("part", XML_PARTS)
def test_an_entity_bomb_is_refused_at_once(part: str) -> None:
    declarations = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    data = zipped(dict(_hostile_parts(part, declarations, "&lol9;")))
    started = time.monotonic()
    with time_limit(10):
        text = refusal(data)
    assert time.monotonic() - started < 2
    assert "declares an entity" in text and "lol" * 5 not in text


def test_a_quarantined_xxe_workbook_gets_a_one_line_reason(tmp_path: Path) -> None:
    from saa_lab.store import Store
    from saa_lab.watcher import Daemon

    (tmp_path / "lab").mkdir()
    config_path = tmp_path / "lab" / "saa-lab.toml"
    config_path.write_text(
        '[lab]\ntimezone = "Europe/Berlin"\n[watch]\npoll_interval_seconds = 0.2\n'
        "stability_seconds = 0.3\nsettle_seconds = 0.02\n",
        encoding="utf-8",
    )
    config = load_config(config_path)
    data = zipped(
        dict(
            _hostile_parts(
                "xl/sharedStrings.xml", '<!ENTITY e SYSTEM "file:///etc/hostname">', "&e;"
            )
        )
    )
    store = Store(config.database_url)
    try:
        with Daemon(config, store) as daemon:
            config.inbox.mkdir(parents=True, exist_ok=True)
            temp = config.inbox / ".xxe.xlsx.part"
            temp.write_bytes(data)
            temp.rename(config.inbox / "xxe.xlsx")
            sidecar = config.quarantine / "xxe.xlsx.error.txt"
            assert daemon.wait_until(sidecar.exists, 15)
    finally:
        store.close()
    reason = sidecar.read_text(encoding="utf-8")
    assert reason.count("\n") == 1
    assert_one_line(reason.rstrip("\n"), "the quarantine reason")
    assert "declares an entity" in reason
    assert list(config.inbox.iterdir()) == []


# -- external links are neither read nor followed


def test_external_links_are_never_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    sheet = _sheet(
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><f>[1]Sheet1!A1</f><v>0.123</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2"><f>[2]Sheet1!A1</f></c></row>'
        f'<row r="3"><c r="A3" t="inlineStr"><is><t>web</t></is></c><c r="B3" t="str">'
        f'<f>WEBSERVICE("http://127.0.0.1:{port}/")</f></c></row>'
        '<row r="4"><c r="A4" t="inlineStr"><is><t>file</t></is></c><c r="B4" t="str">'
        '<f>HYPERLINK("file:///etc/passwd")</f><v>cached text</v></c></row>'
    )
    links = ("file:///etc/passwd", "http://127.0.0.1:1/", f"http://127.0.0.1:{port}/book.xlsx")
    data = zipped(dict(workbook_parts(sheet=sheet, links=links)))
    opened: list[dict[str, object]] = []
    real_load = openpyxl.load_workbook

    def spy(*args: object, **kwargs: object) -> object:
        opened.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(openpyxl, "load_workbook", spy)
    try:
        with audited() as events, time_limit(10):
            (read,) = read_workbook(SourceFile(data, "linked.xlsx"))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
    assert opened == [{"read_only": True, "data_only": True, "keep_links": False}]
    assert outside_access(events) == []
    # The cached value where the file has one, else nothing: never a 0, never the
    # linked book's 987654, never a line of /etc/passwd.
    assert [row.cells for row in read.rows] == [
        ("Plate", "0.123"),
        ("Well", ""),
        ("web", ""),
        ("file", "cached text"),
    ]
