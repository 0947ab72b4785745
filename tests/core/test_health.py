"""Health for monitoring: `saa-lab status --json` carries it, `--check` exits 0/1/2."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import write_config

from saa_lab.cli import cli
from saa_lab.config import load_config
from saa_lab.health import assess
from saa_lab.store import Store
from saa_lab.watcher import Daemon

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _daemon(**changes: Any) -> dict[str, Any]:
    state = {
        "host": "lab-pc",
        "pid": 42,
        "heartbeat": (NOW - timedelta(seconds=5)).isoformat(),
        "last_scan": (NOW - timedelta(seconds=2)).isoformat(),
        "observer_alive": True,
    }
    return {**state, **changes}


def _status(daemon: dict[str, Any] | None, **queue: Any) -> dict[str, Any]:
    queues = {"file": {"pending": 0, "sent": 3, "dead": 0, "oldest_pending_seconds": None}}
    queues["file"].update(queue)
    return {"service": {"daemon": daemon} if daemon else {}, "queues": queues}


def _levels(health: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in health["checks"]}


def test_a_running_daemon_is_healthy() -> None:
    health = assess(_status(_daemon()), NOW, poll_seconds=2)
    assert health["status"] == "ok"
    assert _levels(health) == {"database": "ok", "daemon": "ok", "inbox": "ok"}


def test_a_silent_daemon_is_critical() -> None:
    stale = (NOW - timedelta(seconds=61)).isoformat()
    health = assess(_status(_daemon(heartbeat=stale)), NOW, poll_seconds=2)
    assert health["status"] == "critical"
    assert "no heartbeat from pid 42 on lab-pc for 61 s" in str(health["checks"])


def test_a_stopped_daemon_is_critical_at_once() -> None:
    health = assess(_status(_daemon(stopped=NOW.isoformat())), NOW, poll_seconds=2)
    assert _levels(health)["daemon"] == "critical"


def test_an_unreachable_inbox_is_critical_and_a_dead_observer_a_warning() -> None:
    health = assess(_status(_daemon(inbox_error="cannot list the inbox /x: gone")), NOW,
                    poll_seconds=2)  # fmt: skip
    assert _levels(health)["inbox"] == "critical"
    old_scan = (NOW - timedelta(seconds=300)).isoformat()
    health = assess(_status(_daemon(last_scan=old_scan)), NOW, poll_seconds=2)
    assert _levels(health)["inbox"] == "critical"
    health = assess(_status(_daemon(observer_alive=False)), NOW, poll_seconds=2)
    assert health["status"] == "warning"
    assert _levels(health)["observer"] == "warning"


def test_dead_letters_and_old_unsent_messages_are_warnings() -> None:
    assert assess(_status(_daemon(), dead=2), NOW, poll_seconds=2)["status"] == "warning"
    health = assess(_status(_daemon(), pending=1, oldest_pending_seconds=7200), NOW,
                    poll_seconds=2)  # fmt: skip
    assert health["status"] == "warning"
    assert "2.0 h" in str(health["checks"])


def test_a_folder_that_refuses_files_is_a_warning() -> None:
    health = assess(_status(_daemon(move_error="/lab/archive: No space left on device")), NOW,
                    poll_seconds=2)  # fmt: skip
    assert _levels(health)["folders"] == "warning"


def test_status_check_follows_the_daemon(tmp_path: Path, runner: CliRunner) -> None:
    config_path = write_config(tmp_path / "lab")
    config = load_config(config_path)
    store = Store(config.database_url)
    args = ["--config", str(config_path), "status"]

    never = runner.invoke(cli, [*args, "--check"])
    assert never.exit_code == 1, never.output
    assert never.output.startswith("WARNING: daemon: the daemon never ran")

    daemon = Daemon(config, store)
    with daemon:
        deadline = time.monotonic() + 10
        while store.status_summary()["service"].get("daemon") is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        running = runner.invoke(cli, [*args, "--check"])
        assert running.exit_code == 0, running.output
        assert running.output == "OK: all checks pass\n"
        as_json = runner.invoke(cli, [*args, "--json"])
        assert json.loads(as_json.output)["health"]["status"] == "ok"
    stopped = runner.invoke(cli, [*args, "--check"])
    assert stopped.exit_code == 2, stopped.output
    assert stopped.output.startswith("CRITICAL: daemon: the daemon was stopped at ")
    text = runner.invoke(cli, args)
    assert "health:   critical; daemon: the daemon was stopped" in text.output
    store.close()


def test_an_unreachable_database_is_critical_in_json(tmp_path: Path, runner: CliRunner) -> None:
    # A PostgreSQL port on 127.0.0.1 where nothing listens.
    config_path = write_config(
        tmp_path / "lab", database_url="postgresql+psycopg://saa@127.0.0.1:9/none"
    )
    result = runner.invoke(cli, ["--config", str(config_path), "status", "--json"])
    assert result.exit_code == 2, result.output
    health = json.loads(result.output)["health"]
    assert health["status"] == "critical"
    assert health["checks"][0]["name"] == "database"
    check = runner.invoke(cli, ["--config", str(config_path), "status", "--check"])
    assert check.exit_code == 2
    assert check.output.startswith("CRITICAL: ")
    assert len(check.output.splitlines()) == 1
