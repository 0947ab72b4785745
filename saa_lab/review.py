"""Review, release, rejection and correction by people (ISO 15189, CLIA, 21 CFR 11).

Who may act comes from the configuration's ``[[users]]``; every decision records
the person and the meaning of their signature (reviewed, approved, rejected,
corrected). The transactional work, including the conflict check between two
people acting on the same run, is in :mod:`saa_lab.store.review`; this module
checks permissions, re-interprets corrected values and builds the messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from .config import MEANINGS, AppConfig, User
from .errors import ReviewError
from .interpret import format_activity, hl7_abnormal_flag
from .numbers import format_number
from .records import OutgoingMessage
from .release import ReportContent, build_message
from .store import Store
from .store.review import Build, Correction, ResultView

__all__ = [
    "Target",
    "authorise",
    "content_of",
    "correct",
    "parse_target",
    "parse_value",
    "reject",
    "release",
]

Action = Literal["reviewed", "approved", "reject", "correct"]
WITHDRAWN = (
    "Preliminary result withdrawn: it did not pass the laboratory's review. The sample "
    "will be re-assayed; do not act on the preliminary value."
)
_TARGET = re.compile(r"^(?:(run|result)[:#]?)?\s*(\d+)$", re.IGNORECASE)
_VALUE = re.compile(r"^\s*([<>]?)\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Target:
    kind: Literal["run", "result"]
    id: int

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


def parse_target(text: str, *, default: Literal["run", "result"] = "run") -> Target:
    """``12`` or ``run:12`` is a run; ``result:57`` a result (``default`` for a bare number)."""
    match = _TARGET.match(text.strip())
    if not match or int(match.group(2)) < 1:
        msg = (
            f"{text!r} is not a run or result: write 12 or run:12 for a run, result:57 for a result"
        )
        raise ReviewError(msg)
    kind = (match.group(1) or default).lower()
    return Target("run" if kind == "run" else "result", int(match.group(2)))


def parse_value(text: str) -> tuple[float, str]:
    """``250``, ``<25`` or ``>4000`` (U/L) as (value, comparator)."""
    match = _VALUE.match(text)
    if not match:
        msg = f"--value {text!r} is not a number of U/L (e.g. 250, <25 or >4000)"
        raise ReviewError(msg)
    value = float(match.group(2))
    return value, match.group(1) or "="


def authorise(config: AppConfig, name: str, action: Action) -> User:
    """The configured user ``name``, if their roles allow ``action``; else ReviewError."""
    user = config.user(name)
    needed: tuple[str, ...]
    if action in MEANINGS:
        needed = (MEANINGS[action],)
    elif action == "reject":
        needed = ("reviewer", "approver")
    else:
        needed = ("approver",)
    if not set(needed) & set(user.roles):
        what = f"release with meaning {action!r}" if action in MEANINGS else action
        msg = (f"{name} ({user.full_name}) may not {what}: it needs the role "
               f"{' or '.join(needed)}; {name} has {', '.join(user.roles) or 'none'}")  # fmt: skip
        raise ReviewError(msg)
    return user


def _now(config: AppConfig) -> datetime:
    return datetime.now(config.lab.zone)


def _builder(config: AppConfig) -> Build:
    def build(report: dict[str, object], status: str) -> OutgoingMessage:
        return build_message(config, ReportContent.from_json(report), status, _now(config))

    return build


def _withdrawer(config: AppConfig) -> Build:
    def build(report: dict[str, object], status: str) -> OutgoingMessage:
        content = ReportContent.from_json(report).withdrawn(WITHDRAWN)
        return build_message(config, content, "X", _now(config))

    return build


def release(
    config: AppConfig,
    store: Store,
    target: Target,
    *,
    by: str,
    meaning: str,
    comment: str | None = None,
    expected_rev: int | None = None,
) -> list[int]:
    """Release a waiting run (every waiting result) or one result; returns result ids."""
    from .store import review

    if meaning not in MEANINGS:
        raise ReviewError(f"--meaning must be one of {', '.join(MEANINGS)}, not {meaning!r}")
    authorise(config, by, meaning)  # type: ignore[arg-type]
    build = _builder(config)
    if target.kind == "run":
        return review.release_run(store, target.id, user=by, meaning=meaning, note=comment,
                                  build=build, expected_rev=expected_rev)  # fmt: skip
    return review.release_result(store, target.id, user=by, meaning=meaning, note=comment,
                                 build=build)  # fmt: skip


def reject(
    config: AppConfig,
    store: Store,
    target: Target,
    *,
    by: str,
    reason: str,
    expected_rev: int | None = None,
) -> list[int]:
    """Reject a waiting run or result: nothing leaves; the samples go on the re-assay list."""
    from .store import review

    if not reason.strip():
        raise ReviewError("a rejection needs a --reason")
    authorise(config, by, "reject")
    withdraw = _withdrawer(config)
    if target.kind == "run":
        return review.reject_run(store, target.id, user=by, reason=reason, withdraw=withdraw,
                                 expected_rev=expected_rev)  # fmt: skip
    return review.reject_result(store, target.id, user=by, reason=reason, withdraw=withdraw)


def content_of(config: AppConfig, store: Store, view: ResultView) -> ReportContent:
    """The stored report of a result (rebuilt from its row for results stored before 0.2)."""
    if view.report is not None:
        return ReportContent.from_json(view.report)
    from .store.review import result_order

    return ReportContent(
        accession=view.accession,
        activity_u_per_l=view.activity_u_per_l,
        comparator=view.comparator,
        abnormal_flag=hl7_abnormal_flag(view.flag),
        threshold_u_per_l=config.interpretation.threshold_u_per_l,
        target_band_u_per_l=None,
        comments=tuple(c for c in (view.comment, view.recommendation) if c),
        order=result_order(store, view.id),
        analysis_time=view.created_at,
    )


def _shown(value: float | None, comparator: str) -> str:
    if value is None:
        return "no result"
    return format_activity(value, "" if comparator == "=" else comparator)


def correct(
    config: AppConfig,
    store: Store,
    result_id: int,
    *,
    by: str,
    reason: str,
    value: str | None = None,
    comment: str | None = None,
) -> int:
    """A corrected version of a released result (OBX-11 C); returns the new version's id.

    A new ``value`` is interpreted again (flag, comment and recommendation follow the
    number, as for any result); ``comment`` goes to the clinic as a note. The reason
    is kept in the audit trail and the version's history.
    """
    from .store.review import add_correction, result_view, run_view

    if not reason.strip():
        raise ReviewError("a correction needs a --reason")
    if value is None and not (comment and comment.strip()):
        raise ReviewError("nothing to correct: give --value, --comment or both")
    authorise(config, by, "correct")
    view = result_view(store, result_id)
    base = content_of(config, store, view)
    lab_comments = (
        (*base.lab_comments, comment.strip())
        if comment and comment.strip()
        else (base.lab_comments)
    )
    issued = view.decided_at or view.created_at
    note = (
        f"Corrected report (version {view.version + 1}): replaces the result issued "
        f"{issued.astimezone(config.lab.zone):%Y-%m-%d %H:%M %Z}, "
        f"{_shown(view.activity_u_per_l, view.comparator)}."
    )
    if value is None:
        content = replace(base, lab_comments=lab_comments, correction_note=note)
        correction = Correction(
            activity_u_per_l=view.activity_u_per_l, comparator=view.comparator,
            status=view.status, flag=view.flag, comment=view.comment, rule_id=view.rule_id,
            recommendation=view.recommendation, protocol=view.protocol,
            protocol_version=view.protocol_version, report=content.to_json(),
        )  # fmt: skip
    else:
        content, correction = _reinterpreted(config, store, view, base, value,
                                             run_view(store, view.run_id).assay_name)  # fmt: skip
        content = replace(content, lab_comments=lab_comments, correction_note=note)
        correction = replace(correction, report=content.to_json())
    return add_correction(store, result_id, user=by, reason=reason, correction=correction,
                          build=_builder(config))  # fmt: skip


def _reinterpreted(
    config: AppConfig,
    store: Store,
    view: ResultView,
    base: ReportContent,
    value_text: str,
    assay_name: str,
) -> tuple[ReportContent, Correction]:
    from .assay import load_assay
    from .calibrate import SampleResult, SampleStatus
    from .interpret import InterpretationRules, interpret
    from .pipeline import prior_results, protocol_catalog
    from .protocols import PriorResult

    number, comparator = parse_value(value_text)
    number = float(format_number(number))  # judged on the number the clinic reads
    status = {"=": SampleStatus.QUANTIFIED, "<": SampleStatus.BELOW_LLOQ,
              ">": SampleStatus.ABOVE_REPORTABLE}[comparator]  # fmt: skip
    sample = SampleResult(view.accession, view.wells, view.dilution, (), None, None, number,
                          comparator, status)  # fmt: skip
    order = base.order
    protocol = protocol_catalog(config).select(order.protocol if order else None)
    try:
        definition = load_assay(assay_name, config.search_dirs("assays")).definition
    except Exception:  # the assay file may have been renamed since; method notes only
        definition = None
    prior: list[PriorResult] = []
    if order and order.patient_id:
        prior = prior_results(store, order.patient_id, before_result_id=view.id)
    rules = InterpretationRules(threshold_u_per_l=config.interpretation.threshold_u_per_l)
    interpretation = interpret(sample, order, rules, protocol=protocol, history=prior,
                               assay=definition)  # fmt: skip
    content = ReportContent.of(view.accession, number, comparator, interpretation, order,
                               base.analysis_time)  # fmt: skip
    correction = Correction(
        activity_u_per_l=number, comparator=comparator, status=status,
        flag=interpretation.flag, comment=interpretation.comment,
        rule_id=interpretation.rule_id, recommendation=interpretation.recommendation or None,
        protocol=interpretation.protocol or None,
        protocol_version=interpretation.protocol_version or None, report={},
    )  # fmt: skip
    return content, correction
