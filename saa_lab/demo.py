"""``saa-lab demo``: the real daemon on the bundled samples, in a throwaway workspace."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .config import CONFIG_NAME, AppConfig, load_config
from .domain import SourceFile
from .worklist import WORKLIST_SUFFIX

if TYPE_CHECKING:
    from .store import Store

__all__ = ["bundled_samples", "drop_file", "run_demo"]

DEMO_CONFIG = """\
# Written by `saa-lab demo`. Short waits so the demo finishes quickly.
[lab]
name = "saa-lab demo laboratory"
timezone = "Europe/Berlin"

[watch]
poll_interval_seconds = 0.5
stability_seconds = 0.5
settle_seconds = 0.05

# The demo's reviewer releases what auto-verification holds for a person.
[[users]]
name = "demo-reviewer"
full_name = "Demo Reviewer"
roles = ["reviewer"]
"""
DEMO_REVIEWER = "demo-reviewer"


def bundled_samples() -> list[tuple[Path, Path]]:
    """(export, worklist) pairs shipped in ``sample_files/``: the AHA runs.

    The format samples without a worklist (one per parser variant) are for the
    parser tests and ``saa-lab inspect``, not for the demo.
    """
    root = Path(str(resources.files("saa_lab.sample_files")))
    pairs: list[tuple[Path, Path]] = []
    for worklist in sorted(root.glob(f"*/*{WORKLIST_SUFFIX}")):
        stem = worklist.name.removesuffix(WORKLIST_SUFFIX)
        exports = [
            p for p in sorted(worklist.parent.glob(f"{stem}.*"))
            if not p.name.endswith((WORKLIST_SUFFIX, ".json"))
        ]  # fmt: skip
        pairs.extend((export, worklist) for export in exports)
    return pairs


def drop_file(source: Path, inbox: Path) -> Path:
    """Copy into the inbox the way instruments should: temp name, then rename."""
    temp = inbox / f".{source.name}.part"
    shutil.copyfile(source, temp)
    target = inbox / source.name
    temp.replace(target)
    return target


def _review_and_release(config: AppConfig, store: Store, echo: Callable[[str], None]) -> int:
    """Show what auto-verification held and release it as the demo's reviewer."""
    from .review import Target, release
    from .store.review import waiting_runs

    released = 0
    for run in waiting_runs(store):
        reasons = sorted({h for r in run.waiting for h in r.hold_reasons})
        echo(f"run {run.id} waits for review: {'; '.join(reasons)}")
        echo(f"  saa-lab release {run.id} --by {DEMO_REVIEWER} --meaning reviewed")
        ids = release(config, store, Target("run", run.id), by=DEMO_REVIEWER, meaning="reviewed",
                      comment="released by saa-lab demo")  # fmt: skip
        echo(f"  released {len(ids)} result(s)")
        released += len(ids)
    if released:
        echo("")
    return released


def run_demo(*, keep: bool, timeout: float, echo: Callable[[str], None]) -> int:
    from .cli import _fmt_activity, _fmt_iu_per_ml
    from .store import Store
    from .watcher import Daemon

    workspace = Path(tempfile.mkdtemp(prefix="saa-lab-demo-"))
    config_path = workspace / CONFIG_NAME
    config_path.write_text(DEMO_CONFIG, encoding="utf-8")
    config = load_config(config_path)
    store = Store(config.database_url, zone=config.lab.zone)
    pairs = bundled_samples()
    hashes = {SourceFile.from_path(export).sha256: export.name for export, _ in pairs}
    echo(f"saa-lab demo workspace: {workspace}")
    started = time.monotonic()
    try:
        with Daemon(config, store) as daemon:
            for export, worklist in pairs:
                drop_file(worklist, config.inbox)
                drop_file(export, config.inbox)
                echo(f"dropped {export.name} + {worklist.name}")

            def finished() -> bool:
                states = [store.source(sha) for sha in hashes]
                processed = all(s is not None and s.status in ("done", "failed") for s in states)
                # ... and delivered: the delivery worker writes the outbox files.
                return processed and "pending" not in store.status_summary()["outbox"]

            done = daemon.wait_until(finished, timeout)
            elapsed = time.monotonic() - started
            if not done:
                echo(f"the samples were not processed within {timeout:g} s; see {workspace}")
                return 1
            echo(f"processed {len(hashes)} export(s) in {elapsed:.2f} s\n")
            released = _review_and_release(config, store, echo)
            if released and not daemon.wait_until(
                lambda: "pending" not in store.status_summary()["outbox"], timeout
            ):
                echo(f"the released results were not delivered within {timeout:g} s")
                return 1
            daemon.reports.refresh()  # the released runs' reports show the decision
            daemon.wait_until(lambda: daemon.reports.idle, timeout)  # drawn in the background
        failed = 0
        for sha, name in hashes.items():
            record = store.source(sha)
            if record is None or record.status != "done":
                failed += 1
                echo(f"{name}: FAILED: {record.error if record else 'not seen'}")
                continue
            for run in store.runs_for_source(sha):
                title = f"{name} plate {run.plate_index + 1}"
                echo(f"{title}: run {run.id} {run.status}, assay {run.assay_name}, "
                     f"{run.review_status}")  # fmt: skip
                echo(f"  {'accession':<10} {'U/L':>8} {'IU/mL':>8}  {'review':<13} flag")
                for r in run.results:
                    state = "auto-released" if r.auto_verified else r.state
                    echo(
                        f"  {r.accession:<10} {_fmt_activity(r.activity_u_per_l, r.comparator):>8}"
                        f" {_fmt_iu_per_ml(r.activity_u_per_l, r.comparator):>8}  {state:<13}"
                        f" {r.flag}"
                    )
                echo("")
        messages = sorted(config.outbox.glob("*.hl7"))
        echo(f"{len(messages)} HL7 ORU^R01 message(s) in {config.outbox}")
        if messages:
            echo(f"for example: {messages[0]}")
        reports = sorted(config.archive.rglob("*.report.html"))
        if reports:
            echo(f"{len(reports)} run report(s) (HTML and PDF) beside the archived exports, "
                 f"e.g. {reports[0]}")  # fmt: skip
        return 1 if failed else 0
    finally:
        store.close()
        if not keep:
            shutil.rmtree(workspace, ignore_errors=True)
