"""How result numbers are written, the same in HL7, comments and the CLI.

Values of 10 or more are rounded to one decimal, smaller values to three
significant digits, half-up on the shortest decimal form of the float
(``12.25`` -> ``12.3``); trailing zeros and a trailing point are dropped
(``250.0`` -> ``250``).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal

__all__ = ["format_number"]

_DECIMAL_CONTEXT = Context(prec=400)


def format_number(value: float) -> str:
    """Render a result number as HL7 NM text, without float artifacts.

    >>> [format_number(v) for v in (250.0, 123.40000001, 12.25, 5.678, 0.12345, 0.0)]
    ['250', '123.4', '12.3', '5.68', '0.123', '0']
    """
    if not math.isfinite(value):
        msg = f"cannot format {value!r} as an HL7 number"
        raise ValueError(msg)
    exact = Decimal(repr(float(value)))
    if exact.is_zero():
        return "0"
    step = Decimal("0.1") if abs(exact) >= 10 else Decimal(1).scaleb(exact.adjusted() - 2)
    text = format(exact.quantize(step, rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
