"""Shared pieces of the hostile-input property tests (tests/hostile/).

Budget: every test asks for a fixed number of examples (``hostile(n)``), derandomized
so CI sees the same inputs every run. ``SAA_LAB_HYPOTHESIS_EXAMPLES=K`` multiplies
every budget by K for a soak and then draws fresh random inputs (seeded by hypothesis
as usual, failures are saved in .hypothesis/ and replayed)::

    SAA_LAB_HYPOTHESIS_EXAMPLES=20 .venv/bin/pytest tests/hostile -q

``counted`` tallies the examples each test really ran; tests/conftest.py
prints the tally at the end of the session.
"""

from __future__ import annotations

import functools
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "COUNTS",
    "EXAMPLES_ENV",
    "HANG_SECONDS",
    "JUNK",
    "TOLERATED",
    "Hang",
    "assert_one_line",
    "counted",
    "factor",
    "hostile",
    "junk_text",
    "pick",
    "time_limit",
]

EXAMPLES_ENV = "SAA_LAB_HYPOTHESIS_EXAMPLES"
#: examples run per test (``module::function``), filled by :func:`counted`
COUNTS: Counter[str] = Counter()
#: inputs that hit a known, reported bug in a file these tests may not fix (by bug id)
TOLERATED: Counter[str] = Counter()
#: seconds one example may take before it counts as a hang
HANG_SECONDS = 10

P = ParamSpec("P")
T = TypeVar("T")
_INDEX = st.integers(0, 2**16)


def factor() -> int:
    """The soak multiplier (1 in CI)."""
    raw = os.environ.get(EXAMPLES_ENV, "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError as exc:
        msg = f"{EXAMPLES_ENV}={raw!r} is not a whole number"
        raise ValueError(msg) from exc
    return max(1, value)


def hostile(max_examples: int) -> settings:
    """Settings for a hostile-input property: ``max_examples`` x the soak factor."""
    soak = factor()
    return settings(
        max_examples=max_examples * soak,
        deadline=None,
        derandomize=soak == 1,
        database=None if soak == 1 else settings.default.database,
        print_blob=soak > 1,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


def counted(test: Callable[P, None]) -> Callable[P, None]:
    """Count the examples ``test`` runs (put it under ``@given``)."""
    name = f"{test.__module__}.py::{test.__name__}"

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        COUNTS[name] += 1
        try:
            with time_limit(HANG_SECONDS):
                test(*args, **kwargs)
        except Hang as hang:
            raise AssertionError(str(hang)) from None

    return run


class Hang(BaseException):
    """Time is up. Not an Exception, so the code under test cannot catch it (TimeoutError
    is an OSError, which readers rightly catch)."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`Hang` (a test failure: a hang) after ``seconds``."""

    def fail(_signum: int, _frame: object) -> None:
        raise Hang(f"took more than {seconds} s (a hang?)")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_one_line(text: str, what: str = "the error") -> None:
    """A reason a person reads: not empty, one line, printable."""
    assert text.strip(), f"{what} is empty"
    assert "\n" not in text and "\r" not in text, f"{what} spans lines: {text!r}"
    bad = [c for c in text if ord(c) < 32 or ord(c) == 127]
    assert not bad, f"{what} holds control characters {bad!r}: {text!r}"


#: values people and programs put where a number, a name or a code belongs
JUNK: tuple[str, ...] = (
    "",
    " ",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "-1",
    "0",
    "0.0",
    "-0",
    "00",
    "1:0",
    "1:-5",
    "1:",
    ":5",
    "1_0",
    "0x10",
    "1,5",
    "1.5.5",
    "+2",
    " 7 ",
    "5e0",
    "٥",
    "５",
    "²",
    "=cmd|' /C calc'!A0",
    "=1+1",
    "@SUM(A1:A9)",
    "-2+3",
    "+cmd",
    "OVER",
    "####",
    "True",
    "None",
    "null",
    "\x00",
    "\ufeff",
    "\u202e",
    "\u00a0",
    "\x1c",
    "é",
    "😀",
    "\\",
    '"',
    "'",
    ",",
    ";",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "a\nb",
    "9" * 400,
    "x" * 3000,
)


def junk_text() -> st.SearchStrategy[str]:
    """A hostile value: one of :data:`JUNK` or any short text."""
    return _JUNK_TEXT


def pick(draw: st.DrawFn, choices: Sequence[T]) -> T:
    """One of ``choices`` (the first when shrinking), cheaper than a new sampled_from."""
    return choices[draw(_INDEX) % len(choices)]


_JUNK_TEXT = st.one_of(st.sampled_from(JUNK), st.text(max_size=12))
