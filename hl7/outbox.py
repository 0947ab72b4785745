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
    from pathlib import Path

__all__ = ["MESSAGE_FILE_SUFFIX", "message_file_bytes", "write_message_file"]

logger = logging.getLogger(__name__)

MESSAGE_FILE_SUFFIX: Final = ".hl7"
SEGMENT_SEPARATOR: Final = "\r"
# Letters, digits, ".", "_" and "-", not starting with "." (that would be a hidden
# file, and dot-names are this outbox's temporary files).
_SAFE_CONTROL_ID: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


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
    if not _SAFE_CONTROL_ID.fullmatch(control_id):
        msg = (
            f"control id {control_id!r} cannot name an outbox file: use 1-100 letters, "
            "digits, '.', '_' or '-', not starting with '.'"
        )
        raise DeliveryError(msg, path=str(directory))
    data = message_file_bytes(er7)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        msg = f"the HL7 outbox directory {what}; create it or correct the configured outbox path"
        raise DeliveryError(msg, path=str(directory))
    target = directory / f"{control_id}{MESSAGE_FILE_SUFFIX}"
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
    fd = os.open(temporary, flags, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(target)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


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
