"""Orders over MLLP into the running daemon, and results interpreted with them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from conftest import write_config

from saa_lab.config import load_config
from saa_lab.demo import drop_file
from saa_lab.hl7.mllp import MllpClient
from saa_lab.hl7.orders import OrderReading
from saa_lab.intake import store_reading
from saa_lab.store import Store
from saa_lab.store.order_queries import find_order, patient_timeline

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files" / "biotek_gen5"

# An ORM^O01 (v2.3.1) for specimen SAA-0005 of the bundled Gen5 run: PEG-asparaginase
# on 2026-11-13 09:00, sampled 7 days later, with a grade 2 infusion reaction.
ORDER = "\r".join([
    "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500+0100||ORM^O01|ORM7001|P|2.3.1",
    "PID|1||PAT-7001^^^CHILDRENS^MR||Invented^Child||20170309|F",
    "ORC|NW|SAA-0005^ONCO-EHR|||||||20261120081000+0100|||1234^Smith^Anna^^^Dr"
    "|||||||||Paediatric Oncology South",
    "OBR|1|SAA-0005^ONCO-EHR||SAA^Asparaginase activity^L|||20261120090000+0100",
    "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L||||||F",
    "OBX|2|TS|SAA-DOSE-TIME^Date and time of last asparaginase dose^L||20261113090000+0100"
    "||||||F",
    "OBX|3|ST|SAA-PROTOCOL^Treatment protocol^L||AIEOP-BFM ALL 2009||||||F",
    "OBX|4|CE|SAA-REACTION^Infusion or allergic reaction to the dose (Y/N)^L||Y^Yes^HL70136"
    "||||||F",
    "OBX|5|TS|SAA-REACTION-TIME^Date and time of the reaction^L||20261113094500+0100||||||F",
    "OBX|6|NM|SAA-REACTION-GRADE^CTCAE grade of the reaction (1-5)^L||2||||||F",
]) + "\r"  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _msa(ack: str) -> list[str]:
    segment = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return segment.split("|")


def test_watch_accepts_orders_over_mllp_and_interprets_results_with_them(tmp_path: Path) -> None:
    port = _free_port()
    config_path = write_config(tmp_path / "lab", f"\n[hl7]\nlisten_port = {port}\n")
    config = load_config(config_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "saa_lab", "--config", str(config_path), "watch"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines = iter(process.stderr.readline, "")
        assert any("saa-lab watching" in line for line in lines)
        with MllpClient("127.0.0.1", port, timeout=10) as client:
            ack = client.send(ORDER)
            again = client.send(ORDER)  # a resend after a lost ACK
        assert _msa(ack)[1:3] == ["AA", "ORM7001"]
        assert _msa(again)[1:3] == ["AA", "ORM7001"]
        drop_file(SAMPLES / "RUN-G5-001.worklist.csv", config.inbox)
        drop_file(SAMPLES / "RUN-G5-001.txt", config.inbox)
        store = Store(config.database_url)
        try:
            import time

            deadline = time.monotonic() + 20
            while not patient_timeline(store, "PAT-7001") and time.monotonic() < deadline:
                time.sleep(0.05)
            (entry,) = patient_timeline(store, "PAT-7001")
            assert entry.accession == "SAA-0005" and entry.formulation == "peg-asparaginase"
            # 819 U/L after a reaction: activity present, not neutralising hypersensitivity.
            assert entry.flag == "reaction-activity-present"
            from sqlalchemy import text

            with store.engine.connect() as conn:
                stored = conn.execute(
                    text("SELECT count(*) FROM orders WHERE message_control_id = 'ORM7001'")
                ).scalar()
            assert stored == 1  # the resend was not stored twice
        finally:
            store.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_orders_with_problems_are_stored_flagged(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from saa_lab.hl7.orders import read_order

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        broken = ORDER.replace("PAT-7001^^^CHILDRENS^MR", "").replace("ORM7001", "ORM7002")
        reading: OrderReading = read_order(broken, zone=ZoneInfo("Europe/Berlin"))
        assert reading.ack_code == "AE"
        store_reading(store, reading)
        order = find_order(store, "SAA-0005")
        assert order is not None and order.patient_id is None
        from sqlalchemy import text

        with store.engine.connect() as conn:
            status, problems = conn.execute(
                text("SELECT intake_status, problems FROM orders WHERE accession = 'SAA-0005'")
            ).one()
        assert status == "ae" and "PID-3" in str(problems)
    finally:
        store.close()


def test_no_listener_unless_configured(tmp_path: Path) -> None:
    from saa_lab.intake import order_listener

    config = load_config(write_config(tmp_path / "lab"))
    store = Store(config.database_url)
    try:
        assert order_listener(config, store) is None
    finally:
        store.close()
