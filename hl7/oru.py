"""Build the HL7 v2 ORU^R01 result message for one reported SAA result.

One :class:`ReportedResult` (a frozen value the release step assembles from the
stored result and its order) becomes one ORU^R01 message::

    MSH  header; MSH-10 is the caller's stable control id
    PID  patient (PID-3 MR number, or the accession with ID type ACSN)
    ORC  RE; ORC-2 placer order number, ORC-3 accession^sending facility
    OBR  OBR-7 collection time, OBR-22 report time, OBR-25 result status
    OBX  the activity: NM ``250``, or SN ``<^5`` / ``>^4000`` outside the limits
    NTE  one per comment (interpretation, dilution, ...)
    OBX  optional ask-at-order-entry context: formulation (CE), dose time (TS)

The segments sit in the ORU_R01 groups (PATIENT_RESULT / PATIENT /
ORDER_OBSERVATION / OBSERVATION) of versions 2.3.1, 2.4 and 2.5.1; the tests
parse every produced message back with hl7apy at STRICT validation level and
validate it.

Speed. ``build_oru_r01`` renders ER7 text directly from the value instead of
building an hl7apy tree. Measured on the development machine (CPython 3.11,
hl7apy 1.3.5; the tests' result variants, 2.5.1; median of 5 runs):

    build_oru_r01, direct ER7                     0.08-0.09 ms/message
    hl7apy Message built segment by segment       8.2 ms STRICT, 10.6 ms TOLERANT
    build_oru_r01_message (hl7apy parse)          8.9 ms STRICT, 8.5 ms TOLERANT
      + Message.validate()                        11.1 ms in all

A plate yields ~40 messages and the whole plate has a 250 ms budget end to end:
an hl7apy tree costs 330-450 ms per plate at either validation level (TOLERANT
is not faster), the direct text ~4 ms. So hl7apy is not on the production
path; it stays the reference: :func:`build_oru_r01_message` parses the exact
text we send into hl7apy's ORU_R01 group structure, and the tests validate
every variant in every version with it at STRICT level.

Numbers. :func:`format_number` renders values without float artifacts: values
of 10 or more are rounded to one decimal, smaller values to three significant
digits, both half-up on the shortest decimal representation of the float
(``12.25`` -> ``12.3``, ``0.12345`` -> ``0.123``); trailing zeros and a trailing
point are dropped (``250.0`` -> ``250``). The same rule applies to the number
in an SN value (``<^5``).

Text. Every free-text or identifier value is HL7-escaped with the default
encoding characters (``| ^ ~ \\ &`` -> ``\\F\\ \\S\\ \\R\\ \\E\\ \\T\\``). Line
breaks in comments (NTE-3 is FT) become ``\\.br\\``; control characters anywhere
else are refused. When the message holds any non-ASCII character, MSH-18 says
``UNICODE UTF-8`` (HL7's default without MSH-18 is ASCII); the outbox writes
UTF-8.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Final

from saa_lab.numbers import format_number

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hl7apy.core import Message

__all__ = [
    "AOE_DOSE_TIME_CODE",
    "AOE_FORMULATION_CODE",
    "SUPPORTED_VERSIONS",
    "ReportedResult",
    "build_oru_r01",
    "build_oru_r01_message",
    "format_number",
]

SUPPORTED_VERSIONS: Final = ("2.3.1", "2.4", "2.5.1")

#: OBX-3 of the ask-at-order-entry observations, in the local coding system "L".
AOE_FORMULATION_CODE: Final = ("SAA-FORM", "Asparaginase formulation administered")
AOE_DOSE_TIME_CODE: Final = ("SAA-DOSE-TIME", "Date and time of last asparaginase dose")

_COMPARATORS: Final = frozenset({"=", "<", ">"})
_RESULT_STATUSES: Final = frozenset({"F", "P", "C", "X"})
# HL7 table 0078 (abnormal flags): the subset a quantitative activity can carry.
_ABNORMAL_FLAGS: Final = frozenset({"", "L", "LL", "H", "HH", "N", "A", "<", ">"})
# HL7 table 0001 (administrative sex).
_SEXES: Final = frozenset({"F", "M", "O", "U", "A", "N"})
_PROCESSING_IDS: Final = frozenset({"P", "T", "D"})
# MSH-10 is ST(20); the id also names the outbox file, so keep it to safe characters.
_CONTROL_ID: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,19}")

_ESCAPES: Final = str.maketrans(
    {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\"}
)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")
_ENCODING_CHARACTERS: Final = "^~\\&"
# Large enough that quantizing any finite float to 0.1 never overflows the context.


@dataclass(frozen=True, kw_only=True)
class ReportedResult:
    """Everything one ORU^R01 message says about one specimen's SAA result.

    All datetimes must be timezone-aware; they are rendered in their own UTC
    offset (``20261121143000+0100``). Text is given unescaped; the builder
    escapes it. A value that breaks these rules is a bug in the caller and
    raises :class:`ValueError` on construction.
    """

    message_control_id: str  # MSH-10, 1-20 of [A-Za-z0-9._-], not starting with "."
    message_time: datetime  # MSH-7; also OBR-22 (results reported)
    sending_application: str  # MSH-3
    sending_facility: str  # MSH-4; namespace of the accession (filler order number)
    receiving_application: str  # MSH-5
    receiving_facility: str  # MSH-6
    accession: str  # specimen accession = filler order number, ORC-3 / OBR-3
    patient_id: str | None  # PID-3 with ID type MR; None: PID-3 is the accession, type ACSN
    patient_id_authority: str | None = None  # PID-3.4 assigning authority of patient_id
    patient_family_name: str | None = None  # PID-5.1
    patient_given_name: str | None = None  # PID-5.2; no name at all: PID-5 "^^^^^^U"
    birth_date: date | None = None  # PID-7
    sex: str | None = None  # PID-8, HL7 table 0001 (F, M, O, U, A, N)
    placer_order_number: str | None = None  # ORC-2 / OBR-2
    ordering_clinic: str | None = None  # ORC-21 ordering facility name
    collection_time: datetime | None = None  # OBR-7; also OBX-14 when observation_time is None
    observation_code: str = "SAA"  # OBX-3.1 and OBR-4.1
    observation_text: str = "Asparaginase activity [Enzymatic activity/volume] in Serum or Plasma"
    coding_system: str = "L"  # OBX-3.3 and OBR-4.3
    value: float | None  # OBX-5; None: no result, OBX-5 empty and OBX-11/OBR-25 "X"
    comparator: str = "="  # "=": OBX-2 NM; "<" or ">": OBX-2 SN, OBX-5 "<^5"
    units: str = "U/L"  # UCUM code, OBX-6 "U/L^U/L^UCUM"
    reference_range: str = ">=100"  # OBX-7
    abnormal_flag: str = ""  # OBX-8, HL7 table 0078 (L, N, <, >, ... or empty)
    result_status: str = "F"  # OBX-11 and OBR-25: F, P, C (X is implied by value None)
    observation_time: datetime | None = None  # OBX-14; defaults to collection_time
    analysis_time: datetime | None = None  # OBX-19 (2.4 and later; not sent in 2.3.1)
    comments: tuple[str, ...] = ()  # one NTE each after the result OBX
    formulation: str | None = None  # AOE OBX, value type CE, text in component 2
    formulation_code: str | None = None  # AOE OBX component 1 (coding system "L") when known
    dose_time: datetime | None = None  # AOE OBX (TS) with the last dose's date and time
    processing_id: str = "P"  # MSH-11: P production, T training, D debugging

    def __post_init__(self) -> None:
        if not _CONTROL_ID.fullmatch(self.message_control_id):
            msg = (
                f"message_control_id {self.message_control_id!r} must be 1-20 characters "
                "of letters, digits, '.', '_' and '-', not starting with '.'"
            )
            raise ValueError(msg)
        for name in (
            "message_time",
            "collection_time",
            "observation_time",
            "analysis_time",
            "dose_time",
        ):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                msg = f"{name} must be timezone-aware, got {moment!r}"
                raise ValueError(msg)
        for name in ("sending_application", "sending_facility", "accession"):
            if not getattr(self, name):
                msg = f"{name} must not be empty"
                raise ValueError(msg)
        if self.patient_id == "":
            msg = "patient_id must be None (unknown) or non-empty"
            raise ValueError(msg)
        _check_choice("comparator", self.comparator, _COMPARATORS)
        _check_choice("result_status", self.result_status, _RESULT_STATUSES)
        _check_choice("abnormal_flag", self.abnormal_flag, _ABNORMAL_FLAGS)
        _check_choice("processing_id", self.processing_id, _PROCESSING_IDS)
        if self.sex is not None:
            _check_choice("sex", self.sex, _SEXES)
        if self.value is None:
            if self.comparator != "=" or self.abnormal_flag:
                msg = "a result without a value has no comparator and no abnormal flag"
                raise ValueError(msg)
        else:
            if not math.isfinite(self.value):
                msg = f"value must be a finite number, got {self.value!r}"
                raise ValueError(msg)
            if self.result_status == "X":
                msg = "result_status 'X' (no result) needs value None"
                raise ValueError(msg)
        if self.formulation_code is not None and self.formulation is None:
            msg = "formulation_code needs the formulation text as well"
            raise ValueError(msg)
        if isinstance(self.comments, str):
            msg = "comments must be a tuple of strings, not one string"
            raise TypeError(msg)
        object.__setattr__(self, "comments", tuple(self.comments))

    @property
    def effective_status(self) -> str:
        """OBX-11/OBR-25 as sent: ``X`` when there is no value, else ``result_status``."""
        return "X" if self.value is None else self.result_status


def build_oru_r01(result: ReportedResult, *, version: str = "2.5.1") -> str:
    """Return the ORU^R01 message for ``result`` as ER7 text.

    Segments are joined by ``"\\r"``; there is no separator after the last
    segment (the outbox file convention adds one, see ``outbox.py``).
    ``version`` is one of :data:`SUPPORTED_VERSIONS` and goes to MSH-12.
    """
    _check_choice("version", version, frozenset(SUPPORTED_VERSIONS))
    body = [
        _pid(result),
        _orc(result),
        _obr(result),
        *_result_observation(result, version),
        *_aoe_observations(result),
    ]
    non_ascii = any(not segment.isascii() for segment in body)
    return "\r".join([_msh(result, version, utf8=non_ascii), *body])


def build_oru_r01_message(
    result: ReportedResult, *, version: str = "2.5.1", strict: bool = True
) -> Message:
    """Return the message as an ``hl7apy.core.Message`` in the ORU_R01 group structure.

    The text from :func:`build_oru_r01` is parsed with the version from its
    MSH-12 (never hl7apy's default version), STRICT unless ``strict`` is false.
    Call ``.validate()`` on the result for hl7apy's full structure check. This
    costs ~7-11 ms per message; use it for checks, not on the delivery path.
    Note that hl7apy re-escapes text on ``to_er7()`` (``\\.br\\`` becomes
    ``\\E\\.br\\E\\``), so send the text from :func:`build_oru_r01`, not this.
    """
    from hl7apy.consts import VALIDATION_LEVEL  # heavy; only for checks
    from hl7apy.parser import parse_message

    level = VALIDATION_LEVEL.STRICT if strict else VALIDATION_LEVEL.TOLERANT
    return parse_message(
        build_oru_r01(result, version=version), validation_level=level, find_groups=True
    )


# --- segments -------------------------------------------------------------------------


def _msh(result: ReportedResult, version: str, *, utf8: bool) -> str:
    return _segment(
        "MSH",
        {
            2: _ENCODING_CHARACTERS,
            3: _text(result.sending_application),
            4: _text(result.sending_facility),
            5: _text(result.receiving_application),
            6: _text(result.receiving_facility),
            7: _timestamp(result.message_time),
            9: "ORU^R01^ORU_R01",
            10: result.message_control_id,
            11: result.processing_id,
            12: version,
            18: "UNICODE UTF-8" if utf8 else "",
        },
    )


def _pid(result: ReportedResult) -> str:
    if result.patient_id is not None:
        authority = _text(result.patient_id_authority or "")
        identifier = f"{_text(result.patient_id)}^^^{authority}^MR"
    else:
        identifier = f"{_text(result.accession)}^^^{_text(result.sending_facility)}^ACSN"
    family, given = result.patient_family_name or "", result.patient_given_name or ""
    # PID-5 is required; without a name it is empty with name type U (unspecified).
    name = _components(_text(family), _text(given)) if family or given else "^^^^^^U"
    return _segment(
        "PID",
        {
            1: "1",
            3: identifier,
            5: name,
            7: f"{result.birth_date:%Y%m%d}" if result.birth_date else "",
            8: result.sex or "",
        },
    )


def _orc(result: ReportedResult) -> str:
    return _segment(
        "ORC",
        {
            1: "RE",
            2: _text(result.placer_order_number or ""),
            3: _filler_order_number(result),
            21: _text(result.ordering_clinic or ""),
        },
    )


def _obr(result: ReportedResult) -> str:
    return _segment(
        "OBR",
        {
            1: "1",
            2: _text(result.placer_order_number or ""),
            3: _filler_order_number(result),
            4: _observation_identifier(result),
            7: _timestamp(result.collection_time) if result.collection_time else "",
            22: _timestamp(result.message_time),
            25: result.effective_status,
        },
    )


def _result_observation(result: ReportedResult, version: str) -> list[str]:
    if result.value is None:
        value_type, value = "NM", ""
    elif result.comparator == "=":
        value_type, value = "NM", format_number(result.value)
    else:
        value_type, value = "SN", f"{result.comparator}^{format_number(result.value)}"
    observed = result.observation_time or result.collection_time
    fields: dict[int, str] = {
        1: "1",
        2: value_type,
        3: _observation_identifier(result),
        4: "1",  # sub-id; required by 2.3.1, harmless later
        5: value,
        6: _components(_text(result.units), _text(result.units), "UCUM"),
        7: _text(result.reference_range),
        8: result.abnormal_flag,
        11: result.effective_status,
        14: _timestamp(observed) if observed else "",
    }
    if result.analysis_time and version != "2.3.1":  # OBX-19 arrived in 2.4
        fields[19] = _timestamp(result.analysis_time)
    notes = [
        _segment("NTE", {1: str(number), 2: "L", 3: _text(comment, line_breaks=True)})
        for number, comment in enumerate(result.comments, start=1)
    ]
    return [_segment("OBX", fields), *notes]


def _aoe_observations(result: ReportedResult) -> list[str]:
    # The order's context travels as ask-at-order-entry observations after the result.
    status = "F" if result.effective_status == "X" else result.effective_status
    observations: list[tuple[str, tuple[str, str], str]] = []
    if result.formulation is not None:
        coded = _components(
            _text(result.formulation_code or ""),
            _text(result.formulation),
            "L" if result.formulation_code else "",
        )
        # CE rather than CWE: HL7 table 0125 (value types) has no CWE before v2.6.
        observations.append(("CE", AOE_FORMULATION_CODE, coded))
    if result.dose_time is not None:
        observations.append(("TS", AOE_DOSE_TIME_CODE, _timestamp(result.dose_time)))
    return [
        _segment(
            "OBX",
            {
                1: str(set_id),
                2: value_type,
                3: _components(_text(code), _text(text), "L"),
                4: "1",
                5: value,
                11: status,
            },
        )
        for set_id, (value_type, (code, text), value) in enumerate(observations, start=2)
    ]


def _filler_order_number(result: ReportedResult) -> str:
    return _components(_text(result.accession), _text(result.sending_facility))


def _observation_identifier(result: ReportedResult) -> str:
    return _components(
        _text(result.observation_code), _text(result.observation_text), _text(result.coding_system)
    )


# --- encoding -------------------------------------------------------------------------


def _segment(name: str, fields: Mapping[int, str]) -> str:
    """Join numbered fields into a segment; MSH counts its field separator as MSH-1."""
    first = 2 if name == "MSH" else 1
    last = max((number for number, text in fields.items() if text), default=first - 1)
    return "|".join([name, *(fields.get(number, "") for number in range(first, last + 1))])


def _components(*parts: str) -> str:
    return "^".join(parts).rstrip("^")


def _text(value: str, *, line_breaks: bool = False) -> str:
    """HL7-escape ``value``; ``line_breaks`` turns newlines into ``\\.br\\`` (FT fields)."""
    lines = _LINE_BREAK.split(value) if line_breaks else [value]
    if any(_CONTROL_CHARS.search(line) for line in lines):
        msg = f"control characters are not allowed in HL7 text: {value!r}"
        raise ValueError(msg)
    return "\\.br\\".join(line.translate(_ESCAPES) for line in lines)


def _timestamp(moment: datetime) -> str:
    offset = moment.utcoffset()
    if offset is None:
        msg = f"timestamps must be timezone-aware, got {moment!r}"
        raise ValueError(msg)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{moment:%Y%m%d%H%M%S}{sign}{hours:02d}{minutes:02d}"


def _check_choice(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        msg = f"{name} {value!r} is not one of {sorted(allowed)}"
        raise ValueError(msg)
