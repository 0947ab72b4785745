"""config/saa-lab.service: a systemd unit that parses, runs `saa-lab watch` as its own
user, restarts on failure, gives the daemon time to drain, keeps the database password
in an environment file, and ships inside the package."""

from __future__ import annotations

import configparser
import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

UNIT = REPO / "config" / "saa-lab.service"
DAEMON_DRAIN_SECONDS = 30.0  # Daemon.stop(timeout=30.0): each thread may take this long


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def test_the_unit_runs_the_daemon_as_its_own_user_and_restarts_on_failure() -> None:
    parsed = unit()
    service, section = parsed["Service"], parsed["Unit"]
    command = service["ExecStart"].split()
    assert Path(command[0]).is_absolute() and command[0].endswith("/saa-lab")
    assert command[-1] == "watch" and "--config" in command
    assert service["Type"] in ("simple", "exec", "notify")
    assert service["User"] == "saa-lab"
    assert (service["Restart"], seconds(service["RestartSec"])) == ("on-failure", 5)
    assert int(section["StartLimitBurst"]) >= 3 and seconds(section["StartLimitIntervalSec"]) > 0
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_the_unit_stops_with_sigterm_and_waits_for_the_drain() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert seconds(service["TimeoutStopSec"]) >= 2 * DAEMON_DRAIN_SECONDS


def test_the_password_comes_from_an_environment_file_not_the_command_line() -> None:
    service = unit()["Service"]
    assert service["EnvironmentFile"] == "-/etc/saa-lab/env"
    for key in ("ExecStart", "Environment"):
        text = service.get(key, "").lower()
        assert "password" not in text and "postgresql" not in text and "://" not in text


def test_the_unit_is_hardened_and_writes_files_0640() -> None:
    service = unit()["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"].strip()
    assert service["PrivateTmp"] == "yes"
    umask = int(service["UMask"], 8)
    assert 0o666 & ~umask == 0o640


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    """systemd's own parser: an unknown key or a bad value is a warning on stderr (exit 0),
    so the test asserts that nothing is said about the unit. The daemon's path is
    swapped for an executable that exists here (verify checks it)."""
    text = UNIT.read_text(encoding="utf-8")
    command = unit()["Service"]["ExecStart"].split()[0]
    copy = tmp_path / "saa-lab.service"
    copy.write_text(text.replace(command, sys.executable), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    said = [line for line in (done.stdout + done.stderr).splitlines() if "saa-lab" in line]
    assert done.returncode == 0, done.stderr
    assert said == []


def test_systemd_analyze_would_notice_a_mistake(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    copy = tmp_path / "saa-lab.service"
    text = UNIT.read_text(encoding="utf-8").replace("RestartSec=", "RestartSecs=")
    command = unit()["Service"]["ExecStart"].split()[0]
    copy.write_text(text.replace(command, sys.executable), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert "RestartSecs" in done.stdout + done.stderr


def test_the_unit_ships_as_package_data() -> None:
    """pyproject's package-data for saa_lab.default_config (= config/) includes it."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    tool = data["tool"]["setuptools"]
    assert tool["package-dir"]["saa_lab.default_config"] == "config"
    globs = tool["package-data"]["saa_lab.default_config"]
    assert any(fnmatch.fnmatch(UNIT.name, g) for g in globs)
