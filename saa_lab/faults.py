"""Named crash points, for the crash-consistency tests and the soak.

``crash_point("committed")`` does nothing unless the environment variable
``SAA_LAB_CRASH_AT`` names that point, as ``NAME`` (the first time it is
reached) or ``NAME:N`` (the N-th time), or ``NAME:pP`` (each time with
probability P, e.g. ``committed:p0.05``); several points are separated by
commas. When it fires, the process kills itself with SIGKILL: no ``finally``,
no ``atexit``, no flush, exactly what a power cut or the OOM killer leaves.

The points sit between the steps whose order the promises depend on:

=================  ==========================================================
``read``           the export has been read and hashed; nothing stored
``calibrated``     the runs are fitted and interpreted; nothing stored
``committed``      results and outbox rows are committed; the file is still in
                   the inbox
``archived``       the export is in the archive; its archive path not recorded
``file-written``   an outbox file is in place; the message is not marked sent
``mllp-sent``      an MLLP message was written; its ACK is not read
``acked``          the ACK was read and checked; the message is not marked sent
=================  ==========================================================

Read once, at import: a process that is not under test pays one dict lookup.
"""

from __future__ import annotations

import os
import random
import signal

__all__ = ["CRASH_ENV", "POINTS", "crash_point"]

CRASH_ENV = "SAA_LAB_CRASH_AT"
POINTS = ("read", "calibrated", "committed", "archived", "file-written", "mllp-sent", "acked")


def _parse(spec: str) -> dict[str, tuple[int, float]]:
    """``{point: (nth, probability)}``; nth 0 means "by probability"."""
    armed: dict[str, tuple[int, float]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, when = item.partition(":")
        if name not in POINTS:
            msg = f"{CRASH_ENV}: unknown crash point {name!r}; known: {', '.join(POINTS)}"
            raise ValueError(msg)
        if when.startswith("p"):
            armed[name] = (0, float(when[1:]))
        else:
            armed[name] = (int(when or "1"), 0.0)
    return armed


_ARMED = _parse(os.environ.get(CRASH_ENV, ""))
_REACHED: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``SAA_LAB_CRASH_AT`` asks for it."""
    if not _ARMED:
        return
    when = _ARMED.get(name)
    if when is None:
        return
    nth, probability = when
    count = _REACHED[name] = _REACHED.get(name, 0) + 1
    if (nth and count == nth) or (probability and random.random() < probability):
        os.kill(os.getpid(), signal.SIGKILL)
