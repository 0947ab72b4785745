"""The file outbox: one HL7 message per file, written atomically.

An integration engine (Mirth/NextGen Connect, Rhapsody, ...) polls the outbox
directory and picks up ``<control id>.hl7`` files. It must never see a partial
file, so each message is written to a hidden temporary name in the same
directory (``.<control id>.<random>.tmp``; engines and saa-lab's own watcher
ignore dot-files), flushed and fsynced, then renamed over the final name with
:func:`os.replace`, and the directory is fsynced so the rename survives a
crash.

File convention: the ER7 text encoded as UTF-8 (the builder declares
``UNICODE UTF-8`` in MSH-18 whenever the text is not plain ASCII), segments
separated by a carriage return and a carriage return after the last segment,
no newline characters, no MLLP framing, no byte-order mark. This is what the
common file readers (Mirth's File Reader with the HL7 v2 data type, hl7apy,
python-hl7) accept without configuration.

Batch files (a destination with ``batch = true``): all of a run's messages in
one ``<name>.hl7``, wrapped as ``FHS BHS <MSH...> BTS FTS``, written the same way.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
from typing import TYPE_CHECKING, Final

from saa_lab.errors import DeliveryError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from pathlib import Path

__all__ = [
    "FILE_MODE",
    "MESSAGE_FILE_SUFFIX",
    "build_batch",
    "message_file_bytes",
    "remove_stale_temporaries",
    "write_batch_file",
    "write_message_file",
]

logger = logging.getLogger(__name__)

MESSAGE_FILE_SUFFIX: Final = ".hl7"
# rw-r-----: the service account writes, the integration engine's group reads,
# nobody else: the messages carry patient data.
FILE_MODE: Final = 0o640
SEGMENT_SEPARATOR: Final = "\r"
# Letters, digits, ".", "_" and "-", not starting with "." (that would be a hidden
# file, and dot-names are this outbox's temporary files).
_SAFE_CONTROL_ID: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
# Names Windows gives to devices whatever the extension (CON.hl7 is the console), so a
# share served from Windows would swallow the message: refused in any letter case.
_WINDOWS_DEVICES: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
     *(f"LPT{i}" for i in range(1, 10))}
)  # fmt: skip


def message_file_bytes(er7: str) -> bytes:
    """Return the bytes of the outbox file for the ER7 text ``er7``."""
    if not er7.startswith("MSH|"):
        msg = f"not an ER7 message (must start with 'MSH|'): {er7[:20]!r}"
        raise ValueError(msg)
    if "\n" in er7:
        msg = "ER7 text must separate segments with '\\r' only, found '\\n'"
        raise ValueError(msg)
    if not er7.endswith(SEGMENT_SEPARATOR):
        er7 += SEGMENT_SEPARATOR
    return er7.encode("utf-8")


def write_message_file(directory: Path, control_id: str, er7: str) -> Path:
    """Write ``er7`` to ``<directory>/<control_id>.hl7`` atomically; return the path.

    Writing the same control id again with the same content is a no-op that
    returns the same path (a retried delivery). A file with that name and
    *different* content is refused: a changed message needs a new control id,
    and overwriting would let the receiver miss one of the two versions.

    Raises :class:`~saa_lab.errors.DeliveryError` (naming the directory) when
    ``control_id`` is not safe as a file name, the directory is missing or not a
    directory, or the file cannot be written.
    """
    return _write_outbox_file(directory, control_id, message_file_bytes(er7), "control id")


def build_batch(messages: Sequence[str], *, control_id: str, created: datetime,
                name: str = "") -> str:  # fmt: skip
    """An HL7 batch file: ``FHS BHS <messages> BTS FTS`` (segments joined by CR).

    FHS/BHS-3..6 (sender and receiver) are copied from the first message's
    MSH-3..6; FHS-7/BHS-7 are ``created``; FHS-9 is ``name``; FHS-11 and BHS-11
    are ``control_id``. BTS-1 counts the messages, FTS-1 the batches (one).
    Deterministic for the same arguments, so a retried write is a no-op.
    """
    if not messages:
        msg = "a batch needs at least one message"
        raise ValueError(msg)
    header = messages[0].split(SEGMENT_SEPARATOR, 1)[0]
    if not header.startswith("MSH|"):
        msg = f"not an ER7 message (must start with 'MSH|'): {header[:20]!r}"
        raise ValueError(msg)
    fields = header.split("|")
    parties = "|".join((fields[2:6] + [""] * 4)[:4])
    offset = created.utcoffset()
    if offset is None:
        msg = f"created must be timezone-aware, got {created!r}"
        raise ValueError(msg)
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    when = f"{created:%Y%m%d%H%M%S}{sign}{hours:02d}{minutes:02d}"
    encoding = fields[1] if len(fields) > 1 else "^~\\&"
    segments = [
        f"FHS|{encoding}|{parties}|{when}||{name}||{control_id}",
        f"BHS|{encoding}|{parties}|{when}||{name}||{control_id}",
        *(m.rstrip(SEGMENT_SEPARATOR) for m in messages),
        f"BTS|{len(messages)}",
        "FTS|1",
    ]
    return SEGMENT_SEPARATOR.join(segments)


def write_batch_file(directory: Path, name: str, batch: str) -> Path:
    """Write the batch text ``batch`` to ``<directory>/<name>.hl7`` atomically.

    The same rules as :func:`write_message_file`: the same content again is a
    no-op, different content under the same name is refused.
    """
    if not batch.startswith("FHS|"):
        msg = f"not an HL7 batch file (must start with 'FHS|'): {batch[:20]!r}"
        raise ValueError(msg)
    if "\n" in batch:
        msg = "ER7 text must separate segments with '\\r' only, found '\\n'"
        raise ValueError(msg)
    if not batch.endswith(SEGMENT_SEPARATOR):
        batch += SEGMENT_SEPARATOR
    return _write_outbox_file(directory, name, batch.encode("utf-8"), "batch name")


def _write_outbox_file(directory: Path, stem: str, data: bytes, what: str) -> Path:
    device = stem.split(".", 1)[0].upper() in _WINDOWS_DEVICES
    if not _SAFE_CONTROL_ID.fullmatch(stem) or device:
        msg = (
            f"{what} {stem!r} cannot name an outbox file: use 1-100 letters, "
            "digits, '.', '_' or '-', not starting with '.', and not a Windows device "
            "name (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
        )
        raise DeliveryError(msg, path=str(directory))
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        msg = f"the HL7 outbox directory {what}; create it or correct the configured outbox path"
        raise DeliveryError(msg, path=str(directory))
    target = directory / f"{stem}{MESSAGE_FILE_SUFFIX}"
    try:
        if _holds(target, data):
            logger.debug("outbox file %s already holds this message", target)
            return target
        _write_atomically(target, data)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        msg = (
            f"cannot write {target.name} in the HL7 outbox ({reason}); "
            "check that the directory is writable and the disk is not full"
        )
        raise DeliveryError(msg, path=str(directory)) from exc
    logger.debug("wrote outbox file %s (%d bytes)", target, len(data))
    return target


def _holds(target: Path, data: bytes) -> bool:
    """True if ``target`` already has exactly ``data``; DeliveryError if it has other bytes."""
    try:
        existing = target.read_bytes()
    except FileNotFoundError:
        return False
    if existing == data:
        return True
    msg = (
        f"{target.name} already holds a different message with the same control id; "
        "a changed message needs a new control id"
    )
    raise DeliveryError(msg, path=str(target.parent))


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, FILE_MODE)  # exactly rw-r-----, whatever the umask
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(target)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def remove_stale_temporaries(directory: Path, *, older_than_seconds: float = 600.0) -> int:
    """Remove this outbox's temporary files (``.<id>.<hex>.tmp``) older than the given age:
    left by a process killed while writing; their messages are still pending and are
    written again. Returns how many were removed."""
    import time

    removed = 0
    cutoff = time.time() - older_than_seconds
    try:
        candidates = list(directory.glob(".*.tmp"))
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError as error:
            logger.debug("cannot remove %s: %s", path, error)
    return removed


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows fsync on a directory."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a directory this way
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some network file systems do not support fsync on a directory.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        logger.debug("cannot fsync directory %s: %s", directory, exc.strerror)
    finally:
        os.close(fd)
