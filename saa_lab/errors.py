"""One exception root for saa-lab, split by whose fault an error is.

Every error names what it is about (file, line, well, config key) so that a
technician or administrator can act on the one line the CLI prints. Bugs are not
caught and relabelled: they propagate as ordinary exceptions.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousFormatError",
    "AuditChainError",
    "CalibrationError",
    "ConfigError",
    "ConflictError",
    "DeliveryError",
    "InputFileError",
    "ReportError",
    "ReviewError",
    "SaaLabError",
    "StoreError",
    "UnknownFormatError",
]


class SaaLabError(Exception):
    """Root of every error saa-lab raises on purpose.

    ``path``, ``line`` and ``well`` locate the problem; ``str()`` renders
    ``path:line: well W: message`` with whatever parts are known.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        well: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.well = well
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        if self.key:
            where += f"{self.key}: "
        if self.well:
            where += f"well {self.well}: "
        return f"{where}{self.message}"


class InputFileError(SaaLabError):
    """The dropped file (export or worklist) cannot be used as it is.

    The file is quarantined with the reason; no result and no HL7 message come
    from it. Fixing the file and dropping it again is the remedy.
    """

    exit_code = 3


class UnknownFormatError(InputFileError):
    """No parser recognises the file's content."""


class AmbiguousFormatError(InputFileError):
    """More than one parser claims the file; the candidates are listed."""

    def __init__(self, message: str, *, candidates: list[str], path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.candidates = candidates


class CalibrationError(SaaLabError):
    """The run's calibration cannot be computed at all (not a QC rejection)."""

    exit_code = 4


class ConfigError(SaaLabError):
    """A configuration file or setting is missing or wrong; names file and key."""

    exit_code = 2


class StoreError(SaaLabError):
    """The database cannot be reached or refused the write; retry when fixed."""

    exit_code = 5


class DeliveryError(SaaLabError):
    """An HL7 message could not be delivered to its destination."""

    exit_code = 6


class ReviewError(SaaLabError):
    """A review action that cannot be done: unknown user, missing permission, or a result
    or run not in a state that allows it (e.g. correcting a result never released)."""

    exit_code = 7


class ConflictError(ReviewError):
    """Someone else acted on the same run or result first; nothing was changed. Look again
    (``saa-lab review RUN``) before acting."""

    exit_code = 8


class AuditChainError(SaaLabError):
    """The audit trail's hash chain is broken: an entry was changed, inserted or removed."""

    exit_code = 9


class ReportError(SaaLabError):
    """A run report cannot be made or written: no such run, or its file name is taken by
    another file (never overwritten), or the folder refuses the write."""

    exit_code = 10
