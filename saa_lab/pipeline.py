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
from .interpret import Interpretation, InterpretationRules, apply_peg_bias, interpret
from .layout import PlateLayout, load_layout
from .mapping import Plate, map_plate, select_read
from .numbers import format_number
from .orders import FORMULATION_NAMES, OrderContext, merge_orders
from .protocols import PriorResult, ProtocolCatalog, load_protocols
from .records import OutgoingMessage, ProcessedRun, ReportedSample
from .store import Store, StoredRun
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


def new_control_id() -> str:
    """A message control id (MSH-10): 20 characters, unique, kept across retries."""
    return uuid.uuid4().hex[:20].upper()


def _result_uid(source: SourceFile, read: PlateRead, accession: str) -> str:
    return uuid.uuid5(_UID_NAMESPACE, f"{source.sha256}/{read.index}/{accession}").hex


def _hl7_sex(sex: str | None) -> str | None:
    """PID-8 from what the order said (HL7 table 0001), or None when not a table value."""
    code = (sex or "").strip().upper()[:1]
    return code if code in ("F", "M", "O", "U", "A", "N") else None


def _message(
    config: AppConfig,
    sample: SampleResult,
    interpretation: Interpretation,
    order: OrderContext | None,
    status: str,
    now: datetime,
) -> OutgoingMessage:
    from .hl7 import ReportedResult, build_oru_r01

    hl7 = config.hl7
    destination = config.destination_for(order.clinic if order else None)
    units = destination.units or hl7.units
    version = destination.version or hl7.version
    per_ml = units == "U/mL"
    factor = 1000.0 if per_ml else 1.0
    threshold = interpretation.threshold_u_per_l / factor
    band = interpretation.target_band_u_per_l
    reference = (
        f"{band[0] / factor:g}-{band[1] / factor:g}" if band is not None else f">={threshold:g}"
    )
    value = sample.activity_u_per_l / factor if sample.activity_u_per_l is not None else None
    control_id = new_control_id()
    result = ReportedResult(
        message_control_id=control_id,
        message_time=now,
        sending_application=config.lab.sending_application,
        sending_facility=config.lab.sending_facility,
        receiving_application=destination.receiving_application or hl7.receiving_application,
        receiving_facility=(order.clinic if order and order.clinic else hl7.receiving_facility),
        accession=sample.accession,
        patient_id=order.patient_id if order else None,
        patient_family_name=order.patient_family_name if order else None,
        patient_given_name=order.patient_given_name if order else None,
        birth_date=order.birth_date if order else None,
        sex=_hl7_sex(order.sex if order else None),
        placer_order_number=order.placer_order_number if order else None,
        ordering_clinic=order.clinic if order else None,
        collection_time=order.collection_time if order else None,
        observation_code=hl7.observation_code,
        observation_text=hl7.observation_text,
        coding_system=hl7.coding_system,
        value=value,
        comparator=sample.comparator,
        units=units,
        reference_range=reference,
        abnormal_flag=interpretation.abnormal_flag,
        result_status=status,
        observation_time=order.collection_time if order else None,
        analysis_time=now,
        comments=tuple(c for c in (interpretation.comment, interpretation.recommendation) if c),
        formulation=(FORMULATION_NAMES[order.formulation] if order and order.formulation else None),
        formulation_code=order.formulation if order and order.formulation else None,
        dose_time=order.dose_time if order else None,
        processing_id=hl7.processing_id,
    )
    payload = build_oru_r01(result, version=version)
    return OutgoingMessage(destination=destination.name, control_id=control_id, payload=payload)


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


def _history_from_store(store: Store) -> Callable[[str], Sequence[PriorResult]]:
    def history(patient_id: str) -> Sequence[PriorResult]:
        from .store.order_queries import patient_timeline

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
            for e in patient_timeline(store, patient_id)
            if e.result_status not in ("W", "RA")  # never reported
        ]

    return history


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
) -> list[ProcessedRun]:
    """Map, calibrate and interpret every plate; build messages for accepted runs."""
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
            message = None
            if not calibration.accepted:
                status = "W"  # withheld: a rejected run's results never leave
            elif sample.status == SampleStatus.ABOVE_ULOQ:
                status = "RA"  # not reported: waits for its re-assay
            else:
                status = "X" if sample.status == SampleStatus.INVALID else "F"
                message = _message(config, sample, interpretation, order, status, now)
            reported.append(
                ReportedSample(
                    sample=sample,
                    interpretation=interpretation,
                    order=order,
                    result_uid=_result_uid(source, read, sample.accession),
                    result_status=status,
                    message=message,
                    bias_factor=bias_factor,
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

    def history(plate: Plate) -> Mapping[str, Sequence[float]]:
        names = {w.control for w in plate.with_role("control") if w.control}
        return store.control_history(assay.name, {n: westgard.control(n).lot for n in names})

    def order_for(accession: str, listed: OrderContext | None) -> OrderContext | None:
        from .store.order_queries import find_order

        return merge_orders(find_order(store, accession), listed)

    processed = build_runs(
        config, source, plate_reads, worklist_for, assay=assay, layout=layout, now=now,
        control_history=history, order_for=order_for, protocols=protocol_catalog(config),
        history_for=_history_from_store(store),
    )  # fmt: skip
    fmt = plate_reads[0].format
    stored = store.save_export(source, fmt, processed, actor=actor)
    for run in stored:
        log.info(
            "%s plate %d: run %d %s, %d results",
            source.name,
            run.plate_index + 1,
            run.id,
            run.status,
            len(run.results),
        )
    return ExportOutcome(source, fmt, tuple(stored))
