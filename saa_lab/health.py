"""Health for monitoring: is the service doing its job, and if not, what is wrong.

``assess`` turns ``saa-lab status``'s summary into checks, each ``ok``,
``warning`` or ``critical`` with a one-line detail; the worst decides the
overall status. ``saa-lab status --json`` carries it as ``health``;
``saa-lab status --check`` prints one line and exits 0 (ok), 1 (warning) or
2 (critical), the convention of Nagios-style monitoring plugins.

Pure: no I/O, the clock is a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

__all__ = ["EXIT_CODES", "HEARTBEAT_STALE_SECONDS", "assess", "unreachable"]

Level = Literal["ok", "warning", "critical"]
EXIT_CODES: dict[str, int] = {"ok": 0, "warning": 1, "critical": 2}
# The daemon writes a heartbeat every 10 s; six missed ones mean it is gone or stuck.
HEARTBEAT_STALE_SECONDS = 60.0
# A message unsent this long (the receiver down, a route wrong) needs someone.
OLDEST_UNSENT_WARNING_SECONDS = 3600.0
# A daemon silent this long while others run was retired: it is no longer checked.
GONE_AFTER_SECONDS = 7 * 24 * 3600.0
_RANK = {"ok": 0, "warning": 1, "critical": 2}


def _age(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    try:
        return (now - datetime.fromisoformat(iso)).total_seconds()
    except (TypeError, ValueError):
        return None


def _check(name: str, status: Level, detail: str) -> dict[str, str]:
    return {"name": name, "status": status, "detail": detail}


def _daemon_checks(daemon: Mapping[str, Any] | None, now: datetime, poll: float) -> list[Any]:
    if not daemon:
        return [_check("daemon", "warning", "the daemon never ran against this database")]
    if daemon.get("stopped"):
        return [_check("daemon", "critical", f"the daemon was stopped at {daemon['stopped']}")]
    checks = []
    beat = _age(daemon.get("heartbeat"), now)
    where = f"pid {daemon.get('pid')} on {daemon.get('host')}"
    if beat is None or beat > HEARTBEAT_STALE_SECONDS:
        checks.append(_check("daemon", "critical", f"no heartbeat from {where} for "
                                                  f"{beat or 0:.0f} s"))  # fmt: skip
    else:
        checks.append(_check("daemon", "ok", f"{where}, heartbeat {beat:.0f} s ago"))
    if daemon.get("inbox_error"):
        checks.append(_check("inbox", "critical", str(daemon["inbox_error"])))
    else:
        seen = _age(daemon.get("last_scan"), now)
        limit = max(HEARTBEAT_STALE_SECONDS, 10 * poll)
        if seen is None or seen > limit:
            checks.append(_check("inbox", "critical", f"inbox last listed {seen or 0:.0f} s ago"))
        else:
            checks.append(_check("inbox", "ok", f"inbox last listed {seen:.0f} s ago"))
    if daemon.get("observer_error") or not daemon.get("observer_alive", True):
        detail = daemon.get("observer_error") or "the file-system observer is not running"
        checks.append(_check("observer", "warning", f"{detail} (scans continue)"))
    if daemon.get("move_error"):
        checks.append(
            _check("folders", "warning", f"cannot move files into {daemon['move_error']}")
        )
    return checks


def _alive(daemon: Mapping[str, Any], now: datetime) -> bool:
    beat = _age(daemon.get("heartbeat"), now)
    return not daemon.get("stopped") and beat is not None and beat <= HEARTBEAT_STALE_SECONDS


def _all_daemon_checks(
    daemons: list[Mapping[str, Any]], now: datetime, poll: float
) -> list[dict[str, str]]:
    """Several daemons on one database: one stopped or dead while another runs is a
    warning (the others take over its files and destinations), critical when none runs."""
    if len(daemons) <= 1:
        return _daemon_checks(daemons[0] if daemons else None, now, poll)
    running = sum(1 for d in daemons if _alive(d, now))
    checks = []
    for daemon in daemons:
        if running and not _alive(daemon, now):
            beat = _age(daemon.get("heartbeat"), now)
            if beat is not None and beat > GONE_AFTER_SECONDS:
                continue  # retired long ago (moved to another host, say)
            where = f"pid {daemon.get('pid')} on {daemon.get('host')}"
            state = (f"stopped at {daemon['stopped']}" if daemon.get("stopped")
                     else f"no heartbeat for {beat or 0:.0f} s")  # fmt: skip
            checks.append(_check("daemon", "warning",
                                 f"{where}: {state}; {running} other daemon(s) "
                                 "running take over its work"))  # fmt: skip
            continue
        checks += _daemon_checks(daemon, now, poll)
    return checks


def assess(summary: Mapping[str, Any], now: datetime, *, poll_seconds: float) -> dict[str, Any]:
    """``{"status": worst level, "checks": [...]}`` for a ``status_summary``-like mapping."""
    checks = [_check("database", "ok", "reachable")]
    daemons = summary.get("daemons")
    if daemons is None:  # a summary from before several daemons were told apart
        single = summary.get("service", {}).get("daemon")
        daemons = [single] if single else []
    checks += _all_daemon_checks(list(daemons), now, poll_seconds)
    for name, queue in summary.get("queues", {}).items():
        if queue.get("dead"):
            checks.append(_check(f"queue {name}", "warning",
                                 f"{queue['dead']} dead-lettered message(s)"))  # fmt: skip
        oldest = queue.get("oldest_pending_seconds")
        if oldest is not None and oldest > OLDEST_UNSENT_WARNING_SECONDS:
            checks.append(_check(f"queue {name}", "warning",
                                 f"oldest unsent message waits {oldest / 3600:.1f} h"))  # fmt: skip
    worst = max((c["status"] for c in checks), key=_RANK.__getitem__)
    return {"status": worst, "checks": checks}


def unreachable(error: str) -> dict[str, Any]:
    """The health when the database cannot be reached at all."""
    return {"status": "critical", "checks": [_check("database", "critical", error)]}
