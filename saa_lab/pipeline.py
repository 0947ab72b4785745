"""The pipeline: one export (+ worklist) → stored, interpreted results and HL7 messages.

``process_export`` is what the daemon runs on every stable file and what
``saa-lab process`` runs on one. Each stage is a plain call on frozen values;
only ``store.save_export`` touches the database, in one transaction that also
holds the outgoing messages (transactional outbox).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from .assay import LoadedAssay, load_assay
from .calibrate import SampleResult, SampleStatus, calibrate
from .config import FILE_DESTINATION, AppConfig
from .domain import PlateRead, SourceFile
from .faults import crash_point
from .interpret import Interpretation, InterpretationRules, apply_peg_bias, interpret
from .layout import PlateLayout, load_layout
from .mapping import Plate, map_plate, select_read
from .numbers import format_number
from .orders import OrderContext, merge_orders
from .protocols import PriorResult, ProtocolCatalog, load_protocols
from .records import ProcessedRun, ReportedSample
from .release import AutoDecision, ReportContent, build_message, decide, new_control_id
from .store import SourceRecord, Store, StoredRun
from .store.repository import DuplicateExport
from .worklist import Worklist

if TYPE_CHECKING:
    from .parsers import Instrument

__all__ = [
    "FILE_DESTINATION",
    "ExportOutcome",
    "build_runs",
    "configured_instrument",
    "new_control_id",
    "process_export",
]

log = logging.getLogger(__name__)
_UID_NAMESPACE = uuid.UUID("6f1c2a4e-5b7d-4c3e-9a8b-2d1e0f3c4b5a")


@dataclass(frozen=True)
class ExportOutcome:
    source: SourceFile
    format: str
    runs: tuple[StoredRun, ...]
    duplicate: bool = False
    # The processed file of the same name this one replaces (its results wait for review).
    earlier_version: SourceRecord | None = None


def _result_uid(source: SourceFile, read: PlateRead, accession: str) -> str:
    return uuid.uuid5(_UID_NAMESPACE, f"{source.sha256}/{read.index}/{accession}").hex


def _as_reported(sample: SampleResult) -> SampleResult:
    """The activity at the precision it is reported with (``numbers.format_number``).

    Flags are decided on the number the clinic reads: 99.96 U/L is reported as
    "100" and so is judged at the threshold, never "100 ... below 100".
    """
    if sample.activity_u_per_l is None:
        return sample
    return replace(sample, activity_u_per_l=float(format_number(sample.activity_u_per_l)))


def _prior(
    sample: SampleResult, interpretation: Interpretation, order: OrderContext | None
) -> PriorResult:
    return PriorResult(
        activity_u_per_l=sample.activity_u_per_l,
        comparator=sample.comparator,
        flag=interpretation.flag,
        collection_time=order.collection_time if order else None,
        dose_time=order.dose_time if order else None,
        formulation=order.formulation if order else None,
        protocol=order.protocol if order else None,
        accession=sample.accession,
    )


def prior_results(
    store: Store, patient_id: str, *, before_result_id: int | None = None
) -> list[PriorResult]:
    """The patient's stored results that count as history, for interpretation."""
    from .store.order_queries import reported_history

    return [
        PriorResult(
            activity_u_per_l=e.activity_u_per_l,
            comparator=e.comparator,
            flag=e.flag,
            collection_time=e.collection_time,
            dose_time=e.dose_time,
            formulation=e.formulation,
            protocol=e.protocol,
            accession=e.accession,
        )
        for e in reported_history(store, patient_id, before_result_id=before_result_id)
    ]


_catalogs: dict[tuple[object, ...], ProtocolCatalog] = {}


def protocol_catalog(config: AppConfig) -> ProtocolCatalog:
    """Every protocol file, loaded once per set of files (reloaded when one changes)."""
    dirs = config.search_dirs("protocols")
    files = sorted(p for d in dirs if d.is_dir() for p in d.glob("*.toml"))
    key = (config.interpretation.default_protocol,
           *((str(p), p.stat().st_mtime_ns) for p in files))  # fmt: skip
    catalog = _catalogs.get(key)
    if catalog is None:
        catalog = load_protocols(dirs, config.interpretation.default_protocol)
        _catalogs[key] = catalog
    return catalog


def build_runs(
    config: AppConfig,
    source: SourceFile,
    reads: Sequence[PlateRead],
    worklist_for: Callable[[PlateRead], Worklist | None],
    *,
    assay: LoadedAssay,
    layout: PlateLayout,
    now: datetime,
    control_history: Callable[[Plate], Mapping[str, Sequence[float]]] | None = None,
    order_for: Callable[[str, OrderContext | None], OrderContext | None] | None = None,
    protocols: ProtocolCatalog | None = None,
    history_for: Callable[[str], Sequence[PriorResult]] | None = None,
    hold_reason: str | None = None,
) -> list[ProcessedRun]:
    """Map, calibrate and interpret every plate; build messages for accepted runs.

    ``hold_reason`` holds every reportable result for a person, whatever the
    auto-verification rules say (e.g. the export is a new version of a processed file).
    """
    rules = InterpretationRules(threshold_u_per_l=config.interpretation.threshold_u_per_l)
    definition = assay.definition
    runs = []
    for read in select_read(reads, definition, path=source.original_path):
        worklist = worklist_for(read)
        plate = map_plate(read, layout, worklist)
        history = control_history(plate) if control_history else None
        calibration = calibrate(plate, definition, control_history=history)
        reported = []
        # Results of this run count as history for later samples of the same patient.
        in_run: dict[str, list[PriorResult]] = {}
        statuses = [s.status for s in calibration.samples]
        for measured in calibration.samples:
            listed = worklist.orders.get(measured.accession) if worklist else None
            order = order_for(measured.accession, listed) if order_for else listed
            sample, bias_factor = apply_peg_bias(measured, order, definition.peg_bias)
            sample = _as_reported(sample)
            patient = order.patient_id if order else None
            prior: list[PriorResult] = []
            if patient:
                stored = history_for(patient) if history_for else ()
                prior = [*stored, *in_run.get(patient, [])]
            protocol = protocols.select(order.protocol if order else None) if protocols else None
            interpretation = interpret(
                sample, order, rules, protocol=protocol, history=prior, assay=definition,
                bias_factor=bias_factor,
            )  # fmt: skip
            if patient and calibration.accepted and sample.status != SampleStatus.ABOVE_ULOQ:
                in_run.setdefault(patient, []).append(_prior(sample, interpretation, order))
            content = ReportContent.of(sample.accession, sample.activity_u_per_l,
                                       sample.comparator, interpretation, order, now)  # fmt: skip
            message = None
            decision = AutoDecision(False, None, ())
            preliminary = False
            if not calibration.accepted:
                status, state = "W", "withheld"  # a rejected run's results never leave
            elif sample.status == SampleStatus.ABOVE_ULOQ:
                status, state = "RA", "reassay"  # not reported: waits for its re-assay
            else:
                status = "X" if sample.status == SampleStatus.INVALID else "F"
                destination = config.destination_for(order.clinic if order else None)
                decision = decide(
                    config, assay=assay.name, destination=destination.name,
                    accepted=calibration.accepted, warnings=calibration.warnings,
                    statuses=statuses, flag=interpretation.flag,
                )  # fmt: skip
                if hold_reason is not None:
                    decision = AutoDecision(
                        False, decision.ruleset, (*decision.hold_reasons, hold_reason)
                    )
                if decision.release:
                    state = "released"
                    message = build_message(config, content, status, now)
                else:
                    state = "waiting"
                    if destination.preliminary and status == "F":
                        preliminary = True
                        message = build_message(config, content, "P", now)
            reported.append(
                ReportedSample(
                    sample=sample,
                    interpretation=interpretation,
                    order=order,
                    result_uid=_result_uid(source, read, sample.accession),
                    result_status=status,
                    message=message,
                    bias_factor=bias_factor,
                    content=content,
                    review_state=state,
                    auto_verified=decision.release,
                    ruleset=decision.ruleset,
                    hold_reasons=decision.hold_reasons,
                    preliminary=preliminary,
                )
            )
        runs.append(
            ProcessedRun(
                plate=plate,
                assay=assay,
                calibration=calibration,
                worklist=worklist,
                samples=tuple(reported),
            )
        )
    return runs


def configured_instrument(config: AppConfig) -> Instrument | None:
    """The inbox's format override, or None to detect each file by content."""
    from .parsers import Instrument

    name = config.watch.instrument
    return Instrument(name) if name else None


def process_export(
    store: Store,
    config: AppConfig,
    source: SourceFile,
    *,
    reads: Sequence[PlateRead] | None = None,
    worklist_for: Callable[[PlateRead], Worklist | None] = lambda _read: None,
    assay_name: str | None = None,
    layout_name: str | None = None,
    actor: str = "daemon",
) -> ExportOutcome:
    """Run the whole pipeline on one export and store the outcome.

    An export whose content was already processed is not processed again: the
    stored runs are returned with ``duplicate=True``.
    """
    from .parsers import parse

    assay = load_assay(assay_name or config.run.assay, config.search_dirs("assays"))
    default_layout = assay.definition.layout or config.run.layout
    layout = load_layout(layout_name or default_layout, config.search_dirs("layouts"))
    known = store.source(source.sha256)
    if known is not None and known.status == "done":
        runs = store.runs_for_source(source.sha256)
        return ExportOutcome(source, known.format or "", tuple(runs), duplicate=True)
    plate_reads = (
        list(reads)
        if reads is not None
        else parse(source, instrument=configured_instrument(config))
    )
    now = datetime.now(config.lab.zone)
    westgard = assay.definition.westgard
    earlier = store.earlier_version(source.name, source.sha256)
    hold_reason = None
    if earlier is not None:
        when = earlier.processed_at.astimezone(config.lab.zone) if earlier.processed_at else None
        hold_reason = (
            f"new version of {source.name}: a file of that name with other content was "
            f"processed {when:%Y-%m-%d %H:%M} (file {earlier.id}); a person decides which "
            "results stand"
            if when
            else f"new version of {source.name} (file {earlier.id}); a person decides"
        )
        log.warning(
            "%s: same name as file %d processed earlier, different content: processed as a "
            "new version; its results wait for review",
            source.name,
            earlier.id,
        )

    def history(plate: Plate) -> Mapping[str, Sequence[float]]:
        names = {w.control for w in plate.with_role("control") if w.control}
        return store.control_history(assay.name, {n: westgard.control(n).lot for n in names})

    def order_for(accession: str, listed: OrderContext | None) -> OrderContext | None:
        from .store.order_queries import find_order

        return merge_orders(find_order(store, accession), listed)

    processed = build_runs(
        config, source, plate_reads, worklist_for, assay=assay, layout=layout, now=now,
        control_history=history, order_for=order_for, protocols=protocol_catalog(config),
        history_for=lambda patient: prior_results(store, patient), hold_reason=hold_reason,
    )  # fmt: skip
    fmt = plate_reads[0].format
    crash_point("calibrated")
    try:
        stored = store.save_export(source, fmt, processed, actor=actor)
    except DuplicateExport:
        # Another daemon on the same database stored this file while we worked on it.
        log.warning("%s was stored meanwhile by another process; not stored twice", source.name)
        runs = store.runs_for_source(source.sha256)
        return ExportOutcome(source, fmt, tuple(runs), duplicate=True)
    for run in stored:
        log.info(
            "%s plate %d: run %d %s, %d results",
            source.name,
            run.plate_index + 1,
            run.id,
            run.status,
            len(run.results),
        )
    return ExportOutcome(source, fmt, tuple(stored), earlier_version=earlier)
