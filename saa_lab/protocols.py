"""Protocol rule sets (``config/protocols/<name>.toml``), validated on load.

A protocol says, per formulation, *when* a sample may be interpreted (a window
of hours since the dose) and *what* a value means there: each rule names its
formulations, the window, a comparison (below the threshold, below the LLOQ,
below or above a target band), the flag it raises, a comment and a
recommendation. Every interpretation stores the protocol's name, its version (a
hash of the file's bytes, like assays) and the id of the rule that applied.

Matching is pure: :meth:`ProtocolDefinition.match` takes a formulation, the
hours since the dose and a value, and returns the rules whose window applies and
the first one (in file order) whose comparison holds. ``interpret`` builds the
flag and the text from that; patient history (:class:`PriorResult`) is
re-evaluated with the same rules to decide whether a low sample confirms an
earlier one.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .assay import find_named_file
from .errors import ConfigError
from .orders import FORMULATIONS, normalize_formulation

__all__ = [
    "DEFAULT_PROTOCOL",
    "ConfirmationSettings",
    "LoadedProtocol",
    "PriorResult",
    "ProtocolCatalog",
    "ProtocolDefinition",
    "ProtocolRule",
    "ReactionSettings",
    "RuleFlag",
    "RuleMatch",
    "hours_between",
    "load_protocol",
    "load_protocols",
    "normalize_protocol_name",
]

DEFAULT_PROTOCOL = "consensus-2016"

Comparison = Literal["below-threshold", "below-lloq", "below-band", "above-band"]
RuleFlag = Literal[
    "possible-silent-inactivation",
    "below-threshold",
    "below-lloq",
    "target-band-below",
    "target-band-above",
]
_BAND_COMPARISONS = ("below-band", "above-band")
_BAND_FLAGS = ("target-band-below", "target-band-above")
_SI_FLAG = "possible-silent-inactivation"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtocolRule(_Strict):
    """One check at one sampling time point.

    The window is inclusive at both ends, in hours from the dose to the sample's
    collection. ``below-lloq`` holds for a ``<`` result whose bound does not exceed
    the threshold (a sample below the LLOQ only at a high dilution proves nothing).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=48)
    timepoint: str = Field(min_length=1)  # how clinicians name it: "day 7", "48 h", "trough"
    formulations: tuple[str, ...] = Field(min_length=1)
    hours_from: float = Field(ge=0)
    hours_to: float = Field(gt=0)
    comparison: Comparison
    band_u_per_l: tuple[float, float] | None = None  # [low, high] for the band comparisons
    flag: RuleFlag
    comment: str = Field(min_length=1)
    recommendation: str = ""

    @field_validator("formulations")
    @classmethod
    def _known_formulations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        codes = []
        for text in value:
            code = normalize_formulation(text)
            if code is None:
                known = list(FORMULATIONS)
                hint = difflib.get_close_matches(text, known, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                msg = f"unknown formulation {text!r}{extra}; known: {', '.join(known)}"
                raise ValueError(msg)
            codes.append(code)
        return tuple(codes)

    @model_validator(mode="after")
    def _consistent(self) -> ProtocolRule:
        if self.hours_from >= self.hours_to:
            msg = f"hours_from ({self.hours_from:g}) must be below hours_to ({self.hours_to:g})"
            raise ValueError(msg)
        banded = self.comparison in _BAND_COMPARISONS
        if banded and self.band_u_per_l is None:
            msg = f"comparison {self.comparison!r} needs band_u_per_l = [low, high]"
            raise ValueError(msg)
        if self.band_u_per_l is not None:
            low, high = self.band_u_per_l
            if not 0 < low < high:
                msg = "band_u_per_l must be [low, high] with 0 < low < high"
                raise ValueError(msg)
        if (self.flag in _BAND_FLAGS) != banded:
            msg = (
                f"flag {self.flag!r} does not fit comparison {self.comparison!r} "
                "(target-band-* flags go with the band comparisons, and only they)"
            )
            raise ValueError(msg)
        return self

    def applies_to(self, formulation: str, hours: float) -> bool:
        return formulation in self.formulations and self.hours_from <= hours <= self.hours_to

    @property
    def window_text(self) -> str:
        return f"{self.timepoint}, {self.hours_from:g}–{self.hours_to:g} h after the dose"

    def holds(self, value: float, comparator: str, threshold: float) -> bool:
        """Whether the comparison holds for ``value`` (``comparator`` ``=``, ``<`` or ``>``)."""
        if self.comparison == "below-lloq":
            return comparator == "<" and value <= threshold
        if self.comparison == "below-threshold":
            return _below(value, comparator, threshold)
        assert self.band_u_per_l is not None  # validated
        low, high = self.band_u_per_l
        if self.comparison == "below-band":
            return _below(value, comparator, low)
        return value > high if comparator == "=" else (comparator == ">" and value >= high)


def _below(value: float, comparator: str, limit: float) -> bool:
    if comparator == "<":
        return value <= limit
    return comparator == "=" and value < limit


class ReactionSettings(_Strict):
    """Texts for samples taken after an infusion/allergic reaction (domain brief §2.4)."""

    activity_present_comment: str = (
        "Activity after the reported reaction is at or above the threshold: not consistent "
        "with neutralising hypersensitivity (an allergic-like reaction is possible)."
    )
    activity_present_recommendation: str = (
        "If the reaction was clinically tolerated, the formulation need not be switched "
        "(Kloos et al., Pediatr Blood Cancer)."
    )
    activity_low_comment: str = (
        "Activity after the reported reaction is below the threshold: consistent with "
        "inactivation by neutralising hypersensitivity; confirm with a repeat sample."
    )
    activity_low_recommendation: str = (
        "Repeat sample recommended to confirm inactivation before switching formulation."
    )
    # A reaction of this CTCAE grade or higher: switch on clinical grounds, without a level
    # (Cecconello et al., Hematol Transfus Cell Ther 2019, Fig. 1). 0 disables the note.
    switch_grade: int = Field(default=2, ge=0, le=5)
    switch_comment: str = (
        "For a grade ≥2 allergic reaction the 2016 consensus advises switching formulation "
        "on clinical grounds, without waiting for an activity level."
    )


class ConfirmationSettings(_Strict):
    """When a second low sample confirms silent inactivation."""

    # The two samples' doses at most this many days apart (None: no limit).
    max_days_between_doses: float | None = Field(default=None, gt=0)
    comment: str = "Silent inactivation confirmed by two consecutive low samples."
    recommendation: str = (
        "Switch to another asparaginase formulation according to the protocol (clinical decision)."
    )


class ProtocolDefinition(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    aliases: tuple[str, ...] = ()
    threshold_u_per_l: float = Field(default=100.0, gt=0)
    reaction: ReactionSettings = ReactionSettings()
    confirmation: ConfirmationSettings = ConfirmationSettings()
    rules: tuple[ProtocolRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> ProtocolDefinition:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice; rule ids must be unique")
            seen.add(rule.id)
        return self

    def windows_for(self, formulation: str) -> tuple[ProtocolRule, ...]:
        """One rule per distinct window for ``formulation`` (for texts), in file order."""
        out: dict[tuple[str, float, float], ProtocolRule] = {}
        for rule in self.rules:
            if formulation in rule.formulations:
                out.setdefault((rule.timepoint, rule.hours_from, rule.hours_to), rule)
        return tuple(out.values())

    def match(self, formulation: str, hours: float, value: float, comparator: str) -> RuleMatch:
        window = tuple(r for r in self.rules if r.applies_to(formulation, hours))
        fired = next(
            (r for r in window if r.holds(value, comparator, self.threshold_u_per_l)), None
        )
        return RuleMatch(window=window, fired=fired)


@dataclass(frozen=True)
class RuleMatch:
    window: tuple[ProtocolRule, ...]  # the rules whose formulation and window apply
    fired: ProtocolRule | None  # the first of them whose comparison holds

    @property
    def qualifies_for_inactivation(self) -> bool:
        """The sample was taken where the protocol assesses silent inactivation."""
        return any(rule.flag == _SI_FLAG for rule in self.window)

    @property
    def low_for_inactivation(self) -> bool:
        return self.fired is not None and self.fired.flag == _SI_FLAG


@dataclass(frozen=True)
class PriorResult:
    """One earlier result of the same patient, as stored (activity in U/L, as reported)."""

    activity_u_per_l: float | None
    comparator: str  # "=", "<" or ">"
    flag: str
    collection_time: datetime | None
    dose_time: datetime | None
    formulation: str | None
    protocol: str | None = None
    accession: str | None = None


def hours_between(dose: datetime | None, collection: datetime | None) -> float | None:
    if dose is None or collection is None:
        return None
    return (collection - dose).total_seconds() / 3600


def normalize_protocol_name(text: str) -> str:
    """``AIEOP-BFM ALL 2009`` and ``aieop bfm all-2009`` compare equal."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


@dataclass(frozen=True)
class LoadedProtocol:
    definition: ProtocolDefinition
    path: Path
    version: str

    @property
    def name(self) -> str:
        return self.definition.name

    def answers_to(self, requested: str) -> bool:
        """Whether an order's protocol text names this protocol (name or alias)."""
        key = normalize_protocol_name(requested)
        names = (self.definition.name, *self.definition.aliases)
        return bool(key) and any(normalize_protocol_name(n) == key for n in names)


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = ProtocolDefinition
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        if model is ProtocolDefinition and part == "rules":
            model = ProtocolRule
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model


def _format_errors(exc: ValidationError, data: dict[str, Any]) -> str:
    """``rules[2] (id 'peg-day7').hours_to: ...``: the key, with the rule's id when known."""
    rules = data.get("rules")
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        parts: list[str] = []
        for i, part in enumerate(loc):
            if isinstance(part, int) and i > 0 and loc[i - 1] == "rules":
                rid = None
                if isinstance(rules, list) and part < len(rules) and isinstance(rules[part], dict):
                    rid = rules[part].get("id")
                parts[-1] = f"rules[{part}]" + (f" (id {rid!r})" if rid else "")
            else:
                parts.append(str(part))
        key = ".".join(parts) or "(top level)"
        if error["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = sorted(model.model_fields) if model else []
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            text = f"unknown setting '{key}'"
            if hint:
                text += f" (did you mean {hint[0]!r}?)"
            elif known:
                text += f"; known here: {', '.join(known)}"
            lines.append(text)
        else:
            lines.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def _load_file(path: Path) -> LoadedProtocol:
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
    try:
        definition = ProtocolDefinition.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, data), path=str(path)) from exc
    if definition.name != path.stem:
        msg = f"name {definition.name!r} must match the file name ({path.stem}.toml)"
        raise ConfigError(msg, path=str(path), key="name")
    version = hashlib.sha256(raw).hexdigest()[:12]
    return LoadedProtocol(definition=definition, path=path, version=version)


def load_protocol(name: str, dirs: Sequence[Path]) -> LoadedProtocol:
    """``<dir>/<name>.toml`` from the first folder that has it, validated and versioned."""
    return _load_file(find_named_file(name, dirs, "protocol"))


@dataclass(frozen=True)
class ProtocolCatalog:
    """Every protocol in the search folders (a lab's own file overrides a packaged one)."""

    protocols: tuple[LoadedProtocol, ...]
    default: LoadedProtocol

    def get(self, name: str) -> LoadedProtocol | None:
        """The protocol an order's text names (name or alias, any case/punctuation)."""
        return next((p for p in self.protocols if p.answers_to(name)), None)

    def select(self, requested: str | None) -> LoadedProtocol:
        """The named protocol, or the default when none is named or the name is unknown.

        ``interpret`` notices an unknown name (the order's text does not name the
        protocol it was given) and says so in the comment.
        """
        if requested and requested.strip():
            found = self.get(requested)
            if found is not None:
                return found
        return self.default


def _files(dirs: Iterable[Path]) -> list[Path]:
    chosen: dict[str, Path] = {}
    for folder in dirs:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                chosen.setdefault(path.stem, path)
    return list(chosen.values())


def load_protocols(dirs: Sequence[Path], default: str = DEFAULT_PROTOCOL) -> ProtocolCatalog:
    """Load and validate all protocols; names and aliases must be unambiguous."""
    loaded = tuple(_load_file(path) for path in _files(dirs))
    owner: dict[str, LoadedProtocol] = {}
    for protocol in loaded:
        for text in (protocol.name, *protocol.definition.aliases):
            key = normalize_protocol_name(text)
            other = owner.setdefault(key, protocol)
            if other is not protocol:
                msg = f"alias {text!r} also names the protocol in {other.path}"
                raise ConfigError(msg, path=str(protocol.path), key="aliases")
    chosen = next((p for p in loaded if p.name == default), None)
    if chosen is None:
        known = ", ".join(p.name for p in loaded) or "none"
        msg = f"default protocol {default!r} not found; known: {known}"
        raise ConfigError(msg, key="interpretation.default_protocol")
    return ProtocolCatalog(protocols=loaded, default=chosen)
