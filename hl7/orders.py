"""Read HL7 v2 orders (ORM^O01, OML^O21) into :class:`OrderContext` values, and ACK them.

A clinic's order message becomes one :class:`~saa_lab.orders.OrderContext` per
order group (ORC with its OBR, the OBR's ask-at-order-entry OBX answers, NTE
notes and, in OML 2.5+, its SPM specimen)::

    MSH  MSH-4 sending facility (clinic fallback), MSH-10 control id, MSH-12 version
    PID  PID-3 patient id (first MR, else first id), PID-5 name, PID-7 birth, PID-8 sex
    ORC  ORC-1 NW/XO, ORC-2 placer no., ORC-3 filler no., ORC-12 provider,
         ORC-17 entering organisation, ORC-21 ordering facility
    OBR  OBR-2 placer no., OBR-3 filler no., OBR-7 collection time, OBR-16 provider
    OBX  ask-at-order-entry answers, OBX-3 one of :data:`ORDER_OBX_CODES` (coding system L)
    NTE  free text, kept as the order's note
    SPM  SPM-2 specimen id (accession), SPM-17 collection time        (OML, v2.5 and later)

The accession (the specimen id the lab's worklist uses) is, first found:
SPM-2 (filler-assigned part, else placer-assigned part), OBR-3/ORC-3 filler
order number, OBR-2/ORC-2 placer order number. The store finds an order by
accession *or* placer order number, so a tube labelled with either matches.

Why not hl7apy. Its strict group parsing of ORM_O01 and OML_O21 is known to
fail on valid messages (hl7apy #142, #148), and it would refuse a whole message
where we want to store the order and name the one missing field. The ER7 is
read here with the message's own encoding characters (MSH-1, MSH-2) and the
standard escapes (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\.br\\`` and ``\\Xhh\\``).
hl7apy remains the reference for what we *send*: every ACK from
:func:`build_ack` parses with hl7apy at the message's version (tests).

Segment grouping follows the message grammars (ORM_O01 2.3.1-2.5.1, OML_O21
2.4-2.5.1) leniently: an OBR without its own ORC in an ORM is a further order
sharing the previous ORC (a common sender habit); OML PRIOR_RESULT groups
(a PID/PD1/PV1/PV2/AL1 after the first ORC, or a second OBR without an ORC)
are skipped up to the next ORC whose ORC-1 is NW or XO.

ACK codes: **AR** when we cannot take the message at all (not ORM/OML, an
unsupported version, no readable MSH, no MSH-10 or one the store cannot keep, no
order in it); **AE** when an order lacks something we need or contradicts itself
(patient id, accession, formulation missing or unknown, an unreadable value,
collection before the dose, two different formulations, text with control
characters or longer than the store keeps, which is then left out, never cut);
those orders are still returned so they are stored, flagged with the problems;
**AA** otherwise (warnings, ERR severity W, may accompany AA). Times without a
UTC offset are in the lab's zone.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Final, Literal

from saa_lab.orders import OrderContext, normalize_formulation, parse_time

from .oru import AOE_DOSE_TIME_CODE, AOE_FORMULATION_CODE

__all__ = [
    "ACK_VERSIONS",
    "HL7_ERROR_CODES",
    "ORDER_OBX_CODES",
    "ORDER_VERSIONS",
    "AckCode",
    "OrderProblem",
    "OrderReading",
    "build_ack",
    "order_handler",
    "read_order",
    "storage_failure_problem",
]

AckCode = Literal["AA", "AE", "AR"]

#: HL7 versions whose ORM^O01 / OML^O21 we read (OML^O21 exists from 2.4 on).
ORDER_VERSIONS: Final = ("2.3.1", "2.4", "2.5", "2.5.1")
#: Versions an ACK may carry (hl7apy knows them); other versions are answered in 2.5.1.
ACK_VERSIONS: Final = ("2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")

#: HL7 table 0357 (message error condition codes) as used in our ACKs.
HL7_ERROR_CODES: Final[dict[int, str]] = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    203: "Unsupported version id",
    205: "Duplicate key identifier",
    207: "Application internal error",
}

# OrderContext attribute each ask-at-order-entry answer fills.
_FORMULATION, _DOSE, _DOSE_TIME, _ROUTE = "formulation", "dose", "dose_time", "route"
_PROTOCOL, _REACTION, _REACTION_TIME, _REACTION_GRADE = (
    "protocol",
    "reaction",
    "reaction_time",
    "reaction_grade",
)

#: OBX-3 codes (coding system "L") of the ask-at-order-entry answers we read:
#: code -> (text, what it fills, expected OBX-2 value type).
ORDER_OBX_CODES: Final[dict[str, tuple[str, str, str]]] = {
    AOE_FORMULATION_CODE[0]: (AOE_FORMULATION_CODE[1], _FORMULATION, "CE"),
    "SAA-DOSE": ("Asparaginase dose [IU/m2]", _DOSE, "NM"),
    AOE_DOSE_TIME_CODE[0]: (AOE_DOSE_TIME_CODE[1], _DOSE_TIME, "TS"),
    "SAA-ROUTE": ("Route of the asparaginase dose (IV, IM, SC)", _ROUTE, "CE"),
    "SAA-PROTOCOL": ("Treatment protocol", _PROTOCOL, "ST"),
    "SAA-REACTION": ("Infusion or allergic reaction to the dose (Y/N)", _REACTION, "CE"),
    "SAA-REACTION-TIME": ("Date and time of the reaction", _REACTION_TIME, "TS"),
    "SAA-REACTION-GRADE": ("CTCAE grade of the reaction (1-5)", _REACTION_GRADE, "NM"),
}
_CODE_OF: Final = {target: code for code, (_, target, _) in ORDER_OBX_CODES.items()}

# ORC-1 (HL7 table 0119) values that place or replace an order; others are refused.
_NEW_ORDER_CONTROLS: Final = frozenset({"NW", "XO"})
_SEXES: Final = frozenset({"F", "M", "O", "U", "A", "N"})  # HL7 table 0001
_ROUTES: Final[dict[str, str]] = {
    "IV": "IV",
    "INTRAVENOUS": "IV",
    "IM": "IM",
    "INTRAMUSCULAR": "IM",
    "SC": "SC",
    "SQ": "SC",
    "SUBQ": "SC",
    "SUBCUTANEOUS": "SC",
}
_YES: Final = frozenset({"Y", "YES", "TRUE", "1", "JA", "OUI"})
_NO: Final = frozenset({"N", "NO", "FALSE", "0", "NEIN", "NON"})
# Dose units accepted as IU/m² (UCUM and the spellings clinics use); empty means IU/m².
_DOSE_UNITS: Final = frozenset(
    {"", "IU/M2", "[IU]/M2", "[IU]/M^2", "IU/M^2", "IU/M²", "U/M2", "U/M^2", "U/M²", "IE/M2"}
)

_SEGMENT_NAME: Final = re.compile(r"[A-Z][A-Z0-9]{2}")
_TS: Final = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<z>[+-]\d{4})?"
)
_GRADE: Final = re.compile(r"(?:grade\s*)?([1-5])", re.IGNORECASE)
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")
# NM as sent (HL7: optional sign, digits, optional point; clinics also send a decimal
# comma). No exponent, no "_", no digits of other scripts, no inf/nan.
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
# "2,500": a decimal comma (2.5) or a thousands separator (2500)? Not guessed.
_AMBIGUOUS_COMMA: Final = re.compile(r"[+-]?[0-9]{1,3},[0-9]{3}")
#: Longest text the store keeps per OrderContext field (saa_lab.store.models.OrderRow),
#: and where the value comes from; longer values or control characters are not stored.
TEXT_LIMITS: Final[dict[str, tuple[int, str]]] = {
    "accession": (64, "SPM-2 / OBR-3 / OBR-2"),
    "patient_id": (64, "PID-3"),
    "protocol": (64, "OBX-5 (SAA-PROTOCOL)"),
    "clinic": (64, "ORC-21 / ORC-17 / MSH-4"),
    "placer_order_number": (64, "OBR-2 / ORC-2"),
    "patient_family_name": (128, "PID-5.1"),
    "patient_given_name": (128, "PID-5.2"),
    "ordering_provider": (256, "ORC-12 / OBR-16"),
}
_MAX_CONTROL_ID: Final = 64
_ACK_ESCAPES: Final = str.maketrans(
    {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\"}
)


# --- values ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OrderProblem:
    """One thing wrong with a received message, as its ACK's ERR segment says it.

    ``segment``/``sequence``/``position`` locate it (ERR-2: ``OBX^3^5``; a
    missing segment points at the order's OBR), ``field`` names it for people
    (``"PID-3"``, ``"OBX-5 (SAA-DOSE-TIME)"``), ``message`` says what is missing
    or contradictory. ``code`` is HL7 table 0357, ``severity`` E or W (table
    0516), ``order`` the index into :attr:`OrderReading.orders` or None when it
    concerns the whole message.
    """

    segment: str
    field: str
    message: str
    code: int = 101
    severity: Literal["E", "W"] = "E"
    sequence: int | None = None
    position: int | None = None
    order: int | None = None

    def __str__(self) -> str:
        if self.field == self.segment:  # about the whole segment or message
            return self.message
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class OrderReading:
    """What :func:`read_order` made of one message.

    ``orders`` holds every order we could read (also those with errors, so they
    are stored flagged); ``notes`` is parallel to it (the orders' NTE text, or
    None); ``errors`` lists errors and warnings; ``ack_code`` is what the ACK says.
    """

    orders: tuple[OrderContext, ...]
    ack_code: AckCode
    errors: tuple[OrderProblem, ...]
    notes: tuple[str | None, ...] = ()
    message_control_id: str | None = None

    def __post_init__(self) -> None:
        if not self.notes:
            object.__setattr__(self, "notes", (None,) * len(self.orders))
        if len(self.notes) != len(self.orders):
            msg = "notes must be parallel to orders"
            raise ValueError(msg)

    def problems_for(self, index: int) -> tuple[OrderProblem, ...]:
        """The problems of order ``index`` and those of the whole message."""
        return tuple(p for p in self.errors if p.order in (None, index))


# --- ER7 reading ----------------------------------------------------------------------


class _Unreadable(Exception):
    """The text has no usable MSH segment (answered AR)."""


@dataclass(frozen=True)
class _Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def unescape(self, text: str, *, formatted: bool = False) -> str:
        """Undo HL7 escapes; ``formatted`` (FT) turns ``\\.br\\`` into a newline."""
        esc = self.escape
        if not esc or esc not in text:
            return text
        plain = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": esc,
        }
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            end = text.find(esc, i + 1) if char == esc else -1
            if end == -1:
                out.append(char)
                i += 1
                continue
            sequence = text[i + 1 : end]
            if sequence in plain:
                out.append(plain[sequence])
            elif sequence == ".br":
                out.append("\n" if formatted else " ")
            elif sequence in ("H", "N") or sequence.startswith((".", "C", "M", "Z")):
                pass  # highlighting, formatting commands, character-set switches
            elif sequence.startswith("X") and _is_hex(sequence[1:]):
                out.append(bytes.fromhex(sequence[1:]).decode("latin-1"))
            else:
                out.append(text[i : end + 1])  # not an escape we know: keep it as sent
            i = end + 1
        return "".join(out)


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass
class _Segment:
    name: str
    fields: list[str]  # fields[n] is SEG-n (for MSH too: fields[1] is the field separator)
    sequence: int  # 1-based occurrence of this segment name in the message
    encoding: _Encoding

    def raw(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""

    def repetitions(self, number: int) -> list[str]:
        raw = self.raw(number)
        if self.name == "MSH" and number <= 2:
            return [raw]
        return raw.split(self.encoding.repetition) if raw else []

    def value(
        self, number: int, component: int = 1, sub: int = 1, *, rep: str | None = None
    ) -> str:
        """Unescaped SEG-number.component.sub of the first (or the given) repetition."""
        if rep is None:
            reps = self.repetitions(number)
            rep = reps[0] if reps else ""
        return _part(rep, component, sub, self.encoding)


def _part(rep: str, component: int, sub: int, encoding: _Encoding) -> str:
    components = rep.split(encoding.component)
    if component > len(components):
        return ""
    subs = components[component - 1].split(encoding.subcomponent)
    if sub > len(subs):
        return ""
    return encoding.unescape(subs[sub - 1]).strip()


def _whole(rep: str, encoding: _Encoding, *, formatted: bool = False) -> str:
    parts = (
        encoding.unescape(s, formatted=formatted).strip()
        for c in rep.split(encoding.component)
        for s in c.split(encoding.subcomponent)
    )
    return " ".join(p for p in parts if p)


def _segments(er7: str) -> list[_Segment]:
    """Split ER7 text into segments; raise :class:`_Unreadable` without a usable MSH."""
    text = er7.strip("\x0b\x1c\r\n \t\ufeff")
    # CR is the segment terminator; LF-only text (files, e-mail) is accepted too.
    lines = text.replace("\r\n", "\r").split("\r") if "\r" in text else text.split("\n")
    lines = [line.rstrip("\n") for line in lines if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise _Unreadable("the message does not start with an MSH segment")
    header = lines[0]
    separator = header[3]
    encoding_chars = header[4:].split(separator, 1)[0]
    specials = separator + encoding_chars
    if (
        separator.isalnum()
        or separator.isspace()
        or not 2 <= len(encoding_chars) <= 5
        or any(c.isalnum() or c.isspace() for c in encoding_chars)
        or len(set(specials)) != len(specials)
    ):
        raise _Unreadable("MSH-1/MSH-2 do not hold valid encoding characters")
    padded = encoding_chars[:4] + "\x00" * (4 - len(encoding_chars[:4]))
    encoding = _Encoding(
        field=separator,
        component=padded[0],
        repetition=padded[1],
        escape=padded[2].strip("\x00"),
        subcomponent=padded[3].strip("\x00") or "\x00",
    )
    segments: list[_Segment] = []
    counts: dict[str, int] = {}
    for line in lines:
        name = line[:3]
        if not _SEGMENT_NAME.fullmatch(name) or (len(line) > 3 and line[3] != separator):
            continue  # not a segment (a line break inside a field, noise): skipped
        counts[name] = counts.get(name, 0) + 1
        parts = line.split(separator)
        fields = [name, separator, *parts[1:]] if name == "MSH" else parts
        segments.append(_Segment(name, fields, counts[name], encoding))
    return segments


# --- value parsing --------------------------------------------------------------------


class _BadValue(ValueError):
    """A field's value cannot be read; the message says why."""


def _timestamp(text: str, zone: tzinfo, *, need_time: bool = True) -> datetime:
    """HL7 TS/DTM (``YYYYMMDDHHMM[SS[.S]][+ZZZZ]``) or ISO 8601; aware, in ``zone`` if no offset."""
    match = _TS.fullmatch(text.strip())
    if match is None:
        iso = parse_time(text, zone)
        if iso is None:
            msg = f"{text!r} is not an HL7 date/time (YYYYMMDDHHMM[SS][+ZZZZ])"
            raise _BadValue(msg)
        return _in_range(iso, text)
    g = match.groupdict()
    if need_time and g["h"] is None:
        msg = f"{text!r} has no time of day (YYYYMMDDHHMM needed)"
        raise _BadValue(msg)
    if g["d"] is None:
        msg = f"{text!r} is not a full date (YYYYMMDD needed)"
        raise _BadValue(msg)
    moment_zone = zone
    if g["z"]:
        sign = -1 if g["z"][0] == "-" else 1
        hours, minutes = int(g["z"][1:3]), int(g["z"][3:5])
        if hours > 14 or minutes > 59:
            msg = f"{text!r} has an impossible UTC offset"
            raise _BadValue(msg)
        moment_zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            int((g["f"] or "0").ljust(6, "0")),
            tzinfo=moment_zone,
        )
    except ValueError as error:
        msg = f"{text!r} is not a valid date/time ({error})"
        raise _BadValue(msg) from error
    return _in_range(moment, text)


def _in_range(moment: datetime, text: str) -> datetime:
    """``moment`` if it can be stored (in UTC); year 1 at +14:00 cannot."""
    try:
        moment.astimezone(UTC)
    except OverflowError as error:
        msg = f"{text!r} is out of range"
        raise _BadValue(msg) from error
    return moment


def _number(text: str) -> float:
    cleaned = text.strip()
    if not _DECIMAL.fullmatch(cleaned):
        msg = f"{text!r} is not a number"
        raise _BadValue(msg)
    if _AMBIGUOUS_COMMA.fullmatch(cleaned):
        whole, point = cleaned.replace(",", ""), cleaned.replace(",", ".")
        msg = f"{text!r} is ambiguous (decimal comma or thousands separator?): {whole} or {point}"
        raise _BadValue(msg)
    value = float(cleaned.replace(",", "."))
    if not math.isfinite(value) or value <= 0:
        msg = f"{text!r} is not a positive number"
        raise _BadValue(msg)
    return value


def _clean(text: str) -> str:
    """Problem texts quote received values; keep them on one printable line."""
    return _CONTROL_CHARS.sub(" ", text)


# --- ask-at-order-entry OBX -----------------------------------------------------------


def _obx_target(obx: _Segment) -> tuple[str, str] | None:
    """(what it fills, label code) for an OBX-3 we know, by code or by its text."""
    for component in (1, 4):  # identifier and alternate identifier
        code = obx.value(3, component).upper()
        if code in ORDER_OBX_CODES:
            return ORDER_OBX_CODES[code][1], code
    for component in (2, 5, 1):  # text, alternate text, a bare name in place of a code
        target = _target_from_text(obx.value(3, component))
        if target is not None:
            return target, _CODE_OF[target]
    return None


def _target_from_text(text: str) -> str | None:
    """Classify a free-text question name (no LOINC exists for these answers)."""
    words = set(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())
    if not words:
        return None
    timed = bool(words & {"time", "date", "datetime", "when", "timestamp"})
    if words & {"reaction", "hypersensitivity", "allergy", "allergic", "anaphylaxis"}:
        if words & {"grade", "ctcae", "severity"}:
            return _REACTION_GRADE
        return _REACTION_TIME if timed else _REACTION
    dosed = bool(words & {"dose", "dosing", "administration", "administered", "given"})
    if dosed and (timed or "last" in words):
        return _DOSE_TIME
    if "route" in words:
        return _ROUTE
    if words & {"protocol", "study", "trial", "regimen"}:
        return _PROTOCOL
    product = words & {"formulation", "product", "preparation", "type", "brand"}
    if words & {"dose", "dosage"} and not product:
        return _DOSE  # "Asparaginase dose", "Drug dose"
    if product or "drug" in words or words == {"asparaginase"}:
        return _FORMULATION
    return None


@dataclass
class _Answers:
    """The answers found for one order, with where each came from."""

    values: dict[str, object] = field(default_factory=dict)
    where: dict[str, _Segment] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # also answers we could not use


def _coded_candidates(obx: _Segment, rep: str) -> list[str]:
    """Code, text, alternate code, alternate text, original text; or the whole value."""
    enc = obx.encoding
    parts = [_part(rep, c, 1, enc) for c in (1, 2, 4, 5, 9)]
    return [p for p in parts if p] or [_whole(rep, enc)]


class _OrderReader:
    """Reads one order group into an OrderContext and its problems."""

    def __init__(self, zone: tzinfo, index: int, problems: list[OrderProblem]) -> None:
        self.zone = zone
        self.index = index
        self.problems = problems

    def problem(
        self,
        segment: _Segment | str,
        position: int | None,
        message: str,
        *,
        code: int = 102,
        severity: Literal["E", "W"] = "E",
        label: str | None = None,
    ) -> None:
        name = segment if isinstance(segment, str) else segment.name
        sequence = None if isinstance(segment, str) else segment.sequence
        self.problems.append(
            OrderProblem(
                segment=name,
                field=label or (f"{name}-{position}" if position else name),
                message=_clean(message),
                code=code,
                severity=severity,
                sequence=sequence,
                position=position,
                order=self.index,
            )
        )

    def answers(self, observations: Sequence[_Segment]) -> _Answers:
        found = _Answers()
        for obx in observations:
            target = _obx_target(obx)
            if target is None:
                shown = obx.value(3, 1) or obx.value(3, 2) or "(empty)"
                self.problem(
                    obx,
                    3,
                    f"observation {shown!r} is not one of the order questions we read; ignored",
                    code=103,
                    severity="W",
                )
                continue
            what, code = target
            label = f"OBX-5 ({code})"
            reps = obx.repetitions(5)
            if not reps or not _whole(reps[0], obx.encoding):
                self.problem(obx, 5, "no answer given", code=101, severity="W", label=label)
                continue
            found.answered.add(what)
            try:
                value = self._answer(what, obx, reps[0], code)
            except _BadValue as error:
                self.problem(obx, 5, str(error), label=label)
                continue
            if value is None:  # reported already, or deliberately not stored
                continue
            if what in found.values and found.values[what] != value:
                first = found.where[what]
                self.problem(
                    obx,
                    5,
                    f"contradicts OBX #{first.sequence} ({found.values[what]!r} vs {value!r})",
                    label=label,
                )
                continue
            found.values[what] = value
            found.where.setdefault(what, obx)
        return found

    def _answer(self, what: str, obx: _Segment, rep: str, code: str) -> object:
        enc = obx.encoding
        if what == _FORMULATION:
            return self._formulation(obx, rep, code)
        if what in (_DOSE_TIME, _REACTION_TIME):
            return _timestamp(_part(rep, 1, 1, enc), self.zone)
        if what == _DOSE:
            return self._dose(obx, rep, code)
        if what == _ROUTE:
            for candidate in _coded_candidates(obx, rep):
                route = _ROUTES.get(candidate.upper().replace(" ", ""))
                if route is not None:
                    return route
            msg = f"route {_whole(rep, enc)!r} is not IV, IM or SC"
            raise _BadValue(msg)
        if what == _PROTOCOL:
            return _part(rep, 1, 1, enc) or _whole(rep, enc)
        if what == _REACTION:
            answer = _part(rep, 1, 1, enc).upper() or _whole(rep, enc).upper()
            if answer in _YES:
                return True
            if answer in _NO:
                return False
            msg = f"reaction {answer!r} is not Y or N"
            raise _BadValue(msg)
        # reaction grade
        grade = _GRADE.fullmatch(_whole(rep, enc))
        if grade is None:
            msg = f"reaction grade {_whole(rep, enc)!r} is not a CTCAE grade 1-5"
            raise _BadValue(msg)
        return int(grade.group(1))

    def _formulation(self, obx: _Segment, rep: str, code: str) -> str | None:
        found: dict[str, str] = {}
        for candidate in _coded_candidates(obx, rep):
            formulation = normalize_formulation(candidate)
            if formulation is not None:
                found.setdefault(formulation, candidate)
        if not found:
            given = " / ".join(repr(c) for c in _coded_candidates(obx, rep))
            msg = (
                f"formulation {given} is unknown (expected PEG-asparaginase, "
                "calaspargase pegol, Erwinia, recombinant Erwinia or native E. coli)"
            )
            self.problem(obx, 5, msg, code=103, label=f"OBX-5 ({code})")
            return None
        if len(found) > 1:
            names = " vs ".join(repr(text) for text in found.values())
            msg = f"code and text name different formulations ({names})"
            raise _BadValue(msg)
        return next(iter(found))

    def _dose(self, obx: _Segment, rep: str, code: str) -> float | None:
        enc = obx.encoding
        first, second = _part(rep, 1, 1, enc), _part(rep, 2, 1, enc)
        if second:  # SN: comparator^number
            if first not in ("", "="):
                msg = f"dose {_whole(rep, enc)!r} is not an exact number"
                raise _BadValue(msg)
            value = _number(second)
        else:
            value = _number(first)
        units = obx.value(6, 1) or obx.value(6, 2)
        if units.upper().replace(" ", "") not in _DOSE_UNITS:
            self.problem(
                obx,
                6,
                f"dose unit {units!r} is not IU/m2; the dose is not stored",
                code=103,
                severity="W",
                label=f"OBX-6 ({code})",
            )
            return None
        return value


# --- order groups ---------------------------------------------------------------------


@dataclass
class _Group:
    orc: _Segment | None = None
    obr: _Segment | None = None
    shares_orc: bool = False  # an OBR under the previous order's ORC (ORM habit)
    observations: list[_Segment] = field(default_factory=list)
    notes: list[_Segment] = field(default_factory=list)
    specimens: list[_Segment] = field(default_factory=list)


_PATIENT_SEGMENTS: Final = frozenset({"PD1", "PV1", "PV2", "AL1"})


def _groups(segments: Sequence[_Segment], *, oml: bool) -> tuple[_Segment | None, list[_Group]]:
    """The patient's PID and the order groups, skipping OML prior results."""
    pid: _Segment | None = None
    groups: list[_Group] = []
    current: _Group | None = None
    prior = False  # inside an OML PRIOR_RESULT group
    for segment in segments[1:]:
        name = segment.name
        if name == "PID" or (name in _PATIENT_SEGMENTS and groups):
            if groups:
                prior = True
            elif pid is None and name == "PID":
                pid = segment
        elif name == "ORC":
            control = segment.value(1).upper()
            if prior and control not in _NEW_ORDER_CONTROLS:
                continue
            prior = False
            current = _Group(orc=segment)
            groups.append(current)
        elif name == "OBR":
            if prior:
                continue
            if current is None:
                current = _Group(obr=segment)
                groups.append(current)
            elif current.obr is None:
                current.obr = segment
            elif oml:
                prior = True  # OML: an OBR without its ORC starts ORDER_PRIOR
            else:
                current = _Group(orc=current.orc, obr=segment, shares_orc=True)
                groups.append(current)
        elif prior or current is None:
            continue
        elif name == "OBX":
            current.observations.append(segment)
        elif name == "NTE":
            current.notes.append(segment)
        elif name == "SPM":
            current.specimens.append(segment)
    return pid, groups


@dataclass(frozen=True)
class _Patient:
    patient_id: str | None = None
    family: str | None = None
    given: str | None = None
    birth_date: date | None = None
    sex: str | None = None


def _read_patient(pid: _Segment | None, problems: list[OrderProblem]) -> _Patient:
    def problem(position: int, message: str, code: int, severity: Literal["E", "W"]) -> None:
        problems.append(
            OrderProblem(
                segment="PID",
                field=f"PID-{position}",
                message=message,
                code=code,
                severity=severity,
                sequence=pid.sequence if pid else None,
                position=position,
            )
        )

    if pid is None:
        problem(3, "no PID segment: the patient identifier is missing", 101, "E")
        return _Patient()
    identifiers = [rep for rep in pid.repetitions(3) if _part(rep, 1, 1, pid.encoding)]
    chosen = next(
        (rep for rep in identifiers if _part(rep, 5, 1, pid.encoding).upper() == "MR"),
        identifiers[0] if identifiers else None,
    )
    if chosen is None:
        problem(3, "the patient identifier is missing", 101, "E")
    names = pid.repetitions(5)
    name = next(
        (n for n in names if _part(n, 7, 1, pid.encoding) == "L"), names[0] if names else ""
    )
    birth: date | None = None
    if pid.value(7):
        try:
            birth = _timestamp(pid.value(7), UTC, need_time=False).date()
        except _BadValue as error:
            problem(7, str(error), 102, "E")
    sex = pid.value(8).upper() or None
    if sex is not None and sex not in _SEXES:
        problem(8, f"sex {sex!r} is not in HL7 table 0001; not stored", 103, "W")
        sex = None
    return _Patient(
        patient_id=_part(chosen, 1, 1, pid.encoding) if chosen else None,
        family=_part(name, 1, 1, pid.encoding) or None,
        given=_part(name, 2, 1, pid.encoding) or None,
        birth_date=birth,
        sex=_clean(sex) if sex else None,
    )


def _provider(segment: _Segment | None, number: int) -> str | None:
    """XCN ``ID^family^given`` as ``"family given (ID)"``."""
    if segment is None:
        return None
    ident, family, given = (segment.value(number, c) for c in (1, 2, 3))
    name = " ".join(part for part in (family, given) if part)
    if name and ident:
        return f"{name} ({ident})"
    return name or ident or None


def _first(*values: str) -> str:
    return next((v for v in values if v), "")


def _read_group(
    group: _Group,
    index: int,
    msh: _Segment,
    patient: _Patient,
    zone: tzinfo,
    problems: list[OrderProblem],
) -> tuple[OrderContext, str | None] | None:
    reader = _OrderReader(zone, index, problems)
    orc, obr = group.orc, group.obr
    if orc is not None and not group.shares_orc:
        control = orc.value(1).upper()
        if not control:
            reader.problem(orc, 1, "order control empty; read as NW", code=101, severity="W")
        elif control not in _NEW_ORDER_CONTROLS:
            reader.problem(
                orc,
                1,
                f"order control {control!r} is not processed automatically (only NW and XO); "
                "the order was not changed - tell the laboratory",
                code=103,
            )
            return None

    numbers: dict[str, str] = {}
    for label, position in (("placer", 2), ("filler", 3)):
        in_obr = obr.value(position) if obr else ""
        in_orc = orc.value(position) if orc and not group.shares_orc else ""
        if in_obr and in_orc and in_obr != in_orc and obr is not None:
            reader.problem(
                obr,
                position,
                f"{label} order number {in_obr!r} differs from ORC-{position} {in_orc!r}",
            )
        numbers[label] = _first(in_obr, in_orc)

    specimen = group.specimens[0] if group.specimens else None
    if len(group.specimens) > 1:
        reader.problem(
            group.specimens[1], 2, "more than one specimen; only the first is read", severity="W"
        )
    specimen_id = _first(specimen.value(2, 2), specimen.value(2, 1)) if specimen else ""
    accession = _first(specimen_id, numbers["filler"], numbers["placer"])
    if not accession:
        reader.problem(
            obr or orc or "OBR",
            2,
            "no specimen id, filler or placer order number (SPM-2, OBR-3/ORC-3, OBR-2/ORC-2)",
            code=101,
        )

    collection: datetime | None = None
    where: tuple[_Segment, int] | None = None
    unreadable_collection = False
    if specimen is not None and specimen.value(17):
        where = (specimen, 17)
    elif obr is not None and obr.value(7):
        where = (obr, 7)
    if where is not None:
        try:
            collection = _timestamp(where[0].value(where[1]), zone)
        except _BadValue as error:
            reader.problem(where[0], where[1], str(error))
            unreadable_collection = True

    answers = reader.answers(group.observations)
    values = answers.values
    formulation = values.get(_FORMULATION)
    location: _Segment | str = obr or orc or "OBR"
    if _FORMULATION not in answers.answered:
        reader.problem(
            location,
            None,
            "no formulation answer (OBX with OBX-3 SAA-FORM)",
            code=101,
            label=f"OBX-5 ({_CODE_OF[_FORMULATION]})",
        )
    dose_time = values.get(_DOSE_TIME)
    if _DOSE_TIME not in answers.answered:
        reader.problem(
            location,
            None,
            "no dose date/time: the result cannot be related to the dose",
            code=101,
            severity="W",
            label=f"OBX-5 ({_CODE_OF[_DOSE_TIME]})",
        )
    if collection is None and where is None and not unreadable_collection:
        reader.problem(
            location,
            None,
            "no collection date/time (SPM-17 / OBR-7) yet",
            code=101,
            severity="W",
            label="SPM-17 / OBR-7",
        )
    if isinstance(dose_time, datetime) and collection is not None and collection < dose_time:
        assert where is not None
        reader.problem(
            where[0],
            where[1],
            f"collection {collection.isoformat()} is before the dose "
            f"{dose_time.isoformat()} (OBX #{answers.where[_DOSE_TIME].sequence})",
        )
    reaction = values.get(_REACTION)
    if reaction is False and (_REACTION_TIME in values or _REACTION_GRADE in values):
        reader.problem(
            answers.where[_REACTION],
            5,
            "reaction answered N, but a reaction time or grade is given",
            label=f"OBX-5 ({_CODE_OF[_REACTION]})",
        )

    clinic = _first(
        orc.value(21) if orc else "",
        _first(orc.value(17, 1), orc.value(17, 2)) if orc else "",
        msh.value(4),
    )
    # NTE-3 (FT) may repeat: one line per repetition, one line per NTE.
    lines = (
        _whole(rep, nte.encoding, formatted=True)
        for nte in group.notes
        for rep in nte.repetitions(3)
    )
    note = "\n".join(line for line in lines if line) or None

    order = OrderContext(
        accession=accession,
        patient_id=patient.patient_id,
        formulation=_str_or_none(formulation),
        dose_time=dose_time if isinstance(dose_time, datetime) else None,
        collection_time=collection,
        protocol=_str_or_none(values.get(_PROTOCOL)),
        clinic=clinic or None,
        placer_order_number=numbers["placer"] or None,
        source="hl7",
        patient_family_name=patient.family,
        patient_given_name=patient.given,
        birth_date=patient.birth_date,
        sex=patient.sex,
        ordering_provider=_provider(orc, 12) or _provider(obr, 16),
        dose_iu_per_m2=_float_or_none(values.get(_DOSE)),
        route=_str_or_none(values.get(_ROUTE)),
        reaction=reaction if isinstance(reaction, bool) else None,
        reaction_time=_time_or_none(values.get(_REACTION_TIME)),
        reaction_grade=_int_or_none(values.get(_REACTION_GRADE)),
        message_control_id=msh.value(10) or None,
    )
    return _storable(order, reader, location), note


def _storable(order: OrderContext, reader: _OrderReader, where: _Segment | str) -> OrderContext:
    """``order`` without text the store cannot keep (control characters, too long),
    each reported as an error: stored flagged, never cut short or changed."""
    changes: dict[str, str | None] = {}
    for name, (limit, source) in TEXT_LIMITS.items():
        value = getattr(order, name)
        if not isinstance(value, str) or not value:
            continue
        if _CONTROL_CHARS.search(value):
            why = "holds a control character"
        elif len(value) > limit:
            why = f"is longer than {limit} characters ({len(value)})"
        else:
            continue
        reader.problem(where, None, f"{value[:24]!r} {why}; not stored", label=source)
        changes[name] = "" if name == "accession" else None
    return replace(order, **changes) if changes else order  # type: ignore[arg-type]


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _float_or_none(value: object) -> float | None:
    return value if isinstance(value, float) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time_or_none(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


# --- reading a message ----------------------------------------------------------------


def _reject(message: str, *, code: int, position: int | None = None) -> OrderReading:
    problem = OrderProblem(
        segment="MSH",
        field=f"MSH-{position}" if position else "MSH",
        message=_clean(message),
        code=code,
        sequence=1,
        position=position,
    )
    return OrderReading(orders=(), ack_code="AR", errors=(problem,))


def read_order(er7: str, *, zone: tzinfo) -> OrderReading:
    """Read an ORM^O01 or OML^O21 message (ER7 text) into its orders.

    ``zone`` is the lab's time zone, used for times sent without a UTC offset.
    Never raises for bad input: what is wrong is in the reading's ``errors``
    and ``ack_code`` (see the module docstring).
    """
    try:
        segments = _segments(er7)
    except _Unreadable as error:
        return _reject(f"not an HL7 v2 message: {error}", code=100)
    msh = segments[0]
    message_type, trigger = msh.value(9, 1).upper(), msh.value(9, 2).upper()
    version = msh.value(12)
    control_id = msh.value(10)
    if (message_type, trigger) not in (("ORM", "O01"), ("OML", "O21")):
        accepted = "we accept ORM (event O01) and OML (event O21)"
        if message_type in ("ORM", "OML"):
            return _reject(
                f"event {trigger or '(empty)'} of {message_type} is not read; {accepted}",
                code=201,
                position=9,
            )
        return _reject(
            f"message type {message_type or '(empty)'} is not an order; {accepted}",
            code=200,
            position=9,
        )
    if version not in ORDER_VERSIONS or (message_type == "OML" and version == "2.3.1"):
        allowed = "2.4, 2.5, 2.5.1" if message_type == "OML" else ", ".join(ORDER_VERSIONS)
        return _reject(
            f"version {version or '(empty)'!r} is not supported for {message_type} ({allowed})",
            code=203,
            position=12,
        )
    if not control_id:
        return _reject("the message control id is missing", code=101, position=10)
    if _CONTROL_CHARS.search(control_id) or len(control_id) > _MAX_CONTROL_ID:
        return _reject(
            f"the message control id {control_id[:24]!r} holds a control character or is "
            f"longer than {_MAX_CONTROL_ID} characters",
            code=102,
            position=10,
        )

    problems: list[OrderProblem] = []
    pid, groups = _groups(segments, oml=message_type == "OML")
    if not groups:
        return _reject("the message holds no order (no ORC or OBR segment)", code=100)
    patient = _read_patient(pid, problems)
    orders: list[OrderContext] = []
    notes: list[str | None] = []
    for group in groups:
        read = _read_group(group, len(orders), msh, patient, zone, problems)
        if read is not None:
            orders.append(read[0])
            notes.append(read[1])
    _check_duplicates(orders, problems)
    code: AckCode = "AE" if any(p.severity == "E" for p in problems) else "AA"
    return OrderReading(
        orders=tuple(orders),
        ack_code=code,
        errors=tuple(problems),
        notes=tuple(notes),
        message_control_id=control_id,
    )


def _check_duplicates(orders: Sequence[OrderContext], problems: list[OrderProblem]) -> None:
    seen: dict[str, int] = {}
    for index, order in enumerate(orders):
        if not order.accession:
            continue
        if order.accession in seen:
            problems.append(
                OrderProblem(
                    segment="OBR",
                    field="OBR-2",
                    message=f"specimen {order.accession!r} is ordered twice in this message",
                    code=205,
                    order=index,
                )
            )
        seen.setdefault(order.accession, index)


# --- ACK ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Received:
    """What an ACK needs from the message it answers (empty when unreadable)."""

    application: list[str] = field(default_factory=list)
    facility: list[str] = field(default_factory=list)
    trigger: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5.1"
    charset: str = ""


def _received(er7: str) -> _Received:
    try:
        msh = _segments(er7)[0]
    except _Unreadable:
        return _Received()

    def components(number: int) -> list[str]:
        return (
            [_part(msh.repetitions(number)[0], c, 1, msh.encoding) for c in (1, 2, 3)]
            if msh.raw(number)
            else []
        )

    version = msh.value(12)
    trigger = msh.value(9, 2).upper()
    processing = msh.value(11).upper()
    return _Received(
        application=components(3),
        facility=components(4),
        trigger=trigger if re.fullmatch(r"[A-Z0-9]{3}", trigger) else "",
        control_id=msh.value(10),
        processing_id=processing if processing in ("P", "T", "D") else "P",
        version=version if version in ACK_VERSIONS else "2.5.1",
        charset=msh.value(18),
    )


def _esc(text: str) -> str:
    return _clean(text).translate(_ACK_ESCAPES)


def _hd(parts: Sequence[str]) -> str:
    return "^".join(_esc(p) for p in parts).rstrip("^")


def _ack_time(now: datetime) -> str:
    offset = now.utcoffset()
    if offset is None:
        msg = f"now must be timezone-aware, got {now!r}"
        raise ValueError(msg)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{now:%Y%m%d%H%M%S}{sign}{hours:02d}{minutes:02d}"


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def build_ack(
    er7_in: str,
    code: AckCode,
    problems: Iterable[OrderProblem],
    *,
    sending_application: str,
    sending_facility: str,
    now: datetime,
    control_id: str | None = None,
) -> str:
    """The ACK for the received message ``er7_in`` (ER7 text, segments joined by CR).

    MSH swaps sender and receiver (MSH-3/4 are ours), MSH-9 is
    ``ACK^<trigger>^ACK``, MSH-12 the received version (2.5.1 when we cannot
    answer in it); MSA-1 ``code``, MSA-2 the received MSH-10, MSA-3 a short
    text. Problems become ERR segments: from 2.5 on one ERR each (ERR-2
    location ``SEG^seq^field``, ERR-3 table 0357 code, ERR-4 severity, ERR-8 the
    text); before 2.5 the ACK allows one ERR, whose repeating ERR-1 holds one
    ``SEG^seq^field^code&text&HL70357`` per error (warnings are left out: ERR-1
    cannot mark them). ``control_id`` (MSH-10 of the ACK) defaults to a random one.
    """
    if code not in ("AA", "AE", "AR"):
        msg = f"code {code!r} is not AA, AE or AR"
        raise ValueError(msg)
    received = _received(er7_in)
    version = received.version
    modern = _version_tuple(version) >= (2, 5)
    listed = list(problems)
    # MSH-9.3 (message structure) exists from 2.3.1 on; earlier ACKs say just "ACK".
    message_type = "ACK"
    if _version_tuple(version) >= (2, 3, 1):
        message_type = f"ACK^{received.trigger}^ACK"
    msh = [
        "MSH",
        "^~\\&",
        _esc(sending_application),
        _esc(sending_facility),
        _hd(received.application),
        _hd(received.facility),
        _ack_time(now),
        "",
        message_type,
        _esc(control_id or uuid.uuid4().hex[:20].upper()),
        received.processing_id,
        version,
    ]
    if received.charset:
        msh += ["", "", "", "", "", _esc(received.charset)]
    segments = ["MSH|" + "|".join(msh[1:])]
    msa = ["MSA", code, _esc(received.control_id)]
    if _version_tuple(version) < (2, 7):  # MSA-3 is withdrawn in 2.7
        msa.append(_esc(_summary(code, listed)))
    segments.append("|".join(msa))
    if modern:
        segments += [_err_modern(p) for p in listed]
    else:
        errors = [p for p in listed if p.severity == "E"]
        if errors:
            segments.append("ERR|" + "~".join(_eld(p) for p in errors))
    return "\r".join(segments)


def _summary(code: AckCode, problems: Sequence[OrderProblem]) -> str:
    errors = [p for p in problems if p.severity == "E"]
    if code == "AA" or not errors:
        return "message accepted"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    first = str(errors[0])
    room = 80 - len(more)  # MSA-3 is ST(80)
    if len(first) > room:
        first = first[: room - 3].rsplit(" ", 1)[0] + "..."
    return first + more


def _location(problem: OrderProblem) -> str:
    parts = [problem.segment, str(problem.sequence or 1)]
    if problem.position is not None:
        parts.append(str(problem.position))
    return "^".join(parts)


def _err_modern(problem: OrderProblem) -> str:
    code_text = HL7_ERROR_CODES.get(problem.code, "Application error")
    fields = [
        "ERR",
        "",
        _location(problem),
        f"{problem.code}^{_esc(code_text)}^HL70357",
        problem.severity,
        "",
        "",
        "",
        _esc(str(problem)),
    ]
    return "|".join(fields)


def _eld(problem: OrderProblem) -> str:
    location = [problem.segment, str(problem.sequence or 1), str(problem.position or "")]
    text = _esc(str(problem)).replace("&", "\\T\\")
    return "^".join([*location, f"{problem.code}&{text}&HL70357"])


def storage_failure_problem(detail: str = "") -> OrderProblem:
    """The ERR of an AE sent when the orders could not be stored (resend later)."""
    message = "temporarily unable to store; resend"
    return OrderProblem(
        segment="MSH",
        field="MSH",
        message=f"{message} ({detail})" if detail else message,
        code=207,
        sequence=1,
    )


def order_handler(
    save: Callable[[OrderReading], None],
    *,
    zone: tzinfo,
    sending_application: str,
    sending_facility: str,
    clock: Callable[[], datetime] | None = None,
) -> Callable[[str], str]:
    """An MLLP ``on_message`` that reads an order, stores it with ``save``, returns the ACK.

    A rejected message (AR) is not stored. ``save`` gets every other reading
    (AA and AE: orders with problems are stored, flagged) and must raise when it
    cannot store; the MLLP server then answers AE 207, never AA.
    """
    now = clock or (lambda: datetime.now(UTC))

    def on_message(er7: str) -> str:
        reading = read_order(er7, zone=zone)
        if reading.ack_code != "AR":
            save(reading)
        return build_ack(
            er7,
            reading.ack_code,
            reading.errors,
            sending_application=sending_application,
            sending_facility=sending_facility,
            now=now(),
        )

    return on_message
