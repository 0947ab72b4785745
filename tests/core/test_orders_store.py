"""HL7 orders in the store: matching worklist accessions to them, and patient timelines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import release_on_processing

from saa_lab.config import load_config
from saa_lab.domain import SourceFile
from saa_lab.orders import OrderContext, merge_orders
from saa_lab.pipeline import process_export
from saa_lab.store import Store
from saa_lab.store.order_queries import find_order, patient_timeline, save_orders
from saa_lab.worklist import parse_worklist

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files" / "biotek_gen5"
ZONE = ZoneInfo("Europe/Berlin")


def hl7_order(accession: str, **extra: object) -> OrderContext:
    values: dict[str, object] = {
        "patient_id": "PAT-9001",
        "formulation": "peg-asparaginase",
        "dose_time": datetime(2026, 11, 13, 9, 0, tzinfo=ZONE),
        "collection_time": datetime(2026, 11, 20, 9, 0, tzinfo=ZONE),
        "clinic": "CLINIC-SOUTH",
        "placer_order_number": f"PL-{accession}",
        "source": "hl7",
        "message_control_id": f"MSG-{accession}",
        "patient_family_name": "Invented",
        "reaction": False,
    }
    values.update(extra)
    return OrderContext(accession, **values)  # type: ignore[arg-type]


def test_orders_are_found_by_specimen_id_or_placer_number(database_url: str) -> None:
    store = Store(database_url)
    try:
        save_orders(store, [hl7_order("SPEC-1"), hl7_order("SPEC-2", patient_id="PAT-9002")])
        assert find_order(store, "SPEC-1") == hl7_order("SPEC-1")
        by_placer = find_order(store, "PL-SPEC-2")
        assert by_placer is not None and by_placer.patient_id == "PAT-9002"
        assert find_order(store, "NOPE") is None
    finally:
        store.close()


def test_merge_prefers_the_hl7_order_and_fills_gaps_from_the_worklist() -> None:
    hl7 = hl7_order("A", protocol=None)
    listed = OrderContext("A", patient_id="OTHER", protocol="DCOG-ALL11")
    merged = merge_orders(hl7, listed)
    assert merged is not None
    assert merged.patient_id == "PAT-9001" and merged.protocol == "DCOG-ALL11"
    assert merge_orders(None, listed) is listed and merge_orders(hl7, None) is hl7


def test_results_link_to_the_stored_hl7_order_and_build_the_timeline(
    database_url: str, tmp_path: Path
) -> None:
    store = Store(database_url)
    try:
        # SAA-0003 has no order columns in the worklist: its HL7 order supplies them.
        save_orders(store, [hl7_order("SAA-0003")])
        config = release_on_processing(load_config(None).model_copy(update={"base_dir": tmp_path}))
        worklist = parse_worklist(
            SourceFile.from_path(SAMPLES / "RUN-G5-001.worklist.csv"), zone=ZONE
        )
        outcome = process_export(store, config, SourceFile.from_path(SAMPLES / "RUN-G5-001.txt"),
                                 worklist_for=lambda _r: worklist)  # fmt: skip
        result = next(r for r in outcome.runs[0].results if r.accession == "SAA-0003")
        assert "No order details" not in result.comment
        timeline = patient_timeline(store, "PAT-9001")
        assert [(e.accession, e.comparator, e.flag) for e in timeline] == [
            ("SAA-0003", "<", result.flag)
        ]
        assert timeline[0].formulation == "peg-asparaginase"
        # The HL7 order was linked, not copied.
        from sqlalchemy import text

        with store.engine.connect() as conn:
            count = conn.execute(
                text("SELECT count(*) FROM orders WHERE accession = 'SAA-0003'")
            ).scalar()
        assert count == 1
        # Worklist orders appear in their patient's timeline too.
        assert [e.accession for e in patient_timeline(store, "PAT-1001")] == ["SAA-0001"]
    finally:
        store.close()


def test_a_specimen_id_wins_over_another_orders_placer_number(database_url: str) -> None:
    store = Store(database_url)
    try:
        save_orders(store, [hl7_order("100234", patient_id="PAT-A", placer_order_number="P-1")])
        save_orders(store, [hl7_order("200999", patient_id="PAT-B",
                                      placer_order_number="100234")])  # fmt: skip
        found = find_order(store, "100234")
        assert found is not None and found.patient_id == "PAT-A"
        # A placer number that names two specimens matches nothing.
        save_orders(store, [hl7_order("300111", placer_order_number="DUP")])
        save_orders(store, [hl7_order("300222", placer_order_number="DUP")])
        assert find_order(store, "DUP") is None
    finally:
        store.close()
