"""The values the pipeline hands to the store: a processed run and its results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .assay import LoadedAssay
from .calibrate import Calibration, SampleResult
from .interpret import Interpretation
from .mapping import Plate
from .orders import OrderContext
from .worklist import Worklist

if TYPE_CHECKING:
    from .release import ReportContent

__all__ = ["OutgoingMessage", "ProcessedRun", "ReportedSample"]


@dataclass(frozen=True)
class OutgoingMessage:
    destination: str
    control_id: str
    payload: str


@dataclass(frozen=True)
class ReportedSample:
    sample: SampleResult
    interpretation: Interpretation
    order: OrderContext | None
    result_uid: str
    # F final, X no result obtainable, W withheld (the run was rejected; never sent),
    # RA above the ULOQ: waits for its re-assay (not sent)
    result_status: str
    message: OutgoingMessage | None
    bias_factor: float | None = None
    # What its message says (built now, or on release / correction later).
    content: ReportContent | None = None
    # waiting (for a person) | released | withheld (run failed QC) | reassay
    review_state: str = "released"
    auto_verified: bool = False
    ruleset: str | None = None  # the auto-verification rule set that decided
    hold_reasons: tuple[str, ...] = ()
    preliminary: bool = False  # ``message`` is a preliminary (OBX-11 P)


@dataclass(frozen=True)
class ProcessedRun:
    plate: Plate
    assay: LoadedAssay
    calibration: Calibration
    worklist: Worklist | None
    samples: tuple[ReportedSample, ...]

    @property
    def accepted(self) -> bool:
        return self.calibration.accepted
