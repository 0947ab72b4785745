"""Hostile HL7 orders: every message is answered AA, AE or AR; nothing crashes or is invented.

Valid ORM^O01 and OML^O21 messages (invented) are damaged: segments and fields
deleted, duplicated and swapped, fields and components replaced by junk, escape
sequences (``\\X00\\``, ``\\X0D0A\\``, broken ones), huge repetitions, other encoding
characters, another field separator in MSH only, truncation (also inside MSH), other
segment terminators, MLLP framing; and text that is no HL7 at all.

The order handler the MLLP listener uses must return an ACK (never raise) whose
MSA-1 is AA, AE or AR, whose MSA-2 is the message's MSH-10, and whose AE/AR carries a
one-line reason (MSA-3 and ERR). An AR is not stored; otherwise what is stored holds
no invented value (a dose is a number written in the message, never 0), no control
character and nothing longer than the store's columns (PostgreSQL refuses those,
and the sender would be asked to resend for ever). A store-backed property runs the
listener's own ``store_reading`` on SQLite (and PostgreSQL when configured).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hostile_support import JUNK, assert_one_line, counted, hostile, pick
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from saa_lab.hl7.orders import OrderReading, order_handler, read_order
from saa_lab.intake import store_reading
from saa_lab.orders import FORMULATIONS, OrderContext
from saa_lab.store import Store
from saa_lab.store.models import OrderRow

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
# The store's text columns and their lengths, by OrderContext attribute.
LIMITS = {
    column.name: column.type.length
    for column in OrderRow.__table__.columns
    if getattr(column.type, "length", None) and column.name in OrderContext.__dataclass_fields__
}

# Invented messages (no real patient), one per structure we read.
ORM_231 = [
    "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500||ORM^O01|HX-ORM-231|P|2.3.1",
    "PID|1||MRN-HX-1^^^CHILDRENS^MR~4711^^^NAT^NI||Invented^Ivy^^^^^L||20170309|F",
    "PV1|1|O|ONC^^^CHILDRENS",
    "ORC|NW|HX-PL-1^ONCO-EHR|||||||20261120081000|||1234^Smith^Anna|||||ONC^Oncology||||"
    "Paediatric Oncology South",
    "OBR|1|HX-PL-1^ONCO-EHR||SAA^Asparaginase activity^L|||202611200815|||||||||1234^Smith^Anna",
    "NTE|1||Drawn from the central line.",
    "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L||||||F",
    "OBX|2|NM|SAA-DOSE^Asparaginase dose^L||2500|IU/m2^IU/m2^UCUM|||||F",
    "OBX|3|TS|SAA-DOSE-TIME^Date and time of last asparaginase dose^L||202611130900||||||F",
    "OBX|4|CE|SAA-ROUTE^Route^L||IV^Intravenous^HL70162||||||F",
    "OBX|5|ST|SAA-PROTOCOL^Treatment protocol^L||AIEOP-BFM ALL 2017||||||F",
    "OBX|6|CE|SAA-REACTION^Reaction^L||Y^Yes^HL70136||||||F",
    "OBX|7|TS|SAA-REACTION-TIME^Reaction time^L||202611130945+0100||||||F",
    "OBX|8|NM|SAA-REACTION-GRADE^Reaction grade^L||2||||||F",
]
OML_251 = [
    "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500+0100||OML^O21^OML_O21"
    "|HX-OML-251|P|2.5.1|||AL|NE",
    "PID|1||PAT-HX-42^^^CHILDRENS^MR||Invented^Max^Peter||20150704|M",
    "ORC|NW|HX-PL-9^ONCO-EHR|||SC||||20261120080000+0100|||5678^Brown^Ben^^^Dr|||||||||"
    "North Clinic^^^^^CHILDRENS",
    "OBR|1|HX-PL-9^ONCO-EHR||SAA^Asparaginase activity^L|||202611200815+0100",
    "OBX|1|CWE|^Asparaginase product||Rylaze||||||F",
    "OBX|2|NM|^Dose||25,5|IU/m2|||||F",
    "OBX|3|DTM|^Date/time of last dose||202611180800+0100||||||F",
    "OBX|4|ST|^Route of administration||IM||||||F",
    "SPM|1|HX-SPC-77&ONCO-EHR^HX-A26-0047&REFLAB||SER^Serum^HL70487|||||||||||||202611200815+0100",
]
ORM_24_TWO = [
    "MSH|^~\\&|EHR|WARD|SAA-LAB|REFLAB|20261120081500||ORM^O01|HX-ORM-24|P|2.4",
    "PID|1||PAT-HX-7^^^WARD^MR||Invented^Ada||20160101|F",
    "ORC|NW|HX-PL-20|||||||20261120081000",
    "OBR|1|HX-PL-20||SAA|||202611200815",
    "OBX|1|CE|SAA-FORM^^L||ERW^Erwinase^L||||||F",
    "OBX|2|TS|SAA-DOSE-TIME^^L||202611190900||||||F",
    "OBR|2|HX-PL-21||SAA|||202611200816",
    "OBX|1|CE|SAA-FORM^^L||PEG^^L||||||F",
    "OBX|2|NM|SAA-DOSE^^L||1000|[IU]/m2|||||F",
]
OML_24 = [
    "MSH|^~\\&|EHR|WARD|SAA-LAB|REFLAB|20261120081500||OML^O21|HX-OML-24|T|2.4",
    "PID|1||PAT-HX-8||Invented^Bo",
    "ORC|XO|HX-PL-30",
    "OBR|1|HX-PL-30|HX-FL-30|SAA",
    "OBX|1|ST|^Drug||crisantaspase",
]
MESSAGES = (ORM_231, OML_251, ORM_24_TWO, OML_24)

HL7_JUNK = (
    "\\X00\\", "\\X0D0A\\", "\\X0A\\", "\\Xzz\\", "\\X4\\", "\\F\\", "\\S\\\\T\\", "\\E\\",
    "\\", "\\.br\\", "\\H\\x\\N\\", "\\.sp5\\", "\\Cxxyy\\", "\\Z99\\", "\\X" + "41" * 40 + "\\",
    "^^^^", "~~~~", "&&&", "|", "abc", "0", "-1", "0.0", "1e400", "inf", "NaN", "1_0", "٥",
    "2,500", "20261399", "202613010000", "99999999999999", "00000000", "20261120250000",
    "2026-11-20T09:00", "0001-01-01T00:00+14:00", "9999-12-31T23:59-12:00", "202611200900+9999",
    "202611200900-1400", "Y", "N", "6", "grade 7", "=cmd|' /C calc'!A0", "A" * 70, "B" * 300,
    "\x00", "\x1c", "\x0b", "\u202e", "😀",
)  # fmt: skip
ENCODINGS = ("^~\\&", "^~\\", "^~", "^", "", "#~\\&", "^^\\&", "^~\\&#", "abcd", "^~\\& ", "|")
SEPARATORS = ("#", "^", "a", " ", "\\", "~", "\t", "||")
_DAMAGES = st.integers(1, 4)
_JUNK = st.one_of(st.sampled_from(HL7_JUNK), st.sampled_from(JUNK), st.text(max_size=10))


def _fields(segment: str) -> list[str]:
    return segment.split("|")


@st.composite
def damaged_messages(draw: st.DrawFn) -> str:
    segments = [_fields(s) for s in pick(draw, MESSAGES)]
    tail = ""
    terminator = "\r"
    for _ in range(draw(_DAMAGES)):
        kind = pick(draw, DAMAGE)
        if not segments:
            break
        at = pick(draw, range(len(segments)))
        segment = segments[at]
        position = pick(draw, range(1, max(2, len(segment))))
        if kind == "delete_segment":
            del segments[at]
        elif kind == "duplicate_segment":
            segments.insert(at, list(segment))
        elif kind == "swap_segments":
            other = pick(draw, range(len(segments)))
            segments[at], segments[other] = segments[other], segments[at]
        elif kind == "delete_field" and len(segment) > 1:
            del segment[position if position < len(segment) else -1]
        elif kind == "duplicate_field" and position < len(segment):
            segment.insert(position, segment[position])
        elif kind == "key_field":  # a field we read and store
            name, number = pick(draw, KEY_FIELDS)
            targets = [s for s in segments if s[0] == name]
            if targets:
                target = pick(draw, targets)
                while len(target) <= number:
                    target.append("")
                target[number] = draw(_JUNK)
        elif kind == "junk_field":
            while len(segment) <= position:
                segment.append("")
            segment[position] = draw(_JUNK)
        elif kind == "junk_component" and position < len(segment):
            parts = segment[position].split("^")
            parts[pick(draw, range(len(parts)))] = draw(_JUNK)
            segment[position] = "^".join(parts)
        elif kind == "repetitions" and position < len(segment):
            segment[position] = "~".join([segment[position] or "x"] * pick(draw, (2, 50, 3000)))
        elif kind == "control_id":
            if segments[0][0] == "MSH" and len(segments[0]) > 9:
                segments[0][9] = draw(_JUNK)
        elif kind == "encoding_characters":
            if segments[0][0] == "MSH" and len(segments[0]) > 1:
                segments[0][1] = pick(draw, ENCODINGS)
        elif kind == "field_separator":
            tail = "separator:" + pick(draw, SEPARATORS)
        elif kind == "terminator":
            terminator = pick(draw, ("\n", "\r\n", "", "\n\r", "\r\r"))
        elif kind == "noise_line":
            segments.insert(at, [pick(draw, ("", "hello", "MSH", "ZZZ", "12|x", "obx|1"))])
        elif kind == "truncate":
            tail = f"truncate:{draw(st.integers(0, 400))}"
    text = terminator.join("|".join(s) for s in segments)
    if tail.startswith("separator:") and text.startswith("MSH|"):
        text = "MSH" + tail.removeprefix("separator:") + text[4:]
    elif tail.startswith("truncate:"):
        text = text[: int(tail.removeprefix("truncate:"))]
    frame = pick(draw, ("", "", "", "\x0b", "\ufeff", "  \n"))
    return frame + text + pick(draw, ("", "\r", "\x1c\r", "\n\n"))


# (segment, field index in the "|"-split list: MSH-n is index n-1, others n)
KEY_FIELDS = (("MSH", 9), ("MSH", 3), ("MSH", 11), ("MSH", 17), ("PID", 3), ("PID", 5),
              ("PID", 7), ("PID", 8), ("ORC", 1), ("ORC", 2), ("ORC", 12), ("ORC", 21),
              ("OBR", 2), ("OBR", 3), ("OBR", 7), ("OBR", 16), ("SPM", 2), ("SPM", 17),
              ("OBX", 2), ("OBX", 3), ("OBX", 5), ("OBX", 5), ("OBX", 5), ("OBX", 6))  # fmt: skip
DAMAGE = ("key_field", "key_field", "key_field", "key_field", "delete_segment",
          "duplicate_segment", "swap_segments", "delete_field",
          "duplicate_field", "junk_field", "junk_field", "junk_field", "junk_component",
          "repetitions", "control_id", "encoding_characters", "field_separator",
          "terminator", "noise_line", "truncate")  # fmt: skip


# --- the property ---------------------------------------------------------------------

_ACK_ESCAPE = re.compile(r"\\([FSRTE])\\")
_ACK_PLAIN = {"F": "|", "S": "^", "R": "~", "T": "&", "E": "\\"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUMBER_TOKEN = re.compile(r"(?<![0-9A-Za-z_])[0-9]+(?:[.,][0-9]+)?(?![0-9A-Za-z_])")


def ack_unescape(text: str) -> str:
    return _ACK_ESCAPE.sub(lambda m: _ACK_PLAIN[m.group(1)], text)


def sent_control_id(er7: str) -> str | None:
    """MSH-10 as the sender wrote it, when MSH uses the standard encoding characters and
    the id has no escape sequence (otherwise None: not checked)."""
    text = er7.strip("\x0b\x1c\r\n \t\ufeff")
    lines = text.replace("\r\n", "\r").split("\r") if "\r" in text else text.split("\n")
    lines = [line for line in lines if line.strip()]
    if not lines or not lines[0].startswith("MSH|^~\\&|"):
        return None
    fields = lines[0].split("|")
    raw = fields[9] if len(fields) > 9 else ""
    value = raw.split("~")[0].split("^")[0].split("&")[0]
    return None if "\\" in value else value.strip()


def check_ack(er7: str, ack: str) -> str:
    """The ACK's code, after checking its shape, MSA-2 and reason."""
    assert isinstance(ack, str) and ack, "no ACK"
    segments = ack.split("\r")
    for segment in segments:
        assert re.fullmatch(r"(MSH|MSA|ERR)\|[^\n]*", segment), f"ACK segment {segment!r}"
        assert not _CONTROL.search(segment), f"control character in the ACK: {segment!r}"
    assert segments[0].startswith("MSH|^~\\&|"), segments[0]
    msa = segments[1].split("|")
    assert msa[0] == "MSA" and msa[1] in ("AA", "AE", "AR"), segments[1]
    code = msa[1]
    sent = sent_control_id(er7)
    if sent is not None:
        assert ack_unescape(msa[2]) == _CONTROL.sub(" ", sent), f"MSA-2 {msa[2]!r} != {sent!r}"
    if code != "AA":
        reasons = [ack_unescape(msa[3])] if len(msa) > 3 else []
        reasons += [ack_unescape(s.split("|")[8]) for s in segments[2:] if s.count("|") >= 8]
        reasons += [ack_unescape(s.split("|", 1)[1]) for s in segments[2:] if s.count("|") < 8]
        reasons = [r for r in reasons if r.strip() and r != "message accepted"]
        assert reasons, f"{code} without a reason: {ack!r}"
        for reason in reasons:
            assert_one_line(reason, "the reason")
    return code


def check_reading(er7: str, reading: OrderReading, code: str) -> None:
    assert reading.ack_code == code
    errors = [p for p in reading.errors if p.severity == "E"]
    assert (code == "AE") == bool(errors), f"{code} with errors {errors}"
    for problem in reading.errors:
        assert_one_line(str(problem), "a stored problem")
    numbers = {float(t.replace(",", ".")) for t in _NUMBER_TOKEN.findall(er7)}
    for order in reading.orders:
        check_order(order, numbers)
    sent = sent_control_id(er7)
    if sent is not None and reading.orders:
        assert reading.message_control_id == sent


def check_order(order: OrderContext, numbers: set[float]) -> None:
    for name, limit in LIMITS.items():
        value = getattr(order, name)
        if value is None:
            continue
        assert isinstance(value, str), f"{name} = {value!r}"
        assert not _CONTROL.search(value), f"{name} {value!r} holds a control character"
        assert len(value) <= limit, f"{name} is {len(value)} long; the store keeps {limit}"
    assert order.formulation is None or order.formulation in FORMULATIONS
    assert order.route in (None, "IV", "IM", "SC")
    assert order.sex in (None, "F", "M", "O", "U", "A", "N")
    if order.dose_iu_per_m2 is not None:
        dose = order.dose_iu_per_m2
        assert math.isfinite(dose) and dose > 0, f"dose {dose}"
        assert any(math.isclose(dose, n) for n in numbers), f"dose {dose} is not in the message"
    assert order.reaction_grade is None or 1 <= order.reaction_grade <= 5
    assert order.reaction_grade is None or float(order.reaction_grade) in numbers
    for moment in (order.dose_time, order.collection_time, order.reaction_time):
        assert moment is None or (isinstance(moment, datetime) and moment.utcoffset() is not None)
        assert moment is None or moment.astimezone(UTC)  # storable (no overflow)
    assert order.birth_date is None or isinstance(order.birth_date, date)


def answer(er7: str) -> tuple[str, list[OrderReading]]:
    saved: list[OrderReading] = []
    handler = order_handler(
        saved.append,
        zone=ZONE,
        sending_application="SAA-LAB",
        sending_facility="REFLAB",
        clock=lambda: NOW,
    )
    return handler(er7), saved


def check_message(er7: str) -> None:
    ack, saved = answer(er7)
    code = check_ack(er7, ack)
    if code == "AR":
        assert not saved, "a rejected message was stored"
        return
    assert len(saved) == 1
    check_reading(er7, saved[0], code)


@hostile(3000)
@given(damaged_messages())
@counted
def test_damaged_orders_are_answered_and_nothing_is_invented(er7: str) -> None:
    check_message(er7)


@hostile(700)
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
        st.text(max_size=200).map(lambda t: "MSH|^~\\&|" + t),
        st.text(alphabet="MSH|^~\\&\r\nOBXPIDRC0123456789 ", max_size=200),
    )
)
@counted
def test_text_that_is_no_order_is_answered(er7: str) -> None:
    check_message(er7)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m[0].split("|")[9])
def test_the_valid_messages_are_accepted(message: list[str]) -> None:
    er7 = "\r".join(message)
    ack, saved = answer(er7)
    assert check_ack(er7, ack) == "AA", ack
    check_reading(er7, saved[0], "AA")


# --- through the store ----------------------------------------------------------------

_messages = itertools.count()


@pytest.fixture
def order_store(database_url: str) -> Iterator[Store]:
    """A store on SQLite, and on PostgreSQL when configured (tests/conftest.py)."""
    store = Store(database_url)
    yield store
    store.close()


@hostile(300)
@given(er7=damaged_messages())
@counted
def test_damaged_orders_are_stored_or_rejected_never_failing(order_store: Store, er7: str) -> None:
    """What the handler takes (AA/AE), the store takes too, as it was read."""
    er7 = er7.replace("HX-", f"H{next(_messages)}X-")  # few examples resend another
    saved: list[OrderReading] = []

    def save(reading: OrderReading) -> None:
        store_reading(order_store, reading)  # must not raise: AE 207 means "resend"
        saved.append(reading)

    handler = order_handler(
        save, zone=ZONE, sending_application="SAA-LAB", sending_facility="REFLAB"
    )
    with order_store.session() as session:
        before = session.scalar(select(func.max(OrderRow.id))) or 0
    code = check_ack(er7, handler(er7))
    if code == "AR":
        return
    with order_store.session() as session:
        rows = session.scalars(
            select(OrderRow).where(OrderRow.id > before).order_by(OrderRow.id)
        ).all()
        stored = [(r.accession, r.patient_id, r.dose_iu_per_m2, r.formulation) for r in rows]
    orders = saved[0].orders
    read = [(o.accession, o.patient_id, o.dose_iu_per_m2, o.formulation) for o in orders]
    if len(stored) == len(read):  # else some were resends of an earlier example
        assert stored == read
    assert len(stored) <= len(read)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("OBX|2|NM|SAA-DOSE^Asparaginase dose^L||2500", "1_0", "not a number"),
        ("OBX|2|NM|SAA-DOSE^Asparaginase dose^L||2500", "\u0665", "not a number"),
        ("PID|1||MRN-HX-1", "MRN\\X00\\1", "control character"),
        ("PID|1||MRN-HX-1", "A" * 70, "longer than 64"),
        ("||Invented^Ivy", "In\\X0D0A\\vented^Ivy", "control character"),
        ("OBX|2|NM|SAA-DOSE^Asparaginase dose^L||2500", "2,500", "ambiguous"),
        (
            "OBX|7|TS|SAA-REACTION-TIME^Reaction time^L||202611130945+0100",
            "000101010000+1400",
            "out of range",
        ),
    ],
)
def test_found_by_the_properties(field: str, value: str, problem: str) -> None:
    """Inputs the properties found: each stored an invented or unstorable value before."""
    message = "\r".join(ORM_231)
    assert field in message
    damaged = message.replace(field, field.rsplit("|", 1)[0] + "|" + value, 1)
    reading = read_order(damaged, zone=ZONE)
    assert reading.ack_code == "AE", reading
    assert any(problem in str(p) for p in reading.errors), [str(p) for p in reading.errors]
    check_reading(damaged, reading, "AE")


@pytest.mark.parametrize("control_id", ["X" * 65, "ID\\X00\\1"])
def test_an_unstorable_control_id_is_rejected(control_id: str) -> None:
    """MSH-10 is stored with every order: one the store cannot keep is refused (AR)."""
    er7 = "\r".join(ORM_231).replace("HX-ORM-231", control_id)
    ack, saved = answer(er7)
    assert check_ack(er7, ack) == "AR" and not saved
    assert "control id" in ack
