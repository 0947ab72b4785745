"""Order values to rows and back (the store's conversion seam for orders)."""

from __future__ import annotations

from collections.abc import Sequence

from ..orders import OrderContext
from .models import OrderRow

__all__ = ["order_row", "to_order"]


def order_row(
    order: OrderContext, *, status: str | None = None, problems: Sequence[str] = ()
) -> OrderRow:
    return OrderRow(
        accession=order.accession,
        patient_id=order.patient_id,
        formulation=order.formulation,
        dose_time=order.dose_time,
        collection_time=order.collection_time,
        protocol=order.protocol,
        clinic=order.clinic,
        placer_order_number=order.placer_order_number,
        source=order.source,
        patient_family_name=order.patient_family_name,
        patient_given_name=order.patient_given_name,
        birth_date=order.birth_date,
        sex=order.sex,
        ordering_provider=order.ordering_provider,
        dose_iu_per_m2=order.dose_iu_per_m2,
        route=order.route,
        reaction=order.reaction,
        reaction_time=order.reaction_time,
        reaction_grade=order.reaction_grade,
        message_control_id=order.message_control_id,
        intake_status=status,
        problems=list(problems) or None,
    )


def to_order(row: OrderRow) -> OrderContext:
    return OrderContext(
        accession=row.accession,
        patient_id=row.patient_id,
        formulation=row.formulation,
        dose_time=row.dose_time,
        collection_time=row.collection_time,
        protocol=row.protocol,
        clinic=row.clinic,
        placer_order_number=row.placer_order_number,
        source=row.source,
        patient_family_name=row.patient_family_name,
        patient_given_name=row.patient_given_name,
        birth_date=row.birth_date,
        sex=row.sex,
        ordering_provider=row.ordering_provider,
        dose_iu_per_m2=row.dose_iu_per_m2,
        route=row.route,
        reaction=row.reaction,
        reaction_time=row.reaction_time,
        reaction_grade=row.reaction_grade,
        message_control_id=row.message_control_id,
    )
