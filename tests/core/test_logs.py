"""Structured logs: `saa-lab --log-format json` (env SAA_LAB_LOG_FORMAT) writes one JSON
object per line: time (ISO 8601, UTC, with offset), level, logger, message, the
exception when there is one, and the call's `extra` fields."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from conftest import SAMPLES, write_config

from saa_lab.cli import cli
from saa_lab.logs import LOG_FORMATS, TEXT_FORMAT, JsonFormatter, configure_logging

GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"


def record(
    message: str, *args: object, level: int = logging.INFO, **extra: Any
) -> logging.LogRecord:
    made = logging.LogRecord("saa_lab.test", level, __file__, 1, message, args or None, None)
    made.created = datetime(2026, 11, 22, 8, 15, 2, 113000, tzinfo=UTC).timestamp()
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_record_is_one_json_object_with_time_level_logger_and_message() -> None:
    line = JsonFormatter().format(record("%s processed: %d run(s)", "RUN-1.txt", 2))
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-11-22T08:15:02.113+00:00",
        "level": "INFO",
        "logger": "saa_lab.test",
        "message": "RUN-1.txt processed: 2 run(s)",
    }
    when = datetime.fromisoformat(json.loads(line)["time"])
    assert when.utcoffset() == timedelta(0)


def test_an_exception_is_included_as_its_traceback_text() -> None:
    try:
        raise ValueError("the bug\nin two lines")
    except ValueError:
        failed = logging.LogRecord("saa_lab.x", logging.ERROR, "", 0, "unexpected error", None,
                                   sys.exc_info())  # fmt: skip
    line = JsonFormatter().format(failed)
    assert line.count("\n") == 0  # newlines inside values are escaped
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["message"] == "unexpected error"
    assert entry["exception"].startswith("Traceback")
    assert "ValueError: the bug" in entry["exception"]


def test_extra_fields_are_added_but_never_replace_the_standard_ones() -> None:
    made = record("sent", destination="ehr", attempts=3, when=datetime(2026, 1, 1, tzinfo=UTC),
                  logger="someone-else")  # fmt: skip
    entry = json.loads(JsonFormatter().format(made))
    assert entry["destination"] == "ehr" and entry["attempts"] == 3
    assert entry["when"] == "2026-01-01 00:00:00+00:00"  # not JSON: written as str()
    assert entry["logger"] == "saa_lab.test"
    assert not {"args", "msg", "exc_info", "levelno", "pathname"} & set(entry)


def test_non_ascii_text_is_kept_readable() -> None:
    entry = JsonFormatter().format(record("Ärztin %s", "Müller"))
    assert "Ärztin Müller" in entry


def test_configure_logging_writes_json_lines_to_the_stream() -> None:
    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level
    root.handlers = []
    stream = io.StringIO()
    try:
        configure_logging(logging.INFO, "json", stream=stream)
        logging.getLogger("saa_lab.somewhere").info("hello %s", "world")
        logging.getLogger("saa_lab.somewhere").debug("not shown")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = saved, saved_level
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "hello world"


def test_the_cli_offers_the_log_formats_logs_knows() -> None:
    option = next(p for p in cli.params if p.name == "log_format")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == LOG_FORMATS
    assert option.envvar == "SAA_LAB_LOG_FORMAT"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAA_LAB_")}
    return subprocess.run([sys.executable, "-m", "saa_lab", *args], capture_output=True,
                          text=True, env={**clean, **env}, timeout=120, check=False)  # fmt: skip


def test_saa_lab_logs_json_lines_when_asked_by_option_or_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "lab")
    worklist = GEN5.with_name("RUN-G5-001.worklist.csv")
    process = ["process", str(GEN5), "--worklist", str(worklist)]
    by_option = _run(["--config", str(config), "--log-format", "json", "-v", *process], {})
    assert by_option.returncode == 0, by_option.stderr
    entries = [json.loads(line) for line in by_option.stderr.splitlines()]  # every line is JSON
    ours = [e for e in entries if e["logger"].startswith("saa_lab")]
    assert any(e["message"].startswith("RUN-G5-001.txt plate 1: run 1") for e in ours), entries
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert all(datetime.fromisoformat(e["time"]).utcoffset() == timedelta(0) for e in entries)

    by_env = _run(["--config", str(config), "-v", *process], {"SAA_LAB_LOG_FORMAT": "json"})
    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stderr and all(json.loads(line) for line in by_env.stderr.splitlines())

    fresh = write_config(tmp_path / "text")
    as_text = _run(["--config", str(fresh), "-v", *process], {})
    assert as_text.returncode == 0, as_text.stderr
    lines = as_text.stderr.splitlines()
    assert lines and not any(line.startswith("{") for line in lines)
    assert any(" INFO saa_lab.pipeline: RUN-G5-001.txt plate 1" in line for line in lines)
    assert TEXT_FORMAT == "%(asctime)s %(levelname)s %(name)s: %(message)s"  # unchanged


def test_an_unknown_log_format_is_refused_naming_the_choices(tmp_path: Path) -> None:
    done = _run(["--log-format", "xml", "status"], {})
    assert done.returncode == 2
    assert "'xml' is not one of 'text', 'json'" in done.stderr
